"""Monitoring for the churn model server (minimal version).

Two metrics, served on GET /metrics by prometheus_client:

- churn_predictions_total: predictions served (one per scored customer, batch included).
- churn_predict_request_duration_seconds: latency of POST /predict as the client sees it, measured by a
  small middleware around the whole request (validation, scoring, logging, serialisation; errors included).

See NOTES.md for what is deliberately left out.
"""
import time

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

PREDICT_PATH = "/predict"

PREDICTIONS = Counter(
    "churn_predictions_total",
    "Churn predictions served: one per customer scored, by /predict and /predict/batch.",
)

# Normal /predict latency is a few milliseconds; the buckets resolve that region finely and keep enough
# coverage up to several seconds to see a slowdown (the alert threshold, 0.25 s, is a bucket boundary).
PREDICT_LATENCY = Histogram(
    "churn_predict_request_duration_seconds",
    "Latency of POST /predict requests in seconds, measured from request received to response sent.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def record_predictions(n: int) -> None:
    """Count n predictions served. Called by the endpoints after a successful scoring."""
    PREDICTIONS.inc(n)


def setup(app: FastAPI) -> None:
    """Add the latency middleware and the /metrics route."""

    @app.middleware("http")
    async def time_predict(request: Request, call_next):
        if request.url.path != PREDICT_PATH or request.method != "POST":
            return await call_next(request)
        start = time.perf_counter()
        try:
            return await call_next(request)
        finally:
            PREDICT_LATENCY.observe(time.perf_counter() - start)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def on_startup(app: FastAPI) -> None:
    """Nothing to start: both metrics are updated inline by the requests."""


def on_shutdown(app: FastAPI) -> None:
    """Nothing to stop."""
