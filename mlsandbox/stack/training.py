"""The model every sandbox serves: trained once per MLflow and registered as churn-classifier@champion (and
@challenger, the worse version a scenario may release)."""

from __future__ import annotations

import subprocess
import sys

from mlsandbox.config import StackConfig
from mlsandbox.errors import MlsandboxError
from mlsandbox.say import Say


def models_registered(mlflow_url: str) -> bool:
    """Both versions a sandbox serves are in MLflow: the champion, and the challenger a scenario may release."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from model_service.settings import CHALLENGER_ALIAS, MODEL_ALIAS, MODEL_NAME

    client = MlflowClient(tracking_uri=mlflow_url)
    try:
        for alias in (MODEL_ALIAS, CHALLENGER_ALIAS):
            client.get_model_version_by_alias(MODEL_NAME, alias)
    except MlflowException:
        return False
    return True


def train_model(cfg: StackConfig, say: Say) -> None:
    """Train and register both versions in the MLflow of `cfg` (its log in the run directory's training.log)."""
    say("training the churn model and registering churn-classifier@champion (and @challenger) in MLflow ...")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_service.train",
            "--tracking-uri",
            cfg.mlflow_url,
            "--seed",
            str(cfg.training_seed),
            "--if-missing",  # a machine trained before the challenger existed keeps its champion
        ],
        capture_output=True,
        text=True,
    )
    log = cfg.layout.log("training")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise MlsandboxError(f"training failed; its log: {log}\n{result.stderr[-2000:]}")
    for line in result.stdout.splitlines():
        say("  " + line)
