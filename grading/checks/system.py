"""Item 3, system metrics: a latency histogram in seconds (that saw the latency fault), a request counter that
follows the traffic, and errors counted."""

from __future__ import annotations

from ..context import CheckResult, Context, Evidence
from ..counting import answered, errors, evidence
from ..findings import Findings
from ..roles import Role

ITEM = "system"


def check(ctx: Context, found: Findings) -> list[CheckResult]:
    return [_latency(ctx, found), _throughput(ctx, found), _errors(ctx, found)]


def _latency(ctx: Context, found: Findings) -> CheckResult:
    trials = found.latency_trials
    evidence_ = []
    for t in trials[:4]:
        evidence_.append(
            Evidence(
                f"sum(increase({t.family}_sum{t.selector}[...])) / sum(increase({t.family}_count{t.selector}[...]))",
                round(t.baseline_mean, 4),
                f"baseline mean; the client saw {t.client_mean:.4f} s",
            )
        )
        if t.injected is not None:
            evidence_.append(
                Evidence(
                    "the same during the latency fault",
                    None if t.fault_mean is None else round(t.fault_mean, 4),
                    f"{t.injected} s were injected",
                )
            )
    winners = found.counted(Role.LATENCY_HISTOGRAM)
    if winners:
        fault = " (and saw the latency fault)" if any(t.injected for t in trials) else ""
        return ctx.result(
            ITEM,
            "latency_histogram_seconds",
            1,
            f"{winners[0].family} measures the latency of /predict in seconds{fault}",
            evidence_,
        )
    if trials:
        units = [t.family for t in trials if not t.unit_ok]
        summary = (
            f"{', '.join(sorted(set(units)))}: its mean is not the client's latency in seconds"
            if units
            else f"{', '.join(sorted({t.family for t in trials}))}: did not rise by the injected latency"
        )
        return ctx.result(ITEM, "latency_histogram_seconds", 0, summary, evidence_)
    return ctx.result(
        ITEM,
        "latency_histogram_seconds",
        0,
        "no histogram or summary counts the /predict calls",
        [Evidence("histograms and summaries whose _count follows the /predict calls", "none")],
    )


def _throughput(ctx: Context, found: Findings) -> CheckResult:
    hits = found.counted(Role.REQUEST_COUNTER)
    if hits:
        return ctx.result(
            ITEM,
            "throughput_counter",
            1,
            f"{hits[0].group.selector(hits[0].series)} follows the requests",
            [evidence(h, ctx) for h in hits[:3]],
        )
    return ctx.result(
        ITEM,
        "throughput_counter",
        0,
        "no counter follows the requests sent",
        [
            Evidence(
                "sum by (<label>) (increase(<each counter and histogram _count>))",
                "no match",
                ", ".join(f"{k} {v}" for k, v in answered(ctx).items()),
            )
        ],
    )


def _errors(ctx: Context, found: Findings) -> CheckResult:
    hits = found.counted(Role.ERROR_COUNTER)
    if hits:
        h = hits[0]
        return ctx.result(
            ITEM,
            "errors_counted",
            1,
            f"{h.series} counts the errors by {h.group.label}",
            [evidence(x, ctx) for x in hits[:3]],
        )
    return ctx.result(
        ITEM,
        "errors_counted",
        0,
        "no counter grew by as many as the errors clients saw",
        [
            Evidence(
                "sum by (<label>) (increase(<each counter and histogram _count>))",
                "no match",
                ", ".join(f"{k} {v}" for k, v in errors(ctx).items()),
            )
        ],
    )
