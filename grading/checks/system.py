"""Item 3, system metrics: a latency histogram in seconds, a request counter whose rate follows the
traffic, and errors counted."""
from __future__ import annotations

import math
import re

from ..context import CheckResult, Evidence, GradingContext
from .counting import evidence_for, find_tracking, increases, matches

ITEM = "system"
# What a label value of an error group looks like: a 4xx/5xx status (or its class), or an error word.
ERROR_GROUP = re.compile(r"^[45](\d\d|xx)$|error|fail|reject|invalid|exception", re.I)


def check(ctx: GradingContext) -> list[CheckResult]:
    s = ctx.session
    sent = {"/predict answered": s.in_session("requests") - s.in_session("failures"),
            "/predict 2xx": s.in_session("ok"),
            "/predict and /feedback": s.in_session("requests") - s.in_session("failures") + s.in_session("labels_posted")}
    hits = find_tracking(ctx, [f.sample() for f in ctx.of_type("counter")], list(sent.values()))
    if hits:
        series, group, value = hits[0]
        ctx.found.setdefault("request_counter", []).extend(h[0] for h in hits)
        throughput = ctx.result(ITEM, "throughput_counter", 1, f"{series} follows the requests sent",
                                [evidence_for(ctx, series, group, value, sent)])
    else:
        throughput = ctx.result(ITEM, "throughput_counter", 0, "no counter follows the requests sent",
                                [Evidence("sum by (<label>) (increase(<each counter>))", "no match", str(sent))])
    return [_latency(ctx, sent), throughput, _errors(ctx)]


def _mean_latency(ctx: GradingContext, fam, selector: str, start: float, end: float) -> float:
    dur = f"{max(1, int(end - start))}s"
    total = ctx.prom.scalar(f"sum(increase({fam.sample('_sum')}{selector}[{dur}]))", end)
    count = ctx.prom.scalar(f"sum(increase({fam.sample('_count')}{selector}[{dur}]))", end)
    return total / count if count and count == count else math.nan


def _latency(ctx: GradingContext, sent: dict[str, int]) -> CheckResult:
    s = ctx.session
    baseline = s.quiet_phases()
    fault = next((i for i in s.incidents() if i.kind == "latency"), None)
    tried = []
    for fam in ctx.of_type("histogram", "summary"):
        groups = increases(ctx, fam.sample("_count"))
        selectors = [("", "")] + [g for g in groups if g[0]]
        for label, value in selectors:
            if not matches(groups.get((label, value), 0), list(sent.values()), ctx):
                continue
            selector = f'{{{label}="{value}"}}' if label else ""
            b_start, b_end = baseline[0]["start"] + 5, baseline[-1]["end"]
            server = _mean_latency(ctx, fam, selector, b_start, b_end)
            client = s.client_latency(b_start, b_end)
            low, high = ctx.tol.latency_ratio
            ok_unit = server == server and low <= server / client <= high
            evidence = [Evidence(f"sum(increase({fam.sample('_sum')}{selector}[...])) / sum(increase({fam.sample('_count')}{selector}[...]))",
                                 round(server, 4), f"baseline mean; the client saw {client:.4f}s")]
            ok_fault = True
            if fault is not None:
                during = _mean_latency(ctx, fam, selector, fault.start + 2, fault.end)
                injected = fault.params.get("seconds", 0)
                lo, hi = ctx.tol.latency_fault_share
                ok_fault = during == during and lo * injected <= during - server <= hi * injected
                evidence.append(Evidence("the same during the latency fault", round(during, 4),
                                         f"{injected}s were injected"))
            if ok_unit and ok_fault:
                ctx.found.setdefault("latency_histogram", []).append(fam.name)
                return ctx.result(ITEM, "latency_histogram_seconds", 1,
                                  f"{fam.name} measures latency in seconds (and saw the latency fault)", evidence)
            tried.append((fam.name, evidence))
            break
    if tried:
        names = ", ".join(sorted({n for n, _ in tried}))
        return ctx.result(ITEM, "latency_histogram_seconds", 0,
                          f"histograms counting the requests ({names}) do not hold the latency in seconds",
                          [e for _, ev in tried for e in ev])
    return ctx.result(ITEM, "latency_histogram_seconds", 0, "no histogram counts the requests served",
                      [Evidence("histograms whose _count follows the requests", "none")])


def _errors(ctx: GradingContext) -> CheckResult:
    s = ctx.session
    errors = {"rejected (4xx)": s.in_session("client_errors"), "failed (5xx)": s.in_session("server_errors"),
              "4xx and 5xx": s.in_session("client_errors") + s.in_session("server_errors")}
    if not errors["4xx and 5xx"]:
        return ctx.result(ITEM, "errors_counted", 1, "the scenario caused no errors: nothing to count", [])
    # A group of some label (a status code, an error kind) that grew by as many as the errors clients saw.
    series = [f.sample() for f in ctx.of_type("counter")] + [f.sample("_count") for f in ctx.of_type("histogram")]
    hits = [h for h in find_tracking(ctx, series, [n for n in errors.values() if n], grouped_only=True)
            if ERROR_GROUP.search(h[1][1])]
    if hits:
        name, group, value = hits[0]
        ctx.found.setdefault("error_counter", []).extend(h[0] for h in hits)
        return ctx.result(ITEM, "errors_counted", 1, f"{name} counts the errors by {group[0]}",
                          [evidence_for(ctx, name, group, value, errors)])
    return ctx.result(ITEM, "errors_counted", 0, "no counter grew by as many as the errors clients saw",
                      [Evidence("sum by (<label>) (increase(<each counter>))", "no match", str(errors))])
