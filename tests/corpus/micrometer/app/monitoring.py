"""Monitoring for the churn model server, Micrometer / Spring Boot Actuator style, with prometheus_client.

The app only counts and observes; every judgement (ratios, means, drift, accuracy) is PromQL in
alerts/*.yml, over recent increases of these counters and histograms.

- `http_server_requests_seconds{method,uri,status,outcome}`: the one HTTP timer, observed in an ASGI
  middleware. Throughput, error share and latency all come from it (`_count`, `_bucket`).
- `churn_model_score{predicted}`: the churn probability of every customer scored; its `_count` is the
  prediction count, `_sum/_count` the mean score, `{predicted="churn"}` share the flagged share.
- `churn_model_input_value{feature}`: every non-null numeric input, with buckets per feature around its
  typical range (the typical min/max are bucket edges, so out-of-range shares come from `_bucket`).
  `_sum/_count` is the recent mean (drift); `1 - count(feature)/count(score)` is the null share.
- `churn_model_input_category_total{feature,value}`: every categorical input (value="null" when missing).
- `churn_model_feedback_total{predicted,actual}`: every label that arrives; TP/FP/TN/FN, hence accuracy,
  precision and recall in PromQL. `churn_model_label_delay_seconds`: how late labels arrive.
- `churn_model_reference_*`: training-time baselines (gauges) the drift rules compare against.
- `churn_model_info{...}` = 1: which model version is serving.
"""
from __future__ import annotations

import logging
import threading
import time

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from . import reference as ref

log = logging.getLogger("app.monitoring")

# Micrometer exposes no *_created series; neither do we (fewer series, simpler queries).
disable_created_metrics()

# ---------------------------------------------------------------------------------------------------------
# The HTTP timer
# ---------------------------------------------------------------------------------------------------------
# SLO-style buckets: a prediction normally takes a few milliseconds; the edges up to 10 s show a slow-down.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

HTTP_SERVER_REQUESTS = Histogram(
    "http_server_requests_seconds",
    "Duration of HTTP server requests handled by the model server, by method, route template (uri), "
    "status code and outcome (SUCCESS, CLIENT_ERROR, SERVER_ERROR, ...).",
    ["method", "uri", "status", "outcome"],
    buckets=HTTP_BUCKETS,
)


def _outcome(status: int) -> str:
    if status < 200:
        return "INFORMATIONAL"
    if status < 300:
        return "SUCCESS"
    if status < 400:
        return "REDIRECTION"
    if status < 500:
        return "CLIENT_ERROR"
    return "SERVER_ERROR"


class HttpServerRequestsMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): times every request.

    `uri` is the route template (`/predict`), never the raw path, so unknown paths cannot blow up the label
    set: a request that matched no route is `NOT_FOUND` (404) or `UNKNOWN`, as in Spring Boot.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            status = 500
            raise
        finally:
            route = scope.get("route")
            uri = getattr(route, "path", None) or ("NOT_FOUND" if status == 404 else "UNKNOWN")
            HTTP_SERVER_REQUESTS.labels(scope.get("method", "UNKNOWN"), uri, str(status),
                                        _outcome(status)).observe(time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------------------
# Model outputs
# ---------------------------------------------------------------------------------------------------------
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 ... 0.95, 0.5 is the threshold

PREDICTION_SCORE = Histogram(
    "churn_model_score",
    "Churn probability returned for each customer scored (one observation per prediction, batch items "
    "included), by predicted class; _count is the number of predictions.",
    ["predicted"],
    buckets=SCORE_BUCKETS,
)

# ---------------------------------------------------------------------------------------------------------
# Model inputs
# ---------------------------------------------------------------------------------------------------------
# Buckets per feature, around its typical range (model card). The typical min and max are bucket edges
# (for integers min - 0.5, for money min - 0.01) so that the share of values outside the typical range is
# exact from _bucket; the high edges beyond the typical max separate "a bit high" from "wrong unit".
INPUT_BUCKETS: dict[str, tuple[float, ...]] = {
    "tenure_months": (0, 3, 6, 12, 24, 36, 48, 60, 72, 120, 240, 1200),
    "monthly_charges": (17.99, 30, 40, 50, 60, 70, 80, 90, 100, 120, 200, 1000, 10000, 100000),
    "total_charges": (100, 250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 11000, 25000, 100000, 1000000),
    "support_calls_90d": (0, 1, 2, 3, 4, 5, 6, 8, 12, 20, 50, 100),
    "data_usage_gb": (2, 5, 10, 15, 20, 30, 40, 60, 100, 200, 500, 1000, 5000),
    "num_products": (0.5, 1, 2, 3, 4, 5, 6, 8, 12, 20),
    "late_payments_12m": (0, 1, 2, 3, 4, 5, 6, 9),
    "age_years": (17.5, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 80, 90, 130),
}
# The bucket edges that bound the typical range: (edge below the typical min or None, typical max).
TYPICAL_EDGES: dict[str, tuple[float | None, float]] = {
    "tenure_months": (None, 72),
    "monthly_charges": (17.99, 120),
    "total_charges": (None, 11000),
    "support_calls_90d": (None, 12),
    "data_usage_gb": (None, 500),
    "num_products": (0.5, 8),
    "late_payments_12m": (None, 6),
    "age_years": (17.5, 90),
}
CATEGORY_LEVELS: dict[str, tuple[str, ...]] = {
    "contract_type": ("month-to-month", "one-year", "two-year"),
    "payment_method": ("electronic-check", "mailed-check", "bank-transfer", "credit-card"),
    "internet_service": ("fiber", "dsl", "none"),
    "region": ("north", "south", "east", "west"),
}

INPUT_VALUE_NAME = "churn_model_input_value"
INPUT_VALUE_HELP = ("Value of each non-null numeric input feature of the customers scored, by feature (buckets "
                    "per feature around its typical range; _sum/_count is the mean, a null is not observed).")


class PerFeatureHistogram(Collector):
    """One histogram family, `feature` label, with buckets chosen per feature.

    prometheus_client gives every child of a labelled histogram the same buckets; a tenure in months and a
    bill in dollars need different ones. So: one unregistered Histogram per feature, exposed together as
    one family.
    """

    def __init__(self, name: str, documentation: str, buckets: dict[str, tuple[float, ...]]):
        self.name, self.documentation = name, documentation
        self._parents = {f: Histogram(name, documentation, ["feature"], buckets=b, registry=None)
                         for f, b in buckets.items()}
        # Children created up front: every series exists (at 0) from the first scrape.
        self.children = {f: h.labels(feature=f) for f, h in self._parents.items()}

    def describe(self):
        return [Metric(self.name, self.documentation, "histogram")]

    def collect(self):
        family = Metric(self.name, self.documentation, "histogram")
        for parent in self._parents.values():
            for metric in parent.collect():
                family.samples.extend(metric.samples)
        yield family


INPUT_VALUE = PerFeatureHistogram(INPUT_VALUE_NAME, INPUT_VALUE_HELP, INPUT_BUCKETS)
REGISTRY.register(INPUT_VALUE)
_INPUT_CHILDREN = INPUT_VALUE.children

INPUT_CATEGORY = Counter(
    "churn_model_input_category",
    "Categorical input values of the customers scored, by feature and value (value=\"null\" when missing).",
    ["feature", "value"],
)
_CATEGORY_CHILDREN = {f: {lv: INPUT_CATEGORY.labels(f, lv) for lv in levels + ("null",)}
                      for f, levels in CATEGORY_LEVELS.items()}

# ---------------------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------------------
FEEDBACK = Counter(
    "churn_model_feedback",
    "True labels received on /feedback, by the class the model predicted and the class that really "
    "happened (churn/no_churn): TP, FP, TN, FN.",
    ["predicted", "actual"],
)
_FEEDBACK_CHILDREN = {(p, a): FEEDBACK.labels(p, a) for p in ("churn", "no_churn") for a in ("churn", "no_churn")}

LABEL_DELAY = Histogram(
    "churn_model_label_delay_seconds",
    "Time between a prediction and the arrival of its true label on /feedback.",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400, 604800, 2592000),
)

