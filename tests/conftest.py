"""Shared fixtures: a trained model without MLflow, the starter app in-process, and customer payloads."""

from __future__ import annotations

import importlib
import os
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


def _default_collectors() -> set:
    from prometheus_client import REGISTRY

    return set(REGISTRY._collector_to_names)


# What prometheus-client registers itself (process, platform, gc): kept when a candidate's metrics are cleared.
DEFAULT_COLLECTORS = _default_collectors()
# Every port a test uses is moved by this much: a second checkout's tests can run beside this one's.
PORT_OFFSET = int(os.environ.get("MLSANDBOX_TEST_PORT_OFFSET", "0"))


def port(base: int) -> int:
    """A test's port (or the first of its block), moved by MLSANDBOX_TEST_PORT_OFFSET."""
    return base + PORT_OFFSET


# The native stack tests' ports: off the defaults, so that tests never collide with a sandbox someone is using; a
# block per module, so that modules can run side by side in parallel workers.
TEST_PORTS = Ports.block(port(15000))  # test_native_stack (and its second home at 15100)
INTERRUPTED_PORTS = Ports.block(port(15200))  # test_interrupted_up
REFERENCE_PORTS = Ports.block(port(15300))  # test_reference_stack
TRAFFIC_PORTS = Ports.block(port(15400))  # test_traffic_stack
# The levels' plays use blocks of their own from 32500 (junior) and 32600 (senior): tests/plays.py.

# --- parallel workers (`make test`: pytest-xdist, --dist loadscope) ----------------------------------------------
# Tests that start processes share a stack per module (a module-scoped fixture), or the session's main play: a
# module (or the modules sharing a play) runs whole in one worker, on ports of its own. Groups start longest first
# (a worker that takes the Docker path is busy for its whole length), from their measured length on this
# project's 2-core machine; the unit tests fill the gaps.
# Modules reading the session's main play.
SHARED_PLAY = {"test_grader": "main-play", "test_corpus": "main-play", "test_levels_main_play": "main-play"}
# Modules that need what another's module just left: the Kubernetes pods under podman run on the images the Docker
# test has just built, in its worker and after it (the groups keep their modules' order), so that no other engine
# uses the machine's image store meanwhile.
AFTER = {"test_kube_podman": "test_docker_stack"}
GROUP_SECONDS = {
    "test_docker_stack": 600 + 190,
    "main-play": 420,
    "test_course": 330,
    "test_sessions": 280,
    "test_incident": 240,
    "test_hardening": 200,
    "test_corpus_surprise": 180,
    "test_level_senior_play": 230,
    "test_level_junior_play": 210,
    "test_reference_stack": 150,
    "test_traffic_stack": 110,
    "test_native_stack": 80,
    "test_interrupted_up": 30,
}


def group(nodeid: str) -> str:
    """The work unit a test belongs to: its module, or the play its module shares."""
    module = Path(nodeid.split("::")[0]).stem
    return SHARED_PLAY.get(module) or AFTER.get(module) or module


def pytest_collection_modifyitems(config, items):
    # Stable: tests keep their order within a group.
    items.sort(key=lambda item: -GROUP_SECONDS.get(group(item.nodeid), 0))


def pytest_xdist_make_scheduler(config, log):
    """xdist's scheduling by scope, with a scope per group (pytest-xdist's own `xdist_group` marker does not reach
    pytest 9's test ids)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group(nodeid)

    return ByGroup(config, log)


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
    """Import `app.main` from a candidate folder (each folder has its own `app` package), its metrics in a
    default registry cleared of the last candidate's (a worker may import several)."""
    from prometheus_client import REGISTRY

    for collector in set(REGISTRY._collector_to_names) - DEFAULT_COLLECTORS:
        REGISTRY.unregister(collector)
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
