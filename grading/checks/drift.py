"""Item 4, data drift: a drift signal that moved when the drifted feature did, per feature with the drifted one
standing out, and flat in the baseline.

Responsiveness counts (grading/responsiveness.py, against the grader's distance of the drifted feature from its
baseline over its window of recent predictions): of moves_after_drift, half is for showing half of the drift in
time and half for coming back after it (a distance over every prediction since the start does neither). Of the
signals that moved, those about the drifted feature come first, then the one that earns the most."""

from __future__ import annotations

import statistics

import numpy as np

from .. import responsiveness
from ..context import CheckResult, Context, Evidence
from ..expected import SCORE, drift_curve, touched_features
from ..findings import Findings
from ..judge import AFTER_INCIDENT_SECONDS, Verdict
from ..play import Incident
from ..roles import Role
from ..signals import Series

ITEM = "drift"
DRIFTS = ("covariate_drift", "category_mix")
ONSET_SHARE = 0.5  # of moves_after_drift: for showing half of the drift in time; the rest for coming back after it


def move_at(times: np.ndarray, series: Series, inc: Incident, base: tuple[float, float] | None) -> tuple[float, float]:
    """(largest departure from the baseline level while the drift is held, the baseline's 90th-percentile wobble)."""
    v = series.values
    lo, hi = base if base else (times[0], inc.start)
    in_base = (times >= lo) & (times < hi) & np.isfinite(v)
    held = (times >= inc.start) & (times <= inc.end + AFTER_INCIDENT_SECONDS) & np.isfinite(v)
    if not held.any():
        return 0.0, np.nan
    ref = float(np.median(v[in_base])) if in_base.sum() >= 3 else float(v[np.isfinite(v)][0])
    wobble = float(np.percentile(np.abs(v[in_base] - ref), 90)) if in_base.sum() >= 3 else np.nan
    return float(np.max(np.abs(v[held] - ref))), wobble


def check(ctx: Context, found: Findings) -> list[CheckResult]:
    s = ctx.session
    drift = next((i for i in s.incidents() if i.kind in DRIFTS), None)
    if drift is None:
        return [
            ctx.result(ITEM, n, 0, "no drift was played", [])
            for n in ("moves_after_drift", "right_feature", "flat_in_baseline")
        ]
    [feature] = sorted(drift.features)
    times, base = ctx.expected.grid, s.baseline()
    # An input's drift: a signal about the drifted feature, or about no feature in particular that follows an
    # input's drift (a share of drifted features); not one that follows the model's scores.
    taken = [v for v in found.taken(Role.DRIFT) if v.feature in (feature, None) and v.about != SCORE]
    movers: list[tuple[float, float, Verdict]] = []
    for v in taken:
        move, wobble = move_at(times, v.series, drift, base)
        if drift.label in v.moves or v.feature == feature:
            movers.append((move, wobble, v))
    if not movers:
        tried = [v for v in found.tried(Role.DRIFT) if v.feature in (feature, None)][:3]
        evidence = [Evidence(v.name, "failed", f"{t.name}: {t.detail}") for v in tried for t in v.tests if not t.passed]
        return [
            ctx.result(
                ITEM,
                "moves_after_drift",
                0,
                f"no signal moved when {feature} drifted",
                evidence or [Evidence("each gauge and expression against each feature's drift", "none")],
            ),
            ctx.result(ITEM, "right_feature", 0, "no drift signal", []),
            ctx.result(ITEM, "flat_in_baseline", 0, "no drift signal", []),
        ]
    timed = [(m, w, v, _timings(ctx, v, drift, feature)) for m, w, v in movers]
    # A signal about the drifted feature itself first, then the one that earns the most, then the one that follows
    # drift best.
    timed.sort(key=lambda m: (m[2].feature != feature, -round(_earned(m[3]), 3), -abs(m[2].rho)))
    move, wobble, best, timings = timed[0]
    said = _timing_words(ctx, timings, feature)
    moved = ctx.result(
        ITEM,
        "moves_after_drift",
        _earned(timings),
        f"{best.summary()}; it moved when {feature} drifted" + (f"; {said}" if said else ""),
        [
            Evidence(v.name, round(m, 4), f"largest departure from its baseline level while {feature} drifted")
            for m, _, v, _ in timed[:3]
        ]
        + responsiveness.evidence(best.name, timings),
    )
    return [moved, _right_feature(ctx, feature, drift, found), _flat(ctx, best, move, wobble)]


