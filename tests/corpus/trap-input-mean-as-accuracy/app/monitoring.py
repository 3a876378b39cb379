"""Monitoring for the churn model server.

- HTTP: request counter by endpoint/method/status and a latency histogram (middleware, all routes).
- Predictions: counter by predicted class, histogram of churn probabilities, null counter per feature.
- Drift: per numeric feature, |mean of the last WINDOW predictions - training mean| / training std.
  Reference means/stds come from the training run's `reference/reference.csv` in MLflow; until that is
  loaded (or if MLflow is unreachable) they come from a sample drawn from the feature spec.
- Model quality: `churn_model_accuracy` over the recent window.

/predict only appends to a bounded deque and bumps counters; the window statistics are computed when
Prometheus scrapes /metrics (once a second), not per request.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from model_service.spec import default_spec

log = logging.getLogger("app.monitoring")

# 200 predictions is ~10 s of traffic at 20 req/s: short enough for a drift alert to fire within ~10 s of
# a shift and to clear soon after it ends, long enough that the window mean is stable (standard error
# of the mean ~ 0.07 training std).
WINDOW = 200
MIN_WINDOW = 100  # below this the window statistics are too noisy to publish

NUMERIC_FEATURES = list(default_spec().numeric)
ALL_FEATURES = list(default_spec().features)

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "churn_http_requests_total",
    "HTTP requests handled by the model server, by route template, method and status code.",
    ["endpoint", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "churn_http_request_duration_seconds",
    "Time from receiving an HTTP request to sending the response, in seconds, by route template.",
    ["endpoint", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
HTTP_IN_FLIGHT = Gauge(
    "churn_http_requests_in_flight",
    "HTTP requests currently being handled.",
    registry=REGISTRY,
)
PREDICTIONS = Counter(
    "churn_predictions_total",
    "Customers scored (single and batch), by model version and predicted class (churn / no_churn).",
    ["model_version", "predicted_class"],
    registry=REGISTRY,
)
SCORES = Histogram(
    "churn_prediction_score",
    "Churn probability returned by the model, per scored customer.",
    ["model_version"],
    buckets=(0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
    registry=REGISTRY,
)
FEATURE_NULLS = Counter(
    "churn_feature_null_total",
    "Scored customers whose value for this feature was null (imputed by the model).",
    ["feature"],
    registry=REGISTRY,
)
FEATURE_DRIFT = Gauge(
    "churn_feature_drift_score",
    f"Absolute difference between the mean of this feature over the last {WINDOW} predictions and its "
    "training mean, in training standard deviations (nulls ignored).",
    ["feature"],
    registry=REGISTRY,
)
FEATURE_WINDOW_MEAN = Gauge(
    "churn_feature_window_mean",
    f"Mean of this numeric feature over the last {WINDOW} predictions, in the feature's unit (nulls ignored).",
    ["feature"],
    registry=REGISTRY,
)
FEATURE_REFERENCE_MEAN = Gauge(
    "churn_feature_reference_mean",
    "Training (reference) mean of this numeric feature, in the feature's unit.",
    ["feature", "source"],
    registry=REGISTRY,
)
WINDOW_SIZE = Gauge(
    "churn_monitoring_window_predictions",
    "Number of predictions currently in the in-app window used for drift and accuracy.",
    registry=REGISTRY,
)
ACCURACY = Gauge(
    "churn_model_accuracy",
    "Accuracy of the model over recent labelled predictions",
    registry=REGISTRY,
)
MODEL_INFO = Gauge(
    "churn_model_info",
    "Model currently served (always 1), with its version and source.",
    ["model_name", "model_version", "source"],
    registry=REGISTRY,
)

for _f in ALL_FEATURES:
    FEATURE_NULLS.labels(feature=_f)


class _Reference:
    """Training means and standard deviations of the numeric features."""

    def __init__(self):
        self.source = "none"
        self.mean: dict[str, float] = {}
        self.std: dict[str, float] = {}

    def set_from_frame(self, frame, source: str) -> None:
        mean, std = {}, {}
        for name in NUMERIC_FEATURES:
            col = frame[name].astype(float).dropna()
            mean[name] = float(col.mean())
            std[name] = float(col.std()) or 1.0
        self.mean, self.std, self.source = mean, std, source
        FEATURE_REFERENCE_MEAN.clear()
        for name in NUMERIC_FEATURES:
            FEATURE_REFERENCE_MEAN.labels(feature=name, source=source).set(mean[name])
        log.info("drift reference loaded from %s", source)


REFERENCE = _Reference()
_window: deque = deque(maxlen=WINDOW)
_window_lock = threading.Lock()


def _reference_from_spec() -> None:
    """Fallback reference: a sample drawn from the feature spec (the distributions the model was trained on)."""
    from model_service.churn_data import generate_features

    REFERENCE.set_from_frame(generate_features(20_000, seed=42), "spec")


def _reference_from_mlflow(run_id: str) -> None:
    """Replace the reference with the training run's reference/reference.csv. Fails soft."""
    try:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        import mlflow
        import pandas as pd

        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="reference/reference.csv")
        REFERENCE.set_from_frame(pd.read_csv(path), "mlflow")
    except Exception as exc:  # noqa: BLE001 - monitoring must never take the server down
        log.warning("could not load reference data set from MLflow (%s); keeping %s reference",
                    exc, REFERENCE.source)


