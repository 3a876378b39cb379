"""The machine's shared services: MLflow with the trained model, started once and used by every native sandbox
and session on the machine, so that a day of candidates trains the model once; and the interviewer's console
(console/), one per machine, for every sandbox and session (compose ones too).

They live in the home run directory (run/ unless MLSANDBOX_RUN_DIR says otherwise), which keeps machine.json:
their processes and the run directories of the sandboxes using them. They start with the first sandbox and stop
with the last one (`mlsandbox down` of a sandbox that no other sandbox shares them with).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import BaseModel, ValidationError

from load.truth import atomic_write
from mlsandbox.config import StackConfig
from mlsandbox.layout import RunLayout
from mlsandbox.say import Say
from mlsandbox.stack import components
from mlsandbox.stack.processes import Component, interrupts_held, is_alive, is_healthy, start, stop, wait_healthy
from mlsandbox.stack.sandbox import ComponentStatus
from mlsandbox.stack.state import held, running
from mlsandbox.stack.training import models_registered, seed_mlflow_store, train_model


class MachineState(BaseModel):
    mlflow: Component | None = None
    console: Component | None = None
    users: list[str] = []  # run directories of the sandboxes using the services


def component_status(comp: Component) -> ComponentStatus:
    """A natively started component as `mlsandbox status` shows it."""
    alive = is_alive(comp.pid)
    state = ("healthy" if is_healthy(comp.health_url) else "unhealthy") if alive else "stopped"
    return ComponentStatus(comp.name, state, comp.url, comp.pid, comp.log)


class MachineServices:
    def __init__(self, cfg: StackConfig, say: Say = print):
        self.cfg, self.say = cfg, say

    @property
    def _path(self) -> Path:
        return self.cfg.layout.machine

    def _lock(self):
        # Waited for, not refused: two sessions starting at once both want MLflow; the second waits its turn.
        return held(
            self.cfg.layout.machine_lock,
            f"another command holds MLflow's lock in {self.cfg.run_dir}",
            wait_seconds=self.cfg.health_timeout_seconds,
        )

    def load(self) -> MachineState:
        try:
            return MachineState.model_validate_json(self._path.read_text())
        except (OSError, ValidationError):
            return MachineState()

    def _save(self, state: MachineState) -> None:
        atomic_write(self._path, state.model_dump_json(indent=2))

    @property
    def mlflow_url(self) -> str:
        return self.cfg.mlflow_url

    def ensure(self, user: Path, mlflow: bool = True) -> Component | None:
        """The console running, and (unless `mlflow` is False: a compose project has its own) MLflow healthy with
        the champion model registered (trained now when missing); `user` counted. MLflow's process."""
        with self._lock():
            state = self.load()
            if mlflow:
                seed_mlflow_store(self.cfg, self.say)
                state.mlflow = self._running(state.mlflow, components.mlflow(self.cfg), state)
            if not self.cfg.external_console:
                state.console = self._running(state.console, components.console(self.cfg, self.token_file()), state)
            if mlflow:
                took = wait_healthy(state.mlflow, self.cfg.health_timeout_seconds)
                self.say(f"  mlflow healthy in {took:.1f}s at {state.mlflow.url}")
            if state.console is not None:
                wait_healthy(state.console, self.cfg.health_timeout_seconds)
            if mlflow and not models_registered(self.mlflow_url):
                train_model(self.cfg, self.say)
            key = str(user.resolve())
            if key not in state.users:
                state.users.append(key)
            self._save(state)
            return state.mlflow if mlflow else None

    def _running(self, comp: Component | None, spec, state: MachineState) -> Component:
        """`comp` when its process lives, else `spec` started now (recorded at once, so that a failure later
        still finds it to stop)."""
        if comp is not None and is_alive(comp.pid):
            return comp
        self.say(f"starting {spec.name} (one per machine, shared by every sandbox and session) ...")
        with interrupts_held():
            comp = start(spec, self.cfg.layout.logs)
            setattr(state, spec.name, comp)
            self._save(state)
        return comp

    def release(self, user: Path) -> list[str]:
        """`user` no longer uses the services; MLflow and the console stop when no other running sandbox does.
        What was stopped."""
        with self._lock():
            state = self.load()
            key = str(user.resolve())
            state.users = [u for u in state.users if u != key and running(RunLayout(Path(u)))]
            if state.users:
                self._save(state)
                return []
            stopped = []
            for comp in (state.console, state.mlflow):
                if comp is not None and is_alive(comp.pid):
                    stopped.append(comp.name)
                if comp is not None:
                    stop(comp.pid)
            self._path.unlink(missing_ok=True)
            return stopped

    def users(self) -> list[Path]:
        """The run directories of the sandboxes still using the services."""
        return [Path(u) for u in self.load().users if running(RunLayout(Path(u)))]

    # --- the console's token ----------------------------------------------------------------------------
    def token_file(self) -> Path:
        """The console's token (made once, readable by its owner only): the console answers nothing without it."""
        path = self.cfg.layout.console_token
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24) + "\n")
        return path

    def console_url(self) -> str:
        return f"{self.cfg.url(self.cfg.ports.console)}/?token={self.token_file().read_text().strip()}"

    def restart(self, name: str) -> None:
        """Start MLflow or the console again."""
        specs = {
            "mlflow": lambda: components.mlflow(self.cfg),
            "console": lambda: components.console(self.cfg, self.token_file()),
        }
        with self._lock():
            state = self.load()
            old = getattr(state, name)
            if old is not None:
                stop(old.pid)
            comp = start(specs[name](), self.cfg.layout.logs)
            setattr(state, name, comp)
            self._save(state)
            wait_healthy(comp, self.cfg.health_timeout_seconds)

    def status(self) -> list[ComponentStatus]:
        state = self.load()
        return [component_status(comp) for comp in (state.mlflow, state.console) if comp is not None]
