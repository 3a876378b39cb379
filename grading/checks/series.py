"""Shared by the behavioural checks: candidate gauge series over the session, and simple statistics."""

from __future__ import annotations

import bisect
import math
import statistics

from ..context import GradingContext

STEP = 2.0  # seconds between the points the grader reads


def gauge_series(ctx: GradingContext, limit: int = 400) -> list[tuple[str, dict, list[tuple[float, float]]]]:
    """(family, labels, points) of every gauge series of the candidate, over the session."""
    out = []
    for fam in ctx.of_type("gauge"):
        for labels, points in ctx.prom.series_values(fam.sample(), ctx.session.start, ctx.session.end + 10, STEP):
            if points:
                out.append((fam.name, labels, points))
            if len(out) >= limit:
                return out
    return out


def between(points: list[tuple[float, float]], start: float, end: float) -> list[float]:
    return [v for t, v in points if start <= t < end and math.isfinite(v)]


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def spread(values: list[float]) -> float:
    return statistics.pstdev(values) if len(values) > 1 else 0.0


def step_function_at(points: list[tuple[float, float]], times: list[float]) -> list[float]:
    """The value of a step function given by (time, value) points, at each of `times` (NaN before the first)."""
    ts = [t for t, _ in points]
    out = []
    for t in times:
        i = bisect.bisect_right(ts, t) - 1
        out.append(points[i][1] if i >= 0 else math.nan)
    return out


def correlation(a: list[float], b: list[float]) -> float:
    pairs = [(x, y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 5:
        return math.nan
    xs, ys = zip(*pairs)
    if spread(list(xs)) == 0 or spread(list(ys)) == 0:
        return math.nan
    return statistics.correlation(xs, ys)


def describe(labels: dict) -> str:
    name = labels.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k not in ("__name__", "instance", "job"))
    return f"{name}{{{rest}}}" if rest else name
