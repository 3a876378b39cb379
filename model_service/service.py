"""The model service the candidate's app calls: score customers, log every prediction, accept feedback.

What the control file asks for (faults.py) acts here, inside the request, so the candidate's own latency and
error metrics see it; nothing in this module is monitoring code.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Sequence

from pydantic import BaseModel

from .faults import FaultSwitch, ServiceFault
from .model_store import LoadedModel, load_champion, load_release
from .prediction_log import LabelledPrediction, PredictionLog, PredictionRecord, UnknownRequestId
from .schemas import FEATURE_NAMES, ModelInfo
from .settings import ServiceSettings, get_settings

log = logging.getLogger("model_service")

# How long a release that could not be fetched is left alone before the next try.
RELEASE_RETRY_SECONDS = 10.0

__all__ = ["ChurnService", "Prediction", "ServiceFault", "UnknownRequestId", "LabelledPrediction"]


@dataclass(frozen=True)
class Prediction:
    request_id: str
    churn_probability: float
    churned: bool
    model_version: str
    features: dict


class ChurnService:
    """`load_release(alias)`: how another registered version is fetched when the control file names one (none:
    the model loaded at start is served whatever the file says)."""

    def __init__(
        self,
        model: LoadedModel,
        prediction_log: PredictionLog,
        faults: FaultSwitch,
        scoring: str = "fast",
        load_release: Callable[[str], LoadedModel] | None = None,
    ):
        self.started_with = model
        self.prediction_log = prediction_log
        self.faults = faults
        self.scoring = scoring
        self._load_release = load_release
        self._releases: dict[str, LoadedModel] = {}
        self._failed: dict[str, float] = {}
        self._release_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: ServiceSettings | None = None) -> "ChurnService":
        settings = settings or get_settings()
        model = load_champion(settings)
        log.info("serving %s version %s (from %s)", model.name, model.version, model.source)
        return cls(
            model,
            PredictionLog(settings.prediction_log_path),
            FaultSwitch(settings.faults_path),
            settings.scoring,
            load_release=lambda alias: load_release(settings, alias),
        )

    @property
    def model(self) -> LoadedModel:
        """The model serving now: the one loaded at start, or the release the fault file names."""
        alias = self.faults.state.model_alias
        if alias is None or alias == self.started_with.alias or self._load_release is None:
            return self.started_with
        release = self._releases.get(alias)
        return release if release is not None else self._fetch(alias)

    def _fetch(self, alias: str) -> LoadedModel:
        # The first request after a release waits for its download (as the first request after a deploy
        # would); one that cannot be fetched is logged and the model loaded at start keeps serving, retried
        # every RELEASE_RETRY_SECONDS rather than on every request.
        with self._release_lock:
            if alias in self._releases:
                return self._releases[alias]
            if time.monotonic() - self._failed.get(alias, -RELEASE_RETRY_SECONDS) < RELEASE_RETRY_SECONDS:
                return self.started_with
            try:
                release = self._load_release(alias)
            except Exception as exc:  # any MLflow failure: unreachable, no such alias, bad artifact
                self._failed[alias] = time.monotonic()
                log.error("cannot release @%s (%s); still serving version %s", alias, exc, self.started_with.version)
                return self.started_with
            log.info("serving %s version %s (@%s, released)", release.name, release.version, alias)
            self._releases[alias] = release
            return release

    @property
    def model_version(self) -> str:
        return self.model.version

    def info(self) -> ModelInfo:
        m = self.model
        return ModelInfo(
            name=m.name,
            alias=m.alias,
            version=m.version,
            source=m.source,
            run_id=m.run_id,
            threshold=m.threshold,
            features=list(FEATURE_NAMES),
        )

    def predict(self, customers: Sequence[BaseModel]) -> list[Prediction]:
        """Score customers and log each prediction. Raises ServiceFault when a fault is injected."""
        self.faults.apply()
        model = self.model
        rows = [c.model_dump() for c in customers]
        scores = model.score_records(rows, self.scoring)
        now = time.time()
        predictions = [
            Prediction(uuid.uuid4().hex, float(s), bool(s >= model.threshold), model.version, row)
            for row, s in zip(rows, scores)
        ]
        self.prediction_log.record_predictions(
            [
                PredictionRecord(p.request_id, now, p.model_version, p.features, p.churn_probability, int(p.churned))
                for p in predictions
            ]
        )
        return predictions

    def feedback(self, request_id: str, churned: bool) -> LabelledPrediction:
        """Record the true outcome of a past prediction. Raises UnknownRequestId for an id never issued."""
        return self.prediction_log.record_feedback(request_id, int(churned))
