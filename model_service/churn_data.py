"""Seeded synthetic churn data drawn from a `ChurnSpec`: inputs from `features`, labels from `dependence`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .spec import (
    CategoricalFeature,
    ChurnSpec,
    Dependence,
    LognormalDraw,
    NormalDraw,
    NumericFeature,
    PoissonDraw,
    ProductDraw,
    UniformDraw,
    default_spec,
)

LABEL = "churned"


def _draw_numeric(feat: NumericFeature, n: int, rng: np.random.Generator, frame: dict) -> np.ndarray:
    d = feat.draw
    if isinstance(d, UniformDraw):
        x = rng.uniform(d.low, d.high, n)
    elif isinstance(d, NormalDraw):
        x = rng.normal(d.mean, d.std, n)
    elif isinstance(d, LognormalDraw):
        x = rng.lognormal(d.mean, d.sigma, n)
    elif isinstance(d, PoissonDraw):
        x = rng.poisson(d.lam, n) + d.offset
    elif isinstance(d, ProductDraw):
        a, b = (np.asarray(frame[name], dtype=float) for name in d.of)
        x = a * b * rng.lognormal(0.0, d.noise_std, n) if d.noise_std else a * b
    else:  # pragma: no cover - the spec's discriminated union makes this unreachable
        raise TypeError(type(d))
    clip = getattr(d, "clip", None)
    if clip is not None:
        x = np.clip(x, clip[0], clip[1])
    return np.rint(x).astype(int) if feat.dtype == "int" else np.round(x, 2)


def _draw_categorical(feat: CategoricalFeature, n: int, rng: np.random.Generator) -> np.ndarray:
    levels = feat.levels
    p = np.array([feat.draw.probs[lv] for lv in levels], dtype=float)
    return np.asarray(levels, dtype=object)[rng.choice(len(levels), size=n, p=p / p.sum())]


def generate_features(n: int, seed: int, spec: ChurnSpec | None = None) -> pd.DataFrame:
    """Draw `n` customers' features; the same seed gives the same frame."""
    spec = spec or default_spec()
    rng = np.random.default_rng(seed)
    frame: dict[str, np.ndarray] = {}
    # Features that derive from others (product) are drawn after the ones they use.
    ordered = sorted(spec.features.items(), key=lambda kv: isinstance(getattr(kv[1], "draw", None), ProductDraw))
    for name, feat in ordered:
        if isinstance(feat, NumericFeature):
            frame[name] = _draw_numeric(feat, n, rng, frame)
        else:
            frame[name] = _draw_categorical(feat, n, rng)
    return pd.DataFrame({name: frame[name] for name in spec.features})


def churn_logit(features: pd.DataFrame, dependence: Dependence) -> np.ndarray:
    """The log-odds of churn for each row under `dependence` (missing values contribute nothing)."""
    logit = np.full(len(features), dependence.intercept, dtype=float)
    for name, eff in dependence.numeric.items():
        z = (pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=float) - eff.center) / eff.scale
        logit += eff.weight * np.nan_to_num(z, nan=0.0)
    for name, levels in dependence.categorical.items():
        logit += features[name].map(levels).fillna(0.0).to_numpy(dtype=float)
    return logit


def churn_probability(features: pd.DataFrame, dependence: Dependence) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-churn_logit(features, dependence)))


def draw_labels(features: pd.DataFrame, dependence: Dependence, seed: int) -> np.ndarray:
    """Draw 0/1 churn labels from the dependence; the same seed gives the same labels."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=len(features)) < churn_probability(features, dependence)).astype(int)


def generate_dataset(n: int, seed: int, spec: ChurnSpec | None = None) -> pd.DataFrame:
    """Features plus the `churned` label, for training."""
    spec = spec or default_spec()
    df = generate_features(n, seed, spec)
    # A separate stream for labels so that adding a feature does not reshuffle existing labels' noise.
    df[LABEL] = draw_labels(df, spec.dependence, seed + 1_000_003)
    return df


def records_to_frame(records: list[dict], spec: ChurnSpec | None = None) -> pd.DataFrame:
    """Customer dicts (nulls allowed) as a frame the model accepts: numbers as floats, missing as NaN.

    Built column by column from numpy arrays: for the one-row frames of /predict this is about ten times
    cheaper than letting pandas infer types from the records.
    """
    spec = spec or default_spec()
    columns = {}
    for name in spec.features:
        values = [r[name] for r in records]
        if name in spec.numeric:
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        else:
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=object)
    return pd.DataFrame(columns, copy=False)
