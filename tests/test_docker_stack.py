"""The Docker path for real: `mlsandbox up --docker --local-images` (what `make docker-local` runs) builds the
images, starts compose.yaml with the local-images override, and the load service plays `smoke` against the
reference solution. Then, on the same stack: grading, the hidden truth out of the server's reach, a reload on
save, a stack found without its state file, an outage played with `scenario play`, an interview session as a
compose project of its own (started, played, ended, archived, re-graded), and `down --volumes`.

The fixture goes through all of it once and records what it saw; the tests check the records, in any order.
A Docker engine is used when one answers; otherwise the command starts a private dockerd under run/docker and
`down` stops it again. The first run builds the images (a few minutes); later runs reuse them.
"""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import psutil
import pytest
from conftest import port
from driver import MLSANDBOX, Driver, copy_candidate, run_command, wait_for

from load.truth import read_ledger, read_timeline
from mlsandbox.layout import REPO_ROOT, Ports
from mlsandbox.sessions.store import SessionRecord
from mlsandbox.stack.backends import open_sandbox
from mlsandbox.stack.docker.backend import engine_root
from mlsandbox.stack.docker.compose import ComposeProject
from mlsandbox.stack.docker.engine import PrivateEngine, answers

pytestmark = [pytest.mark.stack, pytest.mark.docker, pytest.mark.timeout(2400)]

PROJECT = "mlsandbox-test"
# smoke is cut for the native tests' 1 s scrape; compose's Prometheus scrapes every 5 s, so it is played at half
# speed (180 s): its shortest phase (8 s) then spans three scrapes.
SPEED = "0.5"
PORTS = Ports.block(port(25100))  # off the defaults and off the native tests' ports
OUTAGE = """name: outage-test
description: a short outage, under compose
phases:
  - {name: before, duration_seconds: 6, rate: 5}
  - {name: outage, duration_seconds: 12, rate: 5, injections: [{kind: outage}]}
  - {name: after, duration_seconds: 8, rate: 5}
"""
# A short play for the compose session: compose scrapes every 5 s, so each phase spans several scrapes.
DRIFT = """name: drift-test
description: a baseline, then monthly charges drift, under compose
ground_truth: {fraction: 0.5, delay_seconds: 2}
phases:
  - {name: baseline, duration_seconds: 25, rate: 10}
  - name: drift
    duration_seconds: 25
    rate: 10
    injections: [{kind: covariate_drift, feature: monthly_charges, shift: 40, onset: sudden}]
  - {name: recovery, duration_seconds: 10, rate: 10}
"""
SESSION_PORTS = port(25200)


def _project(s: Driver):
    from mlsandbox.config import StackConfig

    sandbox = open_sandbox(StackConfig(run_dir=s.run_dir), say=lambda _: None)
    assert sandbox is not None and sandbox.backend == "docker", "no Docker sandbox in the run directory"
    return sandbox.compose_project()


def _probe(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def _host_sockets(s: Driver) -> list[tuple[str, str, int]]:
    """(process, address, port) of each listening socket on the host that serves the stack: the engine's port
    proxies and the console."""
    import psutil

    from mlsandbox.stack.processes import group_members

    console = {
        pid
        for c in json.loads(s.cli("status", "--json").stdout)
        if c["name"] == "console"
        for pid in group_members(c["pid"])
    }
    out = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] != "docker-proxy" and proc.pid not in console:
            continue
        try:
            out += [
                (proc.info["name"], c.laddr.ip, c.laddr.port)
                for c in proc.net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN
            ]
        except psutil.NoSuchProcess:
            continue
    return out


