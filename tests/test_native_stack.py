"""The native stack, for real: MLflow, the model server, Prometheus and Alertmanager as processes.

One sandbox goes through its life in the fixture (up, use, an edit that reloads, a restart, MLflow gone, a
component restarted, down) and records what it saw at each step; the tests check the records, in any order.
"""

from __future__ import annotations

import socket
import sqlite3
import time

import httpx
import pytest
from conftest import TEST_PORTS, port, valid_customer
from driver import Driver, copy_candidate, wait_for

from mlsandbox.layout import REPO_ROOT, Ports
from mlsandbox.stack.processes import group_members, stop

pytestmark = pytest.mark.stack
SECOND_HOME = Ports.block(port(15100))

# A rule file with one alert: promtool rejects it (a parse error), or Prometheus fails to evaluate it (every
# target's `up` matched on nothing: many-to-many).
RULE = """groups:
  - name: broken
    rules:
      - alert: {name}
        expr: {expr}
"""

METRICS_SETUP = """
from prometheus_client import make_asgi_app


def setup(app):
    app.mount("/metrics", make_asgi_app())


def on_startup(app):
    pass


def on_shutdown(app):
    pass
"""


def _predict(s: Driver, n: int = 1) -> list[str]:
    ids = []
    for i in range(n):
        r = httpx.post(f"{s.url('model_server')}/predict", json=valid_customer(i), timeout=10)
        assert r.status_code == 200, r.text
        ids.append(r.json()["request_id"])
    return ids


def _model_info(s: Driver):
    try:
        r = httpx.get(f"{s.url('model_server')}/model", timeout=5)
        return r.json() if r.status_code == 200 else None
    except httpx.HTTPError:
        return None


def _listening(pgids: set[int]) -> list[tuple[str, str, int]]:
    """(process, address, port) of every listening socket of the sandbox's process groups."""
    import psutil

    from mlsandbox.stack.processes import group_members

    out = []
    for pid in (pid for pgid in pgids for pid in group_members(pgid)):
        try:
            proc = psutil.Process(pid)
            out += [
                (proc.name(), c.laddr.ip, c.laddr.port)
                for c in proc.net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN
            ]
        except psutil.NoSuchProcess:
            continue
    return out


@pytest.fixture(scope="module")
def lived(tmp_path_factory):
    """What one sandbox showed through its life, step by step."""
    base = tmp_path_factory.mktemp("stack")
    # A machine cache of its own: this sandbox trains the model (no trained store to start from) and keeps it.
    machine = {"XDG_CACHE_HOME": str(base / "cache")}
    s = Driver(
        base / "run", TEST_PORTS, copy_candidate(REPO_ROOT / "starter_repo", base / "candidate"), extra_env=machine
    )
    seen: dict = {}
    seen["up"] = s.up("--no-load")
    try:
        seen["status"] = s.status()
        seen["listening"] = _listening({c["pid"] for c in seen["status"]})
        seen["second up"] = s.cli("up", "--candidate", str(s.candidate), "--no-load", check=False)
        mlflow = s.url("mlflow")
        for alias in ("champion", "challenger"):
            seen[alias] = httpx.get(
                f"{mlflow}/api/2.0/mlflow/registered-models/alias",
                params={"name": "churn-classifier", "alias": alias},
                timeout=10,
            ).json()
        info = _model_info(s)
        seen["model"] = info
        seen["run"] = httpx.get(
            f"{mlflow}/api/2.0/mlflow/runs/get", params={"run_id": info["run_id"]}, timeout=10
        ).json()["run"]
        seen["artifacts"] = httpx.get(
            f"{mlflow}/api/2.0/mlflow/artifacts/list",
            params={"run_id": info["run_id"], "path": "reference"},
            timeout=10,
        ).json()
        _predict(s, 3)
        seen["bare target"] = wait_for(
            lambda: s.target_health("model-server") == "down" and "down", 30, what="model-server target down"
        )
        seen["prometheus target"] = s.target_health("prometheus")
        seen["alertmanager target"] = wait_for(
            lambda: s.target_health("alertmanager") == "up" and "up", 30, what="alertmanager target up"
        )

        (s.candidate / "app" / "monitoring.py").write_text(METRICS_SETUP)
        seen["target after edit"] = wait_for(
            lambda: s.target_health("model-server") == "up" and "up", 60, what="model-server target up after edit"
        )

        broken = s.candidate / "alerts" / "broken.yml"
        broken.write_text(RULE.format(name="Unparsable", expr="rate(up[1m]"))
        seen["reload rejected"] = s.cli("reload", check=False)
        broken.write_text(RULE.format(name="ManyToMany", expr="up / on() up > 1"))
        seen["reload failing"] = s.cli("reload", check=False)
        broken.unlink()
        seen["reload clean"] = s.cli("reload", check=False)

        ids = _predict(s, 20)
        for i, rid in enumerate(ids):
            httpx.post(f"{s.url('model_server')}/feedback", json={"request_id": rid, "churned": i % 2 == 0}, timeout=10)
        s.down()
        seen["again"] = s.up("--no-load")  # same run directory: MLflow keeps its database, no second training
        seen["late label"] = httpx.post(
            f"{s.url('model_server')}/feedback", json={"request_id": ids[0], "churned": True}, timeout=10
        )
        db = sqlite3.connect(s.layout.predictions)
        labelled = dict(db.execute("SELECT request_id, true_label FROM feedback"))
        seen["labels kept"] = {rid: labelled.get(rid) for rid in ids} == {
            rid: int(i % 2 == 0) for i, rid in enumerate(ids)
        }

        server = next(c for c in s.status() if c["name"] == "model-server")
        stop(server["pid"])  # killed: the candidate broke it, say
        seen["status with the server killed"] = {c["name"]: c["state"] for c in s.status()}
        seen["restart"] = s.cli("restart", "model-server")
        seen["server after restart"] = _model_info(s)

        mlflow_pid = next(c["pid"] for c in s.status() if c["name"] == "mlflow")
        stop(mlflow_pid)
        log = s.layout.log("model-server")
        before = log.read_text().count("serving the local copy")
        (s.candidate / "app" / "__init__.py").write_text("# touched\n")  # a save triggers a reload
        wait_for(lambda: log.read_text().count("serving the local copy") > before, 60, what="fallback log line")
        seen["fallback"] = wait_for(lambda: _model_info(s), 30, what="server back after reload")
        seen["fallback predictions"] = len(_predict(s, 2))

        seen["pgids"] = {c["pid"] for c in s.status()}
    finally:
        seen["down"] = s.cli("down", check=False)
    time.sleep(0.5)
    seen["left"] = [pid for pgid in seen.get("pgids", ()) for pid in group_members(pgid)]
    seen["status after down"] = s.status()
    # A second home on the same machine starts from the trained store instead of training again.
    second = Driver(base / "second", SECOND_HOME, s.candidate, extra_env=machine)
    try:
        seen["second home"] = second.up("--no-load")
        seen["second home's model"] = _model_info(second)
    finally:
        second.down()
    return seen


