"""Idle sessions: a room nobody uses and no scenario playing, for longer than a set time (as JupyterHub's idle
culler finds servers to stop). `mlsandbox session idle` reports them; with `--end`, ends each (graded and archived
as `session end` does).

The candidate's activity is the latest of: what their room's JupyterLab last saw (`last_activity`: a keystroke,
a kernel's output, a file saved), and the last snapshot of their workspace. A play counts while it plays; after,
from when it ended.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from load.truth import TimelineRecord
from mlsandbox.errors import MlsandboxError
from mlsandbox.sessions.history import History
from mlsandbox.sessions.store import StoredSession
from mlsandbox.stack.sandbox import Sandbox

DEFAULT_IDLE_MINUTES = 30.0


@dataclass(frozen=True)
class Activity:
    """What a session did last, in seconds since the epoch (None: never, or not known)."""

    started_at: float
    room: float | None = None  # the room's JupyterLab's last activity
    snapshot: float | None = None  # the workspace's last snapshot (a file changed)
    playing: bool = False
    play_ended: float | None = None

    @property
    def last(self) -> float:
        """The latest sign of life: the start when nothing else is known."""
        return max(t for t in (self.started_at, self.room, self.snapshot, self.play_ended) if t is not None)


def idle_seconds(activity: Activity, now: float) -> float:
    """How long the session has been idle: 0 while a scenario plays."""
    return 0.0 if activity.playing else max(0.0, now - activity.last)


def is_idle(activity: Activity, now: float, idle_after_seconds: float) -> bool:
    return idle_seconds(activity, now) >= idle_after_seconds


def play_state(timeline: TimelineRecord | None, now: float) -> tuple[bool, float | None]:
    """(whether a play plays now, when the last one ended): a play interrupted (its player dead) or paused by
    the interviewer does not play; an interrupted one ended at its last heartbeat."""
    if timeline is None:
        return False, None
    if timeline.status == "running" and not timeline.interrupted(now):
        return timeline.paused_at is None, timeline.paused_at
    ends = [timeline.finished_at, timeline.heartbeat_at, *(p.end for p in timeline.phases if p.end)]
    ends = [t for t in ends if t is not None]
    return False, max(ends) if ends else timeline.started_at


def activity(session: StoredSession, sandbox: Sandbox, now: float | None = None) -> Activity:
    """A running session's activity, asked of its room, its work history and its player."""
    now = time.time() if now is None else now
    try:
        timeline = sandbox.timeline()
    except MlsandboxError:
        timeline = None
    playing, ended = play_state(timeline, now)
    snaps = History(session.layout.candidate, session.layout.history).log() if session.layout.history.exists() else []
    return Activity(
        started_at=session.record.started_at,
        room=sandbox.room_activity(),
        snapshot=snaps[-1].time if snaps else None,
        playing=playing,
        play_ended=ended,
    )
