"""Shared by the counting checks: how much a counter (or a histogram's _count) grew in the session,
in total and split by each of its labels."""
from __future__ import annotations

from ..context import Evidence, GradingContext

IGNORED_LABELS = {"__name__", "instance", "job"}


def label_names(ctx: GradingContext, series: str) -> set[str]:
    names = set()
    for s in ctx.prom.query(series, ctx.eval_at):
        names |= set(s["metric"]) - IGNORED_LABELS
    return names


def births(ctx: GradingContext, series: str) -> list[tuple[dict, float]]:
    """(labels, first value) of each series that appeared during the session. A counter's series is born at 0
    (at the first 422, say) and increase() sees only what came after its first scrape: its first value is what
    increase() misses, a few requests at a 1 s scrape, up to a scrape interval's worth at 5 s."""
    start = ctx.eval_at - ctx.window_seconds
    step = max(1.0, ctx.window_seconds / 10_000)  # Prometheus answers at most 11,000 points a series
    born = []
    for metric, points in ctx.prom.series_values(series, start, ctx.eval_at, step):
        if points and points[0][0] > start + step:
            born.append((metric, points[0][1]))
    return born


def increases(ctx: GradingContext, series: str) -> dict[tuple[str, str], float]:
    """{("", ""): total increase, (label, value): increase of that group} over the session, counting what each
    series born during the session held at its first scrape."""
    out = {}
    born = births(ctx, series)
    expr = f"sum(increase({series}[{ctx.window}]))"
    total = ctx.prom.scalar(expr, ctx.eval_at)
    if total == total:
        out[("", "")] = total + sum(value for _, value in born)
    for label in label_names(ctx, series):
        for s in ctx.prom.query(f"sum by ({label}) (increase({series}[{ctx.window}]))", ctx.eval_at):
            group = s["metric"].get(label, "")
            out[(label, group)] = float(s["value"][1]) + sum(v for m, v in born if m.get(label, "") == group)
    return out


def matches(value: float, targets: list[int], ctx: GradingContext) -> bool:
    """Within the relative tolerance, or the absolute one (increase() extrapolates a little past a series'
    first and last samples)."""
    slack = ctx.tol.count_absolute
    return any(t > 0 and abs(value - t) <= max(ctx.tol.count_relative * t, slack) for t in targets)


def find_tracking(ctx: GradingContext, series_names: list[str], targets: list[int],
                  grouped_only: bool = False) -> list[tuple[str, tuple, float]]:
    """Every (series, group, increase) whose increase matches one of the ledger's counts, first found first."""
    found = []
    for series in series_names:
        for group, value in increases(ctx, series).items():
            if (group[0] or not grouped_only) and matches(value, targets, ctx):
                found.append((series, group, value))
    return found


def group_selector(series: str, group: tuple[str, str]) -> str:
    label, value = group
    return f'{series}{{{label}="{value}"}}' if label else series


def evidence_for(ctx: GradingContext, series: str, group: tuple, value: float, targets: dict[str, int]) -> Evidence:
    expr = f"sum(increase({group_selector(series, group)}[{ctx.window}]))"
    return Evidence(expr, round(value, 1), "ledger: " + ", ".join(f"{k} {v}" for k, v in targets.items()))
