"""The machine's shared services: MLflow with the trained model, started once and used by every native sandbox
and session on the machine, so that a day of candidates trains the model once; and the interviewer's console
(console/), one per machine, for every sandbox and session (compose ones too).

The hub lives in the home run directory (run/ unless MLSANDBOX_RUN_DIR says otherwise) and keeps hub.json
there: its processes and the run directories of the sandboxes using it. It starts with the first sandbox and
stops with the last one (`mlsandbox down` of a sandbox that no other sandbox shares it with).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from . import components
from .config import StackConfig
from .processes import (
    Started,
    StartError,
    interrupts_held,
    is_alive,
    is_healthy,
    start,
    stop,
    wait_healthy,
    write_json_atomic,
)
from .sandbox import ComponentStatus, SandboxError, Say
from .state import SandboxState, held


class HubState(BaseModel):
    mlflow: Started | None = None
    console: Started | None = None
    users: list[str] = []  # run directories of the sandboxes using the hub


def _uses_hub(run_dir: str) -> bool:
    """Whether a sandbox still runs in `run_dir` (any of its processes alive)."""
    from .layout import RunLayout

    state = SandboxState.load(RunLayout(Path(run_dir)))
    if state is None:
        return False
    # A compose project outlives the command that started it; its state file goes with `down`.
    return state.backend == "docker" or any(is_alive(c.pid) for c in state.components)


class Hub:
    def __init__(self, cfg: StackConfig, say: Say = print):
        self.cfg, self.say = cfg, say

    @property
    def _path(self) -> Path:
        return self.cfg.layout.hub

    def _lock(self):
        # Waited for, not refused: two sessions starting at once both want MLflow; the second waits its turn.
        return held(
            self.cfg.layout.hub_lock,
            f"another command holds MLflow's lock in {self.cfg.run_dir}",
            wait_seconds=self.cfg.health_timeout_seconds,
        )

    def load(self) -> HubState:
        try:
            return HubState.model_validate_json(self._path.read_text())
        except (OSError, ValidationError):
            return HubState()

    def _save(self, state: HubState) -> None:
        write_json_atomic(self._path, state.model_dump(mode="json"))

    @property
    def mlflow_url(self) -> str:
        return self.cfg.mlflow_url

    def ensure(self, user: Path, mlflow: bool = True) -> Started | None:
        """The console running, and (unless `mlflow` is False: a compose project has its own) MLflow healthy with
        the champion model registered (trained now when missing); `user` counted. MLflow's process."""
        from .native import models_registered, train_model

        with self._lock():
            state = self.load()
            try:
                if mlflow:
                    state.mlflow = self._running(state.mlflow, components.mlflow(self.cfg), state)
                state.console = self._running(state.console, components.console(self.cfg, self.token_file()), state)
                for comp in [state.mlflow] if mlflow else []:
                    took = wait_healthy(comp, self.cfg.health_timeout_seconds)
                    self.say(f"  {comp.name} healthy in {took:.1f}s at {comp.url}")
                wait_healthy(state.console, self.cfg.health_timeout_seconds)
            except StartError as exc:
                raise SandboxError(str(exc)) from None
            if mlflow and not models_registered(self.mlflow_url):
                train_model(self.cfg, self.say)
            key = str(user.resolve())
            if key not in state.users:
                state.users.append(key)
            self._save(state)
            return state.mlflow if mlflow else None

    def _running(self, comp: Started | None, spec, state: HubState) -> Started:
        """`comp` when its process lives, else `spec` started now (recorded at once, so that a failure later
        still finds it to stop)."""
        if comp is not None and is_alive(comp.pid):
            return comp
        self.say(f"starting {spec.name} (one per machine, shared by every sandbox and session) ...")
        with interrupts_held():
            comp = start(spec, self.cfg.logs_dir)
            setattr(state, spec.name, comp)
            self._save(state)
        return comp

    def release(self, user: Path) -> list[str]:
        """`user` no longer uses the hub; MLflow and the console stop when no other running sandbox does. What
        was stopped."""
        with self._lock():
            state = self.load()
            key = str(user.resolve())
            state.users = [u for u in state.users if u != key and _uses_hub(u)]
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

    # --- the console's token ----------------------------------------------------------------------------
    def token_file(self) -> Path:
        """The console's token (made once, readable by its owner only): the console answers nothing without it."""
        path = self.cfg.layout.console_token
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24) + "\n")
        return path

    def console_url(self) -> str:
        return f"{self.cfg.url(self.cfg.console_port)}/?token={self.token_file().read_text().strip()}"

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
            try:
                comp = start(specs[name](), self.cfg.logs_dir)
                setattr(state, name, comp)
                self._save(state)
                wait_healthy(comp, self.cfg.health_timeout_seconds)
            except StartError as exc:
                raise SandboxError(str(exc)) from None

    def status(self) -> list[ComponentStatus]:
        out = []
        hub = self.load()
        for comp in (hub.mlflow, hub.console):
            if comp is None:
                continue
            alive = is_alive(comp.pid)
            state = ("healthy" if is_healthy(comp.health_url) else "unhealthy") if alive else "stopped"
            out.append(ComponentStatus(comp.name, state, comp.url, comp.pid, comp.log))
        return out
