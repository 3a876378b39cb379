"""Model-level monitoring: prediction statistics, live performance from feedback, input drift.

Two kinds of signal:

* **Counters and histograms, updated on the request path** (cheap, exact, aggregated per request):
  predictions by predicted class, the score distribution, inference time, batch size, missing and
  out-of-range inputs per feature, category mix, rejected (422) inputs per field, feedback labels as a
  confusion matrix, label delay. Prometheus computes rates/ratios over whatever window it wants.

* **Windowed statistics, computed in a background thread** every EVAL_INTERVAL seconds and exposed as
  observable gauges: PSI of each input feature and of the score against the reference (training holdout)
  over the last DRIFT_WINDOW seconds of inputs, and AUC / log loss / precision / recall over the last
  PERF_WINDOW labels. These need the raw values, not counts, so they cannot be done in PromQL.

Everything here is best effort: an exception in monitoring is logged and never fails a prediction.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path

import numpy as np
from opentelemetry.metrics import CallbackOptions, Observation

from . import reference as ref
from .telemetry import meter_provider

log = logging.getLogger(__name__)

DRIFT_WINDOW = float(os.getenv("CHURN_DRIFT_WINDOW_SECONDS", "15"))  # inputs considered for PSI
DRIFT_MAX_ROWS = int(os.getenv("CHURN_DRIFT_MAX_ROWS", "5000"))
DRIFT_MIN_ROWS = int(os.getenv("CHURN_DRIFT_MIN_ROWS", "60"))  # below this PSI is mostly noise: not exported
PERF_WINDOW = int(os.getenv("CHURN_PERF_WINDOW_LABELS", "150"))  # most recent labels per model version
PERF_MIN_LABELS = int(os.getenv("CHURN_PERF_MIN_LABELS", "30"))
EVAL_INTERVAL = float(os.getenv("CHURN_MONITOR_EVAL_SECONDS", "2"))
RELABEL_MEMORY = 200_000  # request ids remembered to tell a first label from a corrected one

SCORE_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
INFERENCE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100]
# Sandbox delays are seconds to minutes; real ones days to weeks (30-day churn window).
DELAY_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 60 * 86400]


def _load_spec() -> tuple[dict[str, tuple], dict[str, list[str]]]:
    """numeric {name: (expected_min, expected_max)}, categorical {name: levels}."""
    try:
        from model_service.spec import default_spec

        spec = default_spec()
        feats = spec.features
        if isinstance(feats, dict):
            lookup = feats
        else:
            lookup = {f.name: f for f in feats}

        def _obj(x):
            return lookup[x] if isinstance(x, str) else x

        numeric = {}
        for f in spec.numeric:
            f = _obj(f)
            numeric[f.name] = (float(f.expected.min), float(f.expected.max))
        categorical = {}
        for f in spec.categorical:
            f = _obj(f)
            categorical[f.name] = list(f.levels)
        return numeric, categorical
    except Exception as exc:
        log.warning("model_service.spec unavailable (%s); reading docs/features.json", exc)
    raw = json.loads((Path(__file__).resolve().parent.parent / "docs" / "features.json").read_text())["features"]
    numeric = {k: (v["expected"]["min"], v["expected"]["max"]) for k, v in raw.items() if v["kind"] == "numeric"}
    categorical = {k: v["levels"] for k, v in raw.items() if v["kind"] == "categorical"}
    return numeric, categorical


class ModelMonitor:
    def __init__(self) -> None:
        self.numeric, self.categorical = _load_spec()
        self.features = list(self.numeric) + list(self.categorical)
        self._feature_set = set(self.features)
        self.threshold = 0.5
        self.profile: ref.ReferenceProfile | None = None
        self.service = None

        self._lock = threading.Lock()
        # drift window: (ts, numeric vector, categorical tuple, score)
        self._inputs: deque = deque(maxlen=DRIFT_MAX_ROWS)
        # performance windows per model version: (score, predicted, actual)
        self._labels: dict[str, deque] = {}
        self._labelled_ids: OrderedDict = OrderedDict()
        # last computed windowed values, read by the gauge callbacks
        self._snap: dict = {}
        self._model_attrs: dict | None = None

        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._make_instruments()

    # ------------------------------------------------------------------ instruments
    def _make_instruments(self) -> None:
        m = meter_provider().get_meter("churn.model_monitor", "1.0")

        # 1. prediction statistics
        self.predictions = m.create_counter(
            "churn.predictions",
            description="Customers scored, by model version, endpoint (single|batch) and predicted class "
                        "(churn when churn_probability >= the model threshold).",
        )
        self.score_hist = m.create_histogram(
            "churn.prediction.score",
            description="Distribution of churn_probability returned by the model, per scored customer.",
            explicit_bucket_boundaries_advisory=SCORE_BUCKETS,
        )
        # 3. latency/throughput of the model itself (HTTP-level latency comes from the FastAPI instrumentation)
        self.inference = m.create_histogram(
            "churn.model.inference.duration", unit="s",
            description="Wall time of the ChurnService.predict call per request (model scoring and its prediction log), "
                        "by endpoint; excludes HTTP parsing and validation.",
            explicit_bucket_boundaries_advisory=INFERENCE_BUCKETS,
        )
        self.batch_size = m.create_histogram(
            "churn.request.customers",
            description="Customers per scoring request (1 for /predict, up to 100 for /predict/batch).",
            explicit_bucket_boundaries_advisory=BATCH_BUCKETS,
        )
        # 4. input quality / drift, on the request path
        self.missing = m.create_counter(
            "churn.input.missing",
            description="Scored customers whose feature was null (imputed by the model), by feature.",
        )
        self.out_of_range = m.create_counter(
            "churn.input.out_of_range",
            description="Scored customers whose numeric feature lay outside the training (typical) range, "
                        "by feature and side (below|above).",
        )
        self.category = m.create_counter(
            "churn.input.category",
            description="Scored customers by categorical feature and level (category mix).",
        )
        self.rejected = m.create_counter(
            "churn.input.rejected",
            description="Validation errors (HTTP 422) by offending field and pydantic error type; "
                        "field=other when it is not a known feature (e.g. an unknown extra field).",
        )
        # 2. performance from ground truth
        self.feedback = m.create_counter(
            "churn.feedback.labels",
            description="Ground-truth labels received via /feedback (first label per request id), by model "
                        "version that made the prediction, predicted and actual class: a confusion matrix.",
        )
        self.relabels = m.create_counter(
            "churn.feedback.relabels",
            description="Feedback posted again for a request id that already had a label (label replaced).",
        )
        self.label_delay = m.create_histogram(
            "churn.feedback.label_delay", unit="s",
            description="Time between a prediction and the arrival of its ground-truth label.",
            explicit_bucket_boundaries_advisory=DELAY_BUCKETS,
        )

        self.monitor_errors = m.create_counter(
            "churn.monitor.errors",
            description="Exceptions swallowed by the monitoring code (the request was served anyway), by stage.",
        )

        # windowed gauges (computed in the background thread)
        m.create_observable_gauge(
            "churn.drift.psi", callbacks=[self._obs_psi],
            description=f"Population Stability Index of each input feature, live inputs of the last "
                        f"{int(DRIFT_WINDOW)} s vs the reference (training holdout); 10 reference-decile bins "
                        f"(numeric) or the known levels (categorical), nulls excluded. <0.1 stable, "
                        f">0.25 major shift.",
        )
        m.create_observable_gauge(
            "churn.prediction.score_psi", callbacks=[self._obs_score_psi],
            description=f"PSI of churn_probability over the last {int(DRIFT_WINDOW)} s vs the reference scores.",
        )
        m.create_observable_gauge(
            "churn.drift.feature_mean", callbacks=[self._obs_means],
            description="Mean of each numeric input feature: population=live (drift window, nulls excluded) "
                        "or population=reference (training holdout).",
        )
        m.create_observable_gauge(
            "churn.drift.window_rows", callbacks=[self._obs_window_rows],
            description=f"Scored customers currently in the drift window (last {int(DRIFT_WINDOW)} s, capped "
                        f"at {DRIFT_MAX_ROWS}); PSI is exported only from {DRIFT_MIN_ROWS} rows.",
        )
        m.create_observable_gauge(
            "churn.performance.live", callbacks=[self._obs_live_perf],
            description=f"Model performance on the most recent {PERF_WINDOW} ground-truth labels per model "
                        f"version (by label arrival), metric = auc|precision|recall|f1|accuracy|log_loss|"
                        f"churn_rate|flag_rate|mean_score; exported from {PERF_MIN_LABELS} labels.",
        )
        m.create_observable_gauge(
            "churn.performance.live_labels", callbacks=[self._obs_live_n],
            description="Labels in the live performance window, per model version.",
        )
        m.create_observable_gauge(
            "churn.performance.reference", callbacks=[self._obs_ref_perf],
            description="The served model's performance on its reference (training holdout) set at its "
                        "threshold: the baseline for churn_performance_live.",
        )
        m.create_observable_gauge(
            "churn.model.info", callbacks=[self._obs_info],
            description="Always 1; labels say which model is served (version, training run, source, threshold) and where "
                        "the drift/performance reference came from (mlflow|local-file|none).",
        )
        m.create_observable_gauge(
            "churn.monitor.last_evaluation_timestamp", unit="s", callbacks=[self._obs_last_eval],
            description="Unix time of the last successful computation of the windowed drift/performance "
                        "statistics (monitoring of the monitor).",
        )

    # ------------------------------------------------------------------ lifecycle
    def start(self, service) -> None:
        self.service = service
        self._refresh_model(force=True)
        self._zero_series()
        self._thread = threading.Thread(target=self._loop, name="churn-monitor", daemon=True)
        self._thread.start()

    def _zero_series(self) -> None:
        """Create the known label combinations at 0, so rates/ratios read 0 rather than "no data"."""
        version = (self._model_attrs or {}).get("model_version", "unknown")
        for endpoint in ("single", "batch"):
            for cls in ("churn", "no_churn"):
                self.predictions.add(0, {"model_version": version, "endpoint": endpoint, "predicted": cls})
        for p in ("churn", "no_churn"):
            for a in ("churn", "no_churn"):
                self.feedback.add(0, {"model_version": version, "predicted": p, "actual": a})
        for stage in ("predict", "feedback", "validation", "evaluate", "reference"):
            self.monitor_errors.add(0, {"stage": stage})
        for name in self.features:
            self.missing.add(0, {"feature": name})
        for name in self.numeric:
            for side in ("below", "above"):
                self.out_of_range.add(0, {"feature": name, "side": side})
        for name, levels in self.categorical.items():
            for level in levels:
                self.category.add(0, {"feature": name, "level": level})

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _refresh_model(self, force: bool = False) -> None:
        svc = self.service
        if svc is None:
            return
        try:
            info = svc.info()
            get = (lambda k, d=None: info.get(k, d)) if isinstance(info, dict) else (lambda k, d=None: getattr(info, k, d))
            version = str(get("version", getattr(svc, "model_version", "unknown")))
            run_id = get("run_id", None) or getattr(getattr(svc, "model", None), "run_id", None)
            attrs = {
                "model_version": version,
                "run_id": str(run_id),
                "source": str(get("source", "unknown")),
                "alias": str(get("alias", "")),
                "threshold": str(get("threshold", 0.5)),
                "reference": "none",
            }
            self.threshold = float(get("threshold", 0.5) or 0.5)
        except Exception:
            log.exception("could not read model info")
            return
        if not force and self._model_attrs and self._model_attrs["run_id"] == attrs["run_id"]:
            attrs["reference"] = self._model_attrs["reference"]
            self._model_attrs = attrs
            return
        try:
            self.profile = ref.build_profile(run_id, self.numeric, self.categorical, self.threshold)
            attrs["reference"] = "mlflow" if self.profile.source.startswith("mlflow:") else "local-file"
        except Exception:
            log.exception("could not build the reference profile; drift gauges disabled")
            self.monitor_errors.add(1, {"stage": "reference"})
            self.profile = None
        self._model_attrs = attrs

    # ------------------------------------------------------------------ request path
    def record_predictions(self, endpoint: str, customers, predictions, seconds: float) -> None:
        try:
            self._record_predictions(endpoint, customers, predictions, seconds)
        except Exception:
            log.exception("monitoring: record_predictions failed")
            self.monitor_errors.add(1, {"stage": "predict"})

    def _record_predictions(self, endpoint, customers, predictions, seconds) -> None:
        now = time.time()
        self.inference.record(seconds, {"endpoint": endpoint})
        self.batch_size.record(len(customers), {"endpoint": endpoint})

        pred_counts: dict[tuple, int] = {}
        missing = dict.fromkeys(self.features, 0)
        oor: dict[tuple, int] = {}
        cats: dict[tuple, int] = {}
        rows = []
        for customer, p in zip(customers, predictions):
            rec = customer.model_dump() if hasattr(customer, "model_dump") else dict(customer)
            version = str(p.model_version)
            cls = "churn" if p.churned else "no_churn"
            pred_counts[(version, cls)] = pred_counts.get((version, cls), 0) + 1
            self.score_hist.record(float(p.churn_probability), {"model_version": version})

            num = np.empty(len(self.numeric))
            for i, (name, (lo, hi)) in enumerate(self.numeric.items()):
                v = rec.get(name)
                if v is None:
                    missing[name] += 1
                    num[i] = np.nan
                    continue
                v = float(v)
                num[i] = v
                if v < lo:
                    oor[(name, "below")] = oor.get((name, "below"), 0) + 1
                elif v > hi:
                    oor[(name, "above")] = oor.get((name, "above"), 0) + 1
            cat = []
            for name in self.categorical:
                v = rec.get(name)
                if v is None:
                    missing[name] += 1
                else:
                    v = str(getattr(v, "value", v))
                    cats[(name, v)] = cats.get((name, v), 0) + 1
                cat.append(v)
            rows.append((now, num, tuple(cat), float(p.churn_probability)))

        for (version, cls), n in pred_counts.items():
            self.predictions.add(n, {"model_version": version, "endpoint": endpoint, "predicted": cls})
        for name, n in missing.items():
            if n:
                self.missing.add(n, {"feature": name})
        for (name, side), n in oor.items():
            self.out_of_range.add(n, {"feature": name, "side": side})
        for (name, level), n in cats.items():
            self.category.add(n, {"feature": name, "level": level})
        with self._lock:
            self._inputs.extend(rows)

    def record_feedback(self, labelled) -> None:
        try:
            version = str(labelled.model_version)
            predicted = bool(labelled.predicted_label)
            actual = bool(labelled.true_label)
            rid = labelled.request_id
            with self._lock:
                relabel = rid in self._labelled_ids
                self._labelled_ids[rid] = True
                self._labelled_ids.move_to_end(rid)
                while len(self._labelled_ids) > RELABEL_MEMORY:
                    self._labelled_ids.popitem(last=False)
                window = self._labels.setdefault(version, deque(maxlen=PERF_WINDOW))
                entry = (rid, float(labelled.score), predicted, actual)
                if relabel:  # the new label replaces the old one if it is still in the window
                    for i, old in enumerate(window):
                        if old[0] == rid:
                            window[i] = entry
                            break
                    else:
                        window.append(entry)
                else:
                    window.append(entry)
            if relabel:
                self.relabels.add(1, {"model_version": version})
                return
            self.feedback.add(1, {
                "model_version": version,
                "predicted": "churn" if predicted else "no_churn",
                "actual": "churn" if actual else "no_churn",
            })
            delay = getattr(labelled, "label_delay_seconds", None)
            if delay is not None:
                self.label_delay.record(float(delay), {"model_version": version})
        except Exception:
            log.exception("monitoring: record_feedback failed")
            self.monitor_errors.add(1, {"stage": "feedback"})

    def record_validation_errors(self, path: str, errors) -> None:
        try:
            counts: dict[tuple, int] = {}
            for err in errors:
                loc = err.get("loc", ()) if isinstance(err, dict) else ()
                field = next((str(x) for x in reversed(loc) if isinstance(x, str) and x in self._feature_set),
                             "other")
                etype = str(err.get("type", "unknown")) if isinstance(err, dict) else "unknown"
                counts[(field, etype)] = counts.get((field, etype), 0) + 1
            for (field, etype), n in counts.items():
                self.rejected.add(n, {"field": field, "error": etype, "route": path})
        except Exception:
            log.exception("monitoring: record_validation_errors failed")
            self.monitor_errors.add(1, {"stage": "validation"})

    # ------------------------------------------------------------------ background evaluation
    def _loop(self) -> None:
        while not self._stop.wait(EVAL_INTERVAL):
            try:
                self._refresh_model()
                self._evaluate()
            except Exception:
                log.exception("monitoring: evaluation failed")
                self.monitor_errors.add(1, {"stage": "evaluate"})

    def _evaluate(self) -> None:
        now = time.time()
        with self._lock:
            while self._inputs and self._inputs[0][0] < now - DRIFT_WINDOW:
                self._inputs.popleft()
            rows = list(self._inputs)
            label_windows = {v: list(w) for v, w in self._labels.items()}

        snap: dict = {"window_rows": len(rows), "psi": {}, "means": {}, "perf": {}, "perf_n": {}}
        prof = self.profile
        if prof is not None and rows:
            num = np.vstack([r[1] for r in rows])
            for i, name in enumerate(self.numeric):
                col = num[:, i]
                col = col[~np.isnan(col)]
                if len(col):
                    snap["means"][name] = float(col.mean())
                if len(col) >= DRIFT_MIN_ROWS and name in prof.numeric:
                    p = prof.numeric[name]
                    snap["psi"][name] = ref.psi(p.ref_props, p.bin_props(col))
            for j, name in enumerate(self.categorical):
                vals = [r[2][j] for r in rows if r[2][j] is not None]
                if len(vals) >= DRIFT_MIN_ROWS and name in prof.categorical:
                    c = prof.categorical[name]
                    snap["psi"][name] = ref.psi(c.ref_props, c.bin_props(vals))
            if len(rows) >= DRIFT_MIN_ROWS and prof.score is not None:
                scores = np.array([r[3] for r in rows])
                snap["score_psi"] = ref.psi(prof.score.ref_props, prof.score.bin_props(scores))

        for version, window in label_windows.items():
            snap["perf_n"][version] = len(window)
            if len(window) >= PERF_MIN_LABELS:
                y = np.array([w[3] for w in window], dtype=int)
                s = np.array([w[1] for w in window])
                snap["perf"][version] = ref.classification_metrics(y, s, self.threshold)
        snap["ts"] = now
        self._snap = snap

    # ------------------------------------------------------------------ gauge callbacks
    def _obs_psi(self, _: CallbackOptions):
        for name, v in self._snap.get("psi", {}).items():
            yield Observation(v, {"feature": name})

    def _obs_score_psi(self, _: CallbackOptions):
        v = self._snap.get("score_psi")
        if v is not None:
            version = (self._model_attrs or {}).get("model_version", "unknown")
            yield Observation(v, {"model_version": version})

    def _obs_means(self, _: CallbackOptions):
        for name, v in self._snap.get("means", {}).items():
            yield Observation(v, {"feature": name, "population": "live"})
        if self.profile is not None:
            for name, p in self.profile.numeric.items():
                yield Observation(p.ref_mean, {"feature": name, "population": "reference"})

    def _obs_window_rows(self, _: CallbackOptions):
        if "window_rows" in self._snap:
            yield Observation(self._snap["window_rows"])

    def _obs_live_perf(self, _: CallbackOptions):
        for version, metrics in self._snap.get("perf", {}).items():
            for metric, v in metrics.items():
                if v is not None and not math.isnan(v):
                    yield Observation(v, {"model_version": version, "metric": metric})

    def _obs_live_n(self, _: CallbackOptions):
        for version, n in self._snap.get("perf_n", {}).items():
            yield Observation(n, {"model_version": version})

    def _obs_ref_perf(self, _: CallbackOptions):
        if self.profile is not None and self._model_attrs:
            version = self._model_attrs["model_version"]
            for metric, v in self.profile.metrics.items():
                if not math.isnan(v):
                    yield Observation(v, {"model_version": version, "metric": metric})

    def _obs_info(self, _: CallbackOptions):
        if self._model_attrs:
            yield Observation(1, dict(self._model_attrs))

    def _obs_last_eval(self, _: CallbackOptions):
        if "ts" in self._snap:
            yield Observation(self._snap["ts"])
