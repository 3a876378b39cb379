"""What runs in a run directory and how it was started: one typed state file for either backend, written
atomically, and a lock so that two commands never start or stop a sandbox there at once."""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from load.truth import atomic_write
from mlsandbox.config import KubeSettings
from mlsandbox.errors import Busy
from mlsandbox.layout import Ports, RunLayout
from mlsandbox.stack.processes import Component, is_alive


class ScenarioPlay(BaseModel):
    """A scenario to play: a shipped name or a file, its seed, its time compression, whether hidden parameters
    are redrawn from the seed, the phase to start from (resuming an interrupted play), and whether Locust serves
    its web UI (not in an interview: it shows the traffic's failures and request mix to anyone on the machine;
    pause and resume go through `mlsandbox scenario pause|resume` and the console)."""

    model_config = ConfigDict(frozen=True)

    scenario: str
    seed: int | None = None
    speed: float = Field(1.0, gt=0)
    surprise: bool = False
    from_phase: str | None = None
    web_ui: bool = True


# What `up` shows for a component without a URL: Locust playing without its web UI.
HEADLESS = "headless, no web UI (mlsandbox scenario pause|resume)"


class DockerState(BaseModel):
    """A compose project: its name, whether its images were built here, the variables compose read, and the
    private engine it runs on (None: the engine that answered)."""

    model_config = ConfigDict(frozen=True)

    project: str
    local_images: bool
    settings: dict[str, str]
    private_engine_root: str | None = None


class KubeState(BaseModel):
    """A session's namespace on a cluster: its name, the cluster's settings it was made with (the context among
    them), and the room's link."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    settings: KubeSettings
    link: str


class SandboxState(BaseModel):
    backend: Literal["native", "docker", "kubernetes"]
    candidate_dir: Path
    ports: Ports
    play: ScenarioPlay | None = None
    started_at: float = Field(default_factory=time.time)
    components: list[Component] = []  # native
    machine_dir: Path | None = None  # native: whose MLflow it shares (see stack/machine.py)
    docker: DockerState | None = None
    kubernetes: KubeState | None = None

    def save(self, layout: RunLayout) -> None:
        atomic_write(layout.state, self.model_dump_json(indent=2))

    def running(self) -> bool:
        """Whether the sandbox still runs: natively, any of its processes alive; a compose project or a namespace
        outlives the command that started it, and its state file goes with `down`."""
        return self.backend != "native" or any(is_alive(c.pid) for c in self.components)

    @classmethod
    def load(cls, layout: RunLayout) -> "SandboxState | None":
        """The saved state; None when there is none (or an unreadable one, as after an interrupted write)."""
        try:
            return cls.model_validate_json(layout.state.read_text())
        except (OSError, ValidationError):
            return None

    @staticmethod
    def forget(layout: RunLayout) -> None:
        layout.state.unlink(missing_ok=True)


def running(layout: RunLayout) -> bool:
    """Whether a sandbox runs in this run directory (see SandboxState.running)."""
    state = SandboxState.load(layout)
    return state is not None and state.running()


@contextmanager
def held(lock: Path, busy: str, wait_seconds: float = 0.0):
    """Hold an exclusive lock on a file; Busy(busy) when another command holds it for longer than
    `wait_seconds` (0: refused at once)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Busy(busy) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def locked(layout: RunLayout):
    """Hold the run directory's lock (refused at once, not waited for, when another command holds it)."""
    return held(layout.lock, f"another mlsandbox command is starting or stopping the sandbox in {layout.root}")
