"""The native backend: every component a process (group) on this machine, started from components.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from load.player import request_pause, request_skip
from load.scenario import ScenarioError, load_scenario
from load.truth import TimelineRecord, TruthError, read_timeline

from . import components
from .hub import Hub
from .native_config import InvalidConfig, check_alertmanager, check_prometheus, write_alertmanager, write_prometheus
from .processes import (
    StartError,
    interrupts_held,
    is_alive,
    is_healthy,
    run_to_end,
    start,
    stop,
    tail,
    wait_healthy,
    wait_until,
)
from .sandbox import ComponentStatus, GradingInputs, Sandbox, SandboxError
from .state import Component, SandboxState, ScenarioPlay, locked


def check_scenario(name_or_path: str, from_phase: str | None = None) -> None:
    from load.player import PhaseError, phase_index

    try:
        scenario = load_scenario(name_or_path)
        if from_phase is not None:
            phase_index(scenario, from_phase)
    except (ScenarioError, PhaseError) as exc:
        raise SandboxError(str(exc)) from None


def check_candidate(candidate: Path) -> Path:
    candidate = candidate.resolve()
    if not (candidate / "app" / "main.py").exists():
        raise SandboxError(f"{candidate} is not a candidate folder: it has no app/main.py")
    return candidate


def require_binaries() -> None:
    missing = [b for b in components.SYSTEM_BINARIES if shutil.which(b) is None]
    if missing:
        packages = sorted({components.SYSTEM_BINARIES[b] for b in missing})
        raise SandboxError(
            f"{', '.join(missing)} not found: install with `sudo apt-get install "
            f"{' '.join(packages)}` (or run `make up`, which does it)"
        )


def models_registered(mlflow_url: str) -> bool:
    """Both versions a sandbox serves are in MLflow: the champion, and the challenger a scenario may release."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from model_service.settings import CHALLENGER_ALIAS, MODEL_ALIAS, MODEL_NAME

    client = MlflowClient(tracking_uri=mlflow_url)
    try:
        for alias in (MODEL_ALIAS, CHALLENGER_ALIAS):
            client.get_model_version_by_alias(MODEL_NAME, alias)
    except MlflowException:
        return False
    return True


def train_model(cfg, say) -> None:
    say("training the churn model and registering churn-classifier@champion (and @challenger) in MLflow ...")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_service.train",
            "--tracking-uri",
            cfg.mlflow_url,
            "--seed",
            str(cfg.training_seed),
            "--if-missing",  # a machine trained before the challenger existed keeps its champion
        ],
        capture_output=True,
        text=True,
    )
    log = cfg.layout.log("training")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SandboxError(f"training failed; its log: {log}\n{result.stderr[-2000:]}")
    for line in result.stdout.splitlines():
        say("  " + line)


def prometheus_config(cfg, candidate: Path) -> Path:
    """Prometheus's native config for this candidate, checked (with the candidate's rule files) by promtool."""
    path = write_prometheus(cfg, candidate)
    try:
        check_prometheus(path)
    except InvalidConfig as exc:
        raise SandboxError(f"Prometheus would not start: {exc}") from None
    return path


