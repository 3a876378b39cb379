"""Monitoring for the churn model server.

HTTP metrics come from prometheus-fastapi-instrumentator (requests by handler/method/status, latency
histograms), which also serves GET /metrics. On top of that, a ModelMonitor keeps small in-memory windows and
publishes, at scrape time:

- churn_scored_customers_total{outcome}: every customer scored, by predicted outcome;
- churn_outcomes_received_total{outcome}: true outcomes posted to /feedback;
- churn_observed_rate: the share of customers that really churned among the last 300 outcomes received.
  The model was trained on a world where about 30 % of customers churn (model card); when the realised rate
  moves away from that, the model is working on a population it was not trained for;
- churn_feature_shift{feature}: for each numeric input, how far the mean of the last 200 scored customers is
  from the mean of the first 400 customers the server scored (in reference standard deviations).

Nothing here runs on the request path but a few deque appends.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from fastapi import FastAPI
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_fastapi_instrumentator import Instrumentator, metrics

from model_service.spec import default_spec

NUMERIC = list(default_spec().numeric)
OUTCOME_WINDOW = 300
MIN_OUTCOMES = 50
SHIFT_WINDOW = 200
MIN_SHIFT = 100
REFERENCE_SIZE = 400

SCORED = Counter(
    "churn_scored_customers_total",
    "Customers scored by the churn model, by predicted outcome (churn or no_churn).",
    ["outcome"],
)
OUTCOMES = Counter(
    "churn_outcomes_received_total",
    "True outcomes received on /feedback, by outcome (churned or stayed).",
    ["outcome"],
)


class ModelMonitor:
    """Windows over recent customers and outcomes; turned into gauges when Prometheus scrapes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcomes: deque[int] = deque(maxlen=OUTCOME_WINDOW)
        self._recent: dict[str, deque[float]] = {f: deque(maxlen=SHIFT_WINDOW) for f in NUMERIC}
        self._reference: dict[str, list[float]] = {f: [] for f in NUMERIC}
        self._reference_rows = 0
        self._reference_stats: dict[str, tuple[float, float]] | None = None

    # --- called by the endpoints ---------------------------------------------------------------------
    def scored(self, customers, predictions) -> None:
        for p in predictions:
            SCORED.labels("churn" if p.churned else "no_churn").inc()
        with self._lock:
            for c in customers:
                row = c.model_dump() if hasattr(c, "model_dump") else dict(c)
                for f in NUMERIC:
                    value = row.get(f)
                    if value is None:
                        continue
                    self._recent[f].append(float(value))
                    if self._reference_stats is None:
                        self._reference[f].append(float(value))
                if self._reference_stats is None:
                    self._reference_rows += 1
                    if self._reference_rows >= REFERENCE_SIZE:
                        self._freeze_reference()

    def outcome(self, churned: bool) -> None:
        OUTCOMES.labels("churned" if churned else "stayed").inc()
        with self._lock:
            self._outcomes.append(1 if churned else 0)

    # --- internals -------------------------------------------------------------------------------------
    def _freeze_reference(self) -> None:
        stats = {}
        for f, values in self._reference.items():
            if len(values) < 2:
                continue
            mean = sum(values) / len(values)
            var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
            stats[f] = (mean, math.sqrt(var) or 1.0)
        self._reference_stats = stats
        self._reference = {f: [] for f in NUMERIC}

    # --- the collector -------------------------------------------------------------------------------
    def collect(self):
        with self._lock:
            outcomes = list(self._outcomes)
            recent = {f: list(v) for f, v in self._recent.items()}
            stats = dict(self._reference_stats or {})
        rate = GaugeMetricFamily(
            "churn_observed_rate",
            f"Share of customers who really churned among the last {OUTCOME_WINDOW} outcomes received on /feedback.",
        )
        if len(outcomes) >= MIN_OUTCOMES:
            rate.add_metric([], sum(outcomes) / len(outcomes))
        yield rate
        yield GaugeMetricFamily(
            "churn_observed_outcomes_window",
            "Number of outcomes behind churn_observed_rate (at most the window size).",
            value=len(outcomes),
        )
        shift = GaugeMetricFamily(
            "churn_feature_shift",
            f"Distance of the mean of each numeric input over the last {SHIFT_WINDOW} customers from its mean over "
            f"the first {REFERENCE_SIZE} customers scored, in reference standard deviations.",
            labels=["feature"],
        )
        for f, (mean, sd) in sorted(stats.items()):
            values = recent[f]
            if len(values) >= MIN_SHIFT:
                shift.add_metric([f], abs(sum(values) / len(values) - mean) / sd)
        yield shift
        yield GaugeMetricFamily(
            "churn_reference_ready",
            "1 once the first customers scored have been kept as the input reference, else 0.",
            value=1.0 if stats else 0.0,
        )


MONITOR = ModelMonitor()
REGISTRY.register(MONITOR)


def setup(app: FastAPI) -> None:
    """HTTP metrics and /metrics, from the instrumentator."""
    instrumentator = Instrumentator(should_group_status_codes=False, excluded_handlers=["/metrics"])
    instrumentator.add(
        metrics.default(latency_lowr_buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
    )
    instrumentator.instrument(app).expose(app, include_in_schema=False)


def on_startup(app: FastAPI) -> None:
    """Nothing runs in the background: the windows are read at scrape time."""


def on_shutdown(app: FastAPI) -> None:
    """Nothing to stop."""
