"""Monitoring for the churn model server.

What is exposed on /metrics (see NOTES.md for the why):

- service:    http_requests_total{endpoint,method,status}, http_request_duration_seconds{endpoint}
- outputs:    model_predictions_total{predicted_class}, model_prediction_score
- ground truth: model_labels_total{true_class,predicted_class}, model_label_delay_seconds,
              model_accuracy (last 200 labels), model_accuracy_window_labels
- inputs:     feature_drift_score{feature} (two-sample K-S statistic, last 300 predictions vs. the training
              reference), feature_null_fraction{feature} (share of nulls in the same window),
              model_drift_window_size, model_drift_reference_rows{source}

The request path only appends to bounded deques and bumps counters; the K-S tests run in a background
thread every couple of seconds.
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections import deque
from typing import Iterable

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from scipy.stats import ks_2samp

from model_service.spec import default_spec

log = logging.getLogger("app.monitoring")

# ---------------------------------------------------------------------------------------------------------
# Windows. At ~20 predictions/s, 300 predictions is ~15 s of traffic; with labels for about half of them,
# 200 labels is ~20 s. Short enough to react to an incident within seconds, long enough not to be noise.
# ---------------------------------------------------------------------------------------------------------
DRIFT_WINDOW = 300
ACCURACY_WINDOW = 200
MIN_LABELS_FOR_ACCURACY = 50
MIN_ROWS_FOR_DRIFT = 100
DRIFT_INTERVAL_SECONDS = 2.0

SPEC = default_spec()
NUMERIC_FEATURES = list(SPEC.numeric)
ALL_FEATURES = list(SPEC.features)

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "http_requests_total", "HTTP requests handled by the model server, by endpoint, method and status code.",
    ["endpoint", "method", "status"], registry=REGISTRY,
)
LATENCY = Histogram(
    "http_request_duration_seconds", "Time to handle an HTTP request, in seconds, by endpoint.",
    ["endpoint"], registry=REGISTRY,
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PREDICTIONS = Counter(
    "model_predictions_total", "Customers scored by the model, by predicted class (churn / no_churn).",
    ["predicted_class"], registry=REGISTRY,
)
SCORES = Histogram(
    "model_prediction_score", "Churn probability returned by the model for each scored customer.",
    registry=REGISTRY, buckets=tuple(round(x, 2) for x in np.arange(0.05, 1.0001, 0.05)),
)
LABELS = Counter(
    "model_labels_total", "Ground-truth labels received on /feedback, by true and predicted class.",
    ["true_class", "predicted_class"], registry=REGISTRY,
)
LABEL_DELAY = Histogram(
    "model_label_delay_seconds", "Seconds between a prediction and the arrival of its ground-truth label.",
    registry=REGISTRY, buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 86400),
)
ACCURACY = Gauge(
    "model_accuracy", f"Share of correct predictions among the last {ACCURACY_WINDOW} labelled predictions "
    f"(NaN until {MIN_LABELS_FOR_ACCURACY} labels have arrived).", registry=REGISTRY,
)
ACCURACY_N = Gauge(
    "model_accuracy_window_labels", "Number of labels in the window model_accuracy is computed over.",
    registry=REGISTRY,
)
DRIFT = Gauge(
    "feature_drift_score", f"Two-sample Kolmogorov-Smirnov statistic (0-1) between the last {DRIFT_WINDOW} "
    "non-null values of a numeric feature and the training reference.", ["feature"], registry=REGISTRY,
)
NULLS = Gauge(
    "feature_null_fraction", f"Share of null values of a feature among the last {DRIFT_WINDOW} scored customers.",
    ["feature"], registry=REGISTRY,
)
DRIFT_N = Gauge(
    "model_drift_window_size", "Number of recent predictions the drift scores are computed over.",
    registry=REGISTRY,
)
REFERENCE_ROWS = Gauge(
    "model_drift_reference_rows", "Rows in the reference data set drift is measured against, by its source "
    "(mlflow = the training run's reference.csv, spec = sampled from the feature spec).",
    ["source"], registry=REGISTRY,
)
MODEL_INFO = Gauge(
    "model_info", "Always 1; labels carry the served model's name and version.",
    ["model_name", "model_version"], registry=REGISTRY,
)

ACCURACY.set(float("nan"))
for _f in NUMERIC_FEATURES:
    DRIFT.labels(feature=_f).set(float("nan"))
for _f in ALL_FEATURES:
    NULLS.labels(feature=_f).set(0.0)
for _c in ("churn", "no_churn"):
    PREDICTIONS.labels(predicted_class=_c)
    for _t in ("churn", "no_churn"):
        LABELS.labels(true_class=_t, predicted_class=_c)

# Shared state between the request path and the drift thread.
_lock = threading.Lock()
_recent_features: deque[dict] = deque(maxlen=DRIFT_WINDOW)
_recent_correct: deque[int] = deque(maxlen=ACCURACY_WINDOW)
_reference: dict[str, np.ndarray] = {}
_stop = threading.Event()
_thread: threading.Thread | None = None


def _cls(flag) -> str:
    return "churn" if flag else "no_churn"


# --------------------------------------------------------------------------------------------- hooks
def setup(app: FastAPI) -> None:
    @app.middleware("http")
    async def _measure(request: Request, call_next):
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            LATENCY.labels(endpoint=endpoint).observe(time.perf_counter() - start)
            REQUESTS.labels(endpoint=endpoint, method=request.method, status=str(status)).inc()

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def on_startup(app: FastAPI) -> None:
    global _thread
    service = getattr(app.state, "service", None)
    if service is not None:
        MODEL_INFO.labels(model_name=service.model.name, model_version=str(service.model_version)).set(1)
    run_id = getattr(getattr(service, "model", None), "run_id", None)
    _stop.clear()
    _thread = threading.Thread(target=_drift_loop, args=(run_id,), name="drift-monitor", daemon=True)
    _thread.start()


def on_shutdown(app: FastAPI) -> None:
    _stop.set()
    if _thread is not None:
        _thread.join(timeout=5)


# --------------------------------------------------------------------------------- request path
def observe_predictions(predictions: Iterable) -> None:
    """Called by /predict and /predict/batch with the Prediction objects. Cheap: counters and a deque."""
    with _lock:
        for p in predictions:
            PREDICTIONS.labels(predicted_class=_cls(p.churned)).inc()
            SCORES.observe(p.churn_probability)
            _recent_features.append(p.features)


def observe_feedback(labelled) -> None:
    """Called by /feedback with the LabelledPrediction."""
    LABELS.labels(true_class=_cls(labelled.true_label), predicted_class=_cls(labelled.predicted_label)).inc()
    LABEL_DELAY.observe(max(labelled.label_delay_seconds, 0.0))
    with _lock:
        _recent_correct.append(int(labelled.true_label == labelled.predicted_label))
        n = len(_recent_correct)
        acc = sum(_recent_correct) / n
    ACCURACY_N.set(n)
    ACCURACY.set(acc if n >= MIN_LABELS_FOR_ACCURACY else float("nan"))


# --------------------------------------------------------------------------------------- drift
def _load_reference(run_id: str | None) -> tuple[dict[str, np.ndarray], str]:
    """The training run's reference.csv from MLflow; failing that, a sample drawn from the feature spec."""
    import pandas as pd

    if run_id:
        try:
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
            import mlflow

            with tempfile.TemporaryDirectory() as tmp:
                path = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path="reference/reference.csv", dst_path=tmp)
                frame = pd.read_csv(path)
            return {f: frame[f].dropna().to_numpy(float) for f in NUMERIC_FEATURES}, "mlflow"
        except Exception as exc:  # MLflow down, run missing, ...: drift still works off the spec
            log.warning("could not load the reference data set from MLflow (%s); sampling from the spec", exc)
    from model_service.churn_data import generate_features

    frame = generate_features(5000, seed=4242)
    return {f: frame[f].to_numpy(float) for f in NUMERIC_FEATURES}, "spec"


