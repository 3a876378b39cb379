"""Monitoring for the churn model server.

Four things, all exposed on /metrics for Prometheus:

1. Service: request count and latency per endpoint (HTTP middleware).
2. Predictions: count by predicted class, score histogram, nulls and out-of-range values per feature
   (cheap counters updated inside /predict).
3. Data drift: a background thread runs evidently's DataDriftPreset every few seconds on the inputs of the
   most recent predictions against the training reference set (MLflow artifact reference/reference.csv)
   and publishes evidently's per-column drift score (a p-value: LOW means drift), the drifted columns'
   count and share, and a K-S test on the model's score (prediction drift).
4. Performance: a second background thread computes accuracy, precision, recall, F1 and ROC AUC with
   scikit-learn over the most recently labelled predictions (labels arrive on /feedback).

Windows and cadences are sized for the compressed 90 s scenario (about 20 predictions/s, labels 2 s later);
each can be overridden with an environment variable (CHURN_MON_<NAME>) for a real-length session.
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
import warnings
from collections import deque
from typing import Iterable

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request, Response
from prometheus_client import (CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, disable_created_metrics,
                               generate_latest)
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from model_service.churn_data import records_to_frame
from model_service.spec import default_spec

log = logging.getLogger("churn_monitoring")
disable_created_metrics()  # no *_created series: half the /metrics body for nothing Prometheus uses


def _knob(name: str, default: float) -> float:
    """A tuning constant, overridable from the environment as CHURN_MON_<NAME>."""
    return float(os.environ.get(f"CHURN_MON_{name}", default))


# --------------------------------------------------------------------------------------------------
# Knobs (compressed run: 90 s in all, ~20 predictions/s, labels for ~half of them ~2 s later)
# --------------------------------------------------------------------------------------------------
DRIFT_WINDOW_SECONDS = _knob("DRIFT_WINDOW_SECONDS", 10)   # inputs of the last 10 s of predictions ...
DRIFT_MAX_ROWS = int(_knob("DRIFT_MAX_ROWS", 200))         # ... at most 200 rows (= 10 s at 20/s)
DRIFT_MIN_ROWS = int(_knob("DRIFT_MIN_ROWS", 60))          # fewer rows: no verdict (gauges go NaN)
DRIFT_EVERY_SECONDS = _knob("DRIFT_EVERY_SECONDS", 2)      # one report ~0.5 s CPU: at most ~1/3 of a core
DRIFT_P_THRESHOLD = _knob("DRIFT_P_THRESHOLD", 0.001)      # a column is "drifted" when p < this
PERF_WINDOW_SECONDS = _knob("PERF_WINDOW_SECONDS", 10)     # labels that arrived in the last 10 s ...
PERF_MAX_LABELS = int(_knob("PERF_MAX_LABELS", 300))
PERF_MIN_LABELS = int(_knob("PERF_MIN_LABELS", 40))        # ~100 labels at 10/s; <40: no verdict
PERF_EVERY_SECONDS = _knob("PERF_EVERY_SECONDS", 1)
REFERENCE_RETRY_SECONDS = _knob("REFERENCE_RETRY_SECONDS", 15)
REFERENCE_ARTIFACT = "reference/reference.csv"

SPEC = default_spec()
NUMERIC = list(SPEC.numeric)
CATEGORICAL = list(SPEC.categorical)
FEATURES = NUMERIC + CATEGORICAL
SCORE = "score"

# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "churn_http_requests_total", "HTTP requests served by the model server, by endpoint, method and status code.",
    ["handler", "method", "status"])
HTTP_LATENCY = Histogram(
    "churn_http_request_duration_seconds", "Time to answer an HTTP request, in seconds, by endpoint and method.",
    ["handler", "method"], buckets=LATENCY_BUCKETS)

PREDICTIONS = Counter(
    "churn_predictions_total", "Customers scored (one per customer, batch rows included), by predicted class.",
    ["predicted_class"])
SCORE_HIST = Histogram(
    "churn_prediction_score", "Churn probability returned by the model, per scored customer.",
    buckets=tuple(round(0.1 * i, 1) for i in range(1, 10)))
NULLS = Counter(
    "churn_feature_null_values_total", "Scored customers whose feature value was null (imputed by the model).",
    ["feature"])
OUT_OF_RANGE = Counter(
    "churn_feature_out_of_range_total",
    "Scored customers whose numeric feature value was outside the typical training range (model card).",
    ["feature", "side"])

LABELS = Counter("churn_feedback_labels_total", "Ground-truth labels received on /feedback, by true class.",
                 ["true_class"])
LABEL_DELAY = Histogram("churn_feedback_label_delay_seconds", "Seconds between a prediction and its label.",
                        buckets=(0.5, 1, 2, 3, 5, 10, 30, 60, 300, 3600, 86400))

DRIFT_SCORE = Gauge(
    "churn_feature_drift_score",
    "evidently drift score per input column on the recent window vs the training reference, as evidently "
    "reports it: a p-value (K-S for numeric, chi-square for categorical columns); LOW means drift. "
    "NaN when the window is too small or the column is all null.",
    ["column", "method"])
DRIFT_DETECTED = Gauge(
    "churn_feature_drift_detected", "1 when evidently flags the column as drifted (p-value below the threshold).",
    ["column"])
DRIFTED_COUNT = Gauge("churn_drift_drifted_columns", "Number of input columns evidently flags as drifted.")
DRIFTED_SHARE = Gauge("churn_drift_drifted_columns_share", "Share (0-1) of input columns flagged as drifted.")
DRIFT_THRESHOLD = Gauge("churn_drift_p_value_threshold", "p-value below which a column counts as drifted.")
PREDICTION_DRIFT = Gauge(
    "churn_prediction_drift_score",
    "K-S p-value of the model's churn score on the recent window vs the scores on the reference set; LOW means "
    "the output distribution moved.")
DRIFT_WINDOW_ROWS = Gauge("churn_drift_window_rows", "Recent predictions in the window the drift report runs on.")
DRIFT_LAST_RUN = Gauge("churn_drift_last_run_timestamp_seconds", "Unix time of the last completed drift report.")
DRIFT_RUN_SECONDS = Gauge("churn_drift_run_duration_seconds", "Wall time the last evidently drift report took.")
DRIFT_ERRORS = Counter("churn_drift_run_errors_total", "Drift reports that raised an exception.")
REFERENCE_LOADED = Gauge("churn_drift_reference_loaded", "1 once the training reference set is loaded.")
REFERENCE_ROWS = Gauge("churn_drift_reference_rows", "Rows in the training reference set used for drift.")

PERF = {
    name: Gauge(f"churn_model_{name}", f"{text} over the labels received in the last performance window "
                "(NaN when too few labels).")
    for name, text in [("accuracy", "Accuracy at the model's threshold"),
                       ("precision", "Precision (flagged customers who did churn)"),
                       ("recall", "Recall (churners the model flagged)"),
                       ("f1", "F1 score of the churn class"),
                       ("roc_auc", "ROC AUC of the churn probability")]
}
PERF_WINDOW_LABELS = Gauge("churn_model_performance_window_labels", "Labelled predictions in the performance window.")
PERF_WINDOW_CHURN_RATE = Gauge("churn_model_performance_window_churn_rate",
                               "Share of true churners among the labelled predictions in the performance window.")
MODEL_INFO = Gauge("churn_model_info", "The model being served (value is always 1).", ["version", "run_id", "source"])

# No verdict until the threads have one: a gauge starting at 0 would read as "p-value 0" or "accuracy 0" and
# fire alerts at every start-up.
for _gauge in (DRIFTED_COUNT, DRIFTED_SHARE, PREDICTION_DRIFT, PERF_WINDOW_CHURN_RATE, *PERF.values()):
    _gauge.set(math.nan)

# One child per label value, bound once: /predict is hot.
_PRED_CHILD = {True: PREDICTIONS.labels("churn"), False: PREDICTIONS.labels("no_churn")}
_LABEL_CHILD = {1: LABELS.labels("churn"), 0: LABELS.labels("no_churn")}
_NULL_CHILD = {f: NULLS.labels(f) for f in FEATURES}
_RANGE = {f: (SPEC.numeric[f].expected.min, SPEC.numeric[f].expected.max,
              OUT_OF_RANGE.labels(f, "below"), OUT_OF_RANGE.labels(f, "above")) for f in NUMERIC}

# --------------------------------------------------------------------------------------------------
# Windows filled by the endpoints (appends are cheap; the threads take snapshots under the lock)
# --------------------------------------------------------------------------------------------------
_lock = threading.Lock()
_recent_inputs: deque = deque(maxlen=max(DRIFT_MAX_ROWS * 5, 1000))   # (ts, features dict, score)
_recent_labels: deque = deque(maxlen=max(PERF_MAX_LABELS * 5, 1000))  # (label ts, score, predicted, true)


def record_predictions(predictions: Iterable) -> None:
    """Call from /predict and /predict/batch with the model_service Prediction objects."""
    now = time.time()
    rows = []
    for p in predictions:
        _PRED_CHILD[bool(p.churned)].inc()
        SCORE_HIST.observe(p.churn_probability)
        feats = p.features
        for f in FEATURES:
            if feats.get(f) is None:
                _NULL_CHILD[f].inc()
        for f, (lo, hi, below, above) in _RANGE.items():
            v = feats.get(f)
            if v is not None:
                if v < lo:
                    below.inc()
                elif v > hi:
                    above.inc()
        rows.append((now, feats, p.churn_probability))
    with _lock:
        _recent_inputs.extend(rows)


def record_feedback(labelled) -> None:
    """Call from /feedback with the model_service LabelledPrediction."""
    _LABEL_CHILD[int(labelled.true_label)].inc()
    LABEL_DELAY.observe(max(labelled.label_delay_seconds, 0.0))
    with _lock:
        _recent_labels.append((time.time(), labelled.score, int(labelled.predicted_label), int(labelled.true_label)))


def _snapshot(buffer: deque, window_seconds: float, max_rows: int) -> list:
    cutoff = time.time() - window_seconds
    with _lock:
        rows = list(buffer)
    rows = [r for r in rows if r[0] >= cutoff]
    return rows[-max_rows:]


# --------------------------------------------------------------------------------------------------
# Reference data (MLflow artifact of the model's training run)
# --------------------------------------------------------------------------------------------------
def load_reference(run_id: str | None) -> pd.DataFrame | None:
    """reference/reference.csv of the training run, or None when MLflow cannot give it (fail soft)."""
    if not run_id:
        log.warning("drift: the model has no training run id; no reference set, no drift metrics")
        return None
    try:
        import mlflow

        # Decide within seconds (MLflow retries for minutes by default).
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        from model_service.settings import get_settings

        uri = get_settings().mlflow_tracking_uri  # MLFLOW_TRACKING_URI, as the model loader reads it
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT,
                                                       dst_path=tmp, tracking_uri=uri)
            ref = pd.read_csv(path)
        log.info("drift: loaded %d reference rows from run %s", len(ref), run_id)
        return ref
    except Exception as exc:  # unreachable, no such run or artifact: monitoring must not take the server down
        log.warning("drift: cannot load the reference set from MLflow (%s: %s); retrying later",
                    type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
        return None


def _as_model_frame(records: list[dict]) -> pd.DataFrame:
    return records_to_frame(records, SPEC)[FEATURES]


# --------------------------------------------------------------------------------------------------
# Background threads
# --------------------------------------------------------------------------------------------------
class DriftMonitor(threading.Thread):
    """Every DRIFT_EVERY_SECONDS: evidently DataDriftPreset on the recent inputs vs the reference set."""

    def __init__(self, run_id: str | None, reference: pd.DataFrame | None = None):
        super().__init__(name="drift-monitor", daemon=True)
        self.run_id = run_id
        self.stop_event = threading.Event()
        self._reference_ds = None
        self._definition = None
        self._has_score = False
        self._next_reference_try = 0.0
        self._reference = reference
        DRIFT_THRESHOLD.set(DRIFT_P_THRESHOLD)
        REFERENCE_LOADED.set(0)

    # -- setup -----------------------------------------------------------------------------------
    def _ensure_reference(self) -> bool:
        if self._reference_ds is not None:
            return True
        if self._reference is None:
            if time.time() < self._next_reference_try:
                return False
            self._next_reference_try = time.time() + REFERENCE_RETRY_SECONDS
            self._reference = load_reference(self.run_id)
            if self._reference is None:
                return False
        from evidently import DataDefinition, Dataset  # heavy import: keep it off the start-up path

        ref = self._reference
        frame = _as_model_frame(ref[FEATURES].to_dict(orient="records"))
        if SCORE in ref:
            frame[SCORE] = np.round(ref[SCORE].astype(float).to_numpy(), 6)
        self._definition = DataDefinition(numerical_columns=NUMERIC + ([SCORE] if SCORE in frame else []),
                                          categorical_columns=CATEGORICAL)
        self._reference_ds = Dataset.from_pandas(frame, data_definition=self._definition)
        self._has_score = SCORE in frame
        REFERENCE_LOADED.set(1)
        REFERENCE_ROWS.set(len(frame))
        return True

    # -- one report ------------------------------------------------------------------------------
    def run_once(self) -> dict | None:
        """Run one report on the current window and publish it; returns evidently's dict (None if skipped)."""
        if not self._ensure_reference():
            return None
        rows = _snapshot(_recent_inputs, DRIFT_WINDOW_SECONDS, DRIFT_MAX_ROWS)
        DRIFT_WINDOW_ROWS.set(len(rows))
        if len(rows) < DRIFT_MIN_ROWS:
            self._publish_unknown()
            return None

        from evidently import Dataset, Report
        from evidently.metrics import ValueDrift
        from evidently.presets import DataDriftPreset

        current = _as_model_frame([r[1] for r in rows])
        # evidently refuses an all-null column; a column nulled upstream is caught by the null-rate metric.
        columns = [c for c in FEATURES if current[c].notna().any()]
        # K-S / chi-square p-values, set explicitly: with a 5,000-row reference evidently's default would be
        # Wasserstein / Jensen-Shannon at 0.1, which flags 0-5 columns on clean 200-row windows.
        metrics = [DataDriftPreset(columns=columns, num_method="ks", cat_method="chisquare",
                                   threshold=DRIFT_P_THRESHOLD)]
        if self._has_score:  # prediction drift: the model's output vs its output on the reference set
            # Rounded: scores saturated a hair below 1.0 make evidently's 10-bin histogram fail.
            current[SCORE] = np.round(np.array([r[2] for r in rows], dtype=float), 6)
            metrics.append(ValueDrift(column=SCORE, method="ks", threshold=DRIFT_P_THRESHOLD))
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snapshot = Report(metrics).run(Dataset.from_pandas(current, data_definition=self._definition),
                                           self._reference_ds)
            result = snapshot.dict()
        DRIFT_RUN_SECONDS.set(time.perf_counter() - started)
        self._publish(result, columns)
        DRIFT_LAST_RUN.set(time.time())
        return result

    def _publish(self, result: dict, columns: list[str]) -> None:
        seen = set()
        for m in result["metrics"]:
            cfg = m.get("config", {})
            kind = cfg.get("type", "")
            if kind.endswith("DriftedColumnsCount"):
                DRIFTED_COUNT.set(m["value"]["count"])
                DRIFTED_SHARE.set(m["value"]["share"])
            elif kind.endswith("ValueDrift"):
                column, value = cfg["column"], float(m["value"])
                if column == SCORE:
                    PREDICTION_DRIFT.set(value)
                    continue
                threshold = cfg.get("threshold", DRIFT_P_THRESHOLD)
                DRIFT_SCORE.labels(column, cfg.get("method", "")).set(value)
                DRIFT_DETECTED.labels(column).set(1.0 if value < threshold else 0.0)
                seen.add(column)
        for column in FEATURES:
            if column not in seen:  # all null in this window: no verdict from evidently
                self._set_unknown_column(column)

    def _set_unknown_column(self, column: str) -> None:
        method = "ks" if column in NUMERIC else "chisquare"
        DRIFT_SCORE.labels(column, method).set(math.nan)
        DRIFT_DETECTED.labels(column).set(math.nan)

    def _publish_unknown(self) -> None:
        """Too few rows for a verdict: NaN, so alerts resolve instead of holding a stale value."""
        for column in FEATURES:
            self._set_unknown_column(column)
        for g in (DRIFTED_COUNT, DRIFTED_SHARE, PREDICTION_DRIFT):
            g.set(math.nan)

    # -- loop ------------------------------------------------------------------------------------
    def run(self) -> None:
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception:
                DRIFT_ERRORS.inc()
                log.exception("drift: report failed")
                self._publish_unknown()
            # Sleep at least as long as the report took: never more than half a core on drift, whatever
            # the machine (a report is ~0.5-1 s of CPU, so the usual cadence is DRIFT_EVERY_SECONDS).
            spent = time.monotonic() - started
            self.stop_event.wait(max(DRIFT_EVERY_SECONDS - spent, spent, 0.2))


