"""Monitoring for the churn model server: Prometheus metrics on /metrics.

What is measured (see NOTES.md for the why):
- HTTP: requests by path and status code, latency histogram by path (middleware).
- Predictions: count by predicted label, histogram of churn scores.
- Performance: accuracy over all labels received since the server started, and the number of labels.
- Drift: per numeric feature, mean over the last 300 predictions / training reference mean.

app/main.py calls `record_predictions(...)` from /predict and /predict/batch and `record_feedback(...)`
from /feedback. Everything on the request path is O(number of features): a deque append and two sums.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from model_service.spec import default_spec

log = logging.getLogger("app.monitoring")
disable_created_metrics()  # no *_created series: they double the output and nobody queries them

NUMERIC_FEATURES: list[str] = list(default_spec().numeric)
DRIFT_WINDOW = 300          # predictions in the drift window (~15 s at 20 req/s)
DRIFT_MIN_SAMPLES = 100     # don't publish a ratio from a handful of values right after start-up

# --- HTTP -------------------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "churn_http_requests_total",
    "HTTP requests handled by the model server, by route template and status code.",
    ["path", "status"],
)
HTTP_LATENCY = Histogram(
    "churn_http_request_duration_seconds",
    "Time to handle an HTTP request (seconds, measured in the app), by route template.",
    ["path"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0),
)

# --- Predictions ------------------------------------------------------------------------------------------
PREDICTIONS = Counter(
    "churn_predictions_total",
    "Customers scored by the model (a batch counts each customer), by predicted label.",
    ["predicted_churn"],
)
SCORES = Histogram(
    "churn_prediction_score",
    "Churn probability returned by the model, per scored customer.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)

# --- Performance (ground truth) ---------------------------------------------------------------------------
ACCURACY = Gauge(
    "churn_model_accuracy",
    "Share of labelled predictions the model got right, over all labels received since the server started.",
)
LABELS = Counter(
    "churn_labels_total",
    "Ground-truth labels received on /feedback (a repeated label for the same request counts again).",
)
LABELS_CORRECT = Counter(
    "churn_labels_correct_total",
    "Ground-truth labels received on /feedback that matched the model's predicted label.",
)

# --- Drift ------------------------------------------------------------------------------------------------
DRIFT_RATIO = Gauge(
    "churn_feature_drift_ratio",
    f"Mean of a numeric feature over the last {DRIFT_WINDOW} predictions divided by its training reference "
    "mean (1.0 = no drift; nulls ignored).",
    ["feature"],
)
WINDOW_MEAN = Gauge(
    "churn_feature_window_mean",
    f"Mean of a numeric feature over the last {DRIFT_WINDOW} predictions (nulls ignored), in the feature's unit.",
    ["feature"],
)
REFERENCE_MEAN = Gauge(
    "churn_feature_reference_mean",
    "Training reference mean of a numeric feature, in the feature's unit.",
    ["feature"],
)
REFERENCE_SOURCE = Gauge(
    "churn_drift_reference_info",
    "Where the drift reference means came from: mlflow (reference.csv) or model_card (typical-range midpoints).",
    ["source"],
)


class _State:
    """In-memory running state shared by the request threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.correct = 0
        self.total = 0
        # per feature: the last DRIFT_WINDOW non-null values and their running sum
        self.windows: dict[str, deque] = {f: deque(maxlen=DRIFT_WINDOW) for f in NUMERIC_FEATURES}
        self.sums: dict[str, float] = {f: 0.0 for f in NUMERIC_FEATURES}
        self.reference: dict[str, float] = {}


STATE = _State()


def _midpoint_reference() -> dict[str, float]:
    """Fallback: the midpoint of each feature's typical range in the model card / spec."""
    spec = default_spec()
    return {n: (f.expected.min + f.expected.max) / 2.0 for n, f in spec.numeric.items()}


