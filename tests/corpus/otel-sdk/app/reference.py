"""The reference profile: what normal inputs, scores and performance look like (the training run's holdout).

Loaded from the model's training run in MLflow (artifact reference/reference.csv), so the reference
always belongs to the model version being served; falls back to docs/reference.csv in the workspace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

LOCAL_REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference.csv"
N_BINS = 10
EPS = 1e-4  # floor on bin proportions so PSI stays finite when a bin is empty


@dataclass
class NumericProfile:
    edges: np.ndarray  # inner bin edges (reference quantiles), len = bins - 1
    ref_props: np.ndarray
    ref_mean: float
    expected_min: float | None
    expected_max: float | None

    def bin_props(self, values: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.edges, values, side="right")
        counts = np.bincount(idx, minlength=len(self.edges) + 1).astype(float)
        return counts / max(counts.sum(), 1.0)


@dataclass
class CategoricalProfile:
    levels: list[str]
    ref_props: np.ndarray

    def bin_props(self, values: list[str]) -> np.ndarray:
        pos = {lvl: i for i, lvl in enumerate(self.levels)}
        counts = np.zeros(len(self.levels))
        for v in values:
            i = pos.get(v)
            if i is not None:
                counts[i] += 1
        return counts / max(counts.sum(), 1.0)


@dataclass
class ReferenceProfile:
    source: str
    run_id: str | None
    numeric: dict[str, NumericProfile] = field(default_factory=dict)
    categorical: dict[str, CategoricalProfile] = field(default_factory=dict)
    score: NumericProfile | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # holdout performance at the model threshold


def psi(ref_props: np.ndarray, live_props: np.ndarray) -> float:
    """Population Stability Index: sum((live - ref) * ln(live / ref)) over bins."""
    r = np.clip(ref_props, EPS, None)
    lv = np.clip(live_props, EPS, None)
    return float(np.sum((lv - r) * np.log(lv / r)))


def _numeric_profile(values: np.ndarray, expected_min=None, expected_max=None) -> NumericProfile:
    values = values[~np.isnan(values)]
    qs = np.quantile(values, np.linspace(0, 1, N_BINS + 1)[1:-1])
    # Integer features with many ties give repeated quantiles: collapse them (fewer, wider bins).
    edges = np.unique(qs)
    prof = NumericProfile(edges=edges, ref_props=np.zeros(len(edges) + 1), ref_mean=float(values.mean()),
                          expected_min=expected_min, expected_max=expected_max)
    prof.ref_props = prof.bin_props(values)
    return prof


def _load_frame(run_id: str | None) -> tuple[pd.DataFrame, str]:
    if run_id:
        try:
            import mlflow

            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="reference/reference.csv")
            return pd.read_csv(path), f"mlflow:runs/{run_id}/reference/reference.csv"
        except Exception as exc:  # MLflow down or artifact missing: the workspace copy is the same file
            log.warning("reference from MLflow run %s unavailable (%s); using %s", run_id, exc, LOCAL_REFERENCE)
    return pd.read_csv(LOCAL_REFERENCE), str(LOCAL_REFERENCE)


def build_profile(run_id: str | None, numeric: dict[str, tuple], categorical: dict[str, list[str]],
                  threshold: float) -> ReferenceProfile:
    """numeric: {name: (expected_min, expected_max)}; categorical: {name: levels}."""
    df, source = _load_frame(run_id)
    prof = ReferenceProfile(source=source, run_id=run_id)
    for name, (lo, hi) in numeric.items():
        prof.numeric[name] = _numeric_profile(df[name].to_numpy(dtype=float), lo, hi)
    for name, levels in categorical.items():
        cat = CategoricalProfile(levels=list(levels), ref_props=np.zeros(len(levels)))
        cat.ref_props = cat.bin_props(df[name].astype(str).tolist())
        prof.categorical[name] = cat
    scores = df["score"].to_numpy(dtype=float)
    prof.score = _numeric_profile(scores)
    prof.metrics = classification_metrics(df["churned"].to_numpy(dtype=int), scores, threshold)
    log.info("reference profile loaded from %s (%d rows)", source, len(df))
    return prof


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold metrics, plus AUC / log loss when both classes are present."""
    from sklearn.metrics import log_loss, roc_auc_score

    y_true = np.asarray(y_true, dtype=int)
    scores = np.asarray(scores, dtype=float)
    y_pred = (scores >= threshold).astype(int)
    tp = int(((y_pred == 1) & (y_true == 1)).sum())
    fp = int(((y_pred == 1) & (y_true == 0)).sum())
    fn = int(((y_pred == 0) & (y_true == 1)).sum())
    out: dict[str, float] = {
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else float("nan"),
        "churn_rate": float(y_true.mean()) if len(y_true) else float("nan"),
        "flag_rate": float(y_pred.mean()) if len(y_true) else float("nan"),
        "mean_score": float(scores.mean()) if len(scores) else float("nan"),
    }
    if tp + fp:
        out["precision"] = tp / (tp + fp)
    if tp + fn:
        out["recall"] = tp / (tp + fn)
    if "precision" in out and "recall" in out and out["precision"] + out["recall"] > 0:
        out["f1"] = 2 * out["precision"] * out["recall"] / (out["precision"] + out["recall"])
    if 0 < y_true.sum() < len(y_true):
        out["auc"] = float(roc_auc_score(y_true, scores))
        out["log_loss"] = float(log_loss(y_true, np.clip(scores, 1e-6, 1 - 1e-6), labels=[0, 1]))
    return out
