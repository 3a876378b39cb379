"""Data drift against the training reference, off the request path.

The request path only appends to a bounded window. A background thread, every `drift_interval_seconds`,
compares the window with the reference data set of the model's training run (MLflow artifact
reference/reference.csv): the normed Wasserstein distance for numeric features and the Jensen-Shannon
distance for categorical ones, the statistics evidently itself picks for a reference of this size, computed
directly so that a pass takes milliseconds. Every `report_interval_seconds` it also runs a full evidently
DataDriftPreset report on the same window and logs it to MLflow as HTML.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from collections import deque

import numpy as np
import pandas as pd
from prometheus_client import Gauge, Histogram
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from model_service.churn_data import records_to_frame
from model_service.spec import default_spec

from .monitoring_config import MonitoringSettings

log = logging.getLogger("monitoring.drift")
SPEC = default_spec()

DRIFT_SCORE = Gauge(
    "churn_feature_drift_score",
    "Drift of a feature's recent values from the training reference: normed Wasserstein distance "
    "(numeric) or Jensen-Shannon distance (categorical); 0 is identical.",
    ["feature"],
)
DRIFTED = Gauge("churn_feature_drifted", "1 when the feature's drift score is at or above the threshold.", ["feature"])
DRIFTED_SHARE = Gauge(
    "churn_drifted_features_share", "Share of input features whose drift score is over the threshold."
)
PREDICTION_DRIFT = Gauge(
    "churn_prediction_drift_score",
    "Normed Wasserstein distance between recent churn scores and the reference's scores.",
)
THRESHOLD = Gauge(
    "churn_drift_threshold", "Drift score at or above which a feature counts as drifted, by kind.", ["kind"]
)
WINDOW_ROWS = Gauge("churn_drift_window_rows", "Recent predictions the drift scores are computed on.")
REFERENCE_ROWS = Gauge("churn_drift_reference_rows", "Rows of the training reference (0: not loaded yet).")
LAST_RUN = Gauge("churn_drift_last_run_timestamp_seconds", "Unix time of the last drift computation.")
RUN_SECONDS = Histogram(
    "churn_drift_computation_seconds",
    "Time one drift pass over the window takes.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)


class Reference:
    """The reference data set, prepared once: sorted numbers, their spread, category shares."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.numeric = {f: frame[f].dropna().to_numpy(dtype=float) for f in SPEC.numeric}
        self.spread = {f: float(np.std(v)) or 1.0 for f, v in self.numeric.items()}
        self.shares = {f: frame[f].value_counts(normalize=True) for f in SPEC.categorical}
        self.scores = frame["score"].to_numpy(dtype=float)
        self.score_spread = float(np.std(self.scores)) or 1.0


def drift_scores(reference: Reference, window: pd.DataFrame) -> dict[str, float]:
    """The live path: one score per feature (NaN when the window has no values for it)."""
    out = {}
    for f in SPEC.numeric:
        current = window[f].dropna().to_numpy(dtype=float)
        out[f] = wasserstein_distance(reference.numeric[f], current) / reference.spread[f] if len(current) else math.nan
    for f in SPEC.categorical:
        current = window[f].dropna().value_counts(normalize=True)
        if current.empty:
            out[f] = math.nan
            continue
        levels = reference.shares[f].index.union(current.index)
        out[f] = float(
            jensenshannon(
                reference.shares[f].reindex(levels, fill_value=0).to_numpy(),
                current.reindex(levels, fill_value=0).to_numpy(),
            )
        )
    return out


def evidently_report(reference: Reference, window: pd.DataFrame):
    """The full evidently DataDriftPreset report on the same window (an evidently Snapshot)."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    columns = list(SPEC.features)
    return Report([DataDriftPreset()]).run(window[columns], reference.frame[columns])


def load_reference(run_id: str) -> Reference:
    import mlflow

    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="reference/reference.csv")
    return Reference(pd.read_csv(local))


class DriftMonitor:
    def __init__(self, settings: MonitoringSettings, run_id: str | None, model_version: str):
        self.settings = settings
        self.run_id = run_id
        self.model_version = model_version
        self._rows: deque[dict] = deque(maxlen=settings.drift_window)
        self._scores: deque[float] = deque(maxlen=settings.drift_window)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drift-monitor", daemon=True)
        self.reference: Reference | None = None
        self._last_report = time.monotonic()
        self.thresholds = {
            **{f: settings.drift_threshold_numeric for f in SPEC.numeric},
            **{f: settings.drift_threshold_categorical for f in SPEC.categorical},
        }
        THRESHOLD.labels("numeric").set(settings.drift_threshold_numeric)
        THRESHOLD.labels("categorical").set(settings.drift_threshold_categorical)

    def add(self, features: dict, score: float) -> None:
        """Request path: O(1), no computation."""
        with self._lock:
            self._rows.append(features)
            self._scores.append(score)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.drift_interval_seconds):
            try:
                self.run_once()
            except Exception:  # a failed pass must not end monitoring; the next one may succeed
                log.exception("drift pass failed")

    def run_once(self) -> None:
        if self.reference is None:
            if self.run_id is None:
                return
            self.reference = load_reference(self.run_id)
            REFERENCE_ROWS.set(len(self.reference.frame))
        with self._lock:
            rows, scores = list(self._rows), np.array(self._scores, dtype=float)
        WINDOW_ROWS.set(len(rows))
        if len(rows) < self.settings.drift_window:  # a part-filled window is noise (after a start or reload)
            return
        window = records_to_frame(rows)
        with RUN_SECONDS.time():
            per_feature = drift_scores(self.reference, window)
        drifted = 0
        for feature, score in per_feature.items():
            DRIFT_SCORE.labels(feature).set(score)
            flag = score >= self.thresholds[feature]
            DRIFTED.labels(feature).set(float(flag))
            drifted += flag
        DRIFTED_SHARE.set(drifted / len(per_feature))
        PREDICTION_DRIFT.set(wasserstein_distance(self.reference.scores, scores) / self.reference.score_spread)
        LAST_RUN.set_to_current_time()
        interval = self.settings.report_interval_seconds
        if interval and time.monotonic() - self._last_report >= interval:
            self._last_report = time.monotonic()
            self._log_report(window)

    def _log_report(self, window: pd.DataFrame) -> None:
        import mlflow

        snapshot = evidently_report(self.reference, window)
        drifted = next(m["value"] for m in snapshot.dict()["metrics"] if "DriftedColumnsCount" in m["metric_name"])
        mlflow.set_experiment("churn-monitoring")
        with (
            tempfile.TemporaryDirectory() as tmp,
            mlflow.start_run(run_name=f"drift-report-{time.strftime('%Y%m%d-%H%M%S')}"),
        ):
            path = os.path.join(tmp, "drift_report.html")
            snapshot.save_html(path)
            mlflow.set_tags({"model_version": self.model_version, "reference_run_id": self.run_id})
            mlflow.log_params({"window_rows": len(window)})
            mlflow.log_metrics({"drifted_columns": drifted["count"], "drifted_share": drifted["share"]})
            mlflow.log_artifact(path)
        log.info("drift report logged to MLflow (%d of %d columns drifted)", drifted["count"], len(SPEC.features))
