"""The model service the candidate's app calls: score customers, log every prediction, accept feedback.

Faults switched on by a scenario act here, inside the request, so the candidate's own latency and error
metrics see them; nothing in this module is monitoring code.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Sequence

from pydantic import BaseModel

from .faults import FaultSwitch, ServiceFault
from .model_store import LoadedModel, load_champion
from .prediction_log import LabelledPrediction, PredictionLog, PredictionRecord, UnknownRequestId
from .schemas import FEATURE_NAMES, ModelInfo
from .settings import ServiceSettings, get_settings

log = logging.getLogger("model_service")

__all__ = ["ChurnService", "Prediction", "ServiceFault", "UnknownRequestId", "LabelledPrediction"]


@dataclass(frozen=True)
class Prediction:
    request_id: str
    churn_probability: float
    churned: bool
    model_version: str
    features: dict


class ChurnService:
    def __init__(self, model: LoadedModel, prediction_log: PredictionLog, faults: FaultSwitch, scoring: str = "fast"):
        self.model = model
        self.prediction_log = prediction_log
        self.faults = faults
        self.scoring = scoring

    @classmethod
    def from_settings(cls, settings: ServiceSettings | None = None) -> "ChurnService":
        settings = settings or get_settings()
        model = load_champion(settings)
        log.info("serving %s version %s (from %s)", model.name, model.version, model.source)
        return cls(
            model, PredictionLog(settings.prediction_log_path), FaultSwitch(settings.faults_path), settings.scoring
        )

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
        rows = [c.model_dump() for c in customers]
        scores = self.model.score_records(rows, self.scoring)
        now = time.time()
        predictions = [
            Prediction(uuid.uuid4().hex, float(s), bool(s >= self.model.threshold), self.model.version, row)
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
