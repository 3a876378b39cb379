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

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

# --- the example: a counter, with a HELP text, counted by label value ----------------------------------------
# A counter only goes up; Prometheus computes rates from it: rate(churn_labels_received_total[1m]).
# `churned` has two values, so this metric has two series: keep labels to a few values each.
LABELS_RECEIVED = Counter(
    "churn_labels_received_total",
    "True labels posted to /feedback, by what really happened.",
    ["churned"],
)


def record_label(churned: bool, predicted_churned: bool, churn_probability: float, delay_seconds: float) -> None:
    """Called by app/main.py for every label posted to /feedback (the prediction it belongs to came earlier)."""
    LABELS_RECEIVED.labels(churned=str(churned).lower()).inc()
    # STEP 2 (performance): was the prediction right? Keep the last few hundred answers and publish accuracy.


def record_prediction(churn_probability: float, churned: bool, features: dict) -> None:
    """Called by app/main.py for every customer scored (a batch calls it once per customer)."""
    # STEP 1 (prediction statistics): count predictions, and record the scores in a Histogram.
    # STEP 4 (data drift): keep recent values of a few features to compare with docs/reference.csv.


def setup(app: FastAPI) -> None:
    """Routes and middleware. /metrics is here already."""

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # STEP 3 (latency and throughput): a middleware that times every request, e.g.
    #
    #   @app.middleware("http")
    #   async def timed(request, call_next):
    #       ...  # time.perf_counter() before and after `await call_next(request)`


def on_startup(app: FastAPI) -> None:
    """Background work starts here; the model is loaded."""
    # STEP 4 (data drift): a thread that compares recent inputs with the reference every few seconds.


def on_shutdown(app: FastAPI) -> None:
    """Background work stops here."""
