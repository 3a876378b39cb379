"""The training reference data set: downloaded from the model's MLflow run, reduced to a few statistics.

Fail soft: the server never waits for MLflow. A daemon thread tries to download `reference/reference.csv`
from the training run and retries every RETRY_SECONDS until it succeeds or the server stops. Until then the
reference gauges are absent, so the drift recording rules yield nothing and no drift alert can fire
(`churn_reference_loaded` is 0, and an alert says so).
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from model_service.spec import default_spec

log = logging.getLogger("app.reference")

REFERENCE_ARTIFACT = "reference/reference.csv"
RETRY_SECONDS = 30.0


@dataclass
class ReferenceStats:
    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)  # feature -> (mean, std)
    category_shares: dict[str, dict[str, float]] = field(default_factory=dict)  # feature -> level -> share
    score_mean: float | None = None
    score_std: float | None = None
    accuracy: float | None = None
    rows: int = 0


def compute_stats(df: pd.DataFrame, threshold: float = 0.5) -> ReferenceStats:
    """Mean and std of each numeric feature, the share of each category level, score mean/std, accuracy."""
    spec = default_spec()
    stats = ReferenceStats(rows=len(df))
    for name in spec.numeric:
        if name in df:
            col = pd.to_numeric(df[name], errors="coerce").dropna()
            if len(col) > 1:
                stats.numeric[name] = (float(col.mean()), float(col.std()))
    for name, feat in spec.categorical.items():
        if name in df:
            col = df[name].dropna().astype(str)
            if len(col):
                counts = col.value_counts(normalize=True)
                stats.category_shares[name] = {lvl: float(counts.get(lvl, 0.0)) for lvl in feat.levels}
    if "score" in df:
        score = pd.to_numeric(df["score"], errors="coerce").dropna()
        if len(score) > 1:
            stats.score_mean, stats.score_std = float(score.mean()), float(score.std())
            if "churned" in df:
                truth = df.loc[score.index, "churned"].astype(bool)
                stats.accuracy = float(((score >= threshold) == truth).mean())
    return stats


def download_reference(run_id: str) -> pd.DataFrame:
    """The reference data set of a training run, from MLflow (at MLFLOW_TRACKING_URI)."""
    import mlflow

    from model_service.settings import get_settings

    settings = get_settings()
    # MLflow's client retries for minutes by default; give up quickly and retry later instead.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(settings.mlflow_timeout_seconds)))
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    with tempfile.TemporaryDirectory(prefix="churn-reference-") as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp)
        return pd.read_csv(path)


class ReferenceLoader:
    """Background download of the reference statistics, retried until it works."""

    def __init__(self, run_id: str | None, threshold: float, on_loaded: Callable[[ReferenceStats], None],
                 retry_seconds: float = RETRY_SECONDS):
        self.run_id = run_id
        self.threshold = threshold
        self.on_loaded = on_loaded
        self.retry_seconds = retry_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reference-loader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        if not self.run_id:
            log.warning("the model has no training run id: no reference data set, drift monitoring is off")
            return
        while not self._stop.is_set():
            try:
                stats = compute_stats(download_reference(self.run_id), self.threshold)
                self.on_loaded(stats)
                log.info("loaded the reference data set (%d rows) from run %s", stats.rows, self.run_id)
                return
            except Exception as exc:  # MLflow unreachable, artifact missing, bad CSV: try again later
                log.warning("cannot load the reference data set from run %s (%s: %s); retrying in %.0f s",
                            self.run_id, type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "",
                            self.retry_seconds)
            self._stop.wait(self.retry_seconds)
