"""The Kubernetes backend's own logic, on a cluster that is a fake (no cluster runs here): the order a session is
applied in and what a failed start leaves, the truth read from the player or through a helper pod, copies out of
pods that cannot write outside their folder, the relay through the API server's service proxy, the candidate's
link; and the idle rule (sessions/idle.py)."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from load.truth import PhaseRecord, PlayedGroundTruth, TimelineRecord
from mlsandbox.config import KubeSettings, RoomSettings, StackConfig
from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import STARTER
from mlsandbox.sessions.idle import Activity, idle_seconds, is_idle, play_state
from mlsandbox.stack.kubernetes import backend as kb
from mlsandbox.stack.kubernetes.cluster import ExecResult
from mlsandbox.stack.kubernetes.relay import Relay
from mlsandbox.stack.state import SandboxState, ScenarioPlay
from model_service.faults import FaultState


class FakeCluster:
    """What the backend asks of a cluster, answered from memory; every call recorded."""

    def __init__(self, namespaces=("mlsandbox",), trainer="done", mlflow_ready=1, fail_ready=False):
        self.context = "fake"
        self.namespaces = set(namespaces)
        self.trainer, self.mlflow_ready, self.fail_ready = trainer, mlflow_ready, fail_ready
        self.calls: list[tuple] = []
        self.player: str | None = None  # the running player pod
        self.job = None  # the player Job's state
        self.truth = b""

    def exists(self, kind, name, namespace=None):
        return name in self.namespaces if kind == "Namespace" else kind == "Job" and self.job is not None

    def deployments(self, namespace):
        if namespace == "mlsandbox":
            return {"mlflow": (self.mlflow_ready, 1)}
        return {name: (1, 1) for name in kb.DEPLOYMENTS}

    def job_state(self, namespace, name):
        return self.trainer if name == "trainer" else self.job

    def job_uid(self, namespace, name):
        return "uid-1" if self.job else None

    def apply(self, obj):
        self.calls.append(("apply", obj["kind"], obj["metadata"]["name"]))
        if obj["kind"] == "Namespace":
            self.namespaces.add(obj["metadata"]["name"])

    def wait_ready(self, namespace, names, timeout, say=print, interval=2.0):
        self.calls.append(("wait_ready", tuple(names)))
        if self.fail_ready:
            raise MlsandboxError("not ready")
        return 1.0

    def delete_namespace(self, namespace, timeout=300.0, say=print):
        self.calls.append(("delete_namespace", namespace))
        self.namespaces.discard(namespace)

    def delete(self, kind, name, namespace):
        self.calls.append(("delete", kind, name))

    def running_pod(self, namespace, component):
        return self.player if component == "player" else f"{component}-pod"

    def wait_pod_running(self, namespace, name, timeout=180.0):
        self.calls.append(("helper running", name))

    def exec(self, namespace, pod, command, container=None, stdin=None, timeout=300.0):
        self.calls.append(("exec", pod, " ".join(command)))
        if "timeline.json" in " ".join(command):
            return ExecResult(0, self.truth, b"")
        return ExecResult(0, b"", b"")

    def check_exec(self, namespace, pod, command, **kwargs):
        return self.exec(namespace, pod, command, **kwargs).stdout


@pytest.fixture
def cfg(tmp_path) -> StackConfig:
    return StackConfig(run_dir=tmp_path / "run", room=RoomSettings(session="alice", token="tok"))


@pytest.fixture
def sandbox(cfg, monkeypatch):
    fake = FakeCluster()

    class Machine:
        def ensure(self, user, mlflow=True):
            return None

        def console_url(self):
            return "http://console"

        def release(self, user):
            return []

        def status(self):
            return []

    monkeypatch.setattr(kb.KubernetesSandbox, "machine", property(lambda self: Machine()))
    monkeypatch.setattr(kb, "wait_first_scrape", lambda url, timeout: None)
    monkeypatch.setattr(kb, "relay", lambda cluster, namespace, service, port: f"http://relay/{namespace}/{service}")
    box = kb.KubernetesSandbox(cfg, say=lambda _: None, kube=KubeSettings())
    box._cluster = fake
    return box


def test_a_session_is_applied_namespace_first_and_its_player_once_everything_is_ready(sandbox, cfg):
    urls = sandbox.up(STARTER, ScenarioPlay(scenario="smoke", web_ui=False))
    calls = sandbox.cluster.calls
    applied = [c for c in calls if c[0] == "apply"]
    assert applied[0] == ("apply", "Namespace", "mlsandbox-alice")
    ready = calls.index(("wait_ready", tuple(kb.DEPLOYMENTS)))
    assert calls[ready + 1] == ("apply", "Job", "player") and calls[-1] == ("apply", "Job", "player")
    state = SandboxState.load(cfg.layout)
    assert state.backend == "kubernetes" and state.kubernetes.namespace == "mlsandbox-alice"
    assert urls["workspace"] == "http://127.0.0.1:8888/lab/tree/CANDIDATE.md?token=tok"
    assert urls["prometheus"] == "http://relay/mlsandbox-alice/prometheus/prometheus"


def test_a_failed_start_deletes_its_namespace_and_forgets_the_session(sandbox, cfg):
    sandbox.cluster.fail_ready = True
    with pytest.raises(MlsandboxError, match="not ready"):
        sandbox.up(STARTER, None)
    assert ("delete_namespace", "mlsandbox-alice") in sandbox.cluster.calls
    assert SandboxState.load(cfg.layout) is None


def test_a_start_is_refused_on_a_namespace_in_use_or_without_the_machines_model(sandbox):
    sandbox.cluster.namespaces.add("mlsandbox-alice")
    with pytest.raises(MlsandboxError, match="already exists"):
        sandbox.up(STARTER, None)
    sandbox.cluster.namespaces.discard("mlsandbox-alice")
    sandbox.cluster.trainer = "running"
    with pytest.raises(MlsandboxError, match="not trained yet"):
        sandbox.up(STARTER, None)
    sandbox.cluster.mlflow_ready = 0
    with pytest.raises(MlsandboxError, match="MLflow is not ready.*kubectl apply -k deploy/kubernetes/machine"):
        sandbox.up(STARTER, None)
    assert not [c for c in sandbox.cluster.calls if c[0] == "apply"]


def _phase(index: int, start: float, end: float | None) -> PhaseRecord:
    return PhaseRecord(
        index=index,
        name=f"p{index}",
        start=start,
        end=end,
        planned_end=start + 10,
        rate=1,
        requests_planned=10,
        ground_truth=PlayedGroundTruth(fraction=1, delay_seconds=0, wall_delay_seconds=0),
        faults=FaultState(),
    )


def _timeline() -> bytes:
    record = TimelineRecord(
        scenario="smoke",
        seed=1,
        speed=1,
        surprise=False,
        status="finished",
        planned_phases=["p0"],
        phases=[_phase(0, 1.0, 2.0)],
    )
    return record.model_dump_json().encode()


def test_the_timeline_comes_from_the_player_while_it_plays_then_once_through_a_helper_pod(sandbox):
    fake = sandbox.cluster
    fake.truth, fake.job, fake.player = _timeline(), "running", "player-pod"
    assert sandbox.timeline().scenario == "smoke"
    assert not [c for c in fake.calls if c[0] == "helper running"]
    fake.job, fake.player = "done", None
    assert sandbox.timeline().status == "finished"
    assert sandbox.timeline().status == "finished"  # kept: no second helper
    helpers = [c for c in fake.calls if c[0] == "helper running"]
    assert len(helpers) == 1
    assert ("delete", "Pod", helpers[0][1]) in fake.calls


def test_skip_and_pause_need_a_playing_player(sandbox):
    with pytest.raises(MlsandboxError, match="no scenario is playing"):
        sandbox.request_skip()
    sandbox.cluster.player = "player-pod"
    sandbox.request_pause(True)
    assert any("request_pause('/truth', True)" in c[2] for c in sandbox.cluster.calls if c[0] == "exec")


def test_the_link_is_the_rooms_host_or_a_port_forward(cfg):
    hosted = kb.KubernetesSandbox(cfg, kube=KubeSettings(room_host="{name}.rooms.example.org", context="prod"))
    assert hosted.candidate_link() == "https://alice.rooms.example.org/lab/tree/CANDIDATE.md?token=tok"
    assert hosted.port_forward() == [
        "kubectl",
        "--context",
        "prod",
        "-n",
        "mlsandbox-alice",
        "port-forward",
        "svc/workspace",
        "8888:8888",
    ]
    with pytest.raises(MlsandboxError, match="interview sessions"):
        kb.KubernetesSandbox(StackConfig())


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return raw.getvalue()


def test_a_copy_out_of_a_pod_stays_in_its_folder(tmp_path):
    ok = tarfile.TarInfo("app/main.py")
    escape = tarfile.TarInfo("../outside.txt")
    absolute = tarfile.TarInfo("/tmp/absolute.txt")
    link = tarfile.TarInfo("alerts/link.yml")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    dest = tmp_path / "dest"
    dest.mkdir()
    kb.unpack(_tar([(ok, b"code"), (escape, b"x"), (absolute, b"x"), (link, b"")]), dest)
    assert (dest / "app" / "main.py").read_text() == "code"
    assert not (tmp_path / "outside.txt").exists() and not (dest / "alerts" / "link.yml").exists()
    assert sorted(p.name for p in dest.rglob("*")) == ["app", "main.py"]


def test_mirroring_adds_changes_and_removes_but_leaves_unchanged_files_alone(tmp_path):
    source, dest = tmp_path / "s", tmp_path / "d"
    for folder in (source, dest):
        (folder / "app").mkdir(parents=True)
        (folder / "app" / "same.py").write_text("same")
    (source / "app" / "new.py").write_text("new")
    (source / "changed.md").write_text("after")
    (dest / "changed.md").write_text("before")
    (dest / "gone").mkdir()
    (dest / "gone" / "old.py").write_text("old")
    before = (dest / "app" / "same.py").stat().st_mtime_ns
    time.sleep(0.01)
    kb.mirror(source, dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "app",
        "app/new.py",
        "app/same.py",
        "changed.md",
    ]
    assert (dest / "changed.md").read_text() == "after"
    assert (dest / "app" / "same.py").stat().st_mtime_ns == before


def test_a_relay_passes_requests_through_the_api_servers_service_proxy():
    seen = []

    class Proxying:
        context = "fake"

        def proxy(self, namespace, service, port, path, method="GET", query=None, body=b""):
            seen.append((namespace, service, port, path, method, query, body))
            return 200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, b'{"status":"success"}'

    relay = Relay(Proxying(), "mlsandbox-alice", "prometheus", 9090)
    answer = httpx.get(f"{relay.url}/prometheus/api/v1/query", params={"query": "up", "time": "1"}, timeout=5)
    assert answer.status_code == 200 and answer.json() == {"status": "success"}
    posted = httpx.post(f"{relay.url}/prometheus/-/reload", timeout=5)
    assert posted.status_code == 200
    assert seen[0] == (
        "mlsandbox-alice",
        "prometheus",
        9090,
        "/prometheus/api/v1/query",
        "GET",
        [("query", "up"), ("time", "1")],
        b"",
    )
    assert seen[1][3:5] == ("/prometheus/-/reload", "POST")
    relay.server.shutdown()


# --- the idle rule -------------------------------------------------------------------------------------------------


def test_a_session_is_idle_after_the_set_time_without_activity_and_never_while_a_scenario_plays():
    now = 10_000.0
    quiet = Activity(started_at=1_000.0, room=now - 1900, snapshot=now - 2500, play_ended=now - 3000)
    assert idle_seconds(quiet, now) == 1900
    assert is_idle(quiet, now, 30 * 60) and not is_idle(quiet, now, 40 * 60)
    playing = Activity(started_at=1_000.0, playing=True)
    assert idle_seconds(playing, now) == 0 and not is_idle(playing, now, 0.5)
    fresh = Activity(started_at=now - 60)
    assert idle_seconds(fresh, now) == 60


def _record(status="running", heartbeat=None, paused=None, finished=None, ends=(None,)) -> TimelineRecord:
    phases = [_phase(i, 100.0 + i, end) for i, end in enumerate(ends)]
    return TimelineRecord(
        scenario="s",
        seed=1,
        speed=1,
        surprise=False,
        status=status,
        heartbeat_at=heartbeat,
        paused_at=paused,
        finished_at=finished,
        planned_phases=[p.name for p in phases],
        phases=phases,
    )


def test_a_play_counts_while_it_plays_not_paused_nor_dead_and_after_from_its_end():
    now = 1_000.0
    assert play_state(None, now) == (False, None)
    assert play_state(_record(heartbeat=now - 1), now) == (True, None)
    assert play_state(_record(heartbeat=now - 1, paused=now - 50), now) == (False, now - 50)
    dead = _record(heartbeat=now - 300)
    assert play_state(dead, now) == (False, now - 300)
    done = _record(status="finished", finished=900.0, ends=(150.0,))
    assert play_state(done, now) == (False, 900.0)


def test_the_session_records_and_states_take_the_kubernetes_backend(tmp_path):
    from mlsandbox.layout import Ports
    from mlsandbox.sessions.store import SessionRecord
    from mlsandbox.stack.state import KubeState

    record = SessionRecord(name="a", backend="kubernetes", play=None, ports=Ports.default(), source="x")
    assert SessionRecord.model_validate_json(record.model_dump_json()).backend == "kubernetes"
    state = SandboxState(
        backend="kubernetes",
        candidate_dir=tmp_path,
        ports=Ports.default(),
        kubernetes=KubeState(namespace="mlsandbox-a", settings=KubeSettings(context="c"), link="l"),
    )
    again = SandboxState.model_validate_json(state.model_dump_json())
    assert again.kubernetes.settings.context == "c" and again.running()
    assert json.loads(state.model_dump_json())["kubernetes"]["namespace"] == "mlsandbox-a"
    assert Path(tmp_path).exists()


def test_a_deployment_is_ready_once_its_current_template_runs_and_no_old_pod_is_left():
    from types import SimpleNamespace as N

    from mlsandbox.stack.kubernetes.cluster import _ready

    def deployment(generation=2, observed=2, replicas=1, ready=1, updated=1):
        status = N(observed_generation=observed, replicas=replicas, ready_replicas=ready, updated_replicas=updated)
        return N(metadata=N(generation=generation), spec=N(replicas=1), status=status)

    assert _ready(deployment()) == 1
    assert _ready(deployment(observed=1)) == 0  # restarted: not yet seen by the controller
    assert _ready(deployment(replicas=2)) == 0  # the old pod still stopping
    assert _ready(deployment(updated=0)) == 0  # the ready pod is the old template's