# ---------------------------------------------------------------------------------------------------------
# Baselines and model identity
# ---------------------------------------------------------------------------------------------------------
REF_FEATURE_MEAN = Gauge("churn_model_reference_feature_mean",
                         "Mean of each numeric feature in the model's reference (training holdout) data set.",
                         ["feature"])
REF_FEATURE_STD = Gauge("churn_model_reference_feature_stddev",
                        "Standard deviation of each numeric feature in the reference data set.", ["feature"])
REF_CATEGORY_SHARE = Gauge("churn_model_reference_category_share",
                           "Share of each categorical value in the reference data set.", ["feature", "value"])
REF_SCORE_MEAN = Gauge("churn_model_reference_score_mean", "Mean churn probability over the reference data set.")
REF_FLAGGED_SHARE = Gauge("churn_model_reference_flagged_share",
                          "Share of reference customers the model flags as churners at its threshold.")
REF_PERFORMANCE = Gauge("churn_model_reference_performance",
                        "Holdout performance of the model at its threshold (accuracy, precision, recall, "
                        "churn_rate), from the reference data set.", ["metric"])
MODEL_INFO = Gauge("churn_model_info", "The model being served (value is always 1).",
                   ["name", "alias", "version", "source", "threshold"])


def publish_reference(r: ref.Reference) -> None:
    for f, (mean, std) in r.numeric.items():
        REF_FEATURE_MEAN.labels(f).set(mean)
        REF_FEATURE_STD.labels(f).set(std)
    for f, shares in r.categorical.items():
        for lv in CATEGORY_LEVELS[f]:
            REF_CATEGORY_SHARE.labels(f, lv).set(shares.get(lv, 0.0))
    REF_SCORE_MEAN.set(r.score_mean)
    REF_FLAGGED_SHARE.set(r.flagged_share)
    for k, v in r.performance.items():
        REF_PERFORMANCE.labels(k).set(v)
    log.info("drift baselines from %s", r.source)


# ---------------------------------------------------------------------------------------------------------
# Recording from the endpoints (called by app/main.py)
# ---------------------------------------------------------------------------------------------------------
def record_predictions(predictions) -> None:
    """Observe the output and inputs of each successful prediction. A few microseconds per customer."""
    for p in predictions:
        PREDICTION_SCORE.labels("churn" if p.churned else "no_churn").observe(p.churn_probability)
        features = p.features
        for name, child in _INPUT_CHILDREN.items():
            v = features.get(name)
            if v is not None:
                child.observe(v)
        for name, children in _CATEGORY_CHILDREN.items():
            v = features.get(name)
            child = children.get("null" if v is None else v)
            if child is not None:  # the schema admits known levels only
                child.inc()


def record_feedback(labelled) -> None:
    predicted = "churn" if labelled.predicted_label else "no_churn"
    actual = "churn" if labelled.true_label else "no_churn"
    _FEEDBACK_CHILDREN[(predicted, actual)].inc()
    LABEL_DELAY.observe(max(labelled.label_delay_seconds, 0.0))


# ---------------------------------------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------------------------------------
def _metrics() -> Response:
    # A plain (sync) FastAPI route: serialising the registry runs in the threadpool, off the event loop.
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def setup(app: FastAPI) -> None:
    """Register the HTTP timer middleware and the /metrics route; publish the built-in baselines."""
    app.add_middleware(HttpServerRequestsMiddleware)
    app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False, response_class=Response)
    publish_reference(ref.BUILTIN)


def on_startup(app: FastAPI) -> None:
    """Publish the model identity, then refresh the baselines from MLflow in the background."""
    service = app.state.service
    m = service.model
    MODEL_INFO.labels(m.name, m.alias, str(m.version), m.source, str(m.threshold)).set(1)

    def refresh():
        r = ref.load_from_mlflow(m.run_id, m.threshold)
        if r is not None:
            publish_reference(r)

    threading.Thread(target=refresh, name="reference-loader", daemon=True).start()


def on_shutdown(app: FastAPI) -> None:
    """Nothing to stop: the reference loader is a daemon thread that ends on its own."""