class PerformanceMonitor(threading.Thread):
    """Every PERF_EVERY_SECONDS: scikit-learn metrics over the labels received in the last window."""

    def __init__(self):
        super().__init__(name="performance-monitor", daemon=True)
        self.stop_event = threading.Event()

    def run_once(self) -> dict:
        rows = _snapshot(_recent_labels, PERF_WINDOW_SECONDS, PERF_MAX_LABELS)
        PERF_WINDOW_LABELS.set(len(rows))
        values = {name: math.nan for name in PERF}
        if rows:
            PERF_WINDOW_CHURN_RATE.set(float(np.mean([r[3] for r in rows])))
        else:
            PERF_WINDOW_CHURN_RATE.set(math.nan)
        if len(rows) >= PERF_MIN_LABELS:
            score = np.array([r[1] for r in rows], dtype=float)
            y_pred = np.array([r[2] for r in rows], dtype=int)
            y_true = np.array([r[3] for r in rows], dtype=int)
            values["accuracy"] = accuracy_score(y_true, y_pred)
            values["precision"] = precision_score(y_true, y_pred, zero_division=0)
            values["recall"] = recall_score(y_true, y_pred, zero_division=0)
            values["f1"] = f1_score(y_true, y_pred, zero_division=0)
            if len(set(y_true.tolist())) == 2:  # AUC needs both classes
                values["roc_auc"] = roc_auc_score(y_true, score)
        for name, value in values.items():
            PERF[name].set(float(value))
        return values

    def run(self) -> None:
        while not self.stop_event.wait(PERF_EVERY_SECONDS):
            try:
                self.run_once()
            except Exception:
                log.exception("performance: computation failed")


