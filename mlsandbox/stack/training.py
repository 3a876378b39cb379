"""The model every sandbox serves: trained once per MLflow and registered as churn-classifier@champion (and
@challenger, the worse version a scenario may release). A machine trains once: a new MLflow store starts as a copy
of the last one it trained with the same code, seed and libraries."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from mlsandbox.config import StackConfig
from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import REPO_ROOT, machine_cache
from mlsandbox.say import Say

# What decides the trained store's contents beside the seed: the model service's code and data spec, and the
# libraries that fit and write the model.
TRAINING_SOURCES = REPO_ROOT / "model_service"
TRAINING_LIBRARIES = ("mlflow", "scikit-learn", "numpy", "pandas")
DONE_MARKER = "complete"


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
    keep_trained_store(cfg)


def trained_store(cfg: StackConfig) -> Path:
    """Where this machine keeps the MLflow store that training with `cfg`'s seed, this checkout's model service and
    these library versions produced."""
    digest = hashlib.sha256(f"seed={cfg.training_seed}".encode())
    for path in sorted(TRAINING_SOURCES.glob("*.py")) + sorted(TRAINING_SOURCES.glob("*.yaml")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for package in TRAINING_LIBRARIES:
        digest.update(f"{package}=={version(package)}".encode())
    return machine_cache() / "trained" / digest.hexdigest()[:20]


def seed_mlflow_store(cfg: StackConfig, say: Say) -> bool:
    """A new MLflow store (no database yet) made a copy of the machine's trained one, when there is one. The runs'
    artifacts are addressed through the server (mlflow-artifacts:/), so the copy works wherever it lands."""
    store = cfg.layout.mlflow
    cached = trained_store(cfg)
    if not cfg.reuse_trained_model or (store / "mlflow.db").exists() or not (cached / DONE_MARKER).exists():
        return False
    store.mkdir(parents=True, exist_ok=True)
    shutil.copy2(cached / "mlflow.db", store / "mlflow.db")
    shutil.copytree(cached / "artifacts", store / "artifacts", dirs_exist_ok=True)
    say(f"  MLflow starts with the model this machine trained before ({cached})")
    return True


def keep_trained_store(cfg: StackConfig) -> None:
    """A copy of a store just trained, for the next new store on this machine (written aside and renamed into place,
    so that a reader sees all of it or none; the first of two writers wins)."""
    cached = trained_store(cfg)
    if not cfg.reuse_trained_model or (cached / DONE_MARKER).exists():
        return
    store = cfg.layout.mlflow
    aside = cached.parent / f".{cached.name}.{os.getpid()}"
    shutil.rmtree(aside, ignore_errors=True)
    aside.mkdir(parents=True)
    # MLflow holds its database open: sqlite's backup copies a consistent state.
    source, copy = sqlite3.connect(store / "mlflow.db"), sqlite3.connect(aside / "mlflow.db")
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    shutil.copytree(store / "artifacts", aside / "artifacts")
    (aside / DONE_MARKER).touch()
    try:
        aside.rename(cached)
    except OSError:  # kept by another process meanwhile
        shutil.rmtree(aside, ignore_errors=True)
