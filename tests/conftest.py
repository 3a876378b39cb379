"""Shared fixtures: a trained model without MLflow, the starter app in-process, and customer payloads."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from mlsandbox.layout import Ports
from model_service.churn_data import generate_features
from model_service.faults import FaultSwitch
from model_service.model_store import LoadedModel
from model_service.prediction_log import PredictionLog
from model_service.service import ChurnService

REPO = Path(__file__).resolve().parents[1]
# The native stack tests' ports: off the defaults, so that tests never collide with a sandbox someone is using.
TEST_PORTS = Ports.block(15000)


@pytest.fixture(scope="session")
def trained():
    from model_service.train import train

    return train(seed=42)


@pytest.fixture(scope="session")
def loaded_model(trained) -> LoadedModel:
    return LoadedModel(trained.pipeline, "churn-classifier", "champion", "1", None, 0.5, "mlflow")


def valid_customer(seed: int = 0) -> dict:
    row = generate_features(1, seed).iloc[0].to_dict()
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


@pytest.fixture
def customer() -> dict:
    return valid_customer()


def import_candidate_app(folder: Path):
    """Import `app.main` from a candidate folder (each folder has its own `app` package)."""
    for name in [m for m in sys.modules if m == "app" or m.startswith("app.")]:
        del sys.modules[name]
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("app.main")
    finally:
        sys.path.remove(str(folder))


@pytest.fixture
def starter_client(tmp_path, loaded_model):
    """The starter app with an in-process model service (no MLflow), its prediction log in tmp_path."""
    from fastapi.testclient import TestClient

    main = import_candidate_app(REPO / "starter_repo")
    svc = ChurnService(
        loaded_model, PredictionLog(tmp_path / "predictions.sqlite"), FaultSwitch(tmp_path / "faults.json")
    )
    main.app.state.service = svc
    # raise_server_exceptions=False: a server error must show up as the 500 a client would get.
    with_client = TestClient(main.app, raise_server_exceptions=False)
    with_client.service = svc
    with_client.faults_path = tmp_path / "faults.json"
    yield with_client
    svc.prediction_log.close()


@pytest.fixture(scope="session")
def main_play(tmp_path_factory):
    """One smoke play (seed 7) to the reference, the starter, the mutants and the corpus at once (tests/plays.py)."""
    from plays import main_play_extras, play_in_process

    return play_in_process(tmp_path_factory.mktemp("main-play"), seed=7, with_mutants=True, extras=main_play_extras)
