"""Model-server settings, read once from the environment (prefix MLSANDBOX_, plus MLflow's own variable)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MODEL_NAME = "churn-classifier"
MODEL_ALIAS = "champion"
# A second registered version beside the champion, which the control file may name.
CHALLENGER_ALIAS = "challenger"
# Where a sandbox keeps its state when nothing says otherwise: run/ in the checkout (every component, the load
# generator and the CLI agree on it; MLSANDBOX_RUN_DIR moves it).
DEFAULT_RUN_DIR = Path(__file__).resolve().parents[1] / "run"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLSANDBOX_", extra="ignore")

    run_dir: Path = DEFAULT_RUN_DIR
    mlflow_tracking_uri: str = Field(
        "http://127.0.0.1:5000", validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "MLSANDBOX_MLFLOW_TRACKING_URI")
    )
    model_name: str = MODEL_NAME
    model_alias: str = MODEL_ALIAS
    max_batch_size: int = Field(100, ge=1, le=10_000)
    # A request body over this gets 413 before the candidate's app sees it.
    max_body_bytes: int = Field(1_000_000, ge=1_000)
    # Seconds to wait for MLflow before serving the local copy of the model.
    mlflow_timeout_seconds: float = Field(5.0, gt=0)
    # How /predict scores: the pipeline folded into weights (fast), or a DataFrame through the pipeline itself
    # (the benchmark compares both; the scores are the same).
    scoring: Literal["fast", "dataframe"] = "fast"

    @property
    def server_dir(self) -> Path:
        """What the server itself writes (the prediction log, the model cache, its last /metrics body), in a folder
        of its own: a sandboxed server is given this folder and the fault switch, and nothing else of the run
        directory."""
        return server_dir(self.run_dir)

    @property
    def prediction_log_path(self) -> Path:
        return self.server_dir / "predictions.sqlite"

    @property
    def model_cache_dir(self) -> Path:
        return self.server_dir / "model_cache"

    @property
    def faults_path(self) -> Path:
        # Outside the candidate's folder: written from outside, never by the candidate's code.
        return self.run_dir / "control" / "faults.json"


def server_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "server"


@lru_cache(maxsize=1)
def get_settings() -> ServiceSettings:
    return ServiceSettings()