def wait_first_scrape(prometheus_url: str, timeout: float, since: float | None = None) -> None:
    """Until Prometheus has scraped the model server once after `since` (default: now), when the server was
    healthy: before that its target page shows no target, or a scrape taken while the server was starting, and
    the candidate's brief (the target down until they expose /metrics, then up) would not match what they see."""
    from .rule_health import prometheus_time

    since = time.time() if since is None else since

    def scraped() -> bool:
        try:
            targets = httpx.get(f"{prometheus_url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        for t in targets:
            if t["labels"].get("job") == "model-server" and t.get("health") != "unknown":
                if prometheus_time(t["lastScrape"]) >= since:
                    return True
        return False

    wait_until(scraped, timeout, "Prometheus has not scraped the model server")


class NativeSandbox(Sandbox):
    """`hub_dir`: the run directory whose MLflow this sandbox shares (default: its own; a session's is the home
    run directory's, see hub.py)."""

    backend = "native"

    def __init__(self, cfg, say=print, hub_dir: Path | None = None):
        super().__init__(cfg, say)
        state = self.state
        self.hub_dir = Path(hub_dir or (state.hub_dir if state and state.hub_dir else cfg.run_dir)).resolve()

    @property
    def hub(self) -> Hub:
        return Hub(self.cfg.model_copy(update={"run_dir": self.hub_dir}), self.say)

    def _components(self) -> list[Component]:
        state = self.state
        return state.components if state else []

    def running(self) -> list[Component]:
        return [c for c in self._components() if is_alive(c.pid)]

    # --- start and stop -------------------------------------------------------------------------------
    def up(self, candidate: Path, play: ScenarioPlay | None) -> dict[str, str]:
        """MLflow (shared, see hub.py; training the model if needed), the alert receiver, Alertmanager,
        Prometheus, the model server on the candidate's code and, unless `play` is None, Locust playing the
        scenario. Returns once Prometheus has scraped the model server once."""
        cfg = self.cfg
        candidate = check_candidate(candidate)
        if play is not None:
            check_scenario(play.scenario)
        if self.running():
            raise SandboxError("the sandbox is already running; `mlsandbox down` first (or `mlsandbox status`)")
        require_binaries()
        with locked(self.layout):
            prom_config = prometheus_config(cfg, candidate)
            am_config = write_alertmanager(cfg)
            try:
                check_alertmanager(am_config)
            except InvalidConfig as exc:
                raise SandboxError(f"Alertmanager would not start: {exc}") from None
            state = SandboxState(
                backend="native", candidate_dir=candidate, ports=cfg.ports, play=play, hub_dir=self.hub_dir
            )
            state.save(self.layout)
            try:
                # What needs nothing else starts at once and comes up while MLflow starts (and trains, the first
                # time); the model server, which loads the champion from MLflow, after it.
                independent = [
                    self._start(state, spec)
                    for spec in (
                        components.alert_receiver(cfg),
                        components.alertmanager(cfg, am_config),
                        components.prometheus(cfg, prom_config),
                    )
                ]
                mlflow = self.hub.ensure(cfg.run_dir)
                for comp in independent:
                    self._wait(comp)
                prometheus = independent[-1]
                self._launch(state, components.model_server(cfg, candidate))
                wait_first_scrape(prometheus.url, cfg.health_timeout_seconds, since=time.time())
                if play is not None:
                    self._launch(state, components.load_generator(cfg, play))
            except BaseException as exc:  # Ctrl-C included: leave nothing behind
                self.say("start-up failed; stopping what was started")
                for comp in reversed(state.components):
                    stop(comp.pid)
                SandboxState.forget(self.layout)
                self.hub.release(cfg.run_dir)
                if isinstance(exc, (StartError, SandboxError)):
                    raise SandboxError(str(exc)) from None
                raise
        return {"mlflow": mlflow.url, "console": self.hub.console_url(), **{c.name: c.url for c in state.components}}

    def _launch(self, state: SandboxState, spec) -> Component:
        return self._wait(self._start(state, spec))

    def _start(self, state: SandboxState, spec) -> Component:
        """Started and recorded at once (so that a failure later still finds it to stop); not yet healthy."""
        with interrupts_held():
            comp = start(spec, self.cfg.logs_dir)
            state.components.append(comp)
            state.save(self.layout)
        self.say(f"starting {spec.name} ...")
        return comp

    def _wait(self, comp: Component) -> Component:
        took = wait_healthy(comp, self.cfg.health_timeout_seconds)
        self.say(f"  {comp.name} healthy in {took:.1f}s" + (f" at {comp.url}" if comp.url else ""))
        return comp

    def down(self, volumes: bool = False) -> list[str]:
        stopped = []
        with locked(self.layout):
            for comp in reversed(self._components()):
                stop(comp.pid)
                stopped.append(comp.name)
            SandboxState.forget(self.layout)
        return stopped + self.hub.release(self.cfg.run_dir)

    def restart(self, component: str) -> None:
        state = self.state
        if state is None:
            raise SandboxError("the sandbox is not running; `mlsandbox up` first")
        if component in ("mlflow", "console"):
            self.hub.restart(component)
            return
        old = next((c for c in state.components if c.name == component), None)
        if old is None:
            names = ["mlflow", "console", *(c.name for c in state.components)]
            raise SandboxError(f"no component {component!r} (there are: {', '.join(names)})")
        specs = {
            "alert-receiver": lambda: components.alert_receiver(self.cfg),
            "alertmanager": lambda: components.alertmanager(self.cfg, self.layout.alertmanager_config),
            "prometheus": lambda: components.prometheus(self.cfg, self.layout.prometheus_config),
            "model-server": lambda: components.model_server(self.cfg, state.candidate_dir),
            "load": lambda: components.load_generator(self.cfg, state.play),
        }
        with locked(self.layout):
            stop(old.pid)
            state.components = [c for c in state.components if c.name != component]
            try:
                self._launch(state, specs[component]())
            except StartError as exc:
                state.save(self.layout)
                raise SandboxError(str(exc)) from None

    # --- what runs ------------------------------------------------------------------------------------
    def status(self) -> list[ComponentStatus]:
        out = self.hub.status() if self.state else []
        for c in self._components():
            alive = is_alive(c.pid)
            state = ("healthy" if is_healthy(c.health_url) else "unhealthy") if alive else "stopped"
            out.append(ComponentStatus(c.name, state, c.url, c.pid, c.log))
        return out

    def urls(self) -> dict[str, str]:
        return {**{c.name: c.url for c in self.hub.status()}, **{c.name: c.url for c in self._components()}}

    def reload_rules(self) -> None:
        state = self.state
        if state is None:
            raise SandboxError("the sandbox is not running; `mlsandbox up` first")
        try:
            prometheus_config(self.cfg, state.candidate_dir)
        except SandboxError as exc:
            raise SandboxError(str(exc).replace("Prometheus would not start", "rules not loaded")) from None
        response = httpx.post(f"{self.cfg.prometheus_url}/-/reload", timeout=10)
        if response.status_code != 200:
            raise SandboxError(f"Prometheus refused the reload: {response.text.strip()}")

    # --- scenarios ------------------------------------------------------------------------------------
    def play(self, play: ScenarioPlay) -> None:
        check_scenario(play.scenario, play.from_phase)
        names = {c.name for c in self.running()}
        if "model-server" not in names:
            raise SandboxError("the sandbox is not running; `mlsandbox up --no-load` first")
        if "load" in names:
            raise SandboxError("a scenario is already playing (the `load` component); `mlsandbox down` stops it")
        spec = components.load_generator(self.cfg, play, headless=True)
        log = self.layout.log("load-headless")
        code = run_to_end(spec.argv, log, spec.env, spec.cwd)
        if code != 0:
            raise SandboxError(f"the load generator exited {code}; its log: {log}\n{tail(str(log))}")

    def start_play(self, play: ScenarioPlay) -> None:
        check_scenario(play.scenario)
        state = self.state
        if state is None or not self.running():
            raise SandboxError("the sandbox is not running")
        if any(c.name == "load" for c in self.running()):
            raise SandboxError("a scenario is already playing (the `load` component)")
        with locked(self.layout):
            state.components = [c for c in state.components if c.name != "load"]
            state.play = play
            try:
                self._launch(state, components.load_generator(self.cfg, play))
            except StartError as exc:
                raise SandboxError(str(exc)) from None

    def stop_play(self) -> None:
        state = self.state
        load = next((c for c in state.components if c.name == "load"), None) if state else None
        if load is None:
            return
        with locked(self.layout):
            stop(load.pid)
            state.components = [c for c in state.components if c.name != "load"]
            state.save(self.layout)

    def move_truth(self, dest: Path) -> None:
        source = self.layout.scenario
        if source.exists():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), str(dest / source.name))

    def archive_data(self, run_dir: Path) -> None:
        pass  # natively every component writes into the run directory already

    def timeline(self) -> TimelineRecord | None:
        try:
            return read_timeline(self.cfg.run_dir)
        except TruthError as exc:
            raise SandboxError(str(exc)) from None

    def request_skip(self) -> None:
        request_skip(self.cfg.run_dir)

    def request_pause(self, paused: bool) -> None:
        request_pause(self.cfg.run_dir, paused)

    def grading_inputs(self) -> GradingInputs:
        return GradingInputs(
            self.cfg.run_dir, self.cfg.prometheus_url, self.candidate_dir(), mlflow_url=self.cfg.mlflow_url
        )
