"""YOUR MONITORING CODE GOES HERE.

This file is already connected: the server serves /metrics (Prometheus scrapes it every few seconds), and it
exposes one example metric, `churn_labels_received_total`, counted in `record_label` below. Copy its pattern for
everything else. CANDIDATE.md has the checklist; the four areas are marked below as STEP 1 to STEP 4.

app/main.py calls these hooks:
- setup(app)               once, when the app is created: middleware and routes go here;
- on_startup(app)          once the model is loaded: `app.state.service` is the ChurnService;
- on_shutdown(app)         when the server stops (and before each reload);
- record_prediction(...)   after every prediction the server made;
- record_label(...)        after every true label posted to /feedback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path

import pandas as pd
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

# --- the example: a counter, with a HELP text, counted by label value ----------------------------------------
# A counter only goes up; Prometheus computes rates from it: rate(churn_labels_received_total[1m]).
# `churned` has two values, so this metric has two series: keep labels to a few values each.
LABELS_RECEIVED = Counter(
    "churn_labels_received_total",
    "True labels posted to /feedback, by what really happened.",
    ["churned"],
)

# STEP 1: prediction statistics
PREDICTIONS = Counter("churn_predictions_total", "Customers scored by the model.")
SCORES = Histogram(
    "churn_prediction_probability",
    "Churn probability the model gave each customer.",
    buckets=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
)

# STEP 3: latency and throughput
REQUESTS = Counter("http_requests_total", "HTTP requests answered, by endpoint and status code.", ["endpoint", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, in seconds, by endpoint.",
    ["endpoint"],
    buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
)

# STEP 2: performance
WINDOW = 200
ACCURACY = Gauge("churn_model_accuracy", f"Share of the last {WINDOW} labelled predictions that were right.")
last_answers: deque = deque(maxlen=WINDOW)

# STEP 4: data drift
# The numeric features that matter most after the contract type (see the model card).
DRIFT_FEATURES = ["tenure_months", "monthly_charges", "support_calls_90d", "late_payments_12m"]
RECENT = 300
DRIFT = Gauge(
    "churn_feature_drift",
    "Difference between the mean of the last 300 values and the reference mean, in reference standard deviations.",
    ["feature"],
)
recent_values = {f: deque(maxlen=RECENT) for f in DRIFT_FEATURES}
reference_stats: dict = {}
_stop = threading.Event()


def record_label(churned: bool, predicted_churned: bool, churn_probability: float, delay_seconds: float) -> None:
    """Called by app/main.py for every label posted to /feedback (the prediction it belongs to came earlier)."""
    LABELS_RECEIVED.labels(churned=str(churned).lower()).inc()
    last_answers.append(1 if churned == predicted_churned else 0)
    ACCURACY.set(sum(last_answers) / len(last_answers))


def record_prediction(churn_probability: float, churned: bool, features: dict) -> None:
    """Called by app/main.py for every customer scored (a batch calls it once per customer)."""
    PREDICTIONS.inc()
    SCORES.observe(churn_probability)
    for f in DRIFT_FEATURES:
        if features.get(f) is not None:
            recent_values[f].append(float(features[f]))


def _endpoint(request: Request) -> str:
    route = request.scope.get("route")
    return route.path if route is not None else "other"


def setup(app: FastAPI) -> None:
    """Routes and middleware. /metrics is here already."""

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def timed(request: Request, call_next):
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            endpoint = _endpoint(request)
            if endpoint != "/metrics":
                LATENCY.labels(endpoint).observe(time.perf_counter() - start)
                REQUESTS.labels(endpoint, str(status)).inc()


def _load_reference(app: FastAPI) -> pd.DataFrame | None:
    # In the room the reference is docs/reference.csv; otherwise it is the training run's artifact in MLflow.
    local = Path(__file__).resolve().parent.parent / "docs" / "reference.csv"
    if local.exists():
        return pd.read_csv(local)
    try:
        import mlflow

        path = mlflow.artifacts.download_artifacts(
            run_id=app.state.service.model.run_id, artifact_path="reference/reference.csv"
        )
        return pd.read_csv(path)
    except Exception:
        log.exception("could not load the reference data set: no drift metrics")
        return None


def _drift_loop() -> None:
    while not _stop.wait(5):
        for f in DRIFT_FEATURES:
            values = list(recent_values[f])
            if len(values) < 100 or f not in reference_stats:
                continue
            mean, std = reference_stats[f]
            DRIFT.labels(f).set((sum(values) / len(values) - mean) / std)


def on_startup(app: FastAPI) -> None:
    """Background work starts here; the model is loaded."""
    reference = _load_reference(app)
    if reference is not None:
        for f in DRIFT_FEATURES:
            reference_stats[f] = (float(reference[f].mean()), float(reference[f].std()))
    _stop.clear()
    threading.Thread(target=_drift_loop, daemon=True).start()


def on_shutdown(app: FastAPI) -> None:
    """Background work stops here."""
    _stop.set()
