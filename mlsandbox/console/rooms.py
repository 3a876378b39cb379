"""The console's rooms: the sandbox of the home run directory (when one runs) and every interview session,
running or archived; for each, where its truth, Prometheus, candidate and report are."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from load.truth import TimelineRecord, TruthError, read_timeline

from .. import session_store
from ..config import StackConfig
from ..sandbox import Sandbox, SandboxError, open_sandbox
from ..sessions import session_config
from ..state import SandboxState

HOME = "sandbox"  # the room of `mlsandbox up` (the home run directory)
# Under compose the truth is read through a container of the load service: not on every poll of every page.
DOCKER_TIMELINE_SECONDS = 5.0
_docker_timelines: dict[str, tuple[float, TimelineRecord | None]] = {}


@dataclass
class Room:
    name: str
    kind: str  # "sandbox" or "session"
    state: str  # running, ended, interrupted
    run_dir: Path
    sandbox: Sandbox | None  # None once it stopped
    candidate_dir: Path | None
    report: Path | None  # report.html, once there is one

    @property
    def running(self) -> bool:
        return self.sandbox is not None and self.state == "running"

    def urls(self) -> dict[str, str]:
        return self.sandbox.urls() if self.running else {}

    def timeline(self) -> TimelineRecord | None:
        try:
            if self.running and self.sandbox.backend == "docker":
                key = str(self.run_dir)
                cached = _docker_timelines.get(key)
                if cached is None or time.monotonic() - cached[0] > DOCKER_TIMELINE_SECONDS:
                    cached = _docker_timelines[key] = (time.monotonic(), self.sandbox.timeline())
                return cached[1]
            return read_timeline(self.run_dir)
        except (TruthError, SandboxError):
            return None

    def archived_grade(self) -> dict:
        """The last report's data (report.json beside report.html), for a room that no longer runs."""
        import json

        if self.report is None:
            return {}
        try:
            return json.loads(self.report.with_name("report.json").read_text())
        except (OSError, ValueError):
            return {}


def _report(*candidates: Path) -> Path | None:
    return next((p for p in candidates if p.exists()), None)


def home_room(cfg: StackConfig) -> Room | None:
    state = SandboxState.load(cfg.layout)
    if state is None:
        return None
    sandbox = open_sandbox(cfg, say=lambda _: None)
    return Room(
        HOME,
        "sandbox",
        "running",
        cfg.run_dir,
        sandbox,
        state.candidate_dir,
        _report(cfg.layout.report / "report.html"),
    )


def session_room(found: session_store.StoredSession) -> Room:
    layout, record = found.layout, found.record
    state = found.state
    sandbox = open_sandbox(session_config(record, layout), say=lambda _: None) if state == "running" else None
    final = record.final
    reports = [Path(final.report) / "report.html"] if final else []
    reports += [Path(g.report) / "report.html" for g in reversed(record.grades)]
    return Room(record.name, "session", state, layout.run.root, sandbox, layout.candidate, _report(*reports))


class Rooms:
    """Every room, looked up again at most every few seconds (a compose project is asked through its CLI)."""

    def __init__(self, cfg: StackConfig, ttl_seconds: float = 3.0):
        self.cfg, self.ttl = cfg, ttl_seconds
        self._cache: tuple[float, dict[str, Room]] | None = None

    def all(self) -> dict[str, Room]:
        if self._cache and time.monotonic() - self._cache[0] < self.ttl:
            return self._cache[1]
        rooms = {}
        home = home_room(self.cfg)
        if home is not None:
            rooms[home.name] = home
        for found in session_store.all_sessions():
            rooms[found.name] = session_room(found)
        self._cache = (time.monotonic(), rooms)
        return rooms

    def get(self, name: str) -> Room | None:
        return self.all().get(name)
