"""The native backend: every component a process (group) on this machine, started from components.py."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from load.player import request_pause, request_skip
from load.truth import TimelineRecord, TruthError, read_timeline
from mlsandbox.config import StackConfig
from mlsandbox.errors import MlsandboxError
from mlsandbox.say import Say
from mlsandbox.stack import bubblewrap, components, room
from mlsandbox.stack.machine import MachineServices, component_status
from mlsandbox.stack.native_config import alertmanager_config, prometheus_config
from mlsandbox.stack.preflight import check_candidate, check_scenario, require_binaries
from mlsandbox.stack.processes import Component, interrupts_held, is_alive, run_to_end, start, stop, tail, wait_healthy
from mlsandbox.stack.prometheus import reload, wait_first_scrape
from mlsandbox.stack.sandbox import ComponentStatus, GradingInputs, Sandbox
from mlsandbox.stack.state import SandboxState, ScenarioPlay, locked


class NativeSandbox(Sandbox):
    """`machine_dir`: the run directory whose MLflow this sandbox shares (default: its own; a session's is the home
    run directory's, see stack/machine.py)."""

    backend = "native"

    def __init__(self, cfg: StackConfig, say: Say = print, machine_dir: Path | None = None):
        super().__init__(cfg, say)
        state = self.state
        self.machine_dir = Path(
            machine_dir or (state.machine_dir if state and state.machine_dir else cfg.run_dir)
        ).resolve()

    @classmethod
    def from_state(cls, cfg: StackConfig, state: SandboxState, say: Say = print) -> "NativeSandbox":
        return cls(cfg, say)

    @property
    def machine(self) -> MachineServices:
        return MachineServices(self.cfg.model_copy(update={"run_dir": self.machine_dir}), self.say)

    def _components(self) -> list[Component]:
        state = self.state
        return state.components if state else []

    def running(self) -> list[Component]:
        return [c for c in self._components() if is_alive(c.pid)]

    # --- start and stop -------------------------------------------------------------------------------
    def up(self, candidate: Path, play: ScenarioPlay | None) -> dict[str, str]:
        """MLflow (shared, see stack/machine.py; training the model if needed), the alert receiver, Alertmanager,
        Prometheus, the model server on the candidate's code and, unless `play` is None, Locust playing the
        scenario. Returns once Prometheus has scraped the model server once."""
        cfg = self.cfg
        candidate = check_candidate(candidate)
        if play is not None:
            check_scenario(play.scenario)
        if self.running():
            raise MlsandboxError("the sandbox is already running; `mlsandbox down` first (or `mlsandbox status`)")
        require_binaries()
        if cfg.room is not None and cfg.room.sandboxed:
            bubblewrap.require()
        with locked(self.layout):
            prom_config = prometheus_config(cfg, candidate)
            am_config = alertmanager_config(cfg)
            state = SandboxState(
                backend="native", candidate_dir=candidate, ports=cfg.ports, play=play, machine_dir=self.machine_dir
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
                mlflow = self.machine.ensure(cfg.run_dir)
                for comp in independent:
                    self._wait(comp)
                prometheus = independent[-1]
                self._launch(state, self._model_server(candidate))
                if cfg.room is not None:
                    self._launch(state, room.room(cfg, candidate))
                wait_first_scrape(prometheus.url, cfg.health_timeout_seconds, since=time.time())
                if play is not None:
                    self._launch(state, components.load_generator(cfg, play))
            except BaseException:  # Ctrl-C included: leave nothing behind
                self.say("start-up failed; stopping what was started")
                for comp in reversed(state.components):
                    stop(comp.pid)
                SandboxState.forget(self.layout)
                self.machine.release(cfg.run_dir)
                raise
        return {
            "mlflow": mlflow.url,
            "console": self.machine.console_url(),
            **{c.name: c.url for c in state.components},
        }

    def _model_server(self, candidate: Path):
        """The model server's component: in its sandbox beside a candidate's room, else a plain process."""
        if self.cfg.room is not None and self.cfg.room.sandboxed:
            return room.model_server(self.cfg, candidate)
        return components.model_server(self.cfg, candidate)

    def _launch(self, state: SandboxState, spec) -> Component:
        return self._wait(self._start(state, spec))

    def _start(self, state: SandboxState, spec) -> Component:
        """Started and recorded at once (so that a failure later still finds it to stop); not yet healthy."""
        with interrupts_held():
            comp = start(spec, self.cfg.layout.logs)
            state.components.append(comp)
            state.save(self.layout)
        self.say(f"starting {spec.name} ...")
        return comp

    def _wait(self, comp: Component) -> Component:
        took = wait_healthy(comp, self.cfg.health_timeout_seconds)
        self.say(f"  {comp.name} healthy in {took:.1f}s" + (f" at {comp.url}" if comp.url else ""))
        return comp

    def down(self, volumes: bool = False, keep_engine: bool = False) -> list[str]:
        stopped = []
        with locked(self.layout):
            for comp in reversed(self._components()):
                stop(comp.pid)
                stopped.append(comp.name)
            SandboxState.forget(self.layout)
        return stopped + self.machine.release(self.cfg.run_dir)

    def restart(self, component: str) -> None:
        state = self.state
        if state is None:
            raise MlsandboxError("the sandbox is not running; `mlsandbox up` first")
        if component in ("mlflow", "console"):
            self.machine.restart(component)
            return
        old = next((c for c in state.components if c.name == component), None)
        if old is None:
            names = ["mlflow", "console", *(c.name for c in state.components)]
            raise MlsandboxError(f"no component {component!r} (there are: {', '.join(names)})")
        specs = {
            "alert-receiver": lambda: components.alert_receiver(self.cfg),
            "alertmanager": lambda: components.alertmanager(self.cfg, self.layout.alertmanager_config),
            "prometheus": lambda: components.prometheus(self.cfg, prometheus_config(self.cfg, state.candidate_dir)),
            "model-server": lambda: self._model_server(state.candidate_dir),
            "workspace": lambda: room.room(self.cfg, state.candidate_dir),
            "load": lambda: components.load_generator(self.cfg, state.play),
        }
        with locked(self.layout):
            stop(old.pid)
            state.components = [c for c in state.components if c.name != component]
            try:
                self._launch(state, specs[component]())
            finally:
                state.save(self.layout)

    # --- what runs ------------------------------------------------------------------------------------
    def status(self) -> list[ComponentStatus]:
        shared = self.machine.status() if self.state else []
        return shared + [component_status(c) for c in self._components()]

    def urls(self) -> dict[str, str]:
        return {**{c.name: c.url for c in self.machine.status()}, **{c.name: c.url for c in self._components()}}

    def reload_rules(self) -> None:
        state = self.state
        if state is None:
            raise MlsandboxError("the sandbox is not running; `mlsandbox up` first")
        prometheus_config(self.cfg, state.candidate_dir, refused="rules not loaded")
        reload(self.cfg.prometheus_url)

    # --- scenarios ------------------------------------------------------------------------------------
    def play(self, play: ScenarioPlay) -> None:
        check_scenario(play.scenario, play.from_phase)
        names = {c.name for c in self.running()}
        if "model-server" not in names:
            raise MlsandboxError("the sandbox is not running; `mlsandbox up --no-load` first")
        if "load" in names:
            raise MlsandboxError("a scenario is already playing (the `load` component); `mlsandbox down` stops it")
        spec = components.load_generator(self.cfg, play, headless=True)
        log = self.layout.log("load-headless")
        code = run_to_end(spec.argv, log, spec.env, spec.cwd)
        if code != 0:
            raise MlsandboxError(f"the load generator exited {code}; its log: {log}\n{tail(str(log))}")

    def start_play(self, play: ScenarioPlay) -> None:
        check_scenario(play.scenario)
        state = self.state
        if state is None or not self.running():
            raise MlsandboxError("the sandbox is not running")
        if any(c.name == "load" for c in self.running()):
            raise MlsandboxError("a scenario is already playing (the `load` component)")
        with locked(self.layout):
            state.components = [c for c in state.components if c.name != "load"]
            state.play = play
            self._launch(state, components.load_generator(self.cfg, play))

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
            raise MlsandboxError(str(exc)) from None

    def request_skip(self) -> None:
        request_skip(self.cfg.run_dir)

    def request_pause(self, paused: bool) -> None:
        request_pause(self.cfg.run_dir, paused)

    def shell(self, command: list[str]) -> int:
        state = self.state
        if state is None or self.cfg.room is None:
            raise MlsandboxError("no candidate's room runs here (a session's room)")
        room_alive = any(c.name == "workspace" for c in self.running())
        return room.shell(self.cfg, state.candidate_dir, command, room_running=room_alive)

    def grading_inputs(self) -> GradingInputs:
        return GradingInputs(
            self.cfg.run_dir, self.cfg.prometheus_url, self.candidate_dir(), mlflow_url=self.cfg.mlflow_url
        )
