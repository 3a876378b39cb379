"""The counting roles: counters (and histograms' or summaries' _count, which are counters too) that grew by as
many as the ledger says: predictions served, requests answered, errors, labels posted; a score histogram;
predictions by class; a latency histogram in seconds."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .context import Context, Evidence
from .families import Family
from .roles import Role

IGNORED_LABELS = {"__name__", "instance", "job"}
# What a label value of an error group looks like: a 4xx/5xx status (or its class), or an error word.
ERROR_GROUP = re.compile(r"^[45](\d\d|xx)$|error|fail|reject|invalid|exception", re.I)


@dataclass(frozen=True)
class Group:
    """All series of a counter, or those with one value of one label."""

    label: str = ""
    value: str = ""

    def selector(self, series: str) -> str:
        return f'{series}{{{self.label}="{self.value}"}}' if self.label else series


@dataclass(frozen=True)
class CountFinding:
    role: Role
    family: str
    series: str
    group: Group
    increase: float
    target: str  # which ledger count it matched, e.g. "predictions served (2xx) 1760"

    def describe(self) -> str:
        return f"{self.group.selector(self.series)} grew by {self.increase:.0f} ({self.target})"


class Counter:
    """Increases of counter-like series over the session, cached (several roles look at the same ones)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._cache: dict[str, dict[Group, float]] = {}

    def _births(self, series: str) -> list[tuple[dict, float]]:
        """(labels, first value) of each series that appeared during the session. A counter's series is born at
        0 (at the first 422, say) and increase() sees only what came after its first scrape: its first value is
        what increase() misses, a few requests at a 1 s scrape, up to a scrape interval's worth at 5 s."""
        ctx = self.ctx
        start = ctx.eval_at - ctx.window_seconds
        step = max(1.0, ctx.window_seconds / 10_000)  # Prometheus answers at most 11,000 points a series
        born = []
        for metric, points in ctx.prom.series_values(series, start, ctx.eval_at, step):
            if points and points[0][0] > start + step:
                born.append((metric, points[0][1]))
        return born

    def increases(self, series: str) -> dict[Group, float]:
        """{Group(): total increase, Group(label, value): increase of that group} over the session."""
        if series in self._cache:
            return self._cache[series]
        ctx, out = self.ctx, {}
        born = self._births(series)
        total = ctx.prom.scalar(f"sum(increase({series}[{ctx.window}]))", ctx.eval_at)
        if total == total:
            out[Group()] = total + sum(v for _, v in born)
            labels = set()
            for s in ctx.prom.query(series, ctx.eval_at):
                labels |= set(s["metric"]) - IGNORED_LABELS
            for label in sorted(labels):
                for s in ctx.prom.query(f"sum by ({label}) (increase({series}[{ctx.window}]))", ctx.eval_at):
                    value = s["metric"].get(label, "")
                    out[Group(label, value)] = float(s["value"][1]) + sum(
                        v for m, v in born if m.get(label, "") == value
                    )
        self._cache[series] = out
        return out

    def matches(self, value: float, target: int) -> bool:
        """Within the relative tolerance, or the absolute one (increase() extrapolates a little past a series'
        first and last samples)."""
        tol = self.ctx.tol
        return target > 0 and abs(value - target) <= max(tol.count_relative * target, tol.count_absolute)

    def tracking(
        self, role: Role, targets: dict[str, int], families: list[Family], grouped_only: bool = False, group_filter=None
    ) -> list[CountFinding]:
        """Every (series, group) whose increase matches one of the ledger's counts."""
        found = []
        for fam in families:
            for series in fam.counting_series():
                for group, value in self.increases(series).items():
                    if grouped_only and not group.label:
                        continue
                    if group_filter is not None and not group_filter(group):
                        continue
                    for what, n in targets.items():
                        if self.matches(value, n):
                            found.append(CountFinding(role, fam.name, series, group, value, f"{what} {n}"))
                            break
        return found


