"""Monitoring for the churn model server (OpenTelemetry metrics, scraped by Prometheus at /metrics).

- telemetry.py      MeterProvider + Prometheus exporter reader, /metrics route, FastAPI HTTP instrumentation
- model_monitor.py  prediction statistics, live performance from /feedback, input drift vs the reference
- reference.py      the reference profile (training holdout from the model's MLflow run) and PSI

app/main.py calls the three hooks below, and `MONITOR.record_*` from the endpoints.
"""

from __future__ import annotations

import inspect
import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError

from . import telemetry
from .model_monitor import ModelMonitor

log = logging.getLogger(__name__)

MONITOR = ModelMonitor()


def setup(app: FastAPI) -> None:
    """Register metrics, middleware and routes here."""
    telemetry.add_metrics_route(app)
    telemetry.instrument_http(app)
    _count_validation_errors(app)


def _count_validation_errors(app: FastAPI) -> None:
    """Wrap the existing 422 handler so every rejected field is counted, then answer exactly as before."""
    previous = app.exception_handlers.get(RequestValidationError, request_validation_exception_handler)

    async def handler(request: Request, exc: RequestValidationError):
        MONITOR.record_validation_errors(_route_of(request), exc.errors())
        result = previous(request, exc)
        return await result if inspect.isawaitable(result) else result

    app.add_exception_handler(RequestValidationError, handler)


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def on_startup(app: FastAPI) -> None:
    """Start background work here; the model is loaded."""
    MONITOR.start(app.state.service)
    log.info("monitoring started: model %s", MONITOR._model_attrs)


def on_shutdown(app: FastAPI) -> None:
    """Stop background work here."""
    MONITOR.stop()
    telemetry.shutdown()