def _timings(ctx: Context, v: Verdict, drift: Incident, feature: str) -> list[responsiveness.Timing]:
    """How soon `v` showed the drift and came back after it, against the grader's distance of the feature."""
    truth = drift_curve(ctx.expected, feature, ctx.tol.drift_window_predictions)
    if truth is None:
        return []
    # A signal about no feature in particular (a share of drifted columns) also shows the next incident on another
    # input: its move at this drift is what it showed before that one began.
    later = [i.start for i in ctx.session.incidents() if i.start > drift.start and i.features - {feature}]
    return responsiveness.of_signal(
        ctx.session,
        ctx.expected.grid,
        v.values,
        truth.values,
        [drift],
        v.rho,
        responsiveness.settled_baseline(ctx.session, ctx.expected.grid),
        own_kinds=DRIFTS,
        extreme_until=min(later) if later and v.feature is None else None,
    )


def _earned(timings: list[responsiveness.Timing]) -> float:
    return ONSET_SHARE * responsiveness.credit(timings, "onset") + (1 - ONSET_SHARE) * responsiveness.credit(
        timings, "return"
    )


def _timing_words(ctx: Context, timings: list[responsiveness.Timing], feature: str) -> str:
    """What the report says of the signal's timing, when it costs something."""
    window = ctx.tol.drift_window_predictions
    what = f"the grader's distance of {feature} over the last {window} predictions"
    return responsiveness.late_words(timings, what, "predictions")


def _right_feature(ctx: Context, feature: str, drift: Incident, found: Findings) -> CheckResult:
    """Per-feature signals (one series per feature) in which the drifted feature moved most."""
    times, base = ctx.expected.grid, ctx.session.baseline()
    others_touched = touched_features(ctx.session) - {feature}
    best_evidence = None
    signals = {id(v.signal): v.signal for v in found.taken(Role.DRIFT) if v.feature == feature}
    for sig in signals.values():
        scores = {}
        for ser in sig.series:
            if ser.feature is None or ser.feature in others_touched:
                continue
            move, wobble = move_at(times, ser, drift, base)
            noise = wobble if np.isfinite(wobble) and wobble > 0 else 1e-9
            scores[ser.feature] = max(scores.get(ser.feature, 0.0), move / noise)
        if feature not in scores or len(scores) < 2:
            continue
        others = [v for f, v in scores.items() if f != feature]
        ok = scores[feature] > max(others) and scores[feature] > 3 * statistics.median(others)
        evidence = [
            Evidence(f"{sig.expr} {{{f}}}", round(v, 1), "its move over its baseline wobble")
            for f, v in sorted(scores.items(), key=lambda kv: -kv[1])[:5]
        ]
        if ok:
            return ctx.result(ITEM, "right_feature", 1, f"{sig.expr}: {feature} moved the most", evidence)
        best_evidence = best_evidence or (sig.expr, evidence)
    if best_evidence:
        return ctx.result(
            ITEM, "right_feature", 0, f"{best_evidence[0]}: {feature} moved, but not the most", best_evidence[1]
        )
    return ctx.result(ITEM, "right_feature", 0, f"no drift signal per feature in which {feature} moved", [])


def _flat(ctx: Context, best: Verdict, move: float, wobble: float) -> CheckResult:
    if not np.isfinite(wobble):
        flat, seen = True, "no value in the baseline"
    else:
        flat, seen = wobble <= 0.3 * move, f"baseline wobble {wobble:.3g} against a move of {move:.3g}"
    return ctx.result(
        ITEM,
        "flat_in_baseline",
        1 if flat else 0,
        f"{best.name} "
        + ("stayed flat in the baseline" if flat else "wobbled in the baseline almost as much as it moved"),
        [Evidence(best.name, seen, "90th percentile of its distance from its baseline level")],
    )
