"""Load models:/churn-classifier@champion from MLflow, keeping a local copy to fall back on.

When MLflow cannot be reached the server still starts, on the last copy it downloaded, and says so in one
log line. With neither, start-up fails with a message saying how to get a model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import sklearn

from .churn_data import records_to_frame
from .fast_scorer import LinearScorer
from .settings import ServiceSettings

log = logging.getLogger("model_service.model_store")


@dataclass(frozen=True)
class LoadedModel:
    pipeline: object
    name: str
    alias: str
    version: str
    run_id: str | None
    threshold: float
    source: Literal["mlflow", "local-copy"]
    # The pipeline folded into weights (see fast_scorer.py); None when the pipeline is not one it knows.
    scorer: LinearScorer | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.scorer is None:
            object.__setattr__(self, "scorer", LinearScorer.from_pipeline(self.pipeline))

    def score(self, features: pd.DataFrame) -> np.ndarray:
        """Churn probability for each row of a frame, through the pipeline."""
        # The request schema already rejects NaN and infinity; skipping sklearn's own check saves ~10%.
        with sklearn.config_context(assume_finite=True):
            return self.pipeline.predict_proba(features)[:, 1]

    def score_records(self, records: list[dict], path: Literal["fast", "dataframe"] = "fast") -> np.ndarray:
        """Churn probability for each customer dict: by the folded weights, or through a frame and the pipeline."""
        if path == "fast" and self.scorer is not None:
            return self.scorer.score(records)
        return self.score(records_to_frame(records))


class ModelUnavailable(RuntimeError):
    pass


def _configure_mlflow_client(settings: ServiceSettings) -> None:
    # MLflow's client retries for minutes by default; a model server should decide within seconds.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(settings.mlflow_timeout_seconds)))


def _download(settings: ServiceSettings, alias: str, remember: bool) -> dict:
    """models:/NAME@alias into the local cache; `remember`: as the copy to fall back on when MLflow is away."""
    import mlflow
    from mlflow.tracking import MlflowClient

    _configure_mlflow_client(settings)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = MlflowClient()
    mv = client.get_model_version_by_alias(settings.model_name, alias)
    cache = settings.model_cache_dir
    target = cache / f"v{mv.version}"
    meta = {
        "name": settings.model_name,
        "alias": alias,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "threshold": float(mv.tags.get("threshold", 0.5)),
        "path": str(target),
    }
    if not (target / "MLmodel").exists():
        staging = cache / f".download-{os.getpid()}-{time.time_ns()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{settings.model_name}@{alias}", dst_path=str(staging)
        )
        if target.exists():  # another process finished the same download first
            shutil.rmtree(staging, ignore_errors=True)
        else:
            os.replace(local, target)
            shutil.rmtree(staging, ignore_errors=True)
    if remember:
        tmp = cache / f".latest-{os.getpid()}.json"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, cache / "latest.json")
    return meta


def _load(meta: dict, source: Literal["mlflow", "local-copy"]) -> LoadedModel:
    import mlflow.sklearn

    pipeline = mlflow.sklearn.load_model(meta["path"])
    return LoadedModel(
        pipeline,
        meta["name"],
        meta["alias"],
        meta["version"],
        meta.get("run_id"),
        float(meta.get("threshold", 0.5)),
        source,
    )


def load_champion(settings: ServiceSettings) -> LoadedModel:
    """The champion model from MLflow, or the last local copy when MLflow cannot be reached."""
    try:
        return _load(_download(settings, settings.model_alias, remember=True), "mlflow")
    except Exception as exc:  # any MLflow failure: unreachable, no such alias, bad artifact
        latest = settings.model_cache_dir / "latest.json"
        if not latest.exists():
            raise ModelUnavailable(
                f"cannot load models:/{settings.model_name}@{settings.model_alias} from "
                f"{settings.mlflow_tracking_uri} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}) "
                f"and there is no local copy in {settings.model_cache_dir}; start MLflow and train the model "
                f"(`mlsandbox up` does both)"
            ) from exc
        meta = json.loads(latest.read_text())
        log.warning(
            "MLflow at %s unreachable (%s); serving the local copy of %s version %s from %s",
            settings.mlflow_tracking_uri,
            type(exc).__name__,
            meta["name"],
            meta["version"],
            meta["path"],
        )
        return _load(meta, "local-copy")


def load_release(settings: ServiceSettings, alias: str) -> LoadedModel:
    """Another alias of the registered model, from MLflow only: one that cannot be fetched is not served, and
    the copy to fall back on stays the champion."""
    return _load(_download(settings, alias, remember=False), "mlflow")
