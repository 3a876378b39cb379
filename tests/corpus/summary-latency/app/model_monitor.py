"""ModelMonitor: every metric the churn model server exposes, in one object with its own registry.

Layout:
- `ModelMonitor`           owns a private `CollectorRegistry` and all metric objects; the request path
                           only appends to bounded deques and bumps pre-resolved counter children (O(1)).
- `ReferenceProfile`       the training reference (MLflow artifact `reference/reference.csv`): decile bin
                           edges and proportions per numeric feature, level proportions per categorical
                           feature, the score's deciles and mean.
- `_MetricsMiddleware`     pure ASGI middleware: latency Summary + responses by status class, per route.
- a background thread      (started by `start()`) loads the reference (fail soft) and every couple of
                           seconds recomputes the windowed gauges: PSI per feature, mean probability,
                           accuracy / precision / recall over the last labels.
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections import deque
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
    Summary,
    disable_created_metrics,
    make_asgi_app,
)

from model_service.spec import default_spec

log = logging.getLogger("app.model_monitor")

# The *_created series double the exposition and nothing here queries them (rate() handles resets).
disable_created_metrics()

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
KNOWN_ENDPOINTS = ("/predict", "/predict/batch", "/feedback", "/health", "/model", "/metrics")
PREDICTED_CLASSES = ("churn", "no_churn")
MIN_WINDOW = 100  # values needed before a windowed gauge (PSI, mean probability) is published
MIN_LABELS = 30   # labels needed before accuracy / precision / recall are published
OUTCOMES = ("true_positive", "false_positive", "true_negative", "false_negative")


# ----------------------------------------------------------------------------------------------------------
# Population Stability Index
# ----------------------------------------------------------------------------------------------------------
def psi(expected: np.ndarray, actual_counts: np.ndarray) -> float:
    """PSI = sum((a - e) * ln(a / e)) over bins.

    `expected` are the reference proportions (already smoothed, all > 0); `actual_counts` are raw counts
    from the live window, smoothed by +0.5 per bin so that an empty bin in a small window gives a finite,
    modest contribution instead of ln(0).
    """
    counts = np.asarray(actual_counts, dtype=float)
    k = len(counts)
    actual = (counts + 0.5) / (counts.sum() + 0.5 * k)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _smoothed_props(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    return (counts + 0.5) / (counts.sum() + 0.5 * len(counts))


class NumericBins:
    """Decile bins of one numeric reference column. Bin i holds edges[i-1] < x <= edges[i].

    Edges are the unique deciles, so a discrete feature (support calls, late payments) gets fewer,
    wider bins instead of empty duplicates; proportions are measured on the reference, never assumed 10 %.
    """

    def __init__(self, values: np.ndarray):
        values = values[~np.isnan(values)]
        self.edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))
        self.expected = _smoothed_props(self.counts(values))

    def counts(self, values: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.edges, values, side="left")
        return np.bincount(idx, minlength=len(self.edges) + 1)


class CategoricalBins:
    def __init__(self, values: pd.Series, levels: Sequence[str]):
        self.levels = list(levels)
        self._index = {lvl: i for i, lvl in enumerate(self.levels)}
        self.expected = _smoothed_props(self.counts(values.dropna().tolist()))

    def counts(self, values: Iterable[str]) -> np.ndarray:
        out = np.zeros(len(self.levels), dtype=float)
        for v in values:
            i = self._index.get(v)
            if i is not None:
                out[i] += 1
        return out


class ReferenceProfile:
    """What normal inputs and scores look like, built from the training reference data set."""

    def __init__(self, frame: pd.DataFrame, source: str):
        spec = default_spec()
        self.source = source
        self.rows = len(frame)
        self.numeric = {n: NumericBins(frame[n].to_numpy(dtype=float)) for n in spec.numeric if n in frame}
        self.categorical = {n: CategoricalBins(frame[n], f.levels) for n, f in spec.categorical.items()
                            if n in frame}
        scores = frame["score"].to_numpy(dtype=float) if "score" in frame else None
        self.score_bins = NumericBins(scores) if scores is not None else None
        self.mean_score = float(np.nanmean(scores)) if scores is not None else float("nan")
        self.churn_rate = float(frame["churned"].mean()) if "churned" in frame else float("nan")

    @classmethod
    def from_mlflow(cls, run_id: str, tracking_uri: str) -> "ReferenceProfile":
        # MLflow's client retries for minutes by default; the monitor must give up within seconds.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        import mlflow  # slow import: only ever done in the background thread

        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="reference/reference.csv", dst_path=tmp, tracking_uri=tracking_uri)
            frame = pd.read_csv(path)
        return cls(frame, "mlflow")

    @classmethod
    def from_spec(cls, model) -> "ReferenceProfile":
        """Fallback when MLflow is unreachable: redraw the training population from the feature spec
        (the same generator and seed the model was trained on) and score it with the served model."""
        from model_service.churn_data import LABEL, generate_dataset

        frame = generate_dataset(5000, 42)
        if model is not None:
            frame["score"] = model.score(frame.drop(columns=[LABEL]))
        return cls(frame, "spec-synthetic")


# ----------------------------------------------------------------------------------------------------------
# ASGI plumbing
# ----------------------------------------------------------------------------------------------------------
class _ASGIEndpoint:
    """Wraps an ASGI callable in an object so that a Starlette Route hands it the raw scope (a plain
    `async def` endpoint would be treated as a request/response function instead)."""

    def __init__(self, asgi_app):
        self._app = asgi_app

    async def __call__(self, scope, receive, send):
        await self._app(scope, receive, send)


class _MetricsMiddleware:
    """Times every HTTP request and counts responses by route template and status class."""

    def __init__(self, app, monitor: "ModelMonitor"):
        self.app = app
        self.monitor = monitor

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        start = time.perf_counter()
        self.monitor.in_progress.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.monitor.in_progress.dec()
            self.monitor.observe_request(_endpoint_of(scope), status["code"], time.perf_counter() - start)


def _endpoint_of(scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return path
    if scope.get("path", "").rstrip("/") == "/metrics":
        return "/metrics"
    return "unmatched"  # 404s: never the raw path, which would explode label cardinality


# ----------------------------------------------------------------------------------------------------------
# The monitor
# ----------------------------------------------------------------------------------------------------------
class ModelMonitor:
    def __init__(self, *, drift_window: int = 200, score_window: int = 200, label_window: int = 150,
                 refresh_seconds: float = 2.0, reference_retry_seconds: float = 60.0):
        spec = default_spec()
        self.numeric_features = list(spec.numeric)
        self.categorical_features = list(spec.categorical)
        self.features = list(spec.features)
        self._ranges = {n: (f.expected.min, f.expected.max) for n, f in spec.numeric.items()}
        self.refresh_seconds = refresh_seconds
        self.reference_retry_seconds = reference_retry_seconds

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

        # --- service: latency, throughput, errors -------------------------------------------------------
        self.latency = Summary(
            "churn_http_request_duration_seconds",
            "Time to answer an HTTP request, in seconds, by route template (Summary: _sum and _count only).",
            ["endpoint"], registry=r)
        self.responses = Counter(
            "churn_http_responses_total",
            "HTTP responses sent, by route template and status class (2xx, 3xx, 4xx, 5xx).",
            ["endpoint", "status_class"], registry=r)
        self.in_progress = Gauge(
            "churn_http_requests_in_progress", "HTTP requests being served right now.", registry=r)
        self.validation_errors = Counter(
            "churn_validation_errors_total",
            "Request fields rejected with a 422 (bad type, out of hard bounds, unknown category, missing "
            "or extra field), by route and field name.", ["endpoint", "field"], registry=r)

        # --- predictions ------------------------------------------------------------------------------
        self.predictions = Counter(
            "churn_predictions_total", "Customers scored, by predicted class (churn / no_churn).",
            ["predicted_class"], registry=r)
        self.mean_probability = Gauge(
            "churn_prediction_mean_probability",
            f"Mean churn probability over the last {score_window} predictions.", registry=r)
        self.positive_share = Gauge(
            "churn_prediction_positive_share",
            f"Share of the last {score_window} predictions flagged as churn.", registry=r)
        self.score_psi = Gauge(
            "churn_prediction_score_psi",
            f"PSI of the last {score_window} churn probabilities against the reference scores' deciles.",
            registry=r)
        self.reference_mean_probability = Gauge(
            "churn_reference_mean_probability",
            "Mean model score on the training reference data set (the baseline for the live mean).",
            registry=r)
        self.reference_churn_rate = Gauge(
            "churn_reference_churn_rate", "Actual churn rate in the training reference data set.", registry=r)

        # --- data quality -----------------------------------------------------------------------------
        self.null_values = Counter(
            "churn_feature_null_total", "Scored inputs whose feature value was null (imputed by the model), "
            "by feature.", ["feature"], registry=r)
        self.out_of_range = Counter(
            "churn_feature_out_of_range_total",
            "Scored inputs whose numeric feature fell outside the typical (training) range of the spec, "
            "by feature.", ["feature"], registry=r)

        # --- drift ------------------------------------------------------------------------------------
        self.feature_psi = Gauge(
            "churn_feature_psi",
            f"Population Stability Index of the last {drift_window} non-null inputs against the training "
            "reference (deciles for numeric features, levels for categorical ones), by feature.",
            ["feature"], registry=r)
        self.drift_window_size = Gauge(
            "churn_drift_window_inputs", "Inputs currently in the drift window.", registry=r)
        self.reference_info = Info(
            "churn_drift_reference", "Where the drift reference came from (mlflow or spec-synthetic) and "
            "its size.", registry=r)
        self.reference_loaded = Gauge(
            "churn_drift_reference_loaded", "1 when a drift reference is loaded, 0 otherwise.", registry=r)

        # --- performance (ground truth) ---------------------------------------------------------------
        self.labels = Counter(
            "churn_labels_total", "Ground-truth labels received, by outcome of the original prediction.",
            ["outcome"], registry=r)
        self.label_delay = Summary(
            "churn_label_delay_seconds", "Seconds between a prediction and the arrival of its true label.",
            registry=r)
        self.accuracy = Gauge(
            "churn_model_accuracy", f"Accuracy over the last {label_window} labelled predictions.", registry=r)
        self.precision = Gauge(
            "churn_model_precision",
            f"Precision (flagged customers who really churned) over the last {label_window} labels.",
            registry=r)
        self.recall = Gauge(
            "churn_model_recall",
            f"Recall (churners the model flagged) over the last {label_window} labels.", registry=r)
        self.performance_window_labels = Gauge(
            "churn_performance_window_labels", "Labels currently in the performance window.", registry=r)

        # --- the monitor itself -----------------------------------------------------------------------
        self.model_info = Info("churn_model", "The model being served.", registry=r)
        self.last_refresh = Gauge(
            "churn_monitor_last_refresh_timestamp_seconds",
            "Unix time the background thread last recomputed the windowed gauges.", registry=r)

        # Resolve every label child once: the request path then only does an increment, and every series
        # exists (at 0) from the first scrape, so rate() sees the first event too.
        for ep in KNOWN_ENDPOINTS:
            self.latency.labels(ep)
            for sc in STATUS_CLASSES:
                self.responses.labels(ep, sc)
        self._class_counters = {c: self.predictions.labels(c) for c in PREDICTED_CLASSES}
        self._null_counters = {f: self.null_values.labels(f) for f in self.features}
        self._oor_counters = {f: self.out_of_range.labels(f) for f in self.numeric_features}
        self._outcome_counters = {o: self.labels.labels(o) for o in OUTCOMES}
        for f in self.features:
            self.feature_psi.labels(f).set(float("nan"))
        for g in (self.mean_probability, self.positive_share, self.score_psi, self.accuracy, self.precision,
                  self.recall, self.reference_mean_probability, self.reference_churn_rate):
            g.set(float("nan"))

        # Windows: bounded deques, appended under a lock on the request path, copied by the refresher.
        self._lock = threading.Lock()
        self._inputs: deque[dict] = deque(maxlen=drift_window)
        self._scores: deque[tuple[float, bool]] = deque(maxlen=score_window)
        self._labels: deque[tuple[int, int]] = deque(maxlen=label_window)

        self.reference: ReferenceProfile | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._app = None

    # ------------------------------------------------------------------------------------------ wiring
    def install(self, app) -> None:
        """Middleware, the /metrics endpoint and the 422 counter. Call before the app starts."""
        from fastapi.exceptions import RequestValidationError
        from starlette.routing import Mount, Route

        app.add_middleware(_MetricsMiddleware, monitor=self)
        metrics_app = make_asgi_app(registry=self.registry)
        # The Mount answers /metrics/ (and ?name[]= filters); the exact Route answers a plain GET /metrics
        # with a 200 instead of the 307 redirect a Mount alone would send.
        app.router.routes.append(Route("/metrics", endpoint=_ASGIEndpoint(metrics_app), methods=["GET"]))
        app.router.routes.append(Mount("/metrics", app=metrics_app))

        original = app.exception_handlers.get(RequestValidationError)
        if original is not None:
            async def counting_handler(request, exc):
                self.observe_validation_error(request.scope, exc)
                return await original(request, exc)
            app.add_exception_handler(RequestValidationError, counting_handler)

    def start(self, app) -> None:
        """Once the model is loaded: record the model and start the background thread."""
        self._app = app
        service = getattr(app.state, "service", None)
        model = getattr(service, "model", None)
        if model is not None:
            self.model_info.info({"name": str(model.name), "version": str(model.version),
                                  "source": str(model.source), "run_id": str(model.run_id or "")})
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="model-monitor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # ---------------------------------------------------------------------------- request-path hooks
    def observe_request(self, endpoint: str, status_code: int, seconds: float) -> None:
        self.latency.labels(endpoint).observe(seconds)
        self.responses.labels(endpoint, f"{status_code // 100}xx").inc()

    def observe_validation_error(self, scope, exc) -> None:
        endpoint = _endpoint_of(scope)
        try:
            errors = exc.errors()
        except Exception:  # never let monitoring break the error response
            errors = []
        for err in errors:
            loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
            # ("body", "customers", 3, "tenure_months") -> "tenure_months"; a missing body -> "body".
            field = loc[-1] if loc else "unknown"
            if field not in self.features and field not in ("request_id", "churned", "customers", "body"):
                field = "other"  # bound the label set (extra fields have arbitrary names)
            self.validation_errors.labels(endpoint, field).inc()

    def record_predictions(self, predictions: Sequence) -> None:
        """Called by /predict and /predict/batch with the service's Prediction objects. O(features)."""
        ranges = self._ranges
        for p in predictions:
            feats = p.features
            self._class_counters["churn" if p.churned else "no_churn"].inc()
            for name in self.features:
                value = feats.get(name)
                if value is None:
                    self._null_counters[name].inc()
                elif name in ranges:
                    lo, hi = ranges[name]
                    if value < lo or value > hi:
                        self._oor_counters[name].inc()
            with self._lock:
                self._inputs.append(feats)
                self._scores.append((p.churn_probability, p.churned))

    def record_feedback(self, labelled) -> None:
        """Called by /feedback with the service's LabelledPrediction."""
        pred, true = int(labelled.predicted_label), int(labelled.true_label)
        outcome = ("true_" if pred == true else "false_") + ("positive" if pred else "negative")
        self._outcome_counters[outcome].inc()
        self.label_delay.observe(max(0.0, float(labelled.label_delay_seconds)))
        with self._lock:
            self._labels.append((pred, true))

    # ------------------------------------------------------------------------------ background work
    def _run(self) -> None:
        next_reference_try = 0.0
        while not self._stop.is_set():
            if (self.reference is None or self.reference.source != "mlflow") and time.monotonic() >= next_reference_try:
                self.load_reference()
                next_reference_try = time.monotonic() + self.reference_retry_seconds
            try:
                self.refresh()
            except Exception:  # a bug in a gauge must not kill the thread
                log.exception("monitor refresh failed")
            self._stop.wait(self.refresh_seconds)

    def load_reference(self) -> None:
        """The MLflow reference data set; if MLflow fails, a redraw from the spec; if that fails, none."""
        service = getattr(getattr(self._app, "state", None), "service", None)
        model = getattr(service, "model", None)
        run_id = getattr(model, "run_id", None)
        try:
            if not run_id:
                raise RuntimeError("the model has no training run id")
            from model_service.settings import get_settings

            self.set_reference(ReferenceProfile.from_mlflow(run_id, get_settings().mlflow_tracking_uri))
            return
        except Exception as exc:
            log.warning("drift reference: MLflow unavailable (%s: %s)", type(exc).__name__,
                        str(exc).splitlines()[0][:200] if str(exc) else "")
        if self.reference is not None:
            return  # keep the fallback already loaded; MLflow is retried later
        try:
            self.set_reference(ReferenceProfile.from_spec(model))
            log.warning("drift reference: using a synthetic redraw of the training population from the spec")
        except Exception:
            log.exception("drift reference: no reference available; PSI stays NaN")
            self.reference_loaded.set(0)

    def set_reference(self, reference: ReferenceProfile) -> None:
        self.reference = reference
        self.reference_loaded.set(1)
        self.reference_info.info({"source": reference.source, "rows": str(reference.rows)})
        self.reference_mean_probability.set(reference.mean_score)
        self.reference_churn_rate.set(reference.churn_rate)

    def refresh(self) -> None:
        """Recompute every windowed gauge from copies of the windows (cheap: a few hundred rows)."""
        with self._lock:
            inputs = list(self._inputs)
            scores = list(self._scores)
            labels = list(self._labels)

        # predictions
        # Below MIN_WINDOW values a window is too noisy to alert on (PSI of 60 normal inputs reaches 0.3):
        # the gauges stay NaN, which no alert threshold matches.
        ref = self.reference
        self.drift_window_size.set(len(inputs))
        if len(scores) >= MIN_WINDOW:
            probs = np.fromiter((s for s, _ in scores), dtype=float, count=len(scores))
            self.mean_probability.set(float(probs.mean()))
            self.positive_share.set(sum(1 for _, c in scores if c) / len(scores))
            if ref is not None and ref.score_bins is not None:
                self.score_psi.set(psi(ref.score_bins.expected, ref.score_bins.counts(probs)))

        if ref is not None:
            for name, bins in ref.numeric.items():
                values = np.array([v for v in (row.get(name) for row in inputs) if v is not None], dtype=float)
                self.feature_psi.labels(name).set(
                    psi(bins.expected, bins.counts(values)) if len(values) >= MIN_WINDOW else float("nan"))
            for name, bins in ref.categorical.items():
                values = [v for v in (row.get(name) for row in inputs) if v is not None]
                self.feature_psi.labels(name).set(
                    psi(bins.expected, bins.counts(values)) if len(values) >= MIN_WINDOW else float("nan"))

        # performance
        n = len(labels)
        self.performance_window_labels.set(n)
        if n >= MIN_LABELS:
            tp = sum(1 for p, t in labels if p and t)
            fp = sum(1 for p, t in labels if p and not t)
            fn = sum(1 for p, t in labels if not p and t)
            correct = sum(1 for p, t in labels if p == t)
            self.accuracy.set(correct / n)
            self.precision.set(tp / (tp + fp) if tp + fp else float("nan"))
            self.recall.set(tp / (tp + fn) if tp + fn else float("nan"))
        self.last_refresh.set(time.time())
