"""Sessions on disk: where each lives (sessions/NAME/ at the repository root, or MLSANDBOX_SESSIONS_DIR), its
record (session.json), which are running, ended or interrupted; and the one rule for which sandbox a command
means (`resolve`, `pick`, `every_target`: the command line, the console and the course all ask here).

    sessions/NAME/
      session.json     the record: what was played, on which ports, when, the grades
      candidate/       the candidate's workspace (a copy; the shipped starter is never served in place)
      history.git/     snapshots of the workspace (see history.py)
      run/             the session's run directory: Prometheus's data, the prediction log, the notifications,
                       the scenario's truth, the logs
      archive/         written at the end: the rules as loaded, the last /metrics body, the reports, the plays
                       before the improvement round
      scorecards/      the interviewers' scorecards: the scorecard the session is scored on, one file per change
                       (see scorecard.py)
      level/           the level the session is played at, as it was when it started: its file (whose rubric
                       overlay every grade of the session uses) and the brief it gave (the room's is rendered
                       from it)
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from load.truth import atomic_write
from mlsandbox.config import RoomSettings, StackConfig
from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import REPO_ROOT, Ports, RunLayout
from mlsandbox.levels.level import Level, kept_level
from mlsandbox.say import Say
from mlsandbox.stack.backends import open_sandbox
from mlsandbox.stack.sandbox import Sandbox
from mlsandbox.stack.state import SandboxState, ScenarioPlay
from mlsandbox.stack.state import running as stack_running

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The room of `mlsandbox up`: the home run directory's sandbox.
HOME = "sandbox"


def sessions_dir() -> Path:
    return Path(os.environ.get("MLSANDBOX_SESSIONS_DIR") or REPO_ROOT / "sessions").resolve()


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise MlsandboxError(
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

    @property
    def scorecards(self) -> Path:
        return self.root / "scorecards"

    @property
    def level(self) -> Path:
        """The session's copy of its level file (level/level.yaml): a later edit of levels/ changes no grade of it."""
        return self.root / "level" / "level.yaml"

    @property
    def brief_template(self) -> Path:
        """The level's brief, unrendered (level/CANDIDATE.md): the room's brief is rendered from it."""
        return self.root / "level" / "CANDIDATE.md"


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
    # The level's plus checks: points won and what they were worth, beside the score (None: the rubric had none).
    plus_points: float | None = None
    plus_max: float | None = None

    @classmethod
    def from_report(cls, label: str, data: dict, report_dir: Path) -> "GradeRecord":
        plus = data.get("plus") or {}
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
            plus_points=plus.get("points") if plus.get("checks") else None,
            plus_max=plus.get("max_points") if plus.get("checks") else None,
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
    backend: Literal["native", "docker", "kubernetes"]
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
    # The candidate's room (their link, its token, where its door listens); None: a session without one.
    room: RoomSettings | None = None
    link: str | None = None
    # The level played (levels/NAME.yaml; the session keeps its copy in level/); None: a course, or a session
    # recorded before levels (the mid-level exercise).
    level: str | None = None

    def save(self, layout: SessionLayout) -> None:
        atomic_write(layout.record, self.model_dump_json(indent=2))

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
        return "running" if stack_running(self.layout.run) else "interrupted"

    def level(self) -> Level | None:
        """The level the session is played at, from its own copy; None: no level (a course, an older record)."""
        if self.record.level is None or not self.layout.level.is_file():
            return None
        return kept_level(self.layout.level, self.record.level)

    @property
    def config(self) -> StackConfig:
        """The session's settings: its run directory and ports over the machine's own."""
        update = {"run_dir": self.layout.run.root, "ports": self.record.ports, "room": self.record.room}
        if self.record.scrape_interval:
            update["scrape_interval"] = self.record.scrape_interval
        return home_config().model_copy(update=update)


def session_layout(name: str) -> SessionLayout:
    return SessionLayout(sessions_dir() / check_name(name))


def load(name: str) -> StoredSession:
    layout = session_layout(name)
    try:
        record = SessionRecord.model_validate_json(layout.record.read_text())
    except FileNotFoundError:
        known = ", ".join(s.name for s in all_sessions()) or "none yet"
        raise MlsandboxError(f"no session {name!r} (sessions: {known})") from None
    except (OSError, ValidationError) as exc:
        raise MlsandboxError(f"{layout.record}: unreadable session record ({exc.__class__.__name__})") from None
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


# --- which sandbox a command means --------------------------------------------------------------------------


def home_config() -> StackConfig:
    """The machine's own settings (run/ and the default ports unless MLSANDBOX_* say otherwise): where `up` runs
    and where the shared MLflow and console live."""
    return StackConfig()


@dataclass(frozen=True)
class Target:
    """A sandbox a command or the console acts on: the home one (`mlsandbox up`, named HOME) or a session's."""

    name: str
    cfg: StackConfig
    session: StoredSession | None = None

    @property
    def state(self) -> Literal["running", "ended", "interrupted"]:
        if self.session is not None:
            return self.session.state
        return "running" if stack_running(self.cfg.layout) else "interrupted"

    def sandbox(self, say: Say = print) -> Sandbox | None:
        """The sandbox running there; None when none does."""
        return open_sandbox(self.cfg, say)


def home_target(run_dir: Path | None = None) -> Target:
    """The run directory given, or the home one."""
    return Target(HOME, StackConfig(run_dir=run_dir) if run_dir else home_config())


def session_target(found: StoredSession) -> Target:
    return Target(found.name, found.config, found)


def resolve(run_dir: Path | None = None, session: str | None = None) -> Target:
    """What a command of the sandbox (status, reload, grade, scenario ...) means: the run directory given, or the
    session named, or the home run directory when a sandbox runs there, or else the only running session."""
    if run_dir:
        return home_target(run_dir)
    if session:
        return session_target(load(session))
    home = home_target()
    if SandboxState.load(home.cfg.layout) is not None:
        return home
    live = running()
    if len(live) > 1:
        raise MlsandboxError(
            f"{len(live)} sessions are running: {', '.join(s.name for s in live)}; say which with --session NAME"
        )
    return session_target(live[0]) if live else home


# What `pick` says when no session fits, by kind.
NONE_FOUND = {
    "interview": "no {states} session (`mlsandbox session list` shows them all)",
    "course": "no course yet: `mlsandbox course start`",
}


def pick(name: str | None, states: tuple[str, ...] = ("running",), kind: str = "interview") -> StoredSession:
    """The session named, or the only one of `kind` in one of `states` when no name is given: a trainee's course
    is never taken for an interview by default, and a course command never takes an interview."""
    if name:
        found = load(name)
        if kind == "course" and found.record.kind != "course":
            raise MlsandboxError(f"session {name!r} is an interview, not a course (`mlsandbox session ...`)")
        return found
    candidates = [s for s in all_sessions() if s.state in states and s.record.kind == kind]
    if not candidates:
        raise MlsandboxError(NONE_FOUND[kind].format(states=" or ".join(states)))
    if len(candidates) > 1:
        noun = "sessions" if kind == "interview" else "courses"
        raise MlsandboxError(
            f"{len(candidates)} {noun} are {' or '.join(states)}: "
            f"{', '.join(s.name for s in candidates)}; say which with --session NAME"
        )
    return candidates[0]


def every_target() -> list[Target]:
    """Every room the console shows: the home sandbox while one runs there, then every session."""
    home = home_target()
    homes = [home] if SandboxState.load(home.cfg.layout) is not None else []
    return homes + [session_target(found) for found in all_sessions()]
