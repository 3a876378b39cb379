"""Item 2, performance from ground truth: a signal that fills the performance role (it follows the accuracy the
grader computes from the labels, moves at concept drift, stays put elsewhere), and how far it falls across
concept drift compared with the labels' own accuracy."""

from __future__ import annotations

import numpy as np

from ..context import CheckResult, Context, Evidence
from ..findings import Findings
from ..judge import AFTER_INCIDENT_SECONDS, Verdict
from ..roles import Role

ITEM = "performance"


def verdict_evidence(v: Verdict) -> list[Evidence]:
    return [Evidence(v.name, "passed" if t.passed else "failed", f"{t.name}: {t.detail}") for t in v.tests]


def check(ctx: Context, found: Findings) -> list[CheckResult]:
    taken = found.taken(Role.PERFORMANCE)
    if not taken and (why := _accuracy_move_unseen(ctx)):
        return [
            ctx.not_applicable(ITEM, "tracks_accuracy", why),
            ctx.not_applicable(ITEM, "falls_in_concept_drift", why),
        ]
    if not taken:
        tried = found.tried(Role.PERFORMANCE)[:3]
        evidence = [e for v in tried for e in verdict_evidence(v) if e.seen == "failed"] or [
            Evidence("each gauge and expression against the labels' accuracy", "none came near")
        ]
        note = f"; closest: {tried[0].name} ({tried[0].signal.where})" if tried else ""
        return [
            ctx.result(
                ITEM,
                "tracks_accuracy",
                0,
                "no signal follows the accuracy of the labelled predictions" + note,
                evidence,
            ),
            ctx.result(ITEM, "falls_in_concept_drift", 0, "no performance signal to judge", []),
        ]
    v = taken[0]
    tracks = ctx.result(ITEM, "tracks_accuracy", 1, v.summary(), verdict_evidence(v))
    return [tracks, _falls(ctx, v)]


def _accuracy_move_unseen(ctx: Context) -> str:
    """Why no signal can be held against the accuracy ('' when one can): the model server or Prometheus was down
    (grading.gaps) for most of the concept drift, the one time the accuracy moves, so no signal was seen to follow
    it. Not the candidate's doing: judged on a play in which it was seen."""
    # Every one played, its onset seen or not (an onset the server missed is no incident of `incidents()`).
    concept = next((i for i in ctx.session.all_incidents() if i.kind == "concept_drift"), None)
    if concept is None:
        return ""
    span = concept.end + AFTER_INCIDENT_SECONDS - concept.start
    down = ctx.session.unobserved(concept.start, concept.start + span)
    if down <= 0.5 * span:
        return ""
    return f"the model server or Prometheus was down for {down:.0f} s of the {span:.0f} s in which the accuracy moved"


def relative_move(
    times: np.ndarray, values: np.ndarray, start: float, end: float, sign: float
) -> tuple[float, float, float]:
    """(level before, extreme after, move relative to the level before) in direction `sign` (-1: a fall)."""
    before = values[(times >= start - 10) & (times < start) & np.isfinite(values)]
    after = values[(times >= start) & (times <= end) & np.isfinite(values)]
    if not len(before) or not len(after):
        return np.nan, np.nan, np.nan
    pre = float(np.median(before))
    extreme = float(after.min() if sign < 0 else after.max())
    return pre, extreme, sign * (extreme - pre) / max(abs(pre), 1e-9)


def _falls(ctx: Context, v: Verdict) -> CheckResult:
    concept = next((i for i in ctx.session.incidents() if i.kind == "concept_drift"), None)
    if concept is None:
        return ctx.result(ITEM, "falls_in_concept_drift", 0, "no concept drift was played", [])
    times = ctx.expected.grid
    end = concept.end + v.lag + AFTER_INCIDENT_SECONDS
    truth = next(
        (
            c
            for c in ctx.expected.curves.get((Role.PERFORMANCE, None), [])
            if c.variant.endswith(f"the last {ctx.tol.accuracy_window_labels} labels")
        ),
        None,
    )
    if truth is None:
        return ctx.result(ITEM, "falls_in_concept_drift", 0, "too few labels to judge", [])
    t_pre, t_low, t_rel = relative_move(times, truth.values, concept.start, end, -1)
    sign = -1.0 if v.rho >= 0 else 1.0  # an accuracy-like signal falls, an error-like one rises
    s_pre, s_ext, s_rel = relative_move(times, v.series.values, concept.start, end, sign)
    if not np.isfinite(s_rel) or not np.isfinite(t_rel) or t_rel <= 0:
        down = ctx.session.unobserved(concept.start, end)
        if down > 0:  # the server or Prometheus was down in it (grading.gaps): not the candidate's doing
            why = f"the model server or Prometheus was down for {down:.0f} s of the concept drift"
            return ctx.not_applicable(ITEM, "falls_in_concept_drift", why)
        return ctx.result(ITEM, "falls_in_concept_drift", 0, f"{v.name} has no values around the concept drift", [])
    needed = max(ctx.tol.performance_drop_relative, 0.5 * t_rel)
    fraction = s_rel / needed if s_rel > 0 else 0.0
    way = "fell" if sign < 0 else "rose"
    return ctx.result(
        ITEM,
        "falls_in_concept_drift",
        fraction,
        f"{v.name} {way} from {s_pre:.3g} to {s_ext:.3g} across the concept drift ({s_rel:+.0%} of its level; "
        f"the labels' accuracy fell {t_rel:.0%})",
        [
            Evidence(
                v.name,
                {"before": round(s_pre, 4), "extreme": round(s_ext, 4)},
                f"{way} by {s_rel:.0%} of its level; {needed:.0%} earns full marks",
            ),
            Evidence(truth.variant, {"before": round(t_pre, 4), "lowest": round(t_low, 4)}, "the grader's"),
        ],
    )
