"""--surprise: redraw a scenario's hidden parameters from the seed, within the bounds the scenario allows.

Which feature drifts, when each phase starts (durations jittered) and which service fault strikes are
drawn here; nothing of the draw is printed, it goes only to the hidden timeline.
"""

from __future__ import annotations

import numpy as np

from .scenario import CovariateDrift, Errors, Latency, Phase, Scenario

# A swapped-in fault keeps the scale of the one it replaces.
_LATENCY_FOR_ERRORS_SECONDS = 0.4
_ERROR_RATE_FOR_LATENCY = 0.25


def apply_surprise(scenario: Scenario, seed: int) -> Scenario:
    rng = np.random.default_rng([seed, 0x5EC2E7])
    allowed = scenario.surprise
    drifted = sorted({i.feature for p in scenario.phases for i in p.injections if isinstance(i, CovariateDrift)})
    # One draw per original feature, so a drift that ramps up and then holds stays on the same feature.
    feature_map = {f: (str(rng.choice(allowed.drift_features)) if allowed.drift_features else f) for f in drifted}
    fault = str(rng.choice(allowed.faults)) if allowed.faults else None
    phases: list[Phase] = []
    for phase in scenario.phases:
        jitter = 1.0 + rng.uniform(-allowed.duration_jitter, allowed.duration_jitter)
        injections = []
        for inj in phase.injections:
            if isinstance(inj, CovariateDrift):
                inj = inj.model_copy(
                    update={
                        "feature": feature_map[inj.feature],
                        "shift": _rescaled_shift(inj, feature_map[inj.feature]),
                    }
                )
            elif isinstance(inj, Latency) and fault == "errors":
                inj = Errors(kind="errors", rate=_ERROR_RATE_FOR_LATENCY)
            elif isinstance(inj, Errors) and fault == "latency":
                inj = Latency(kind="latency", seconds=_LATENCY_FOR_ERRORS_SECONDS)
            injections.append(inj)
        phases.append(
            phase.model_copy(
                update={"duration_seconds": round(phase.duration_seconds * jitter, 3), "injections": injections}
            )
        )
    return scenario.model_copy(update={"phases": phases})


def _rescaled_shift(inj: CovariateDrift, feature: str) -> float:
    """The shift in the new feature's units: the same number of the feature's spreads as the original."""
    from model_service.churn_data import generate_features

    if feature == inj.feature or not inj.shift:
        return inj.shift
    sample = generate_features(4000, 0)
    return float(round(inj.shift / sample[inj.feature].std() * sample[feature].std(), 3))
