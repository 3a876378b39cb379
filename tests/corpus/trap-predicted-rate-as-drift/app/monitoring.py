"""Monitoring hooks for the churn model server.

Three layers:

* HTTP: a Starlette middleware times every request and counts it by route and status code
  (api_http_request_seconds, api_http_requests_total).
* Predictions: every churn probability goes into a histogram (model_churn_probability), which also counts the
  customers scored; labels from /feedback are counted as right or wrong (model_feedback_total).
* Windows: an asyncio task refreshes, once a second, gauges over recent traffic:
    - model_accuracy_recent           accuracy over the last 250 labelled predictions
    - model_flagged_share_recent      share of the last 500 customers flagged as churners
    - model_score_mean_recent         mean churn probability of the last 500 customers
  The flagged share is my drift indicator: when the customers coming in change in a way that matters to the
  model, the share it flags moves (and the retention team's call list with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware

ROUTES = {"/predict", "/predict/batch", "/feedback", "/health", "/model", "/metrics"}
LABEL_WINDOW = 250
PREDICTION_WINDOW = 500
MIN_LABELS = 50
MIN_PREDICTIONS = 100
REFRESH_SECONDS = 1.0

REQUESTS = Counter("api_http_requests", "HTTP requests answered, by route and status code.", ["route", "code"])
LATENCY = Histogram(
    "api_http_request_seconds",
    "Time from request received to response sent, by route, in seconds.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
PROBABILITY = Histogram(
    "model_churn_probability",
    "Churn probability of each customer scored.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
)
FEEDBACK = Counter("model_feedback", "Labels received on /feedback, by whether the prediction was right.", ["correct"])
ACCURACY = Gauge("model_accuracy_recent", f"Accuracy over the last {LABEL_WINDOW} labelled predictions.")
ACCURACY_LABELS = Gauge("model_accuracy_window_labels", "Labelled predictions behind model_accuracy_recent.")
FLAGGED = Gauge("model_flagged_share_recent", f"Share of the last {PREDICTION_WINDOW} customers flagged as churners.")
SCORE_MEAN = Gauge("model_score_mean_recent", f"Mean churn probability of the last {PREDICTION_WINDOW} customers.")

# No value until a window holds enough (a 0 would read as "accuracy 0" and "nobody flagged").
for _gauge in (ACCURACY, FLAGGED, SCORE_MEAN):
    _gauge.set(float("nan"))

_labels: deque[int] = deque(maxlen=LABEL_WINDOW)
_scores: deque[tuple[float, int]] = deque(maxlen=PREDICTION_WINDOW)


class TimingMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next):
        route = request.url.path if request.url.path in ROUTES else "other"
        start = time.perf_counter()
        code = "500"
        try:
            response = await call_next(request)
            code = str(response.status_code)
            return response
        finally:
            LATENCY.labels(route).observe(time.perf_counter() - start)
            REQUESTS.labels(route, code).inc()


def track_predictions(predictions) -> None:
    for p in predictions:
        PROBABILITY.observe(p.churn_probability)
        _scores.append((p.churn_probability, 1 if p.churned else 0))


def track_label(predicted: int, actual: int) -> None:
    right = int(predicted) == int(actual)
    FEEDBACK.labels("true" if right else "false").inc()
    _labels.append(1 if right else 0)


def refresh() -> None:
    labels, scores = list(_labels), list(_scores)
    ACCURACY_LABELS.set(len(labels))
    if len(labels) >= MIN_LABELS:
        ACCURACY.set(sum(labels) / len(labels))
    if len(scores) >= MIN_PREDICTIONS:
        FLAGGED.set(sum(flag for _, flag in scores) / len(scores))
        SCORE_MEAN.set(sum(score for score, _ in scores) / len(scores))


async def _refresher() -> None:
    while True:
        refresh()
        await asyncio.sleep(REFRESH_SECONDS)


def setup(app: FastAPI) -> None:
    app.add_middleware(TimingMiddleware)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def on_startup(app: FastAPI) -> None:
    app.state.monitoring_task = asyncio.get_running_loop().create_task(_refresher())


def on_shutdown(app: FastAPI) -> None:
    task = getattr(app.state, "monitoring_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(Exception):
            task.exception() if task.done() else None
