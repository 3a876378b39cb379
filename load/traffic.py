"""The request stream a scenario defines: pure functions of (scenario, seed, speed), no clocks, no network.

Each phase is planned as a list of requests with their send offsets, JSON bodies, true labels and feedback
delays. The same scenario, seed and speed give the same plan byte for byte; the player only decides when.

Order of effects: the population drifts (covariate drift, category mix), labels are drawn from the phase's
churn dependence on those real customers, then upstream bugs and data-quality problems corrupt what is sent.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from model_service.churn_data import draw_labels, generate_features
from model_service.faults import FaultState
from model_service.spec import ChurnSpec, default_spec

from .scenario import (
    CategoryMix,
    ConceptDrift,
    CovariateDrift,
    Errors,
    GroundTruth,
    Latency,
    MissingValues,
    ModelRelease,
    Outage,
    OutOfRange,
    Phase,
    RenamedCategory,
    Scenario,
    StuckValue,
    UnitChange,
    concept_dependence,
)


@dataclass(frozen=True)
class PlannedRequest:
    phase_index: int
    index: int
    offset_seconds: float  # wall-clock seconds after the phase starts
    body: str  # exactly what is sent to /predict
    true_label: int
    feedback_delay_seconds: float | None  # wall-clock seconds after the answer; None: never labelled


@dataclass(frozen=True)
class PlannedPhase:
    index: int
    phase: Phase
    wall_seconds: float
    requests: list[PlannedRequest]
    faults: FaultState
    outage: bool
    ground_truth: GroundTruth


def _seeds(seed: int, phase_index: int, n: int) -> list[int]:
    ss = np.random.SeedSequence([seed, phase_index])
    return [int(s.generate_state(1)[0]) for s in ss.spawn(n)]


def _progress(n: int, onset: str) -> np.ndarray:
    if onset == "sudden" or n <= 1:
        return np.ones(n)
    return np.linspace(0.0, 1.0, n)


def _population(phase: Phase, n: int, seeds: list[int], spec: ChurnSpec) -> pd.DataFrame:
    frame = generate_features(n, seeds[0], spec)
    rng = np.random.default_rng(seeds[1])
    for inj in phase.injections:
        if isinstance(inj, CovariateDrift):
            feat = spec.numeric[inj.feature]
            x = frame[inj.feature].to_numpy(dtype=float)
            g = _progress(n, inj.onset)
            center = x.mean() if n else 0.0
            x = center + (x - center) * (1 + (inj.scale - 1) * g) + inj.shift * g
            x = np.clip(x, feat.valid.min, feat.valid.max)
            frame[inj.feature] = np.rint(x).astype(int) if feat.dtype == "int" else np.round(x, 2)
        elif isinstance(inj, CategoryMix):
            levels = list(inj.probs)
            p = np.array([inj.probs[lv] for lv in levels], dtype=float)
            drifted = np.asarray(levels, dtype=object)[rng.choice(len(levels), size=n, p=p / p.sum())]
            take = rng.uniform(size=n) < _progress(n, inj.onset)
            frame[inj.feature] = np.where(take, drifted, frame[inj.feature].to_numpy(dtype=object))
    return frame


def _corrupt(phase: Phase, frame: pd.DataFrame, seed: int, spec: ChurnSpec) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = frame.to_dict(orient="records")
    n = len(records)
    for inj in phase.injections:
        if isinstance(inj, UnitChange):
            as_int = spec.numeric[inj.feature].dtype == "int"
            for r in records:
                v = r[inj.feature] * inj.factor
                r[inj.feature] = int(round(v)) if as_int else round(v, 2)
        elif isinstance(inj, StuckValue):
            for r in records:
                r[inj.feature] = inj.value
        elif isinstance(inj, RenamedCategory):
            for r in records:
                if r[inj.feature] == inj.old:
                    r[inj.feature] = inj.new
        elif isinstance(inj, MissingValues):
            hit = rng.uniform(size=(n, len(inj.features))) < inj.rate
            for r, row in zip(records, hit):
                for f, h in zip(inj.features, row):
                    if h:
                        r[f] = None
        elif isinstance(inj, OutOfRange):
            hit = rng.uniform(size=(n, len(inj.features))) < inj.rate
            factor = rng.uniform(1.5, 3.0, size=(n, len(inj.features)))
            for r, row, fac in zip(records, hit, factor):
                for f, h, k in zip(inj.features, row, fac):
                    if h:
                        feat = spec.numeric[f]
                        v = min(max(feat.expected.max, 1.0) * k, feat.valid.max)
                        r[f] = int(round(v)) if feat.dtype == "int" else round(v, 2)
    return records


def _plain(value):
    """numpy scalars as Python ones, so that json writes them the same way every time."""
    return value.item() if hasattr(value, "item") else value


def phase_faults(phase: Phase, seed: int, phase_index: int) -> tuple[FaultState, bool]:
    latency = next((i.seconds for i in phase.injections if isinstance(i, Latency)), 0.0)
    error_rate = next((i.rate for i in phase.injections if isinstance(i, Errors)), 0.0)
    outage = any(isinstance(i, Outage) for i in phase.injections)
    release = next((i.alias for i in phase.injections if isinstance(i, ModelRelease)), None)
    return FaultState(
        delay_seconds=latency,
        error_share=error_rate,
        hold=outage,
        model_alias=release,
        seed=_seeds(seed, phase_index, 5)[4] % (2**31),
    ), outage


def plan_phase(
    scenario: Scenario, phase_index: int, seed: int, speed: float = 1.0, spec: ChurnSpec | None = None
) -> PlannedPhase:
    """Every request of one phase, in order, with its offset from the phase start (wall-clock seconds)."""
    spec = spec or default_spec()
    phase = scenario.phases[phase_index]
    wall = phase.duration_seconds / speed
    n = int(math.floor(phase.rate * wall + 1e-9))
    seeds = _seeds(seed, phase_index, 5)
    frame = _population(phase, n, seeds, spec)
    concept = next((i for i in phase.injections if isinstance(i, ConceptDrift)), None)
    dependence = concept_dependence(spec.dependence, concept) if concept else spec.dependence
    labels = draw_labels(frame, dependence, seeds[2]) if n else np.zeros(0, dtype=int)
    records = _corrupt(phase, frame, seeds[3], spec)
    truth = scenario.truth_for(phase)
    rng = np.random.default_rng(seeds[4])
    labelled = rng.uniform(size=n) < truth.fraction
    delay = truth.delay_seconds / speed
    requests = [
        PlannedRequest(
            phase_index,
            i,
            i / phase.rate,
            json.dumps({k: _plain(v) for k, v in rec.items()}, allow_nan=False),
            int(labels[i]),
            delay if labelled[i] else None,
        )
        for i, rec in enumerate(records)
    ]
    faults, outage = phase_faults(phase, seed, phase_index)
    return PlannedPhase(phase_index, phase, wall, requests, faults, outage, truth)


def render_stream(scenario: Scenario, seed: int, speed: float = 1.0) -> bytes:
    """The whole request stream as bytes (one JSON body per line): what reproducibility is checked on."""
    lines = []
    for k in range(len(scenario.phases)):
        for req in plan_phase(scenario, k, seed, speed).requests:
            lines.append(
                f"{req.phase_index}\t{req.offset_seconds:.6f}\t{req.true_label}\t"
                f"{req.feedback_delay_seconds}\t{req.body}"
            )
    return ("\n".join(lines) + "\n").encode()
