"""Monitoring for the churn model server.

Philosophy: export raw, compute in PromQL. The app exposes only
- raw counters and histograms (HTTP requests and latency, predictions and scores, labels and correct labels,
  missing / out-of-range / categorical input counts), and
- a few gauges that Prometheus cannot compute itself: the mean of each numeric input over the last
  WINDOW_SIZE predictions (an in-memory rolling window) and the training reference's statistics.

Every ratio, quantile, accuracy and drift score is a recording rule in alerts/recording_rules.yml, and the
alerts and the dashboard read those recorded series.

Hooks called by app/main.py:
- setup(app): metrics, the HTTP middleware and the /metrics route;
- on_startup(app): model info and a background thread that loads the reference data set from MLflow
  (fail soft: retried until it works, drift series are simply absent until then);
- on_shutdown(app): stop that thread;
- record_predictions(predictions) / record_feedback(labelled): called from the endpoints.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from typing import Iterable

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

from model_service.spec import default_spec

from . import reference as reference_mod

log = logging.getLogger("app.monitoring")

# Rolling window of recent predictions for the per-feature input means. 200 predictions is ~10 s of traffic
# at 20 req/s: a shifted input moves the window mean within seconds, and the noise of a 200-value mean is
# about 0.07 reference standard deviations (worst case seen in simulation ~0.28), well below the 0.5 alert
# threshold. A smaller window (100) peaked at ~0.44 in simulation: too close to the threshold.
WINDOW_SIZE = 200

SPEC = default_spec()
NUMERIC = {name: feat for name, feat in SPEC.numeric.items()}
CATEGORICAL = {name: feat.levels for name, feat in SPEC.categorical.items()}
ALL_FEATURES = list(SPEC.features)

# No *_created series: Prometheus does not need them and they double the size of /metrics.
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

# --- HTTP -------------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "http_requests", "HTTP requests served, by route template, method and status code.",
    ["handler", "method", "code"], registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving an HTTP request to the end of its response, in seconds, by route template, "
    "method and status code.",
    ["handler", "method", "code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)

# --- predictions ------------------------------------------------------------------------------------
PREDICTIONS = Counter(
    "churn_predictions", "Customers scored by the model (one per customer, batches included), by predicted label.",
    ["churned"], registry=REGISTRY,
)
SCORE = Histogram(
    "churn_prediction_score", "Churn probability returned by the model, one observation per scored customer.",
    buckets=tuple(round(0.05 * i, 2) for i in range(1, 21)), registry=REGISTRY,
)
MODEL_INFO = Gauge(
    "churn_model_info", "Always 1; labels name the model being served.",
    ["model_name", "version", "source", "run_id"], registry=REGISTRY,
)

# --- inputs -----------------------------------------------------------------------------------------
INPUT_MISSING = Counter(
    "churn_input_missing", "Scored customers whose value for this feature was null (imputed by the model).",
    ["feature"], registry=REGISTRY,
)
INPUT_OUT_OF_RANGE = Counter(
    "churn_input_out_of_range",
    "Scored customers whose value for this numeric feature was outside the range seen in training.",
    ["feature"], registry=REGISTRY,
)
INPUT_CATEGORY = Counter(
    "churn_input_category", "Scored customers by the value of each categorical feature (nulls excluded).",
    ["feature", "value"], registry=REGISTRY,
)
WINDOW_MEAN = Gauge(
    "churn_input_window_mean",
    f"Mean of this numeric feature over the last {WINDOW_SIZE} scored customers (nulls skipped), "
    "in the feature's unit.",
    ["feature"], registry=REGISTRY,
)
WINDOW_COUNT = Gauge(
    "churn_input_window_values",
    f"Non-null values of this numeric feature in the rolling window of the last {WINDOW_SIZE} scored customers.",
    ["feature"], registry=REGISTRY,
)

# --- training reference (from MLflow) ----------------------------------------------------------------
REF_MEAN = Gauge(
    "churn_reference_mean", "Mean of this numeric feature in the training reference data set, in its unit.",
    ["feature"], registry=REGISTRY,
)
REF_STD = Gauge(
    "churn_reference_std",
    "Standard deviation of this numeric feature in the training reference data set, in its unit.",
    ["feature"], registry=REGISTRY,
)
REF_CATEGORY_SHARE = Gauge(
    "churn_reference_category_share",
    "Share of the training reference rows with this value of this categorical feature (0-1).",
    ["feature", "value"], registry=REGISTRY,
)
REF_SCORE_MEAN = Gauge(
    "churn_reference_score_mean", "Mean churn probability the model gave the training reference rows.",
    registry=REGISTRY,
)
REF_SCORE_STD = Gauge(
    "churn_reference_score_std",
    "Standard deviation of the churn probability the model gave the training reference rows.",
    registry=REGISTRY,
)
REF_ACCURACY = Gauge(
    "churn_reference_accuracy",
    "Accuracy of the model on the training reference rows at the model's threshold (0-1).",
    registry=REGISTRY,
)
REF_LOADED = Gauge(
    "churn_reference_loaded",
    "1 when the training reference data set has been loaded from MLflow, else 0 (drift series are absent).",
    registry=REGISTRY,
)

# --- ground truth -----------------------------------------------------------------------------------
LABELS = Counter(
    "churn_feedback_labels",
    "True outcomes received on /feedback for earlier predictions, by predicted and actual label.",
    ["predicted", "actual"], registry=REGISTRY,
)
LABELS_CORRECT = Counter(
    "churn_feedback_correct",
    "True outcomes received on /feedback where the prediction was right (predicted label == actual).",
    registry=REGISTRY,
)
LABEL_DELAY = Histogram(
    "churn_feedback_label_delay_seconds", "Seconds between a prediction and the arrival of its true label.",
    buckets=(0.5, 1, 2, 3, 5, 10, 30, 60, 300, 3600, 86400), registry=REGISTRY,
)


# Pre-bound children: /predict is hot, so look each label set up once.
_PRED_CHILD = {True: PREDICTIONS.labels(churned="true"), False: PREDICTIONS.labels(churned="false")}
_MISSING_CHILD = {f: INPUT_MISSING.labels(feature=f) for f in ALL_FEATURES}
_OOR_CHILD = {f: INPUT_OUT_OF_RANGE.labels(feature=f) for f in NUMERIC}
_CAT_CHILD = {f: {v: INPUT_CATEGORY.labels(feature=f, value=v) for v in levels} for f, levels in CATEGORICAL.items()}
_RANGE = {f: (feat.expected.min, feat.expected.max) for f, feat in NUMERIC.items()}
_LABEL_CHILD = {(p, a): LABELS.labels(predicted=p, actual=a) for p in ("true", "false") for a in ("true", "false")}
_BOOL = {True: "true", False: "false"}


class _Window:
    """The last WINDOW_SIZE non-null values of each numeric feature; means are computed at scrape time."""

    def __init__(self, features: Iterable[str], size: int):
        self._lock = threading.Lock()
        self._values = {f: deque(maxlen=size) for f in features}

    def add(self, features: dict) -> None:
        with self._lock:
            for name, values in self._values.items():
                v = features.get(name)
                if v is not None:
                    values.append(v)

    def mean(self, name: str) -> float:
        with self._lock:
            values = self._values[name]
            n = len(values)
            return sum(values) / n if n else math.nan

    def count(self, name: str) -> int:
        with self._lock:
            return len(self._values[name])

    def clear(self) -> None:
        with self._lock:
            for values in self._values.values():
                values.clear()


WINDOW = _Window(NUMERIC, WINDOW_SIZE)
for _f in NUMERIC:
    WINDOW_MEAN.labels(feature=_f).set_function(lambda f=_f: WINDOW.mean(f))
    WINDOW_COUNT.labels(feature=_f).set_function(lambda f=_f: WINDOW.count(f))
# Counters exist (at 0) from the start, so that rate()/increase() see the first events after a start: a series
# born at its first increment loses that increment to Prometheus. Ground truth, and the prediction
# endpoints' success and failure codes.
LABELS_CORRECT.inc(0)
for _handler in ("/predict", "/predict/batch"):
    for _code in ("200", "422", "500", "503"):
        HTTP_REQUESTS.labels(_handler, "POST", _code)
        HTTP_DURATION.labels(_handler, "POST", _code)


# --- recording from the endpoints ---------------------------------------------------------------------
def record_predictions(predictions) -> None:
    """Count and observe what the model said, and what it was given. Never raises."""
    try:
        for p in predictions:
            _PRED_CHILD[bool(p.churned)].inc()
            SCORE.observe(p.churn_probability)
            features = p.features
            for name in ALL_FEATURES:
                if features.get(name) is None:
                    _MISSING_CHILD[name].inc()
            for name, (lo, hi) in _RANGE.items():
                v = features.get(name)
                if v is not None and not (lo <= v <= hi):
                    _OOR_CHILD[name].inc()
            for name, children in _CAT_CHILD.items():
                v = features.get(name)
                if v is not None:
                    child = children.get(v)
                    if child is not None:
                        child.inc()
            WINDOW.add(features)
    except Exception:  # monitoring must never break a prediction
        log.exception("recording predictions failed")


def record_feedback(labelled) -> None:
    """Count a received true label and whether the prediction was right. Never raises."""
    try:
        predicted, actual = bool(labelled.predicted_label), bool(labelled.true_label)
        _LABEL_CHILD[(_BOOL[predicted], _BOOL[actual])].inc()
        if predicted == actual:
            LABELS_CORRECT.inc()
        LABEL_DELAY.observe(max(0.0, labelled.label_delay_seconds))
    except Exception:
        log.exception("recording feedback failed")


# --- reference statistics -------------------------------------------------------------------------------
def set_reference(stats: "reference_mod.ReferenceStats") -> None:
    """Publish the training reference's statistics as gauges."""
    for name, (mean, std) in stats.numeric.items():
        REF_MEAN.labels(feature=name).set(mean)
        REF_STD.labels(feature=name).set(std)
    for name, shares in stats.category_shares.items():
        for value, share in shares.items():
            REF_CATEGORY_SHARE.labels(feature=name, value=value).set(share)
    if stats.score_mean is not None:
        REF_SCORE_MEAN.set(stats.score_mean)
        REF_SCORE_STD.set(stats.score_std)
    if stats.accuracy is not None:
        REF_ACCURACY.set(stats.accuracy)
    REF_LOADED.set(1)


# --- HTTP middleware (plain ASGI: cheaper than BaseHTTPMiddleware) -------------------------------------------
class MetricsMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # The route template ("/predict"), never the raw path: unknown paths must not create series.
            handler = getattr(route, "path", None) or "unmatched"
            labels = (handler, scope.get("method", ""), str(status["code"]))
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_DURATION.labels(*labels).observe(time.perf_counter() - start)


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


# --- hooks ------------------------------------------------------------------------------------------
_loader: reference_mod.ReferenceLoader | None = None


def setup(app: FastAPI) -> None:
    """Register the middleware and the /metrics route."""
    app.add_middleware(MetricsMiddleware)
    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)


def on_startup(app: FastAPI) -> None:
    """Publish the model's identity and start loading the reference data set in the background."""
    global _loader
    service = app.state.service
    model = service.model
    MODEL_INFO.labels(model_name=model.name, version=str(model.version), source=model.source,
                      run_id=model.run_id or "").set(1)
    REF_LOADED.set(0)
    _loader = reference_mod.ReferenceLoader(model.run_id, model.threshold, on_loaded=set_reference)
    _loader.start()


def on_shutdown(app: FastAPI) -> None:
    global _loader
    if _loader is not None:
        _loader.stop()
        _loader = None
