"""Item 4, data drift: an indicator that moves after the injected drift (on the right feature, when it is
per feature) and stays flat during the baseline."""
from __future__ import annotations

import statistics

from ..context import CheckResult, Evidence, GradingContext
from .series import between, describe, gauge_series, mean, spread

ITEM = "drift"
# Injections that change a feature's values the way a drift does, besides the drift itself.
VALUE_CHANGING = ("covariate_drift", "category_mix", "unit_change", "stuck_value", "renamed_category",
                  "out_of_range", "missing_values")


def _timestamp(points) -> bool:
    """A gauge holding a Unix time (last run, last label) moves with the clock, not with the data."""
    return statistics.median(abs(v - t) for t, v in points) < 3600


def check(ctx: GradingContext) -> list[CheckResult]:
    s = ctx.session
    drift = next((i for i in s.incidents() if i.kind in ("covariate_drift", "category_mix")), None)
    if drift is None:
        return [ctx.result(ITEM, n, 1, "the scenario had no drift", []) for n in
                ("moves_after_drift", "right_feature", "flat_in_baseline")]
    feature = drift.params["feature"]
    quiet = s.quiet_phases()
    b_start, b_end = quiet[0]["start"], quiet[-1]["end"]
    # Judged while the drift is held, in the 20 s before concept drift (if any) could explain a change.
    j_end = min([drift.end] + [i.start for i in s.incidents() if i.kind == "concept_drift" and i.start > drift.start])
    j_start = max(drift.start, j_end - 20)
    touched = {i.params.get("feature") for i in s.incidents() if i.kind in VALUE_CHANGING and i is not drift} | \
              {f for i in s.incidents() if i.kind in VALUE_CHANGING for f in i.params.get("features", [])}
    features = set(ctx.session_features())
    skip = set(ctx.roles().get("performance_gauge", set()))

    per_feature: dict[str, dict[str, tuple]] = {}  # family -> feature -> (move, labels, base points)
    overall = []  # (move, family, labels, baseline spread)
    for fam, labels, points in gauge_series(ctx):
        if fam in skip or _timestamp(points):
            continue
        base, held = between(points, b_start, b_end), between(points, j_start, j_end)
        if not held:
            continue
        ref = mean(base) if len(base) >= 3 else points[0][1]
        move = abs(mean(held) - ref)
        named = set(labels.values()) & features
        if named:
            per_feature.setdefault(fam, {})[named.pop()] = (move, labels, base)
        elif (len(base) >= 3 and move > ctx.tol.drift_move_sigmas * spread(base) and move > 0.1 * abs(ref)) or \
                (len(base) < 3 and move > abs(ref) and move > 1e-9):
            overall.append((move, fam, labels, spread(base) if len(base) >= 3 else None))

    # A per-feature indicator moved when the drifted feature's change stands out from the untouched ones'.
    standing_out = []
    for fam, by_feature in per_feature.items():
        if feature not in by_feature:
            continue
        others = [m for f, (m, _, _) in by_feature.items() if f not in touched and f != feature]
        top_other = max(others, default=0.0)
        typical = statistics.median(others) if others else 0.0
        move, labels, base = by_feature[feature]
        if move > 3 * typical and move > 1e-9:
            standing_out.append((move, fam, labels, base, move > top_other))
    if not standing_out and not overall:
        return [ctx.result(ITEM, "moves_after_drift", 0, f"no gauge moved after {feature} drifted",
                           [Evidence("each gauge: its level while the drift is held vs in the baseline", "no mover")]),
                ctx.result(ITEM, "right_feature", 0, "no drift indicator", []),
                ctx.result(ITEM, "flat_in_baseline", 0, "no drift indicator", [])]
    ctx.found.setdefault("drift_indicator", []).extend(sorted({m[1] for m in standing_out} | {m[1] for m in overall}))
    ctx.artifacts["drift_family"] = standing_out[0][1] if standing_out else overall[0][1]
    evidence = [Evidence(describe(m[2]), round(m[0], 3), "change from the baseline") for m in standing_out[:3]] + \
               [Evidence(describe(m[2]), round(m[0], 3), "change from the baseline") for m in overall[:3]]
    best = standing_out[0][2] if standing_out else overall[0][2]
    moved = ctx.result(ITEM, "moves_after_drift", 1, f"{describe(best)} moved after {feature} drifted", evidence)
    if standing_out:
        right = any(m[4] for m in standing_out)
        fam = standing_out[0][1]
        right_feature = ctx.result(
            ITEM, "right_feature", 1 if right else 0,
            f"{fam}: {feature} moved the most" if right else f"{fam}: {feature} moved, but another feature more",
            [Evidence(describe(lab), round(m, 3)) for f, (m, lab, _) in sorted(per_feature[fam].items(),
                                                                              key=lambda kv: -kv[1][0])[:5]])
    elif per_feature:
        right_feature = ctx.result(ITEM, "right_feature", 0, f"per feature, but {feature}'s indicator did not stand out", [])
    else:
        right_feature = ctx.result(ITEM, "right_feature", 0, "the drift indicator is not per feature", [])
    # Flat in the baseline: the indicator's baseline wobble is small next to the drift's change.
    move, base_spread = (standing_out[0][0], spread(standing_out[0][3]) if len(standing_out[0][3]) >= 3 else None) \
        if standing_out else (overall[0][0], overall[0][3])
    flat = base_spread is None or base_spread < 0.3 * move
    flat_in_baseline = ctx.result(ITEM, "flat_in_baseline", 1 if flat else 0,
                                  f"{describe(best)} " + ("stayed flat in the baseline" if flat else "moved in the baseline too"),
                                  [Evidence(describe(best), {"baseline spread": base_spread, "drift change": round(move, 4)})])
    return [moved, right_feature, flat_in_baseline]
