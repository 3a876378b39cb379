"""Monitoring of the churn model server, wired into app/main.py's three hooks.

- HTTP: requests by endpoint and status, latency, requests in flight (http_metrics.py)
- model: score distribution, predicted classes, model version, input data quality (model_metrics.py)
- performance: accuracy, precision, recall, AUC over the last labelled predictions, label coverage and
  delay (model_metrics.py)
- drift: a score per feature and for the predictions against the training reference, off the request
  path, and a periodic evidently report in MLflow (drift.py)
Everything is exposed on /metrics for Prometheus.
"""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from . import model_metrics
from .drift import DriftMonitor
from .http_metrics import HttpMetricsMiddleware
from .monitoring_config import settings

_performance = model_metrics.PerformanceWindow(settings().performance_window)
REGISTRY.register(_performance)
_drift: DriftMonitor | None = None


def setup(app: FastAPI) -> None:
    """Register metrics, middleware and routes here."""
    known: set[str] = set()

    def known_paths() -> set[str]:
        if not known:  # the routes exist once main.py has been read; look them up on the first request
            known.update(getattr(r, "path", "") for r in app.routes)
        return known

    app.add_middleware(HttpMetricsMiddleware, known_paths=known_paths)
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)


def metrics() -> Response:
    """The Prometheus exposition of every metric above (a plain route: no redirect, no extra app)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def on_startup(app: FastAPI) -> None:
    """Start background work here; the model is loaded."""
    global _drift
    model = app.state.service.model
    model_metrics.MODEL_INFO.info(
        {"name": model.name, "version": model.version, "alias": model.alias, "source": model.source}
    )
    _drift = DriftMonitor(settings(), model.run_id, model.version)
    _drift.start()


def on_shutdown(app: FastAPI) -> None:
    """Stop background work here."""
    if _drift is not None:
        _drift.stop()


def observe_predictions(predictions) -> None:
    """After the model answered: score, class and data quality now; the features go to the drift window."""
    for p in predictions:
        model_metrics.observe_prediction(p.churn_probability, p.churned, p.features)
        if _drift is not None:
            _drift.add(p.features, p.churn_probability)


def observe_feedback(labelled) -> None:
    """A true outcome arrived: it joins the performance window."""
    _performance.add(
        labelled.score, bool(labelled.predicted_label), bool(labelled.true_label), labelled.label_delay_seconds
    )
