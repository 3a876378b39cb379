"""Item 2, performance from ground truth: a signal that fills the performance role (it follows the accuracy the
grader computes from the labels, moves at concept drift, stays put elsewhere), and how far it falls across
concept drift compared with the labels' own accuracy.

Responsiveness counts (grading/responsiveness.py, against the grader's accuracy over its window of recent labels, at
every incident during which that accuracy moves): half of tracks_accuracy is for coming back after it (an accuracy
over all labels so far never does), and falls_in_concept_drift is scaled by how soon the signal shows half of each
fall. Of the signals that fill the role, the one that earns the most is judged."""

from __future__ import annotations

import numpy as np

from .. import responsiveness
from ..context import CheckResult, Context, Evidence
from ..expected import Curve, accuracy_curve
from ..findings import Findings
from ..judge import AFTER_INCIDENT_SECONDS, Verdict
from ..responsiveness import Timing
from ..roles import Role

ITEM = "performance"
MOVES_ACCURACY = ("concept_drift", "model_release")  # and any incident that starts a fall of accuracy
BACK_SHARE = 0.5  # of tracks_accuracy: for coming back after the incident
CANDIDATES = 40  # the signals of the role tried for the points they earn (distinct series)


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
    truth = accuracy_curve(ctx.expected, ctx.tol.accuracy_window_labels)
    normal = responsiveness.settled_baseline(ctx.session, ctx.expected.grid)
    # Of the signals that fill the role, the one that earns the most: a candidate with an accuracy over the last
    # minute and another over the last 20 s is judged on the latter. Timed at every incident during which the
    # labels' accuracy moves (on the interview the upstream bug lowers it before concept drift does).
    best: list[CheckResult] | None = None
    for v in _distinct(taken)[:CANDIDATES]:
        timings = []
        if truth is not None:
            timings = responsiveness.of_signal(
                ctx.session,
                ctx.expected.grid,
                v.values,
                truth.values,
                ctx.session.incidents(),
                v.rho,
                normal,
                responsiveness.label_delay(ctx.session),
                MOVES_ACCURACY,
            )
        said = _timing_words(v, timings, truth)
        tracks = ctx.result(
            ITEM,
            "tracks_accuracy",
            1 - BACK_SHARE + BACK_SHARE * responsiveness.credit(timings, "return"),
            v.summary() + (f"; {said}" if said else ""),
            verdict_evidence(v) + responsiveness.evidence(v.name, timings),
        )
        falls = _falls(ctx, v, timings)
        if best is None or tracks.points + falls.points > sum(c.points for c in best) + 1e-9:
            best = [tracks, falls]
    return best


def _distinct(taken: list[Verdict]) -> list[Verdict]:
    """One verdict per distinct series of values (a gauge, the alert that reads it and its panel are one)."""
    seen, out = set(), []
    for v in taken:
        key = np.round(np.nan_to_num(v.values, nan=-1.0), 6).tobytes()
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _timing_words(v: Verdict, timings: list[Timing], truth: Curve | None) -> str:
    """What the report says of the signal's timing, when it costs something."""
    if truth is None:
        return ""
    what = f"the grader's accuracy over the last {truth.variant.split('the last ')[-1]}"
    said = responsiveness.late_words(timings, what, "labels")
    if not said:
        return ""
    cumulative = "all so far" in (v.curve.variant if v.curve else "")
    return ("it is cumulative since start: it " if cumulative else "it ") + said


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


def _falls(ctx: Context, v: Verdict, timings: list[Timing]) -> CheckResult:
    concept = next((i for i in ctx.session.incidents() if i.kind == "concept_drift"), None)
    if concept is None:
        return ctx.result(ITEM, "falls_in_concept_drift", 0, "no concept drift was played", [])
    times = ctx.expected.grid
    end = concept.end + v.lag + AFTER_INCIDENT_SECONDS
    truth = accuracy_curve(ctx.expected, ctx.tol.accuracy_window_labels)
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
    fraction = min(1.0, s_rel / needed) if s_rel > 0 else 0.0
    # In time: how soon it showed each incident that moved accuracy (the concept drift, and what came before it).
    onset = [t for t in timings if t.kind == "onset" and t.judged]
    in_time = responsiveness.credit(onset, "onset")
    way = "fell" if sign < 0 else "rose"
    late = [t for t in onset if t.credit < 0.999]
    said = "; " + responsiveness.summary(late, "the grader's accuracy") if late else ""
    return ctx.result(
        ITEM,
        "falls_in_concept_drift",
        fraction * in_time,
        f"{v.name} {way} from {s_pre:.3g} to {s_ext:.3g} across the concept drift ({s_rel:+.0%} of its level; "
        f"the labels' accuracy fell {t_rel:.0%}){said}",
        [
            Evidence(
                v.name,
                {"before": round(s_pre, 4), "extreme": round(s_ext, 4)},
                f"{way} by {s_rel:.0%} of its level; {needed:.0%} earns full marks",
            ),
            Evidence(truth.variant, {"before": round(t_pre, 4), "lowest": round(t_low, 4)}, "the grader's"),
            *responsiveness.evidence(v.name, onset),
        ],
    )
