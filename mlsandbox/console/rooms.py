"""The console's rooms: the sandbox of the home run directory (when one runs) and every interview session,
running or archived (as sessions/store.py's `every_target` lists them); for each, where its truth, Prometheus,
candidate and report are."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from load.truth import TimelineRecord, TruthError, read_timeline
from mlsandbox.errors import MlsandboxError
from mlsandbox.levels.level import Level
from mlsandbox.say import silent
from mlsandbox.sessions.store import SessionLayout, Target, every_target
from mlsandbox.stack.sandbox import Sandbox
from mlsandbox.stack.state import SandboxState

# Under compose (or on a cluster) the truth is read through a container of the load service (a pod of the
# session): not on every poll of every page.
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
    link: str | None = None  # a session's candidate's link (their room)
    layout: SessionLayout | None = None  # a session's folder: its work history and scorecards
    level: Level | None = None  # the level a session is played at (its own copy): its rubric grades it

    @property
    def running(self) -> bool:
        return self.sandbox is not None and self.state == "running"

    def urls(self) -> dict[str, str]:
        return self.sandbox.urls() if self.running else {}

    def timeline(self) -> TimelineRecord | None:
        try:
            if self.running and self.sandbox.backend != "native":
                key = str(self.run_dir)
                cached = _docker_timelines.get(key)
                if cached is None or time.monotonic() - cached[0] > DOCKER_TIMELINE_SECONDS:
                    cached = _docker_timelines[key] = (time.monotonic(), self.sandbox.timeline())
                return cached[1]
            return read_timeline(self.run_dir)
        except (TruthError, MlsandboxError):
            return None

    def archived_grade(self) -> dict:
        """The last report's data (report.json beside report.html), for a room that no longer runs."""
        if self.report is None:
            return {}
        try:
            return json.loads(self.report.with_name("report.json").read_text())
        except (OSError, ValueError):
            return {}


def _report(*candidates: Path) -> Path | None:
    return next((p for p in candidates if p.exists()), None)


def room_of(target: Target) -> Room:
    """The console's view of a sandbox or session."""
    state = target.state
    sandbox = target.sandbox(silent) if state == "running" else None
    found = target.session
    if found is None:
        saved = SandboxState.load(target.cfg.layout)
        report = _report(target.cfg.layout.report / "report.html")
        return Room(target.name, "sandbox", state, target.cfg.run_dir, sandbox, saved and saved.candidate_dir, report)
    record = found.record
    try:
        level = found.level()
    except MlsandboxError:  # a copy that no longer reads: graded on the plain rubric, the page says no level
        level = None
    reports = [Path(record.final.report) / "report.html"] if record.final else []
    reports += [Path(g.report) / "report.html" for g in reversed(record.grades)]
    return Room(
        record.name,
        "session",
        state,
        found.layout.run.root,
        sandbox,
        found.layout.candidate,
        _report(*reports),
        link=record.link,
        layout=found.layout,
        level=level,
    )


class Rooms:
    """Every room, looked up again at most every few seconds (a compose project is asked through its CLI)."""

    def __init__(self, ttl_seconds: float = 3.0):
        self.ttl = ttl_seconds
        self._cache: tuple[float, dict[str, Room]] | None = None

    def all(self) -> dict[str, Room]:
        if self._cache and time.monotonic() - self._cache[0] < self.ttl:
            return self._cache[1]
        rooms = {room.name: room for room in map(room_of, every_target())}
        self._cache = (time.monotonic(), rooms)
        return rooms

    def get(self, name: str) -> Room | None:
        return self.all().get(name)
