"""Item 2, performance from ground truth: some gauge follows the accuracy the grader computes from the
prediction log's labels, and it falls during concept drift."""
from __future__ import annotations

import math

from ..context import CheckResult, Evidence, GradingContext
from .series import between, correlation, describe, gauge_series, mean, step_function_at

ITEM = "performance"


def check(ctx: GradingContext) -> list[CheckResult]:
    truth = ctx.session.rolling_accuracy(ctx.tol.accuracy_window_labels)
    concept = next((i for i in ctx.session.incidents() if i.kind == "concept_drift"), None)
    if len(truth) < 20:
        return [ctx.result(ITEM, "tracks_accuracy", 0, "too few labels arrived in the session to judge", []),
                ctx.result(ITEM, "falls_in_concept_drift", 0, "too few labels arrived in the session to judge", [])]
    first_label = truth[0][0]
    times = [t for t in _grid(first_label + 10, ctx.session.end + 10)]
    grader = step_function_at(truth, times)
    best = None
    for fam, labels, points in gauge_series(ctx):
        r = correlation(step_function_at(points, times), grader)
        if math.isfinite(r) and (best is None or abs(r) > abs(best[0])):
            best = (r, fam, labels, points)
    if best is None or abs(best[0]) < ctx.tol.accuracy_correlation:
        seen = f"best |r| = {abs(best[0]):.2f} ({describe(best[2])})" if best else "no gauge with values"
        return [ctx.result(ITEM, "tracks_accuracy", 0, "no metric follows the accuracy of the labelled predictions",
                           [Evidence("correlation of each gauge with the grader's rolling accuracy", seen)]),
                ctx.result(ITEM, "falls_in_concept_drift", 0, "no performance metric to judge", [])]
    r, fam, labels, points = best
    ctx.found.setdefault("performance_gauge", []).append(fam)
    tracks = ctx.result(ITEM, "tracks_accuracy", 1, f"{describe(labels)} follows the labels' accuracy (r = {r:.2f})",
                        [Evidence(describe(labels), f"r = {r:.2f}",
                                  f"against the accuracy of the last {ctx.tol.accuracy_window_labels} labels")])
    return [tracks, _falls(ctx, concept, r, labels, points)]


def _grid(start: float, end: float, step: float = 2.0):
    t = start
    while t <= end:
        yield t
        t += step


def _falls(ctx: GradingContext, concept, r: float, labels: dict, points) -> CheckResult:
    if concept is None:
        return ctx.result(ITEM, "falls_in_concept_drift", 1, "the scenario had no concept drift", [])
    before = mean(between(points, concept.start - 15, concept.start))
    after = mean(between(points, concept.end - 5, concept.end + 15))
    # A metric that follows accuracy falls; one that follows the error rate (r < 0) rises.
    change = (before - after) if r > 0 else (after - before)
    enough = before == before and after == after and change >= ctx.tol.performance_drop_relative * max(abs(before), 1e-9)
    return ctx.result(ITEM, "falls_in_concept_drift", 1 if enough else 0,
                      f"{describe(labels)} went from {before:.3f} to {after:.3f} across the concept drift",
                      [Evidence(describe(labels), {"before": round(before, 3), "at its end": round(after, 3)})])