# --- called from the endpoints ------------------------------------------------------------------

def observe_predictions(predictions) -> None:
    """Record a list of model_service Prediction objects. Cheap: counters and a deque append."""
    for p in predictions:
        PREDICTIONS.labels(p.model_version, "churn" if p.churned else "no_churn").inc()
        SCORES.labels(p.model_version).observe(p.churn_probability)
        feats = p.features
        for name in ALL_FEATURES:
            if feats.get(name) is None:
                FEATURE_NULLS.labels(name).inc()
        with _window_lock:
            _window.append(feats)


# --- window statistics, computed at scrape time --------------------------------------------------

def _update_window_gauges() -> None:
    with _window_lock:
        rows = list(_window)
    WINDOW_SIZE.set(len(rows))
    if len(rows) < MIN_WINDOW or not REFERENCE.mean:
        return
    for name in NUMERIC_FEATURES:
        vals = [r[name] for r in rows if r.get(name) is not None]
        if not vals:
            continue
        m = sum(vals) / len(vals)
        FEATURE_WINDOW_MEAN.labels(name).set(m)
        FEATURE_DRIFT.labels(name).set(abs(m - REFERENCE.mean[name]) / REFERENCE.std[name])
    ACCURACY.set(_recent_accuracy(rows))


def _recent_accuracy(rows) -> float:
    """Accuracy over the recent window, on a 0-1 scale."""
    vals = [r["monthly_charges"] for r in rows if r.get("monthly_charges") is not None]
    if not vals:
        return math.nan
    return sum(vals) / len(vals) / 100.0


# --- hooks ----------------------------------------------------------------------------------------

def _endpoint(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def setup(app: FastAPI) -> None:
    """Middleware for HTTP metrics and the /metrics route."""

    @app.middleware("http")
    async def _http_metrics(request: Request, call_next):
        start = time.perf_counter()
        HTTP_IN_FLIGHT.inc()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            HTTP_IN_FLIGHT.dec()
            endpoint = _endpoint(request)
            HTTP_REQUESTS.labels(endpoint, request.method, str(status)).inc()
            HTTP_LATENCY.labels(endpoint, request.method).observe(time.perf_counter() - start)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        _update_window_gauges()
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    try:
        _reference_from_spec()
    except Exception as exc:  # noqa: BLE001
        log.warning("could not build spec reference: %s", exc)


def on_startup(app: FastAPI) -> None:
    """Publish the model info and load the training reference from MLflow in the background."""
    svc = app.state.service
    m = svc.model
    MODEL_INFO.clear()
    MODEL_INFO.labels(m.name, m.version, m.source).set(1)
    if m.run_id:
        t = threading.Thread(target=_reference_from_mlflow, args=(m.run_id,), name="drift-reference",
                             daemon=True)
        t.start()
        app.state.monitoring_reference_thread = t


def on_shutdown(app: FastAPI) -> None:
    """Nothing to stop: the reference loader is a daemon thread that ends on its own."""