@pytest.fixture(scope="module")
def lived(tmp_path_factory):
    base = tmp_path_factory.mktemp("docker")
    s = Driver(base / "run", PORTS, copy_candidate(REPO_ROOT / "reference_solution", base / "candidate"), docker=True)
    private = PrivateEngine(engine_root())
    seen: dict = {"engine was running": answers(None) or answers(private.host), "private": private}
    try:
        seen["up"] = s.up("--scenario", "smoke", "--speed", SPEED, "--project", PROJECT, timeout=1800)
        seen["status"] = s.cli("status").stdout
        project = _project(s)
        seen["urls"] = {
            name: project.published_url(name, port) for name, port in [("prometheus", 9090), ("model-server", 8000)]
        }
        wait_for(
            lambda: (s.cli("scenario", "status", "--json", check=False).stdout or "").find('"finished"') > 0,
            400,
            interval=3,
            what="the load service to finish smoke",
        )
        # Two scrapes (5 s apart in compose) after the last request, so that Prometheus holds the final counts.
        time.sleep(12)
        seen["targets"] = {
            t["labels"]["job"]: t["health"]
            for t in httpx.get(f"{seen['urls']['prometheus']}/api/v1/targets", timeout=10).json()["data"][
                "activeTargets"
            ]
        }
        collected = project.collect_session(base / "collected")
        # The rows of this play: the load service's volume keeps the ledger of a play that a killed run left there
        # (the timeline is the new play's; the grader reads the ledger within it, as this does).
        played = read_timeline(collected).phases
        seen["ledger"] = [
            r for r in read_ledger(collected) if played[0].start - 1 <= r.second <= (played[-1].end or time.time()) + 1
        ]
        seen["served"] = s.prom_query('sum(http_requests_total{endpoint=~"/predict.*"})')
        seen["grade"] = s.cli("grade")
        seen["report"] = json.loads((s.layout.report / "report.json").read_text())

        containers = {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in project.containers()}
        seen["published"] = [
            (service, binding["HostIp"], binding["HostPort"])
            for service, c in containers.items()
            for bindings in (c["NetworkSettings"]["Ports"] or {}).values()
            for binding in bindings or []
        ]
        seen["host sockets"] = _host_sockets(s)
        seen["truth volume"] = next(m["Name"] for m in containers["load"]["Mounts"] if m["Destination"] == "/truth")
        seen["server volumes"] = {m.get("Name") for m in containers["model-server"]["Mounts"]}
        seen["truth in the server"] = project.compose(
            "exec",
            "-T",
            "model-server",
            "sh",
            "-c",
            "find / -xdev \\( -name timeline.json -o -name ledger.csv \\) 2>/dev/null; "
            "find /candidate /data -name 'timeline.json' -o -name 'ledger.csv'",
            capture=True,
            check=False,
        ).stdout

        main = s.candidate / "app" / "main.py"
        main.write_text(
            main.read_text() + '\n\n@app.get("/reload-probe")\ndef reload_probe():\n    return {"reloaded": True}\n'
        )
        seen["reloaded"] = wait_for(
            lambda: _probe(f"{s.url('model_server')}/reload-probe"),
            60,
            interval=1,
            what="the model server to reload the edited candidate file",
        )

        # As after a plain `docker compose up`: no state file; the engine from DOCKER_HOST, the project from the
        # environment (else .env).
        env = {**s.env, **project.engine.env, "COMPOSE_PROJECT_NAME": PROJECT}
        env.pop("MLSANDBOX_RUN_DIR")
        seen["plain status"] = subprocess.run(
            [*MLSANDBOX, "status", "--run-dir", str(base / "elsewhere")],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

        outage = base / "outage.yaml"
        outage.write_text(OUTAGE)
        probes = []
        play = subprocess.Popen(
            [*MLSANDBOX, "scenario", "play", str(outage)],
            cwd=REPO_ROOT,
            env=s.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while play.poll() is None:
            probes.append((time.time(), _probe(f"{s.url('model_server')}/health")))
            time.sleep(0.5)
        seen["outage play"] = (play.returncode, play.stderr.read()[-2000:])
        seen["outage timeline"] = json.loads(s.cli("scenario", "status", "--json").stdout)
        seen["outage probes"] = probes
        seen["outage ledger"] = read_ledger(project.collect_session(base / "after-outage"))

        # An interview session under compose, on the same engine: a project of its own, archived at the end.
        session_env = {**s.env, "MLSANDBOX_SESSIONS_DIR": str(base / "sessions")}

        def session_cli(*args: str) -> subprocess.CompletedProcess:
            return run_command([*MLSANDBOX, *args], cwd=REPO_ROOT, env=session_env, timeout=1200)

        drift = base / "drift.yaml"
        drift.write_text(DRIFT)
        # The machine's image store may hold this project from an earlier run killed before `session end` (stopped,
        # with its volumes): it is no session of this checkout's, and a fresh session starts fresh.
        label = "label=com.docker.compose.project=mlsandbox-dsess"
        if stale := project.docker("ps", "--all", "--quiet", "--filter", label).stdout.split():
            project.docker("rm", "--force", *stale)
        if volumes := project.docker("volume", "ls", "--quiet", "--filter", label).stdout.split():
            project.docker("volume", "rm", *volumes)
        seen["session start"] = session_cli(
            "session",
            "start",
            "dsess",
            "--docker",
            "--local-images",
            "--no-load",
            "--candidate",
            str(REPO_ROOT / "reference_solution"),
            "--ports",
            str(SESSION_PORTS),
        )
        started = seen["session start"]
        assert started.returncode == 0, (
            f"session start: {started.returncode}\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}"
        )
        seen["session play"] = session_cli("scenario", "play", str(drift), "--session", "dsess")
        # The candidate's room: a container that mounts the workspace and its own files only.
        shell = lambda *command: session_cli("session", "shell", "--session", "dsess", "--", *command)  # noqa: E731
        token = json.loads((base / "sessions" / "dsess" / "session.json").read_text())["room"]["token"]
        room_door = f"http://127.0.0.1:{Ports.block(SESSION_PORTS).room}"
        seen["room"] = {
            "ls": shell("ls"),
            "the scenarios": shell("ls", "/opt/mlsandbox/load/scenarios"),
            "the player": shell("python", "-c", "import load.player"),
            "the truth": shell("sh", "-c", "find / -name timeline.json -o -name ledger.csv 2>/dev/null | grep ."),
            "its own server": shell(
                "python",
                "-c",
                "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/health').read())",
            ),
            "proxied health": httpx.get(f"{room_door}/model-server/health?token={token}", timeout=10),
            "no token": httpx.get(f"{room_door}/model-server/health", timeout=10, follow_redirects=False).status_code,
        }
        time.sleep(12)
        seen["session end"] = session_cli("session", "end", "--session", "dsess")
        seen["session regrade"] = session_cli("grade", "--session", "dsess", "--json")
        seen["session dir"] = base / "sessions" / "dsess"
        seen["session leftovers"] = ComposeProject(
            project.engine, True, "mlsandbox-dsess", {}, lambda _: None
        ).leftovers()

        seen["volumes before down"] = project.leftovers()["volumes"]
        seen["down"] = s.cli("down", "--volumes", "--keep-engine", timeout=600)
        seen["leftovers"] = project.leftovers()
        seen["state after down"] = s.layout.state.exists()
    finally:
        if s.layout.state.exists():
            s.cli("down", "--volumes", check=False, timeout=600)
        if not seen["engine was running"] and private.pid() is not None:
            private.stop()
            seen["engine answers after stop"] = answers(private.host)
            # dockerd, its containerd and any container shim all name the engine's directory on their command line.
            seen["engine processes left"] = [
                p.pid
                for p in psutil.process_iter(["cmdline"])
                if str(private.root) in " ".join(p.info["cmdline"] or [])
            ]
    return seen


def test_every_published_port_listens_on_loopback_only(lived):
    published = lived["published"]
    assert {service for service, _, _ in published} >= {"model-server", "prometheus", "mlflow"}, published
    assert {ip for _, ip, _ in published} == {"127.0.0.1"}, published
    sockets = lived["host sockets"]
    assert any(name != "docker-proxy" for name, _, _ in sockets), sockets  # the console
    assert {ip for _, ip, _ in sockets} == {"127.0.0.1"}, sockets


def test_every_service_is_healthy_and_grafana_is_left_out(lived):
    states = {}
    for line in lived["status"].strip().splitlines():
        name, *_, state = line.split()
        states[name] = state
    assert states.pop("trainer") == "done"
    assert "grafana" not in states
    # The console runs on the host, one per machine, under compose too.
    assert set(states) == {"console", "mlflow", "model-server", "load", "alert-receiver", "alertmanager", "prometheus"}
    assert set(states.values()) == {"healthy"}, states
    assert f"http://127.0.0.1:{PORTS.console}/?token=" in lived["up"].stdout


def test_prometheus_scrapes_the_model_server_and_saw_the_scenarios_traffic(lived):
    assert lived["targets"]["model-server"] == "up", lived["targets"]
    sent = sum(r.requests for r in lived["ledger"])
    assert sent > 1000
    assert lived["served"] and float(lived["served"][0]["value"][1]) == pytest.approx(sent, abs=2)


def test_the_reference_solution_grades_on_the_docker_stack(lived):
    report = lived["report"]
    lost = {
        i["key"]: [(c["name"], c["points"], c["summary"]) for c in i["checks"] if c["points"] < c["max_points"]]
        for i in report["items"]
    }
    assert report["score"] == 100, (lived["grade"].stdout, {k: v for k, v in lost.items() if v})


def test_model_server_container_cannot_read_the_hidden_truth(lived):
    assert lived["truth volume"] not in lived["server volumes"]
    assert lived["truth in the server"].strip() == ""


def test_editing_the_mounted_candidate_folder_reloads_the_server(lived):
    assert lived["reloaded"]


def test_status_finds_a_stack_started_without_mlsandbox(lived):
    result = lived["plain status"]
    assert result.returncode == 0, result.stderr
    states = {line.split()[0]: line.split()[-1] for line in result.stdout.strip().splitlines()}
    assert states["model-server"] == "healthy" and states["trainer"] == "done"


def test_an_outage_under_compose_stops_the_server_answering_then_it_recovers(lived):
    code, err = lived["outage play"]
    assert code == 0, err
    phase = next(p for p in lived["outage timeline"]["phases"] if p["name"] == "outage")
    start, end = phase["start"], phase["end"]
    probes = lived["outage probes"]
    assert probes and not any(ok for t, ok in probes if start + 1 <= t <= end - 3)
    assert any(ok for t, ok in probes if t > end + 3)
    during = [r for r in lived["outage ledger"] if start + 1 <= r.second < end - 2]
    assert sum(r.failures for r in during) >= sum(r.requests for r in during) / 2 > 0


def test_down_with_volumes_leaves_no_container_network_or_volume(lived):
    assert lived["volumes before down"], "the stack should have volumes before down"
    assert lived["down"].returncode == 0
    assert lived["leftovers"] == {"containers": [], "networks": [], "volumes": []}
    assert not lived["state after down"]


def test_a_private_engine_started_for_the_test_stops_and_leaves_no_process(lived):
    if lived["engine was running"]:
        pytest.skip("a Docker engine was already running before the test; it is left running")
    assert lived["engine answers after stop"] is False
    assert lived["engine processes left"] == []


def test_a_compose_session_is_archived_and_regrades_to_its_score(lived):
    for step in ("session start", "session play", "session end"):
        result = lived[step]
        assert result.returncode == 0, (step, result.stdout[-2000:], result.stderr[-2000:])
    root = lived["session dir"]
    record = SessionRecord.model_validate_json((root / "session.json").read_text())
    assert record.backend == "docker" and record.ended_at is not None and record.final is not None
    run = root / "run"
    for path in (
        run / "scenario" / "timeline.json",
        run / "scenario" / "ledger.csv",
        run / "server" / "predictions.sqlite",
        root / "archive" / "metrics.txt",
        root / "archive" / "rules" / "alerts" / "churn-model.yml",
    ):
        assert path.exists() and path.stat().st_size > 0, path
    assert any((run / "prometheus" / "data").glob("*")), "no Prometheus data copied out of the volume"
    regrade = lived["session regrade"]
    assert regrade.returncode == 0, regrade.stderr[-2000:]
    assert json.loads(regrade.stdout)["score"] == record.final.score
    assert lived["session leftovers"] == {"containers": [], "networks": [], "volumes": []}


def test_a_compose_sessions_room_holds_the_workspace_only_and_proxies_its_model_server(lived):
    room = lived["room"]
    assert room["ls"].returncode == 0 and {"app", "alerts", "dashboards", "docs"} <= set(room["ls"].stdout.split())
    for what in ("the scenarios", "the player", "the truth"):
        assert room[what].returncode != 0, (what, room[what].stdout)
    assert '"status":"ok"' in room["its own server"].stdout
    assert room["proxied health"].status_code == 200 and room["proxied health"].json()["status"] == "ok"
    assert room["no token"] in (302, 403)
