"""A session's pods for real, without a cluster: the objects `mlsandbox session start --kubernetes` applies,
rendered for Debian's `podman kube play` (render.for_podman: the same pods and volumes), on the images the compose
test builds (moved into podman's store: tests/kube_podman.py). The machine's MLflow and trainer play first, then
the session's room, model server, Prometheus, Alertmanager and receiver on the reference solution, then the player
plays `smoke`; the grader grades it from the session's Prometheus and the truth's volume.

It runs in the Docker test's worker, after it (tests/conftest.py: one group), so that the images it just built are
there and no other engine uses the image store meanwhile.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import tarfile
import time
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import PORT_OFFSET, port
from driver import wait_for
from kube_podman import IMAGES, configure, ensure_images, environment, locked_store, missing_tools, podman

from grading.api import run_grading
from mlsandbox.config import KubeSettings
from mlsandbox.layout import REFERENCE, Ports
from mlsandbox.sessions.manifests import session_manifests
from mlsandbox.stack.kubernetes import render
from mlsandbox.stack.state import ScenarioPlay
from model_service.settings import ServiceSettings

pytestmark = [pytest.mark.stack, pytest.mark.docker, pytest.mark.timeout(2400)]

PORTS = Ports.block(port(25400))
HOST_PORTS = {
    "model-server": PORTS.model_server,
    "prometheus": PORTS.prometheus,
    "alertmanager": PORTS.alertmanager,
    "workspace": PORTS.room,
}
# A bridge of its own per checkout (the offset moves it), away from podman's default 10.88/10.89.
NETWORK = f"mlsandbox-kube-{PORT_OFFSET // 100 % 256}"
SUBNET = f"10.231.{PORT_OFFSET // 100 % 256}.0/24"
KUBE = KubeSettings(
    model_image=f"localhost/{IMAGES['model']}",
    prometheus_image=f"localhost/{IMAGES['prometheus']}",
    alertmanager_image=f"localhost/{IMAGES['alertmanager']}",
    image_pull_policy="IfNotPresent",
    # Pods find each other by their names on podman's network (a cluster has the Services).
    mlflow_url="http://mlflow:5000",
)
PLAY = ScenarioPlay(scenario="smoke", seed=7, speed=1.0, web_ui=False)
VOLUMES = ["mlflow-data", "workspace", "model-data", "control", "truth", "prometheus-data", "alert-notifications"]


def _machine_pods() -> list[dict]:
    """MLflow with its volume and the trainer (the console is the hub's image, not built here)."""
    keep = {"mlflow", "mlflow-data", "trainer"}
    return [o for o in render.machine_objects(KUBE) if o["metadata"]["name"] in keep]


def _play(objects: list[dict], path: Path) -> None:
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    podman("kube", "play", "--network", NETWORK, str(path), timeout=300)


def _container_state(name: str) -> tuple[str, int]:
    result = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name, check=False)
    if result.returncode != 0:
        return "missing", -1
    status, code = result.stdout.split()
    return status, int(code)