def set_reference(reference: dict[str, np.ndarray], source: str = "custom") -> None:
    _reference.clear()
    _reference.update(reference)
    REFERENCE_ROWS.clear()
    REFERENCE_ROWS.labels(source=source).set(len(next(iter(reference.values()))) if reference else 0)


def compute_drift() -> None:
    """One pass: K-S statistic and null share per feature over the recent window."""
    with _lock:
        rows = list(_recent_features)
    DRIFT_N.set(len(rows))
    if not rows:
        return
    for f in ALL_FEATURES:
        NULLS.labels(feature=f).set(sum(r.get(f) is None for r in rows) / len(rows))
    if not _reference or len(rows) < MIN_ROWS_FOR_DRIFT:
        return
    for f in NUMERIC_FEATURES:
        values = np.array([r[f] for r in rows if r.get(f) is not None], dtype=float)
        if len(values) < MIN_ROWS_FOR_DRIFT:
            # Mostly nulls: the null-fraction gauge covers it; a K-S on a handful of values is noise.
            DRIFT.labels(feature=f).set(float("nan"))
            continue
        DRIFT.labels(feature=f).set(float(ks_2samp(values, _reference[f]).statistic))


def _drift_loop(run_id: str | None) -> None:
    try:
        ref, source = _load_reference(run_id)
        set_reference(ref, source)
    except Exception:
        log.exception("no drift reference; drift scores stay NaN")
    while not _stop.wait(DRIFT_INTERVAL_SECONDS):
        try:
            compute_drift()
        except Exception:
            log.exception("drift computation failed")
