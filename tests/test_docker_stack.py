"""The Docker path for real: `mlsandbox docker up --local-images` (what `make docker-local` runs) builds the
images, starts compose.yaml with the local-images override, and the load service plays `smoke` against the
reference solution. Checked from the host, through published ports and the docker CLI; then `down --volumes`
must leave nothing behind.

A Docker engine is used when one answers; otherwise the command starts a private dockerd under run/docker and
`down` stops it again. The first run builds the images (a few minutes); later runs reuse them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from stack_helpers import REPO, copy_candidate, wait_for

from load.truth import read_ledger
from mlsandbox.docker_engine import PrivateEngine, answers
from mlsandbox.docker_stack import DockerRun, DockerSandbox

pytestmark = [pytest.mark.stack, pytest.mark.docker, pytest.mark.timeout(2400)]

PROJECT = "mlsandbox-test"
# smoke is cut for the native tests' 1 s scrape; compose's Prometheus scrapes every 5 s, so it is played at half
# speed (180 s): its shortest phase (8 s) then spans three scrapes.
SPEED = "0.5"
# Off the defaults and off the native tests' ports.
PORTS = {
    "MODEL_SERVER_PORT": "28100",
    "MLFLOW_PORT": "25100",
    "PROMETHEUS_PORT": "29190",
    "ALERTMANAGER_PORT": "29193",
    "LOCUST_PORT": "28189",
    "ALERT_RECEIVER_PORT": "29195",
    "GRAFANA_PORT": "23100",
}


class DockerSession:
    def __init__(self, run_dir, candidate):
        self.run_dir, self.candidate = run_dir, candidate
        self.env = {k: v for k, v in os.environ.items() if k not in {"MLSANDBOX_RUN_DIR", "COMPOSE_PROJECT_NAME"}}
        self.env.update(PORTS)

    def cli(self, *args: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "mlsandbox.cli", "docker", *args, "--run-dir", str(self.run_dir)],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"mlsandbox docker {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def sandbox(self) -> DockerSandbox:
        state = DockerRun.load(self.run_dir / "docker-stack.json")
        assert state is not None, "mlsandbox docker up saved no state"
        return state.sandbox(say=lambda _: None)

    def url(self, variable: str) -> str:
        return f"http://127.0.0.1:{PORTS[variable]}"

    def prom_query(self, expr: str) -> list:
        r = httpx.get(f"{self.url('PROMETHEUS_PORT')}/api/v1/query", params={"query": expr}, timeout=10)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def timeline(self) -> dict | None:
        result = self.sandbox().compose(
            "exec", "-T", "load", "cat", "/truth/scenario/timeline.json", capture=True, check=False
        )
        return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else None


@pytest.fixture(scope="module")
def docker_session(tmp_path_factory):
    base = tmp_path_factory.mktemp("docker")
    s = DockerSession(base / "run", copy_candidate(REPO / "reference_solution", base / "candidate"))
    private = PrivateEngine(REPO / "run" / "docker")
    s.private, s.engine_was_running = private, answers(None) or answers(private.host)
    try:
        s.up = s.cli(
            "up",
            "--local-images",
            "--candidate",
            str(s.candidate),
            "--scenario",
            "smoke",
            "--speed",
            SPEED,
            "--project",
            PROJECT,
        )
        s.states = s.cli("status").stdout
        wait_for(
            lambda: (s.timeline() or {}).get("status") == "finished",
            400,
            interval=3,
            what="the load service to finish smoke",
        )
        # Two scrapes (5 s apart in compose) after the last request, so that Prometheus holds the final counts.
        time.sleep(12)
        yield s
    finally:
        if (s.run_dir / "docker-stack.json").exists():
            s.cli("down", "--volumes", check=False)
        if not s.engine_was_running and private.pid() is not None:
            private.stop()


def test_every_service_is_healthy_and_grafana_is_left_out(docker_session):
    states = dict(line.split(None, 1) for line in docker_session.states.strip().splitlines())
    assert states.pop("trainer") == "done"
    assert "grafana" not in states
    assert set(states) == {"mlflow", "model-server", "load", "alert-receiver", "alertmanager", "prometheus"}
    assert set(states.values()) == {"healthy"}, states


def test_prometheus_scrapes_the_model_server_and_saw_the_scenarios_traffic(docker_session):
    targets = httpx.get(f"{docker_session.url('PROMETHEUS_PORT')}/api/v1/targets", timeout=10).json()
    health = {t["labels"]["job"]: t["health"] for t in targets["data"]["activeTargets"]}
    assert health["model-server"] == "up", health
    sandbox = docker_session.sandbox()
    session = sandbox.collect_session(docker_session.run_dir / "collected")
    ledger = read_ledger(session)
    sent = sum(r.requests for r in ledger)
    served = docker_session.prom_query('sum(http_requests_total{endpoint=~"/predict.*"})')
    assert sent > 1000
    assert served and float(served[0]["value"][1]) == pytest.approx(sent, abs=2), (sent, served)


def test_the_reference_solution_grades_on_the_docker_stack(docker_session):
    result = docker_session.cli("grade")
    report = json.loads((docker_session.run_dir / "docker-session" / "report" / "report.json").read_text())
    items = {i["key"]: i for i in report["items"]}
    lost = {
        k: [
            (c["name"], c["points"], c["max_points"], c["summary"])
            for c in i["checks"]
            if c["points"] < c["max_points"]
        ]
        for k, i in items.items()
    }
    assert report["score"] == 100, (result.stdout, {k: v for k, v in lost.items() if v})


def test_model_server_container_cannot_read_the_hidden_truth(docker_session):
    sandbox = docker_session.sandbox()
    containers = {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in sandbox.containers()}
    truth_volume = next(m["Name"] for m in containers["load"]["Mounts"] if m["Destination"] == "/truth")
    assert truth_volume not in {m.get("Name") for m in containers["model-server"]["Mounts"]}
    found = sandbox.compose(
        "exec",
        "-T",
        "model-server",
        "sh",
        "-c",
        "find / -xdev \\( -name timeline.json -o -name ledger.csv \\) 2>/dev/null; "
        "find /candidate /data -name 'timeline.json' -o -name 'ledger.csv'",
        capture=True,
        check=False,
    )
    assert found.stdout.strip() == "", found.stdout


def test_editing_the_mounted_candidate_folder_reloads_the_server(docker_session):
    main = docker_session.candidate / "app" / "main.py"
    main.write_text(
        main.read_text() + '\n\n@app.get("/reload-probe")\ndef reload_probe():\n    return {"reloaded": True}\n'
    )
    url = f"{docker_session.url('MODEL_SERVER_PORT')}/reload-probe"

    def probe():
        try:
            return httpx.get(url, timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(probe, 60, interval=1, what="the model server to reload the edited candidate file")


def test_status_finds_a_stack_started_without_mlsandbox(docker_session, tmp_path):
    # As after a plain `docker compose up`: no state file; the engine from DOCKER_HOST, the project from the
    # environment (else .env).
    sandbox = docker_session.sandbox()
    env = {**docker_session.env, **sandbox.engine.env, "COMPOSE_PROJECT_NAME": PROJECT}
    result = subprocess.run(
        [sys.executable, "-m", "mlsandbox.cli", "docker", "status", "--run-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    states = dict(line.split(None, 1) for line in result.stdout.strip().splitlines())
    assert states["model-server"] == "healthy" and states["trainer"] == "done"


def test_down_with_volumes_leaves_no_container_network_or_volume(docker_session):
    sandbox = docker_session.sandbox()
    assert sandbox.leftovers()["volumes"], "the stack should have volumes before down"
    docker_session.cli("down", "--volumes", "--keep-engine")
    assert sandbox.leftovers() == {"containers": [], "networks": [], "volumes": []}
    assert not (docker_session.run_dir / "docker-stack.json").exists()


def test_a_private_engine_started_for_the_test_stops_and_leaves_no_process(docker_session):
    if docker_session.engine_was_running:
        pytest.skip("a Docker engine was already running before the test; it is left running")
    private = docker_session.private
    assert private.pid() is not None, "the test started a private engine; it should still run here"
    private.stop()
    assert not answers(private.host)
    # dockerd, its containerd and any container shim all name the engine's directory on their command line.
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if str(private.root) in " ".join(p.info["cmdline"] or [])]
    assert left == []