def _ok(url: str, **params) -> bool:
    try:
        return httpx.get(url, params=params, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def _volume(name: str) -> Path:
    return Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", name).stdout.strip())


def _memory() -> dict[str, float]:
    """Each running container's memory (MB, its cgroup's usage as podman stats reports it)."""
    stats = json.loads(podman("stats", "--no-stream", "--format", "json").stdout or "[]")
    out = {}
    for s in stats:
        used = s.get("mem_usage", "").split("/")[0].strip()
        if not used[:-2]:
            continue  # a container that has ended
        number, unit = float(used[:-2]), used[-2:]
        out[s["name"]] = round(number * {"kB": 1 / 1000, "MB": 1, "GB": 1000}.get(unit, 1), 1)
    return {k: v for k, v in out.items() if not k.endswith("-infra")}


def _down(files: list[Path]) -> None:
    for path in reversed(files):
        if path.exists():
            podman("kube", "down", str(path), check=False)
    for name in VOLUMES + ["played-scenario"]:
        podman("volume", "rm", "-f", name, check=False)


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    missing = missing_tools()
    if missing:
        pytest.fail(missing)
    base = tmp_path_factory.mktemp("kube-podman")
    seen: dict = {"took": {}}
    files = [base / "machine.yaml", base / "session.yaml", base / "player.yaml"]
    configure()
    with locked_store():
        t0 = time.monotonic()
        seen["took"].update(ensure_images())
        _down(files)  # a run killed before its end left its pods and volumes
        podman("network", "rm", "-f", NETWORK, check=False)
        podman("network", "create", "--subnet", SUBNET, NETWORK)
        try:
            t = time.monotonic()
            _play(render.for_podman(_machine_pods(), {}), files[0])
            seen["trainer"] = wait_for(
                lambda: (s := _container_state("trainer-trainer"))[0] == "exited" and s,
                300,
                interval=1,
                what="the trainer to train and register the model",
            )
            seen["took"]["machine"] = time.monotonic() - t

            t = time.monotonic()
            objects = session_manifests("kubetest", REFERENCE, None, KUBE, scrape_interval="1s")
            seen["objects"] = objects
            pods = render.for_podman(objects, HOST_PORTS)
            seen["podman objects"] = pods
            _play(pods, files[1])
            wait_for(lambda: _ok(f"http://127.0.0.1:{PORTS.model_server}/health"), 300, 1, "the model server")
            wait_for(lambda: _ok(f"http://127.0.0.1:{PORTS.prometheus}/prometheus/-/ready"), 120, 1, "Prometheus")
            wait_for(lambda: _ok(f"http://127.0.0.1:{PORTS.room}/login"), 120, 1, "the room's JupyterLab")
            prometheus = f"http://127.0.0.1:{PORTS.prometheus}/prometheus"
            wait_for(
                lambda: any(
                    t["labels"]["job"] == "model-server" and t["health"] == "up"
                    for t in httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
                ),
                120,
                1,
                "Prometheus to scrape the model server",
            )
            seen["took"]["session up"] = time.monotonic() - t

            t = time.monotonic()
            job = render.player_job("mlsandbox-kubetest", KUBE, PLAY)
            _play(render.for_podman(job, {}), files[2])
            time.sleep(45)
            seen["memory"] = _memory()
            seen["player"] = wait_for(
                lambda: (s := _container_state("player-player"))[0] == "exited" and s,
                400,
                interval=2,
                what="the player to play smoke",
            )
            seen["took"]["play"] = time.monotonic() - t
            time.sleep(3)  # two scrapes after the last request

            run = base / "run"
            with tarfile.open(fileobj=_export("truth"), mode="r:") as tar:
                tar.extractall(run, filter="data")
            kept = ServiceSettings(run_dir=run)
            kept.server_dir.mkdir(parents=True)
            source = sqlite3.connect(_volume("model-data") / "server" / "predictions.sqlite")
            with sqlite3.connect(kept.prediction_log_path) as copy:
                source.backup(copy)
            source.close()
            t = time.monotonic()
            _, seen["report"], _ = run_grading(
                run,
                prometheus,
                candidate=REFERENCE,
                out=base / "report",
                server_address=f"http://127.0.0.1:{PORTS.model_server}",
                say=lambda _: None,
            )
            seen["took"]["grade"] = time.monotonic() - t

            seen["room"] = _room_checks()
            seen["users"] = {
                name: podman("exec", name, "id", "-u", check=False).stdout.strip()
                for name in (
                    "workspace-jupyterlab",
                    "model-server-model-server",
                    "prometheus-prometheus",
                    "alertmanager-alertmanager",
                    "alert-receiver-alert-receiver",
                    "mlflow-mlflow",
                )
            }
            seen["server mounts"] = podman(
                "inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", "model-server-model-server"
            ).stdout.split()
            seen["room mounts"] = podman(
                "inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", "workspace-jupyterlab"
            ).stdout.split()
        finally:
            t = time.monotonic()
            _down(files)
            podman("network", "rm", "-f", NETWORK, check=False)
            seen["took"]["down"] = time.monotonic() - t
            seen["took"]["all"] = time.monotonic() - t0
            seen["left"] = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    (base / "figures.json").write_text(json.dumps({k: seen[k] for k in ("took", "memory") if k in seen}, indent=2))
    print(json.dumps({k: seen[k] for k in ("took", "memory") if k in seen}, indent=2))
    return seen


def _export(volume: str):
    import io

    return io.BytesIO(
        subprocess.run(
            ["podman", "volume", "export", volume], env=environment(), capture_output=True, check=True
        ).stdout
    )


def _room_checks() -> dict:
    room = f"http://127.0.0.1:{PORTS.room}"

    def shell(*command: str) -> subprocess.CompletedProcess:
        return podman("exec", "workspace-jupyterlab", *command, check=False)

    token = shell("cat", "/opt/room-token/token").stdout.strip()
    return {
        "no token": httpx.get(f"{room}/model-server/health", timeout=10, follow_redirects=False).status_code,
        "proxied health": httpx.get(f"{room}/model-server/health", params={"token": token}, timeout=10),
        "its own server": shell(
            "python",
            "-c",
            "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/health').read())",
        ),
        "reload-rules": shell("sh", "-c", "reload-rules"),
        "the truth": shell("sh", "-c", "ls /truth 2>&1; find / -xdev -name timeline.json 2>/dev/null | grep ."),
        "ls": shell("ls", "/workspace"),
    }


def test_the_reference_solution_grades_on_the_sessions_pods(played):
    report = played["report"]
    lost = {
        i["key"]: [(c["name"], c["points"], c["summary"]) for c in i["checks"] if c["points"] < c["max_points"]]
        for i in report["items"]
    }
    assert report["score"] >= 95, {k: v for k, v in lost.items() if v}


def test_the_trainer_and_the_player_end_with_success(played):
    assert played["trainer"] == ("exited", 0)
    assert played["player"] == ("exited", 0)


def test_every_container_runs_as_the_images_unprivileged_user(played):
    assert set(played["users"].values()) == {"10001"}, played["users"]


def test_the_model_server_and_the_room_mount_no_truth(played):
    assert "truth" not in played["server mounts"], played["server mounts"]
    assert "truth" not in played["room mounts"], played["room mounts"]
    assert played["room"]["the truth"].returncode != 0, played["room"]["the truth"].stdout


def test_the_room_answers_its_token_only_and_reaches_its_own_services(played):
    room = played["room"]
    assert room["no token"] in (302, 403)
    assert room["proxied health"].status_code == 200 and room["proxied health"].json()["status"] == "ok"
    assert '"status":"ok"' in room["its own server"].stdout
    assert room["reload-rules"].returncode == 0 and "rules loaded" in room["reload-rules"].stdout
    assert {"app", "alerts", "dashboards", "CANDIDATE.md", "docs"} <= set(room["ls"].stdout.split())


def test_nothing_is_left_in_podmans_store_but_the_images(played):
    assert played["left"] == []
