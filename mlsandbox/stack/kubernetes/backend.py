"""The Kubernetes backend: an interview session as a namespace of its own on a cluster (render.py's objects, applied
with the official client by cluster.py), behind the same Sandbox interface as the native and Docker backends.

Where the Docker backend asks a container of the project, this one runs a command in a pod of the session (the
truth in the player's pod, or in a helper pod mounting the truth's volume when no play runs; the prediction log in
the model server's; the workspace in the room's), and reaches Prometheus, the model server and the room through
the API server's service proxy (relay.py): no node port, no Ingress and no port-forward is needed for anything
but the candidate's link. The machine's part (MLflow, the trained model) runs in the namespace `mlsandbox`; the
console is the machine's, wherever the command runs (stack/machine.py).
"""

from __future__ import annotations

import io
import json
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from pydantic import ValidationError

from load.truth import TimelineRecord
from mlsandbox.config import KubeSettings, StackConfig, namespace_of
from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import RunLayout
from mlsandbox.say import Say
from mlsandbox.stack.kubernetes import render
from mlsandbox.stack.kubernetes.cluster import Cluster
from mlsandbox.stack.kubernetes.relay import relay
from mlsandbox.stack.machine import MachineServices
from mlsandbox.stack.preflight import check_candidate, check_scenario
from mlsandbox.stack.prometheus import reload, wait_first_scrape
from mlsandbox.stack.sandbox import ComponentStatus, GradingInputs, Sandbox
from mlsandbox.stack.state import KubeState, SandboxState, ScenarioPlay, locked
from model_service.last_metrics import last_metrics_path
from model_service.settings import ServiceSettings

DEPLOYMENTS = ["workspace", "model-server", "prometheus", "alertmanager", "alert-receiver"]
TRUTH = "/truth"
SERVER_RUN_DIR = Path("/data")  # the model server's run directory in its pod (model-server.yaml)
WORKSPACE = "/workspace"
# Left out of the workspace when it is copied out (as the work history leaves them out).
NOT_COPIED = ["__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache"]
# A play's timeline read from a helper pod is kept (keyed by the player Job it belongs to): it no longer changes.
TIMELINE_CACHE = "timeline.json"


