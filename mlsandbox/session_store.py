"""Interview sessions on disk: where each lives (sessions/NAME/ at the repository root, or
MLSANDBOX_SESSIONS_DIR), its record (session.json), and which are running, ended or interrupted.

    sessions/NAME/
      session.json     the record: what was played, on which ports, when, the grades
      candidate/       the candidate's workspace (a copy; the shipped starter is never served in place)
      history.git/     snapshots of the workspace (see history.py)
      run/             the session's run directory: Prometheus's data, the prediction log, the notifications,
                       the scenario's truth, the logs
      archive/         written at the end: the rules as loaded, the last /metrics body, the reports, the plays
                       before the improvement round
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from .layout import REPO_ROOT, Ports, RunLayout
from .processes import is_alive, write_json_atomic
from .state import SandboxState, ScenarioPlay

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SessionError(RuntimeError):
    """One readable line: what is wrong with the session asked for."""


def sessions_dir() -> Path:
    return Path(os.environ.get("MLSANDBOX_SESSIONS_DIR") or REPO_ROOT / "sessions").resolve()


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise SessionError(
            f"session name {name!r}: use letters, digits, '.', '_' and '-' (no path separator, "
            "at most 64 characters, not starting with '.')"
        )
    return name


@dataclass(frozen=True)
class SessionLayout:
    root: Path

    @property
    def record(self) -> Path:
        return self.root / "session.json"

    @property
    def candidate(self) -> Path:
        return self.root / "candidate"

    @property
    def history(self) -> Path:
        return self.root / "history.git"

    @property
    def run(self) -> RunLayout:
        return RunLayout(self.root / "run")

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def rules(self) -> Path:
        """Prometheus's view of the candidate's rules as it had them loaded (rules.json), and the rule files
        written back from it (in rule_files)."""
        return self.archive / "rules"

    @property
    def rule_files(self) -> Path:
        """Named `alerts/` as in the workspace, so that a re-grade's report names the same files."""
        return self.rules / "alerts"

    @property
    def metrics_body(self) -> Path:
        """The last /metrics body scraped from the candidate's server."""
        return self.archive / "metrics.txt"

    def report(self, label: str) -> Path:
        return self.archive / "reports" / label

    @property
    def plays(self) -> Path:
        """Plays before the current one (the main play, once the improvement round replays the incidents)."""
        return self.archive / "plays"

    @property
    def course_progress(self) -> Path:
        return self.root / "course.json"

    @property
    def summary(self) -> Path:
        return self.archive / "summary.md"

    @property
    def round_diff(self) -> Path:
        return self.archive / "round.diff"


class GradeRecord(BaseModel):
    """One grade of the session, as `session list` and `session compare` show it."""

    label: str  # "before the round", "final", "re-grade"
    score: float
    points: float
    max_points: float
    items: dict[str, float]
    max_items: dict[str, float]
    detections: dict[str, float | None]  # incident -> detection latency (None: not detected)
    improvement: dict[str, object]
    report: str
    graded_at: float = Field(default_factory=time.time)
    as_of: float | None = None  # the moment the grade saw the session at (a re-grade sees it at the same one)

    @classmethod
    def from_report(cls, label: str, data: dict, report_dir: Path) -> "GradeRecord":
        return cls(
            label=label,
            score=data["score"],
            points=data["points"],
            max_points=data["max_points"],
            items={i["key"]: i["points"] for i in data["items"]},
            max_items={i["key"]: i["max_points"] for i in data["items"]},
            detections={d["incident"]: d["detection_seconds"] for d in data["detections"]},
            improvement=data["improvement"],
            report=str(report_dir),
            as_of=data["session"].get("as_of"),
        )


class RoundRecord(BaseModel):
    """The improvement round: when it began, the point it was given, the workspace's snapshot at its start."""

    started_at: float
    minutes: float
    improvement: dict[str, object]
    snapshot: str | None
    play: ScenarioPlay


class SessionRecord(BaseModel):
    name: str
    backend: Literal["native", "docker"]
    # An interview, or a trainee's onboarding course (course.py: its progress in course.json beside this).
    kind: Literal["interview", "course"] = "interview"
    # Prometheus's scrape interval when not the machine's (a course's plays last under a minute).
    scrape_interval: str | None = None
    play: ScenarioPlay | None
    ports: Ports
    source: str  # the folder the workspace was copied from
    started_at: float = Field(default_factory=time.time)
    ended_at: float | None = None
    watcher_pid: int | None = None
    compose_project: str | None = None
    grades: list[GradeRecord] = []
    round: RoundRecord | None = None
    notes: list[str] = []

    def save(self, layout: SessionLayout) -> None:
        write_json_atomic(layout.record, self.model_dump(mode="json"))

    @property
    def final(self) -> GradeRecord | None:
        return next((g for g in reversed(self.grades) if g.label == "final"), None)


@dataclass(frozen=True)
class StoredSession:
    layout: SessionLayout
    record: SessionRecord

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def state(self) -> Literal["running", "ended", "interrupted"]:
        if self.record.ended_at is not None:
            return "ended"
        return "running" if self.stack_alive() else "interrupted"

    def stack_alive(self) -> bool:
        state = SandboxState.load(self.layout.run)
        if state is None:
            return False
        if state.backend == "docker":
            return True  # a compose project outlives this process; `session end` stops it
        return any(is_alive(c.pid) for c in state.components)


def session_layout(name: str) -> SessionLayout:
    return SessionLayout(sessions_dir() / check_name(name))


def load(name: str) -> StoredSession:
    layout = session_layout(name)
    try:
        record = SessionRecord.model_validate_json(layout.record.read_text())
    except FileNotFoundError:
        known = ", ".join(s.name for s in all_sessions()) or "none yet"
        raise SessionError(f"no session {name!r} (sessions: {known})") from None
    except (OSError, ValidationError) as exc:
        raise SessionError(f"{layout.record}: unreadable session record ({exc.__class__.__name__})") from None
    return StoredSession(layout, record)


def all_sessions() -> list[StoredSession]:
    root = sessions_dir()
    found = []
    for path in sorted(root.glob("*/session.json")) if root.exists() else []:
        try:
            found.append(StoredSession(SessionLayout(path.parent), SessionRecord.model_validate_json(path.read_text())))
        except (OSError, ValidationError):
            continue
    return sorted(found, key=lambda s: s.record.started_at)


def running() -> list[StoredSession]:
    return [s for s in all_sessions() if s.state == "running"]


def pick(name: str | None, states: tuple[str, ...] = ("running",), kind: str = "interview") -> StoredSession:
    """The session named, or the only one of `kind` in one of `states` when no name is given (a trainee's course
    is never taken for the interview by default)."""
    if name:
        return load(name)
    candidates = [s for s in all_sessions() if s.state in states and s.record.kind == kind]
    if not candidates:
        raise SessionError(f"no {' or '.join(states)} session (`mlsandbox session list` shows them all)")
    if len(candidates) > 1:
        raise SessionError(
            f"{len(candidates)} sessions are {' or '.join(states)}: "
            f"{', '.join(s.name for s in candidates)}; say which with --session NAME"
        )
    return candidates[0]
