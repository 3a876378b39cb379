"""Monitoring hooks called by app/main.py. The work is done by `ModelMonitor` (app/model_monitor.py).

- setup(app)       adds the metrics middleware, GET /metrics (prometheus_client's ASGI app on the monitor's
                   own CollectorRegistry) and a counter of 422s by field;
- on_startup(app)  records the model and starts the background thread (drift reference from MLflow, fail
                   soft; windowed gauges recomputed every 2 s);
- on_shutdown(app) stops that thread.
The endpoints call `MONITOR.record_predictions(...)` and `MONITOR.record_feedback(...)`.
"""
import logging

from fastapi import FastAPI

from .model_monitor import ModelMonitor

log = logging.getLogger("app.monitoring")

MONITOR = ModelMonitor()


def setup(app: FastAPI) -> None:
    app.state.monitor = MONITOR
    MONITOR.install(app)


def on_startup(app: FastAPI) -> None:
    MONITOR.start(app)


def on_shutdown(app: FastAPI) -> None:
    MONITOR.stop()


def record_predictions(predictions) -> None:
    """Never lets a monitoring bug fail a prediction."""
    try:
        MONITOR.record_predictions(predictions)
    except Exception:
        log.exception("recording predictions failed")


def record_feedback(labelled) -> None:
    try:
        MONITOR.record_feedback(labelled)
    except Exception:
        log.exception("recording feedback failed")