def test_up_prints_every_url_and_all_components_are_healthy(lived):
    for number in (TEST_PORTS.mlflow, TEST_PORTS.model_server, TEST_PORTS.prometheus, TEST_PORTS.alertmanager):
        assert f"http://127.0.0.1:{number}" in lived["up"].stdout
    # The console's address carries its token.
    assert f"http://127.0.0.1:{TEST_PORTS.console}/?token=" in lived["up"].stdout
    rows = lived["status"]
    assert {r["name"] for r in rows} == {
        "mlflow",
        "console",
        "model-server",
        "prometheus",
        "alertmanager",
        "alert-receiver",
    }
    assert all(r["healthy"] for r in rows), rows


def test_nothing_of_the_sandbox_listens_beyond_loopback(lived):
    listening = lived["listening"]
    ports = {port for _, _, port in listening}
    assert {TEST_PORTS.model_server, TEST_PORTS.prometheus, TEST_PORTS.console, TEST_PORTS.mlflow} <= ports
    assert [entry for entry in listening if entry[1] != "127.0.0.1"] == []


def test_a_second_up_on_a_running_run_directory_is_refused_with_one_line(lived):
    result = lived["second up"]
    assert result.returncode != 0 and "already" in result.stderr and result.stderr.strip().count("\n") == 0


def test_reload_names_the_rule_promtool_rejects_and_the_rule_that_fails_at_evaluation(lived):
    rejected, failing, clean = lived["reload rejected"], lived["reload failing"], lived["reload clean"]
    assert rejected.returncode != 0 and "broken.yml" in rejected.stderr, rejected.stderr
    assert "rules not loaded" in rejected.stderr and "Traceback" not in rejected.stderr
    assert failing.returncode != 0, failing.stdout + failing.stderr
    assert "1 rules fail at evaluation" in failing.stderr and "broken/ManyToMany: " in failing.stderr
    assert "many-to-many" in failing.stderr
    assert clean.returncode == 0 and "every rule evaluates" in clean.stdout, clean.stderr


def test_mlflow_has_the_champion_and_the_server_serves_it(lived):
    version = lived["champion"]["model_version"]["version"]
    assert lived["model"]["version"] == version and lived["model"]["source"] == "mlflow"
    # The worse version a scenario's model release serves is registered beside it, after it.
    assert int(lived["challenger"]["model_version"]["version"]) > int(version)
    metrics = {m["key"]: m["value"] for m in lived["run"]["data"]["metrics"]}
    assert float(metrics["holdout_auc"]) >= 0.80
    assert [f["path"] for f in lived["artifacts"]["files"]] == ["reference/reference.csv"]


def test_bare_starter_target_is_down_because_it_has_no_metrics(lived):
    assert lived["bare target"] == "down" and lived["prometheus target"] == "up"
    assert lived["alertmanager target"] == "up"


def test_saving_a_metrics_endpoint_reloads_the_server_and_the_target_comes_up(lived):
    assert lived["target after edit"] == "up"


def test_a_new_home_on_the_same_machine_serves_the_model_trained_before_without_training(lived):
    assert "training the churn model" in lived["up"].stdout
    assert "training the churn model" not in lived["second home"].stdout
    assert "the model this machine trained before" in lived["second home"].stdout
    assert lived["second home's model"]["source"] == "mlflow"
    assert lived["second home's model"]["version"] == lived["model"]["version"]


def test_restart_keeps_every_prediction_and_label(lived):
    assert "training the churn model" not in lived["again"].stdout
    assert lived["late label"].status_code == 200 and lived["late label"].json()["label_delay_seconds"] > 0
    assert lived["labels kept"]


def test_a_killed_server_shows_as_stopped_and_restart_brings_it_back(lived):
    assert lived["status with the server killed"]["model-server"] == "stopped"
    assert lived["status with the server killed"]["prometheus"] == "healthy"
    assert lived["server after restart"]["source"] == "mlflow"


def test_without_mlflow_the_server_falls_back_to_its_local_copy_and_says_so(lived):
    assert lived["fallback"]["source"] == "local-copy" and lived["fallback"]["version"] == "1"
    assert lived["fallback predictions"] == 2


def test_down_leaves_no_process_and_frees_every_port(lived):
    assert lived["down"].returncode == 0
    assert lived["left"] == []
    for _, number in TEST_PORTS.items():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", number))
    assert lived["status after down"] == []
