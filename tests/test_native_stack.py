"""The native stack, for real: MLflow, the model server, Prometheus and Alertmanager as processes.

One stack for the module; the tests run in order (up, use, reload, restart, fall back, down).
"""

from __future__ import annotations

import socket
import sqlite3
import time

import httpx
import pytest
from conftest import valid_customer
from stack_helpers import REPO, TEST_PORTS, SandboxUnderTest, copy_candidate, pids_in_groups, wait_for

pytestmark = pytest.mark.stack

METRICS_SETUP = """
from prometheus_client import make_asgi_app


def setup(app):
    app.mount("/metrics", make_asgi_app())


def on_startup(app):
    pass


def on_shutdown(app):
    pass
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("stack")
    s = SandboxUnderTest(run_dir=base / "run", candidate=copy_candidate(REPO / "starter_repo", base / "candidate"))
    s.up_result = s.up("--no-load")
    yield s
    s.cli("down", check=False)


def _predict(stack, n=1):
    ids = []
    for i in range(n):
        r = httpx.post(f"{stack.url('model_server')}/predict", json=valid_customer(i), timeout=10)
        assert r.status_code == 200, r.text
        ids.append(r.json()["request_id"])
    return ids


def test_up_prints_every_url_and_all_components_are_healthy(stack):
    for port in ("15000", "18000", "19090", "19093"):
        assert f"http://127.0.0.1:{port}" in stack.up_result.stdout
    rows = stack.status()
    assert {r["name"] for r in rows} == {"mlflow", "model-server", "prometheus", "alertmanager", "alert-receiver"}
    assert all(r["healthy"] for r in rows), rows


def test_mlflow_has_the_champion_and_the_server_serves_it(stack):
    r = httpx.get(
        f"{stack.url('mlflow')}/api/2.0/mlflow/registered-models/alias",
        params={"name": "churn-classifier", "alias": "champion"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    version = r.json()["model_version"]["version"]
    info = httpx.get(f"{stack.url('model_server')}/model", timeout=10).json()
    assert info["version"] == version and info["source"] == "mlflow"
    run = httpx.get(
        f"{stack.url('mlflow')}/api/2.0/mlflow/runs/get", params={"run_id": info["run_id"]}, timeout=10
    ).json()["run"]
    assert float({m["key"]: m["value"] for m in run["data"]["metrics"]}["holdout_auc"]) >= 0.80
    artifacts = httpx.get(
        f"{stack.url('mlflow')}/api/2.0/mlflow/artifacts/list",
        params={"run_id": info["run_id"], "path": "reference"},
        timeout=10,
    ).json()
    assert [f["path"] for f in artifacts["files"]] == ["reference/reference.csv"]


def test_bare_starter_target_is_down_because_it_has_no_metrics(stack):
    _predict(stack, 3)
    wait_for(lambda: stack.target_health("model-server") == "down", 30, what="model-server target down")
    assert stack.target_health("prometheus") == "up"
    wait_for(lambda: stack.target_health("alertmanager") == "up", 30, what="alertmanager target up")


def test_saving_a_metrics_endpoint_reloads_the_server_and_the_target_comes_up(stack):
    (stack.candidate / "app" / "monitoring.py").write_text(METRICS_SETUP)
    wait_for(lambda: stack.target_health("model-server") == "up", 60, what="model-server target up after edit")
    wait_for(lambda: stack.prom_query('up{job="model-server"} == 1'), 30, what="up == 1 in Prometheus")


def test_restart_keeps_every_prediction_and_label(stack):
    ids = _predict(stack, 20)
    for i, rid in enumerate(ids):
        r = httpx.post(
            f"{stack.url('model_server')}/feedback", json={"request_id": rid, "churned": i % 2 == 0}, timeout=10
        )
        assert r.status_code == 200, r.text
    stack.down()
    again = stack.up("--no-load")  # same run directory: MLflow keeps its database, so no second training
    assert "training the churn model" not in again.stdout
    # Labels posted before the restart still join their predictions.
    r = httpx.post(f"{stack.url('model_server')}/feedback", json={"request_id": ids[0], "churned": True}, timeout=10)
    assert r.status_code == 200 and r.json()["label_delay_seconds"] > 0
    db = sqlite3.connect(stack.run_dir / "predictions.sqlite")
    labelled = dict(db.execute("SELECT request_id, true_label FROM feedback"))
    assert {rid: labelled[rid] for rid in ids} == {rid: int(i % 2 == 0) for i, rid in enumerate(ids)}


def test_without_mlflow_the_server_falls_back_to_its_local_copy_and_says_so(stack):
    mlflow = next(c for c in stack.status() if c["name"] == "mlflow")
    from mlsandbox.processes import stop

    stop(mlflow["pid"])
    log = stack.run_dir / "logs" / "model-server.log"
    before = log.read_text().count("serving the local copy")
    (stack.candidate / "app" / "__init__.py").write_text("# touched\n")  # a save triggers a reload
    wait_for(lambda: log.read_text().count("serving the local copy") > before, 60, what="fallback log line")
    info = wait_for(lambda: _model_info(stack), 30, what="server back after reload")
    assert info["source"] == "local-copy" and info["version"] == "1"
    assert len(_predict(stack, 2)) == 2


def _model_info(stack):
    try:
        r = httpx.get(f"{stack.url('model_server')}/model", timeout=5)
        return r.json() if r.status_code == 200 else None
    except httpx.HTTPError:
        return None


def test_down_leaves_no_process_and_frees_every_port(stack):
    pgids = {c["pid"] for c in stack.status()}
    stack.down()
    time.sleep(0.5)
    assert pids_in_groups(pgids) == []
    for port in TEST_PORTS.values():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(port)))
    assert stack.status() == []
