"""The Sandbox interface: the same commands whether a sandbox's components run as native processes, as a compose
project or as a namespace on a cluster. It knows no backend: backends.py names them, finds whichever runs in a run directory and makes one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from load.truth import TimelineRecord
from mlsandbox.config import StackConfig
from mlsandbox.say import Say
from mlsandbox.stack.prometheus import prometheus_time
from mlsandbox.stack.room import room_link
from mlsandbox.stack.state import SandboxState, ScenarioPlay


@dataclass(frozen=True)
class ComponentStatus:
    """A component as `mlsandbox status` shows it."""

    name: str
    state: Literal["healthy", "starting", "unhealthy", "running", "stopped", "done", "failed", "exited"]
    url: str | None = None
    pid: int | None = None
    log: str | None = None

    @property
    def ok(self) -> bool:
        return self.state in ("healthy", "running", "done")


@dataclass(frozen=True)
class GradingInputs:
    """What the grader needs: a run directory holding the session's truth, Prometheus, and the candidate."""

    run_dir: Path
    prometheus_url: str
    candidate_dir: Path | None
    server_address: str | None = None  # how the grader reaches the model server, when not as Prometheus does
    mlflow_url: str | None = None


class Sandbox(ABC):
    """A sandbox in a run directory. Every method raises MlsandboxError with a readable line when it cannot do
    what was asked."""

    backend: str

    def __init__(self, cfg: StackConfig, say: Say = print):
        self.cfg, self.say = cfg, say

    @classmethod
    @abstractmethod
    def from_state(cls, cfg: StackConfig, state: SandboxState, say: Say = print) -> "Sandbox":
        """The sandbox that a run directory's state file says runs there."""

    @property
    def layout(self):
        return self.cfg.layout

    @property
    def state(self) -> SandboxState | None:
        return SandboxState.load(self.layout)

    @abstractmethod
    def up(self, candidate: Path, play: ScenarioPlay | None) -> dict[str, str]:
        """Start every component on the candidate's folder (and the load generator playing `play`), wait until
        each is healthy; the URLs, by component."""

    @abstractmethod
    def down(self, volumes: bool = False, keep_engine: bool = False) -> list[str]:
        """Stop everything; what was stopped. `volumes`: delete the data a backend keeps apart from the run
        directory (compose's volumes); `keep_engine`: leave an engine this sandbox started running."""

    @abstractmethod
    def status(self) -> list[ComponentStatus]: ...

    @abstractmethod
    def urls(self) -> dict[str, str]: ...

    @abstractmethod
    def reload_rules(self) -> None:
        """Check the candidate's rule files and load them into Prometheus."""

    @abstractmethod
    def restart(self, component: str) -> None:
        """Start one component again (the model server after the candidate broke it, say)."""

    @abstractmethod
    def play(self, play: ScenarioPlay) -> None:
        """Play a scenario headless in the foreground (a sandbox started without load)."""

    @abstractmethod
    def timeline(self) -> TimelineRecord | None:
        """The hidden timeline of the scenario played (or playing) here."""

    @abstractmethod
    def start_play(self, play: ScenarioPlay) -> None:
        """Start the load generator playing `play` in the background (its web UI on the Locust port)."""

    @abstractmethod
    def stop_play(self) -> None:
        """Stop the load generator if it plays; its timeline says the play was stopped."""

    @abstractmethod
    def move_truth(self, dest: Path) -> None:
        """Move the scenario's truth (timeline, ledger) into `dest`: the next play starts a fresh one."""

    @abstractmethod
    def archive_data(self, run_dir: Path) -> None:
        """Before `down`: make sure `run_dir` holds the run's data (Prometheus's, the prediction log, the
        notifications, the truth)."""

    @abstractmethod
    def request_skip(self) -> None:
        """Ask the player to end the current phase now."""

    @abstractmethod
    def request_pause(self, paused: bool) -> None:
        """Ask the player to pause the traffic (True) or to resume it."""

    @abstractmethod
    def grading_inputs(self) -> GradingInputs: ...

    @abstractmethod
    def shell(self, command: list[str]) -> int:
        """`command` (default: a login shell) in the candidate's room as they see it, on this terminal; its exit
        status."""

    def candidate_dir(self) -> Path | None:
        state = self.state
        return state.candidate_dir if state else None

    # --- where the candidate's room lives (a cluster keeps it apart; here, the defaults of a room on this machine)

    def candidate_link(self) -> str:
        """The candidate's link: their room's JupyterLab with its token."""
        return room_link(self.cfg)

    def mlflow_url(self) -> str:
        """How this process reaches the sandbox's MLflow."""
        return self.cfg.mlflow_url

    def publish(self, workspace: Path, paths: list[str]) -> None:
        """Files the session wrote into the candidate's folder (the brief, docs/) reach their room: here the folder
        is the room's (a cluster copies them in)."""
        return None

    def pull_workspace(self, workspace: Path) -> None:
        """The candidate's folder as their room has it now: here it is the room's (a cluster copies it out)."""
        return None

    def room_activity(self) -> float | None:
        """When the candidate last did something in their room (JupyterLab's `last_activity`); None when it cannot
        be asked (no room, or it does not answer)."""
        if self.cfg.room is None:
            return None
        url = room_link(self.cfg).split("/lab/", 1)[0]
        try:
            answer = httpx.get(f"{url}/api/status", params={"token": self.cfg.room.token}, timeout=5)
            return prometheus_time(answer.json()["last_activity"]) if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
