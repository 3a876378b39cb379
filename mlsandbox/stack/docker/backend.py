"""The Docker backend: the sandbox as a compose project (compose.py) on whatever engine answers, or a private one
started here (engine.py). The same commands as natively; where the native backend reads a
file of the run directory, this one asks a container of the project (the hidden truth lives in a volume that
only the load service mounts)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import yaml
from dotenv import dotenv_values
from pydantic import ValidationError

from load.truth import TimelineRecord
from mlsandbox.config import StackConfig
from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import REPO_ROOT, Ports, RunLayout
from mlsandbox.say import Say
from mlsandbox.services.grafana_secret import HOST_PATH as GRAFANA_PASSWORD_FILE
from mlsandbox.stack import room
from mlsandbox.stack.docker.compose import COMPOSE_FILE, ComposeProject
from mlsandbox.stack.docker.engine import Engine, PrivateEngine, answers, connect
from mlsandbox.stack.machine import MachineServices
from mlsandbox.stack.native_config import compose_prometheus
from mlsandbox.stack.preflight import check_candidate, check_scenario
from mlsandbox.stack.prometheus import reload, wait_first_scrape
from mlsandbox.stack.sandbox import ComponentStatus, GradingInputs, Sandbox
from mlsandbox.stack.state import DockerState, SandboxState, ScenarioPlay, locked

# Where the services listen inside the project (compose.yaml: the default ports), to ask compose for the host
# side. The console is the machine's, on the host.
CONTAINER_PORTS = {name: port for name, port in Ports.default().by_component().items() if name != "console"}
LOAD_COMMAND = [
    "python",
    "-m",
    "locust",
    "-f",
    "/opt/mlsandbox/load/locustfile.py",
    "--host",
    "http://model-server:8000",
    "--exit-code-on-error",
    "0",
]
TRUTH = "/truth"  # the load service's mount of the scenario's truth


def engine_root() -> Path:
    # One private engine per checkout (as one Docker daemon per machine), whatever run directory a sandbox uses; its
    # images are in the machine's image store (engine.py), the cache that makes a second `up` fast.
    return RunLayout.default().docker_engine


class DockerBackend(Sandbox):
    backend = "docker"

    def __init__(
        self,
        cfg: StackConfig,
        say: Say = print,
        local_images: bool = False,
        project: str = "mlsandbox",
        engine: Engine | None = None,
        settings: dict[str, str] | None = None,
        machine_dir: Path | None = None,
    ):
        super().__init__(cfg, say)
        self.local_images, self.project = local_images, project
        self.engine, self.settings = engine, dict(settings or {})
        # The console runs on the host, one per machine, from the home run directory (stack/machine.py).
        self.machine_dir = Path(machine_dir or cfg.run_dir).resolve()

    @property
    def machine(self) -> MachineServices:
        return MachineServices(self.cfg.model_copy(update={"run_dir": self.machine_dir}), self.say)

    @classmethod
    def from_state(cls, cfg: StackConfig, state: SandboxState, say: Say = print) -> "DockerBackend":
        d = state.docker
        private = PrivateEngine(Path(d.private_engine_root)) if d.private_engine_root else None
        engine = Engine(private.host if private else None, private)
        return cls(cfg, say, d.local_images, d.project, engine, d.settings, state.machine_dir)

    @classmethod
    def plain_compose_up(cls, cfg: StackConfig, say: Say = print) -> "DockerBackend | None":
        """A stack started with a plain `docker compose up`: project and candidate folder from .env, on the engine
        that answers by default; None when no such stack runs (or no Docker here at all)."""
        if shutil.which("docker") is None or not answers(None):
            return None
        env = dotenv_values(COMPOSE_FILE.parent / ".env")
        project = os.environ.get("COMPOSE_PROJECT_NAME") or env.get("COMPOSE_PROJECT_NAME") or "mlsandbox"
        candidate = os.environ.get("CANDIDATE_DIR") or env.get("CANDIDATE_DIR") or "./starter_repo"
        backend = cls(
            cfg, say, False, project, Engine(None, None), {"CANDIDATE_DIR": str((REPO_ROOT / candidate).resolve())}
        )
        return backend if backend.compose_project().containers() else None

    def compose_project(self) -> ComposeProject:
        if self.engine is None:
            raise MlsandboxError("no Docker engine for this sandbox")
        return ComposeProject(self.engine, self.local_images, self.project, self.settings, self.say)

    def candidate_dir(self) -> Path | None:
        return Path(self.settings["CANDIDATE_DIR"]) if "CANDIDATE_DIR" in self.settings else None

    # --- start and stop -------------------------------------------------------------------------------
    def up(self, candidate: Path, play: ScenarioPlay | None) -> dict[str, str]:
        candidate = check_candidate(candidate)
        if play is not None:
            check_scenario(play.scenario)
        if self.state is not None:
            raise MlsandboxError("a sandbox is already running in this run directory; `mlsandbox down` first")
        play_settings = (
            {
                "SCENARIO": play.scenario,
                "SCENARIO_SPEED": f"{play.speed:g}",
                "SCENARIO_SURPRISE": "true" if play.surprise else "false",
                "SCENARIO_SEED": "" if play.seed is None else str(play.seed),
            }
            if play
            else {}
        )
        self.settings = {"CANDIDATE_DIR": str(candidate), **play_settings, **self.cfg.ports.compose_environment()}
        if self.cfg.room is not None:
            self.settings.update(self._room_settings(candidate))
        with locked(self.layout):
            self.engine = connect(engine_root(), self.say)
            SandboxState(
                backend="docker",
                candidate_dir=candidate,
                ports=self.cfg.ports,
                play=play,
                machine_dir=self.machine_dir,
                docker=DockerState(
                    project=self.project,
                    local_images=self.local_images,
                    settings=self.settings,
                    private_engine_root=str(self.engine.private.root) if self.engine.private else None,
                ),
            ).save(self.layout)
            project = self.compose_project()
            project.build()
            self.say("starting the stack and waiting for every service to be healthy ...")
            # The load service serves Locust's web UI; a play without it runs as a headless `compose run`.
            seconds = project.up(without=set() if play and play.web_ui else {"load"})
            self.say(f"every service healthy in {seconds:.0f} s")
            wait_first_scrape(self._url("prometheus"), self.cfg.health_timeout_seconds)
            if play is not None and not play.web_ui:
                self.start_play(play)
            self.machine.ensure(self.cfg.run_dir, mlflow=False)
            urls = {**self.urls(), "console": self.machine.console_url()}
            if "grafana" in urls:
                self.say(f"Grafana: user admin, password in {GRAFANA_PASSWORD_FILE}")
            return urls

    def _room_settings(self, candidate: Path) -> dict[str, str]:
        """A session's room under compose: the workspace container (profile `room`) with its files, run as the
        workspace's owner; Prometheus, Alertmanager and Grafana under the paths the room proxies them at."""
        owner = candidate.stat().st_uid
        folder = self.layout.root / "room"
        room.compose_room_files(self.cfg, folder, owner)
        config = self.layout.root / "prometheus-compose.yml"
        config.write_text(yaml.safe_dump(compose_prometheus(self.cfg), sort_keys=False))
        return {
            "COMPOSE_PROFILES": "room",
            "ROOM_DIR": str(folder),
            "ROOM_USER": f"{owner}:{candidate.stat().st_gid}",
            "PROMETHEUS_PATH": self.cfg.prometheus_path,
            "ALERTMANAGER_PATH": self.cfg.alertmanager_path,
            "PROMETHEUS_CONFIG": str(config),
            "GRAFANA_PATH": "/grafana",
            "GRAFANA_SUB_PATH": "true",
        }

    def _url(self, service: str) -> str:
        """A service's address on the host, with the path it answers under (Prometheus and Alertmanager in a
        session with a room)."""
        paths = {
            "prometheus": self.settings.get("PROMETHEUS_PATH", ""),
            "alertmanager": self.settings.get("ALERTMANAGER_PATH", ""),
        }
        return self.compose_project().published_url(service, CONTAINER_PORTS[service]) + paths.get(service, "")

    def down(self, volumes: bool = False, keep_engine: bool = False) -> list[str]:
        project = self.compose_project()
        with locked(self.layout):
            stopped = sorted(project.service_states()) if answers(project.engine.host) else []
            if answers(project.engine.host):
                project.down(volumes)
            # The private engine goes too, unless another project still has containers on it.
            engine = project.engine
            if (
                engine.private
                and not keep_engine
                and answers(engine.host)
                and not project.docker("ps", "-aq").stdout.strip()
            ):
                engine.private.stop()
                stopped.append("dockerd (private)")
            SandboxState.forget(self.layout)
        return stopped + self.machine.release(self.cfg.run_dir)

    def restart(self, component: str) -> None:
        self.compose_project().compose("restart", component, capture=True)
        self.compose_project().wait_healthy(300, {component})

    # --- what runs ------------------------------------------------------------------------------------
    def status(self) -> list[ComponentStatus]:
        project = self.compose_project()
        if not answers(project.engine.host):
            raise MlsandboxError("the Docker engine does not answer")
        urls = self.urls()
        console = [c for c in self.machine.status() if c.name == "console"]
        return console + [
            ComponentStatus(name, state, urls.get(name)) for name, state in sorted(project.service_states().items())
        ]

    def urls(self) -> dict[str, str]:
        project = self.compose_project()
        out = {}
        for name in sorted(project.service_states()):
            if name in CONTAINER_PORTS:
                try:
                    out[name] = self._url(name)
                except MlsandboxError:
                    continue
        return out

    def reload_rules(self) -> None:
        project = self.compose_project()
        check = project.compose(
            "exec",
            "-T",
            "prometheus",
            "sh",
            "-c",
            "promtool check rules /etc/prometheus/alerts/*.y*ml",
            capture=True,
            check=False,
        )
        if check.returncode != 0:
            lines = [ln.strip() for ln in (check.stdout + check.stderr).splitlines() if "FAILED" in ln or "rror" in ln]
            raise MlsandboxError(f"rules not loaded: {'; '.join(lines) or check.stderr.strip()}")
        reload(self._url("prometheus"))

    # --- scenarios: the load service's image, its volumes ---------------------------------------------
    def play(self, play: ScenarioPlay) -> None:
        check_scenario(play.scenario, play.from_phase)
        project = self.compose_project()
        playing = self.timeline()
        if playing is not None and playing.current is not None and not playing.interrupted(time.time()):
            raise MlsandboxError(
                f"a scenario is already playing ({playing.scenario}); let it finish, or `mlsandbox down`"
            )
        result = project.compose(
            "run",
            "--rm",
            "--no-deps",
            "-T",
            *self._play_options(play),
            "load",
            *LOAD_COMMAND,
            "--headless",
            "--only-summary",
            capture=True,
            check=False,
        )
        if result.returncode != 0:
            raise MlsandboxError(f"the load generator exited {result.returncode}:\n{result.stderr[-2000:]}")

    @staticmethod
    def _play_options(play: ScenarioPlay) -> list[str]:
        """`compose run` options for the load service to play `play`; a scenario file of the host is mounted."""
        scenario, mounts = play.scenario, []
        path = Path(play.scenario)
        if path.suffix in (".yaml", ".yml") and path.is_file():
            scenario = f"/opt/mlsandbox/played/{path.name}"
            mounts = ["--volume", f"{path.resolve()}:{scenario}:ro"]
        return [
            *mounts,
            "-e",
            f"MLSANDBOX_SCENARIO={scenario}",
            "-e",
            f"MLSANDBOX_SPEED={play.speed:g}",
            "-e",
            f"MLSANDBOX_SURPRISE={'true' if play.surprise else 'false'}",
            "-e",
            f"MLSANDBOX_SEED={'' if play.seed is None else play.seed}",
            "-e",
            f"MLSANDBOX_FROM_PHASE={play.from_phase or ''}",
        ]

    def start_play(self, play: ScenarioPlay) -> None:
        check_scenario(play.scenario)
        project = self.compose_project()
        project.compose(
            "run",
            "--detach",
            "--rm",
            "--no-deps",
            *self._play_options(play),
            "load",
            *LOAD_COMMAND,
            "--headless",
            "--only-summary",
            capture=True,
        )

    def stop_play(self) -> None:
        """The load service and any play started with `start_play` (a `compose run` container of it)."""
        project = self.compose_project()
        project.compose("stop", "load", capture=True, check=False)
        running = project.docker(
            "ps",
            "--quiet",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            "label=com.docker.compose.service=load",
        ).stdout.split()
        if running:
            project.docker("stop", *running)

    def move_truth(self, dest: Path) -> None:
        folder = dest / "scenario"
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("timeline.json", "ledger.csv"):
            text = self._in_load("sh", "-c", f"cat {TRUTH}/scenario/{name} 2>/dev/null || true")
            if text:
                (folder / name).write_text(text)
        self._in_load("rm", "-rf", f"{TRUTH}/scenario")

    def archive_data(self, run_dir: Path) -> None:
        """Copy the run's data out of the project's volumes: the truth and the prediction log, the notifications,
        and Prometheus's data after a clean stop of Prometheus."""
        project = self.compose_project()
        layout = RunLayout(run_dir)
        try:
            project.collect_session(run_dir)
            layout.notifications.parent.mkdir(parents=True, exist_ok=True)
            try:
                project.copy_out("alert-receiver", "/alerts/notifications.jsonl", layout.notifications)
            except MlsandboxError:
                layout.notifications.touch()  # no alert was ever delivered: the receiver wrote no file
            project.compose("stop", "prometheus", capture=True)
            shutil.rmtree(layout.prometheus_data, ignore_errors=True)
            layout.prometheus_data.parent.mkdir(parents=True, exist_ok=True)
            project.copy_out("prometheus", "/prometheus", layout.prometheus_data)
        except MlsandboxError as exc:
            raise MlsandboxError(f"archiving the compose project's data: {exc}") from None

    def _in_load(self, *command: str) -> str:
        """Run a command in a throwaway container of the load service (it mounts the truth; it need not run)."""
        result = self.compose_project().compose(
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "--entrypoint",
            command[0],
            "load",
            *command[1:],
            capture=True,
            check=False,
        )
        if result.returncode != 0:
            raise MlsandboxError(f"`{' '.join(command)}` in the load service failed: {result.stderr.strip()[-500:]}")
        return result.stdout

    def timeline(self) -> TimelineRecord | None:
        text = self._in_load("sh", "-c", f"cat {TRUTH}/scenario/timeline.json 2>/dev/null || true")
        if not text.strip():
            return None
        try:
            return TimelineRecord.model_validate_json(text)
        except ValidationError as exc:
            raise MlsandboxError(f"the load service's timeline cannot be read: {exc.errors()[0]['msg']}") from None

    def request_skip(self) -> None:
        self._in_load("python", "-c", f"from load.player import request_skip; request_skip({json.dumps(TRUTH)})")

    def request_pause(self, paused: bool) -> None:
        self._in_load(
            "python", "-c", f"from load.player import request_pause; request_pause({json.dumps(TRUTH)}, {paused})"
        )

    def shell(self, command: list[str]) -> int:
        """In the workspace container: `exec` while it runs (its forwarders serve the loopback), else a fresh one."""
        project = self.compose_project()
        # Not a login shell: Debian's /etc/profile would drop the room's PATH (its Python, reload-rules).
        command = command or ["/bin/bash"]
        terminal = [] if sys.stdin.isatty() else ["-T"]
        if project.service_states().get("workspace") in ("healthy", "running", "starting"):
            return project.compose("exec", *terminal, "workspace", *command, check=False).returncode
        init = ["sh", f"{room.COMPOSE_ROOM}/init.sh", *command]
        return project.compose("run", "--rm", "--no-deps", *terminal, "workspace", *init, check=False).returncode

    def grading_inputs(self) -> GradingInputs:
        project = self.compose_project()
        session = project.collect_session(self.layout.docker_session)
        prometheus = self._url("prometheus")
        # Prometheus scrapes model-server:8000 on the compose network; the grader reaches it through its port.
        server = project.published_url("model-server", 8000)
        mlflow = project.published_url("mlflow", 5000)
        return GradingInputs(session, prometheus, self.candidate_dir(), server, mlflow)