class KubernetesSandbox(Sandbox):
    backend = "kubernetes"

    def __init__(
        self,
        cfg: StackConfig,
        say: Say = print,
        kube: KubeSettings | None = None,
        machine_dir: Path | None = None,
        namespace: str | None = None,
    ):
        super().__init__(cfg, say)
        self.kube = kube or KubeSettings()
        if cfg.room is None:
            raise MlsandboxError(
                "on a cluster only interview sessions run: `mlsandbox session start NAME --kubernetes`"
            )
        self.namespace = namespace or namespace_of(cfg.room.session)
        self.machine_dir = Path(machine_dir or cfg.run_dir).resolve()
        self._cluster: Cluster | None = None

    @classmethod
    def from_state(cls, cfg: StackConfig, state: SandboxState, say: Say = print) -> "KubernetesSandbox":
        k = state.kubernetes
        return cls(cfg, say, k.settings, state.machine_dir, k.namespace)

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            self._cluster = Cluster(self.kube.context)
        return self._cluster

    @property
    def machine(self) -> MachineServices:
        return MachineServices(self.cfg.model_copy(update={"run_dir": self.machine_dir}), self.say)

    @property
    def copied(self) -> Path:
        """Where the session's truth and prediction log are copied out of the cluster to be graded."""
        return self.layout.root / "kube-session"

    # --- start and stop -------------------------------------------------------------------------------
    def up(self, candidate: Path, play: ScenarioPlay | None) -> dict[str, str]:
        """The session's namespace with every object of render.py, ready; the player started once Prometheus has
        scraped the model server. Refused when the namespace exists or the machine's part is not ready."""
        candidate = check_candidate(candidate)
        if play is not None:
            check_scenario(play.scenario)
        if self.state is not None:
            raise MlsandboxError("a sandbox is already running in this run directory; `mlsandbox down` first")
        cluster = self.cluster
        if cluster.exists("Namespace", self.namespace):
            raise MlsandboxError(
                f"namespace {self.namespace} already exists (another session, or one not ended): "
                f"`kubectl delete namespace {self.namespace}`, or choose another name"
            )
        self._require_machine()
        spec = render.SessionSpec(self.cfg.room.session, self.cfg, self.kube, render.workspace_archive(candidate), play)
        objects = render.session_objects(spec)
        player = [o for o in objects if o["kind"] == "Job" or o["metadata"]["name"] == "played-scenario"]
        with locked(self.layout):
            SandboxState(
                backend="kubernetes",
                candidate_dir=candidate,
                ports=self.cfg.ports,
                play=play,
                machine_dir=self.machine_dir,
                kubernetes=KubeState(namespace=self.namespace, settings=self.kube, link=self.candidate_link()),
            ).save(self.layout)
            try:
                self.say(
                    f"applying the session's {len(objects) - len(player)} objects in namespace {self.namespace} ..."
                )
                for obj in objects:
                    if obj not in player:
                        cluster.apply(obj)
                self.say("waiting for every Deployment to be ready (the first time, nodes pull the images) ...")
                took = cluster.wait_ready(self.namespace, DEPLOYMENTS, self.kube.ready_timeout_seconds, self.say)
                self.say(f"every Deployment ready in {took:.0f} s")
                wait_first_scrape(self._prometheus_url(), self.cfg.health_timeout_seconds)
                for obj in player:
                    cluster.apply(obj)
                self.machine.ensure(self.cfg.run_dir, mlflow=False)
            except BaseException:  # Ctrl-C included: leave no namespace behind
                self.say("start-up failed; deleting the session's namespace")
                try:
                    cluster.delete_namespace(self.namespace, say=self.say)
                finally:
                    SandboxState.forget(self.layout)
                raise
        if not self.kube.room_host:
            self.say(f"the candidate's room through a port-forward: {' '.join(self.port_forward())}")
        return {**self.urls(), "console": self.machine.console_url()}

    def _require_machine(self) -> None:
        """MLflow ready and the model trained, in the machine's namespace."""
        namespace = self.kube.machine_namespace
        how = (
            f"deploy the machine's part first: `kubectl apply -k deploy/kubernetes/machine` (or `mlsandbox kube "
            f"render --machine --out DIR` and `kubectl apply -f DIR`), then wait for job/trainer in {namespace}"
        )
        deployments = self.cluster.deployments(namespace) if self.cluster.exists("Namespace", namespace) else {}
        if deployments.get("mlflow", (0, 1))[0] < 1:
            raise MlsandboxError(f"MLflow is not ready in namespace {namespace}: {how}")
        if self.cluster.job_state(namespace, "trainer") != "done":
            raise MlsandboxError(f"the model is not trained yet in namespace {namespace} (job/trainer): {how}")

    def port_forward(self) -> list[str]:
        """The command that opens the room on this machine's port (when rooms have no Ingress)."""
        context = ["--context", self.kube.context] if self.kube.context else []
        return [
            "kubectl",
            *context,
            "-n",
            self.namespace,
            "port-forward",
            "svc/workspace",
            f"{self.cfg.ports.room}:8888",
        ]

    def candidate_link(self) -> str:
        token = self.cfg.room.token
        host = render.room_host(self.kube, self.cfg.room.session)
        if host:
            return f"{self.kube.room_scheme}://{host}/lab/tree/CANDIDATE.md?token={token}"
        return f"http://127.0.0.1:{self.cfg.ports.room}/lab/tree/CANDIDATE.md?token={token}"

    def down(self, volumes: bool = False, keep_engine: bool = False) -> list[str]:
        """The namespace deleted, with its volumes (`session end` copies out what it keeps first)."""
        with locked(self.layout):
            exists = self.cluster.exists("Namespace", self.namespace)
            running = sorted(self.cluster.deployments(self.namespace)) if exists else []
            self.cluster.delete_namespace(self.namespace, say=self.say)
            SandboxState.forget(self.layout)
        return running + self.machine.release(self.cfg.run_dir)

    def restart(self, component: str) -> None:
        if component in ("load", "player"):
            state = self.state
            if state is None or state.play is None:
                raise MlsandboxError("no scenario was played in this session (`mlsandbox scenario play`)")
            self.stop_play()
            self.start_play(state.play)
            return
        if component not in DEPLOYMENTS:
            raise MlsandboxError(f"no component {component!r} (there are: {', '.join([*DEPLOYMENTS, 'player'])})")
        self.cluster.restart(self.namespace, component)
        self.cluster.wait_ready(self.namespace, [component], self.kube.ready_timeout_seconds, self.say)

    # --- what runs ------------------------------------------------------------------------------------
    def status(self) -> list[ComponentStatus]:
        states = self.cluster.deployments(self.namespace)
        urls = self.urls()
        rows = [c for c in self.machine.status() if c.name == "console"]
        for name in DEPLOYMENTS:
            ready, wanted = states.get(name, (0, 0))
            state = "stopped" if wanted == 0 else "healthy" if ready >= wanted else "starting"
            rows.append(ComponentStatus(name, state, urls.get(name)))
        job = self.cluster.job_state(self.namespace, "player")
        if job is not None:
            rows.append(ComponentStatus("player", job))
        return rows

    def urls(self) -> dict[str, str]:
        """Prometheus, Alertmanager and the model server through their relays (local addresses of this process),
        and the candidate's link."""
        return {
            "workspace": self.candidate_link(),
            "model-server": self._relay("model-server", 8000),
            "prometheus": self._prometheus_url(),
            "alertmanager": self._relay("alertmanager", 9093) + self.cfg.alertmanager_path,
        }

    def _relay(self, service: str, port: int, namespace: str | None = None) -> str:
        return relay(self.cluster, namespace or self.namespace, service, port)

    def _prometheus_url(self) -> str:
        return self._relay("prometheus", 9090) + self.cfg.prometheus_path

    def mlflow_url(self) -> str:
        return self._relay("mlflow", 5000, self.kube.machine_namespace)

    def _pod(self, component: str) -> str:
        pod = self.cluster.running_pod(self.namespace, component)
        if pod is None:
            raise MlsandboxError(f"no {component} pod runs in namespace {self.namespace} (`mlsandbox status`)")
        return pod

    def reload_rules(self) -> None:
        """promtool on the workspace's rule files in Prometheus's pod, then Prometheus loads them."""
        alerts = f"{render.WORKSPACE_IN_PROMETHEUS}/alerts"
        check = (
            f'files=""; for f in {alerts}/*.yml {alerts}/*.yaml; do [ -f "$f" ] && files="$files $f"; done; '
            '[ -z "$files" ] || promtool check rules $files'
        )
        result = self.cluster.exec(self.namespace, self._pod("prometheus"), ["sh", "-c", check])
        if result.returncode != 0:
            out = (result.stdout + result.stderr).decode(errors="replace")
            lines = [ln.strip() for ln in out.splitlines() if "FAILED" in ln or "rror" in ln]
            raise MlsandboxError(f"rules not loaded: {'; '.join(lines) or out.strip()}")
        reload(self._prometheus_url())

    # --- scenarios: the player's Job, the truth's volume ---------------------------------------------
    def play(self, play: ScenarioPlay) -> None:
        check_scenario(play.scenario, play.from_phase)
        self.start_play(play)
        while (state := self.cluster.job_state(self.namespace, "player")) == "running":
            time.sleep(2)
        if state != "done":
            raise MlsandboxError(f"the player's Job ended {state}: `kubectl -n {self.namespace} logs job/player`")

    def start_play(self, play: ScenarioPlay) -> None:
        check_scenario(play.scenario, play.from_phase)
        if self.cluster.job_state(self.namespace, "player") == "running":
            raise MlsandboxError("a scenario is already playing (job/player); let it finish, or `scenario` stop it")
        self.cluster.delete("Job", "player", self.namespace)
        for obj in render.player_job(self.namespace, self.kube, play):
            self.cluster.apply(obj)
        self._forget_timeline()
        state = self.state
        if state is not None:
            with locked(self.layout):
                state.model_copy(update={"play": play}).save(self.layout)

    def stop_play(self) -> None:
        self.cluster.delete("Job", "player", self.namespace)

    def _player_pod(self) -> str | None:
        return self.cluster.running_pod(self.namespace, "player")

    def _in_truth(self, command: list[str], write: bool = False) -> bytes:
        """`command` where the truth's volume is at /truth: the running player's pod, else a helper pod."""
        pod = self._player_pod()
        if pod is not None:
            return self.cluster.check_exec(self.namespace, pod, command, container="player")
        with self._helper({"truth": TRUTH}, write) as helper:
            return self.cluster.check_exec(self.namespace, helper, command)

    def _helper(self, claims: dict[str, str], write: bool = False):
        return _HelperPod(self, claims, write)

    def _forget_timeline(self) -> None:
        shutil.rmtree(self.copied / "cache", ignore_errors=True)

    def timeline(self) -> TimelineRecord | None:
        """The play's timeline: from the player's pod while it plays; once it has ended, read once through a
        helper pod and kept."""
        read = ["sh", "-c", f"cat {TRUTH}/scenario/timeline.json 2>/dev/null || true"]
        pod = self._player_pod()
        cache = self.copied / "cache"
        key = self.cluster.job_uid(self.namespace, "player") or "none"
        if pod is not None:
            text = self.cluster.check_exec(self.namespace, pod, read, container="player").decode()
        elif (cache / key).exists():
            text = (cache / key).read_text()
        else:
            text = self._in_truth(read).decode()
            if self.cluster.job_state(self.namespace, "player") != "running":
                shutil.rmtree(cache, ignore_errors=True)
                cache.mkdir(parents=True)
                (cache / key).write_text(text)
        if not text.strip():
            return None
        try:
            return TimelineRecord.model_validate_json(text)
        except ValidationError as exc:
            raise MlsandboxError(f"the player's timeline cannot be read: {exc.errors()[0]['msg']}") from None

    def _player_call(self, call: str) -> None:
        pod = self._player_pod()
        if pod is None:
            raise MlsandboxError("no scenario is playing (no player pod runs)")
        self.cluster.check_exec(self.namespace, pod, ["python", "-c", call], container="player")

    def request_skip(self) -> None:
        self._player_call(f"from load.player import request_skip; request_skip({TRUTH!r})")

    def request_pause(self, paused: bool) -> None:
        self._player_call(f"from load.player import request_pause; request_pause({TRUTH!r}, {paused})")

    def move_truth(self, dest: Path) -> None:
        """The play's truth copied out into `dest`/scenario, then removed from the volume (the next play starts a
        fresh one)."""
        packed = self._in_truth(["sh", "-c", f"[ -d {TRUTH}/scenario ] && tar -czf - -C {TRUTH} scenario || true"])
        if packed:
            dest.mkdir(parents=True, exist_ok=True)
            unpack(packed, dest)
        self._in_truth(["rm", "-rf", f"{TRUTH}/scenario"], write=True)
        self._forget_timeline()

    # --- what the grader reads -----------------------------------------------------------------------
    def collect(self, dest: Path) -> Path:
        """Copy what the grader reads out of the cluster into `dest`: the truth, the prediction log (a consistent
        copy taken in the model server's pod) and the last /metrics body it served."""
        dest.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dest / "scenario", ignore_errors=True)
        packed = self._in_truth(["sh", "-c", f"[ -d {TRUTH}/scenario ] && tar -czf - -C {TRUTH} scenario || true"])
        if packed:
            unpack(packed, dest)
        server = ServiceSettings(run_dir=SERVER_RUN_DIR)
        backup = (
            f"import sqlite3, sys; s = sqlite3.connect({str(server.prediction_log_path)!r}); "
            "d = sqlite3.connect('/tmp/predictions.sqlite'); s.backup(d); d.close(); "
            "sys.stdout.buffer.write(open('/tmp/predictions.sqlite', 'rb').read())"
        )
        pod = self._pod("model-server")
        kept = ServiceSettings(run_dir=dest)
        kept.server_dir.mkdir(parents=True, exist_ok=True)
        kept.prediction_log_path.write_bytes(self.cluster.check_exec(self.namespace, pod, ["python", "-c", backup]))
        body = self.cluster.exec(self.namespace, pod, ["cat", str(last_metrics_path(SERVER_RUN_DIR))])
        if body.returncode == 0:
            last_metrics_path(dest).write_bytes(body.stdout)
        return dest

    def grading_inputs(self) -> GradingInputs:
        session = self.collect(self.copied)
        candidate = self.candidate_dir()
        if candidate is not None:
            self.pull_workspace(candidate)
        server = self._relay("model-server", 8000)
        return GradingInputs(session, self._prometheus_url(), candidate, server, self.mlflow_url())

    def archive_data(self, run_dir: Path) -> None:
        """Into `run_dir`: the workspace (into the candidate's folder), the truth and the prediction log, the
        notifications, and Prometheus's TSDB copied after a clean stop of Prometheus (its data folder complete,
        as the archive's Prometheus reads it)."""
        layout = RunLayout(run_dir)
        try:
            candidate = self.candidate_dir()
            if candidate is not None:
                self.pull_workspace(candidate)
            self.collect(run_dir)
            layout.notifications.parent.mkdir(parents=True, exist_ok=True)
            notes = self.cluster.exec(
                self.namespace, self._pod("alert-receiver"), ["cat", "/alerts/notifications.jsonl"]
            )
            layout.notifications.write_bytes(notes.stdout if notes.returncode == 0 else b"")
            self.stop_play()
            self.cluster.scale(self.namespace, "prometheus", 0)
            self.cluster.wait_gone(self.namespace, "prometheus")
            with self._helper({"prometheus-data": "/prometheus"}) as helper:
                packed = self.cluster.check_exec(self.namespace, helper, ["tar", "-czf", "-", "-C", "/prometheus", "."])
            shutil.rmtree(layout.prometheus_data, ignore_errors=True)
            layout.prometheus_data.mkdir(parents=True)
            unpack(packed, layout.prometheus_data)
        except MlsandboxError as exc:
            raise MlsandboxError(f"archiving the session's data from namespace {self.namespace}: {exc}") from None

    # --- the candidate's room ----------------------------------------------------------------------
    def _workspace_pod(self) -> tuple[str, str, str]:
        """A pod that mounts the workspace: the room's (read-write), else the model server's (read-only); its
        name, container and the workspace's path there."""
        pod = self.cluster.running_pod(self.namespace, "workspace")
        if pod is not None:
            return pod, "jupyterlab", WORKSPACE
        return self._pod("model-server"), "model-server", "/candidate"

    def pull_workspace(self, workspace: Path) -> None:
        """The workspace as the room has it now, mirrored into `workspace` (the local copy the grader, the work
        history and the console read)."""
        pod, container, path = self._workspace_pod()
        excludes = [f"--exclude={pattern}" for pattern in NOT_COPIED]
        packed = self.cluster.check_exec(
            self.namespace, pod, ["tar", "-czf", "-", *excludes, "-C", path, "."], container=container
        )
        with tempfile.TemporaryDirectory(dir=workspace.parent) as tmp:
            unpack(packed, Path(tmp))
            mirror(Path(tmp), workspace)

    def publish(self, workspace: Path, paths: list[str]) -> None:
        """Files the session wrote into its local copy of the workspace (the brief, docs/, the improvement round's
        point) into the room's workspace."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name in paths:
                if (workspace / name).exists():
                    tar.add(str(workspace / name), name)
        data = raw.getvalue()
        pod = self._pod("workspace")
        command = ["sh", "-c", f"head -c {len(data)} | tar -xzf - -C {WORKSPACE}"]
        self.cluster.check_exec(self.namespace, pod, command, container="jupyterlab", stdin=data)

    def room_activity(self) -> float | None:
        """When the candidate last did something in their room (JupyterLab's own `last_activity`)."""
        from mlsandbox.stack.prometheus import prometheus_time

        status, _, body = self.cluster.proxy(
            self.namespace, "workspace", 8888, "/api/status", query=[("token", self.cfg.room.token)]
        )
        if status != 200:
            return None
        try:
            return prometheus_time(json.loads(body)["last_activity"])
        except (ValueError, KeyError, TypeError):
            return None

    def shell(self, command: list[str]) -> int:
        """In the room's container: with a terminal through `kubectl exec -it` (the client has no terminal of its
        own), else through the client."""
        pod = self._pod("workspace")
        if sys.stdin.isatty() and shutil.which("kubectl"):
            context = ["--context", self.kube.context] if self.kube.context else []
            argv = ["kubectl", *context, "-n", self.namespace, "exec", "-it", pod, "-c", "jupyterlab", "--"]
            # Not a login shell: Debian's /etc/profile would drop the room's PATH (its Python, reload-rules).
            return subprocess.run([*argv, *(command or ["/bin/bash"])]).returncode
        if not command:
            raise MlsandboxError("a shell needs a terminal (and kubectl): give a command after `--`")
        result = self.cluster.exec(self.namespace, pod, command, container="jupyterlab")
        sys.stdout.buffer.write(result.stdout)
        sys.stderr.buffer.write(result.stderr)
        return result.returncode


class _HelperPod:
    """`with _HelperPod(sandbox, {claim: path}) as pod:` a helper pod holding the claims (render.helper_pod),
    running, deleted afterwards."""

    def __init__(self, sandbox: KubernetesSandbox, claims: dict[str, str], write: bool):
        self.sandbox, self.claims, self.write = sandbox, claims, write
        self.name = f"helper-{secrets.token_hex(4)}"

    def __enter__(self) -> str:
        s = self.sandbox
        pod = render.helper_pod(s.namespace, self.name, self.claims, s.kube, readonly=not self.write)
        s.cluster.apply(pod)
        try:
            s.cluster.wait_pod_running(s.namespace, self.name)
        except BaseException:
            self.__exit__()
            raise
        return self.name

    def __exit__(self, *exc) -> None:
        self.sandbox.cluster.delete("Pod", self.name, self.sandbox.namespace)


def unpack(packed: bytes, dest: Path) -> None:
    """A gzipped tar from a pod into `dest`: plain files and folders only, none outside `dest` (what comes out of
    a candidate's workspace is theirs to shape)."""
    root = dest.resolve()
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
        for member in tar.getmembers():
            target = (root / member.name).resolve()
            if not (member.isfile() or member.isdir()) or not target.is_relative_to(root):
                continue
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)


def mirror(source: Path, dest: Path) -> None:
    """`dest` made to hold what `source` holds (files added, changed and removed; unchanged ones not touched, so
    that their times stay and the work history sees only real changes)."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {p.relative_to(source) for p in source.rglob("*")}
    for path in sorted(dest.rglob("*"), reverse=True):
        if path.relative_to(dest) not in wanted:
            path.unlink() if path.is_file() or path.is_symlink() else shutil.rmtree(path, ignore_errors=True)
    for rel in sorted(wanted):
        src, dst = source / rel, dest / rel
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        elif not dst.is_file() or dst.read_bytes() != src.read_bytes():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