def _set_reference(means: dict[str, float], source: str) -> None:
    with STATE.lock:
        STATE.reference = dict(means)
    for name, value in means.items():
        REFERENCE_MEAN.labels(feature=name).set(value)
    for s in ("mlflow", "model_card"):
        REFERENCE_SOURCE.labels(source=s).set(1 if s == source else 0)
    log.info("drift reference means from %s: %s", source, means)


def _load_reference_from_mlflow(run_id: str) -> dict[str, float]:
    import mlflow
    import pandas as pd

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        mlflow.set_tracking_uri(uri)
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="reference/reference.csv")
    df = pd.read_csv(path)
    return {f: float(df[f].mean()) for f in NUMERIC_FEATURES}


def _reference_worker(run_id: str | None) -> None:
    if not run_id:
        log.warning("no training run id; keeping model-card midpoints as drift reference")
        return
    try:
        _set_reference(_load_reference_from_mlflow(run_id), "mlflow")
    except Exception as exc:  # MLflow down, artifact missing, ...: keep the fallback
        log.warning("could not load reference data set from MLflow (%s: %s); keeping model-card midpoints",
                    type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")


# --- hooks called from the endpoints ---------------------------------------------------------------------

def record_predictions(predictions) -> None:
    """Called by /predict and /predict/batch with the Prediction objects."""
    with STATE.lock:
        for p in predictions:
            for name in NUMERIC_FEATURES:
                value = p.features.get(name)
                if value is None:
                    continue
                window = STATE.windows[name]
                if len(window) == window.maxlen:
                    STATE.sums[name] -= window[0]
                window.append(float(value))
                STATE.sums[name] += float(value)
    for p in predictions:
        PREDICTIONS.labels(predicted_churn="true" if p.churned else "false").inc()
        SCORES.observe(p.churn_probability)


def record_feedback(labelled) -> None:
    """Called by /feedback with the LabelledPrediction."""
    correct = int(labelled.predicted_label) == int(labelled.true_label)
    with STATE.lock:
        STATE.total += 1
        STATE.correct += int(correct)
        accuracy = STATE.correct / STATE.total
    LABELS.inc()
    if correct:
        LABELS_CORRECT.inc()
    ACCURACY.set(accuracy)


def _update_drift_gauges() -> None:
    """Recompute the drift gauges; done at scrape time so /predict stays cheap."""
    with STATE.lock:
        snapshot = {f: (len(STATE.windows[f]), STATE.sums[f]) for f in NUMERIC_FEATURES}
        reference = dict(STATE.reference)
    for name, (n, total) in snapshot.items():
        if n < DRIFT_MIN_SAMPLES:
            continue
        mean = total / n
        WINDOW_MEAN.labels(feature=name).set(mean)
        ref = reference.get(name)
        if ref:  # a zero reference mean has no meaningful ratio
            DRIFT_RATIO.labels(feature=name).set(mean / ref)


# --- hooks called by app/main.py -------------------------------------------------------------------------

def setup(app: FastAPI) -> None:
    """Middleware for HTTP metrics and the /metrics route."""
    _set_reference(_midpoint_reference(), "model_card")

    @app.middleware("http")
    async def http_metrics(request: Request, call_next):
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", None) or "other"  # template, never the raw URL (cardinality)
            HTTP_LATENCY.labels(path=path).observe(time.perf_counter() - start)
            HTTP_REQUESTS.labels(path=path, status=str(status)).inc()

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        _update_drift_gauges()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def on_startup(app: FastAPI) -> None:
    """Fetch the reference data set from MLflow in the background (fail soft: midpoints stay)."""
    _set_reference(_midpoint_reference(), "model_card")  # fallback until (unless) MLflow answers
    service = getattr(app.state, "service", None)
    run_id = getattr(getattr(service, "model", None), "run_id", None)
    thread = threading.Thread(target=_reference_worker, args=(run_id,), name="drift-reference", daemon=True)
    thread.start()
    app.state.monitoring_reference_thread = thread


def on_shutdown(app: FastAPI) -> None:
    """Nothing to stop: the reference thread is a daemon and finishes on its own."""