def evidence(finding: CountFinding, ctx: Context) -> Evidence:
    return Evidence(
        f"sum(increase({finding.group.selector(finding.series)}[{ctx.window}]))",
        round(finding.increase, 1),
        f"the ledger: {finding.target}",
    )


def served(ctx: Context) -> dict[str, int]:
    s = ctx.session
    return {"predictions served (2xx)": s.total("ok"), "prediction requests answered": s.total("answered")}


def answered(ctx: Context) -> dict[str, int]:
    s = ctx.session
    return {
        "/predict calls answered": s.total("answered"),
        "/predict calls answered 2xx": s.total("ok"),
        "/predict and /feedback calls answered": s.total("answered") + s.total("labels_posted"),
    }


def labels(ctx: Context) -> dict[str, int]:
    # Labels come back after their predictions: those of the last ones arrive after the traffic has ended.
    n = ctx.session.total("labels_posted", end=int(ctx.eval_at) + 1)
    return {"labels posted": n} if n else {}


def errors(ctx: Context) -> dict[str, int]:
    s = ctx.session
    out = {
        "rejected (4xx)": s.total("client_errors"),
        "failed (5xx)": s.total("server_errors"),
        "4xx and 5xx": s.total("client_errors") + s.total("server_errors"),
    }
    return {k: v for k, v in out.items() if v}


def find(ctx: Context) -> tuple[dict[Role, list[CountFinding]], list[LatencyTrial]]:
    """Every counting role and the series that fill it; and each latency histogram tried."""
    c = Counter(ctx)
    counting = [f for f in ctx.families.values() if f.counting_series()]
    out: dict[Role, list[CountFinding]] = {
        Role.PREDICTION_COUNTER: c.tracking(Role.PREDICTION_COUNTER, served(ctx), counting),
        Role.REQUEST_COUNTER: c.tracking(Role.REQUEST_COUNTER, answered(ctx), counting),
        Role.ERROR_COUNTER: c.tracking(
            Role.ERROR_COUNTER,
            errors(ctx),
            counting,
            grouped_only=True,
            group_filter=lambda g: bool(ERROR_GROUP.search(g.value)),
        ),
        Role.SCORE_HISTOGRAM: _score_histograms(ctx, c),
        Role.CLASS_COUNTER: _class_counters(ctx, c, counting),
    }
    out[Role.LATENCY_HISTOGRAM], trials = latency_histograms(ctx, c, out[Role.SCORE_HISTOGRAM])
    # A counter of the labels alone: a request counter (or timer) with a /feedback route among others counts requests.
    requests = {
        f.family for r in (Role.PREDICTION_COUNTER, Role.REQUEST_COUNTER, Role.LATENCY_HISTOGRAM) for f in out[r]
    }
    out[Role.LABEL_COUNTER] = c.tracking(
        Role.LABEL_COUNTER, labels(ctx), [f for f in counting if f.name not in requests]
    )
    return out, trials


def _score_histograms(ctx: Context, c: Counter) -> list[CountFinding]:
    found = []
    targets = served(ctx)
    for fam in ctx.families.values():
        if fam.type != "histogram" or f"{fam.name}_count" not in fam.series:
            continue
        les = [s["metric"].get("le") for s in ctx.prom.query(fam.sample("_bucket"), ctx.eval_at)]
        bounds = [float(le) for le in les if le and le != "+Inf"]
        if not bounds or min(bounds) < 0 or max(bounds) > 1:
            continue
        count = c.increases(f"{fam.name}_count").get(Group(), 0.0)
        what = next((f"{k} {n}" for k, n in targets.items() if c.matches(count, n)), None)
        if what:
            found.append(
                CountFinding(
                    Role.SCORE_HISTOGRAM,
                    fam.name,
                    f"{fam.name}_bucket",
                    Group(),
                    count,
                    f"{what}; buckets {sorted(set(bounds))}",
                )
            )
    return found