# --------------------------------------------------------------------------------------------------
# Hooks called by app/main.py
# --------------------------------------------------------------------------------------------------
def setup(app: FastAPI) -> None:
    """/metrics and the request middleware."""

    @app.middleware("http")
    async def _measure(request: Request, call_next):
        if request.url.path == "/metrics":
            return await call_next(request)
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            # The route template, never the raw path: a scan of random URLs must not create series.
            handler = getattr(route, "path", None) or "unmatched"
            HTTP_REQUESTS.labels(handler, request.method, str(status)).inc()
            HTTP_LATENCY.labels(handler, request.method).observe(time.perf_counter() - started)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def on_startup(app: FastAPI, reference: pd.DataFrame | None = None) -> None:
    """Start the drift and performance threads (the reference set is fetched by the drift thread)."""
    model = app.state.service.model
    MODEL_INFO.labels(str(model.version), str(model.run_id or ""), str(model.source)).set(1)
    drift = DriftMonitor(model.run_id, reference)
    perf = PerformanceMonitor()
    app.state.monitors = [drift, perf]
    drift.start()
    perf.start()


def on_shutdown(app: FastAPI) -> None:
    for monitor in getattr(app.state, "monitors", []):
        monitor.stop_event.set()
    for monitor in getattr(app.state, "monitors", []):
        monitor.join(timeout=5)
