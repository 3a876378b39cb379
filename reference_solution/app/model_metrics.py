"""What the model says and how well: scores, classes, the model version, input data quality, and
performance from ground truth when it arrives."""

from __future__ import annotations

import math
import threading
import time
from collections import deque

import numpy as np
from prometheus_client import Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sklearn.metrics import roc_auc_score

from model_service.spec import default_spec

SPEC = default_spec()

MODEL_INFO = Info(
    "churn_model", "The model being served: registered name, version, alias and where it was loaded from."
)
SCORES = Histogram(
    "churn_prediction_score",
    "Churn probability returned by the model.",
    buckets=[round(0.1 * i, 1) for i in range(1, 10)] + [1.0],
)
PREDICTIONS = Counter("churn_predictions_total", "Predictions served, by predicted class.", ["predicted"])
ROWS_CHECKED = Counter("churn_feature_rows_checked_total", "Customer rows checked for data quality.")
MISSING = Counter("churn_feature_missing_total", "Feature values that arrived null (unknown), by feature.", ["feature"])
OUT_OF_RANGE = Counter(
    "churn_feature_out_of_range_total",
    "Numeric feature values outside the range seen in training, by feature.",
    ["feature"],
)
LABELS = Counter("churn_labels_received_total", "True outcomes received on /feedback, by true class.", ["actual"])
LABEL_DELAY = Histogram(
    "churn_label_delay_seconds",
    "Time from a prediction to its true outcome arriving.",
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 86400),
)

_missing = {f: MISSING.labels(f) for f in SPEC.features}
_out_of_range = {f: OUT_OF_RANGE.labels(f) for f in SPEC.numeric}
_predicted = {True: PREDICTIONS.labels("churn"), False: PREDICTIONS.labels("stay")}
_actual = {True: LABELS.labels("churn"), False: LABELS.labels("stay")}
_ranges = {f: (feat.expected.min, feat.expected.max) for f, feat in SPEC.numeric.items()}


def observe_prediction(churn_probability: float, churned: bool, features: dict) -> None:
    SCORES.observe(churn_probability)
    _predicted[churned].inc()
    ROWS_CHECKED.inc()
    for name, value in features.items():
        if value is None:
            _missing[name].inc()
        elif name in _ranges:
            low, high = _ranges[name]
            if not low <= value <= high:
                _out_of_range[name].inc()


class PerformanceWindow(Collector):
    """Accuracy, precision, recall and AUC over the last N labelled predictions, computed when Prometheus
    scrapes (not on the request path), with the window's size and the last label's time so that a
    dashboard can tell "performance dropped" from "no labels yet"."""

    def __init__(self, size: int):
        self._rows: deque[tuple[float, bool, bool]] = deque(maxlen=size)
        self._last_label = math.nan
        self._lock = threading.Lock()

    def add(self, score: float, predicted: bool, actual: bool, label_delay_seconds: float) -> None:
        with self._lock:
            self._rows.append((score, predicted, actual))
            self._last_label = time.time()
        _actual[actual].inc()
        LABEL_DELAY.observe(max(0.0, label_delay_seconds))

    def collect(self):
        with self._lock:
            rows = list(self._rows)
            last = self._last_label
        n = len(rows)
        yield GaugeMetricFamily(
            "churn_performance_window_labels",
            "Labelled predictions in the performance window (0: no ground truth yet).",
            value=n,
        )
        yield GaugeMetricFamily(
            "churn_last_label_timestamp_seconds", "Unix time the last true outcome arrived.", value=last
        )
        if not n:
            return
        score = np.fromiter((r[0] for r in rows), float, n)
        predicted = np.fromiter((r[1] for r in rows), bool, n)
        actual = np.fromiter((r[2] for r in rows), bool, n)
        tp = float(np.sum(predicted & actual))
        yield GaugeMetricFamily(
            "churn_model_accuracy",
            "Share of labelled predictions that were right, over the window.",
            value=float(np.mean(predicted == actual)),
        )
        yield GaugeMetricFamily(
            "churn_model_precision",
            "Of predicted churners, the share that churned, over the window.",
            value=tp / predicted.sum() if predicted.any() else math.nan,
        )
        yield GaugeMetricFamily(
            "churn_model_recall",
            "Of real churners, the share predicted, over the window.",
            value=tp / actual.sum() if actual.any() else math.nan,
        )
        both = actual.any() and not actual.all()
        yield GaugeMetricFamily(
            "churn_model_auc",
            "ROC AUC of the churn score against true outcomes, over the window.",
            value=float(roc_auc_score(actual, score)) if both else math.nan,
        )