def _class_counters(ctx: Context, c: Counter, counting: list[Family]) -> list[CountFinding]:
    """A counter split by a label with 2 to 5 values that together count every prediction (a count per class)."""
    found = []
    targets = served(ctx)
    for fam in counting:
        for series in fam.counting_series():
            groups = c.increases(series)
            for label in sorted({g.label for g in groups if g.label and g.label != "le"}):
                by_value = {g.value: n for g, n in groups.items() if g.label == label}
                total = sum(by_value.values())
                what = next((f"{k} {n}" for k, n in targets.items() if c.matches(total, n)), None)
                if 2 <= len(by_value) <= 5 and what and sum(1 for n in by_value.values() if n > 0) >= 2:
                    found.append(
                        CountFinding(
                            Role.CLASS_COUNTER,
                            fam.name,
                            series,
                            Group(label, "*"),
                            total,
                            f"{what}, by {label}: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(by_value.items())),
                        )
                    )
    return found


@dataclass(frozen=True)
class LatencyTrial:
    family: str
    selector: str
    baseline_mean: float
    client_mean: float
    fault_mean: float | None
    injected: float | None
    unit_ok: bool
    fault_ok: bool

    @property
    def passed(self) -> bool:
        return self.unit_ok and self.fault_ok


def _mean_latency(ctx: Context, fam: Family, selector: str, start: float, end: float) -> float:
    dur = f"{max(1, int(end - start))}s"
    total = ctx.prom.scalar(f"sum(increase({fam.name}_sum{selector}[{dur}]))", end)
    count = ctx.prom.scalar(f"sum(increase({fam.name}_count{selector}[{dur}]))", end)
    return total / count if count and count == count else math.nan


def latency_histograms(
    ctx: Context, c: Counter | None = None, scores: list[CountFinding] = ()
) -> tuple[list[CountFinding], list[LatencyTrial]]:
    """Histograms (or summaries) that count the /predict calls and whose mean, in the baseline, is the client's
    latency in seconds (and which rise by the injected latency during a latency fault). A histogram of scores
    is not one, whatever its mean happens to be next to the client's latency."""
    c = c or Counter(ctx)
    skip = {f.family for f in scores}
    s = ctx.session
    baseline = s.baseline()
    if baseline is None:
        return [], []
    fault = next((i for i in s.incidents() if i.kind == "latency"), None)
    targets = answered(ctx)
    found, trials = [], []
    for fam in ctx.families.values():
        if fam.type not in ("histogram", "summary") or f"{fam.name}_sum" not in fam.series or fam.name in skip:
            continue
        groups = c.increases(f"{fam.name}_count")
        for group in [Group(), *[g for g in groups if g.label and g.label != "le"]]:
            n = groups.get(group, 0.0)
            what = next((f"{k} {t}" for k, t in targets.items() if c.matches(n, t)), None)
            if not what:
                continue
            selector = f'{{{group.label}="{group.value}"}}' if group.label else ""
            b_start, b_end = baseline[0] + 5, baseline[1]
            server = _mean_latency(ctx, fam, selector, b_start, b_end)
            client = s.client_latency(b_start, b_end)
            low, high = ctx.tol.latency_ratio
            unit_ok = server == server and client == client and client > 0 and low <= server / client <= high
            during, injected, fault_ok = None, None, True
            if fault is not None:
                during = _mean_latency(ctx, fam, selector, fault.start + 2, fault.end)
                injected = fault.injection.seconds
                lo, hi = ctx.tol.latency_fault_share
                fault_ok = during == during and lo * injected <= during - server <= hi * injected
            trial = LatencyTrial(fam.name, selector, server, client, during, injected, unit_ok, fault_ok)
            trials.append(trial)
            if trial.passed:
                found.append(CountFinding(Role.LATENCY_HISTOGRAM, fam.name, f"{fam.name}_count", group, n, what))
            break  # the first group that counts the calls speaks for the family
    return found, trials
