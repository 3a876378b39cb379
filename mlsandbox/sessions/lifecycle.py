"""A session's life, over either backend: start, the improvement round, end.

start: build the level's starting point (or copy a given folder) into a fresh workspace, keep the level, start a
sandbox on it with a run directory of its own (fresh TSDB, prediction log, notifications, truth) on a free block of ports, sharing the machine's
MLflow (stack/machine.py); snapshot the workspace while it runs (history.py).
improve: grade now, keep the improvement point, move the main play's truth aside, replay the scenario
compressed into the round.
end: keep what a later re-grade needs (the last /metrics body, the rules as Prometheus loaded them), grade,
stop the stack, write the summary; everything stays under sessions/NAME/.
delete: the candidate's data kept only as long as the team wants: an ended session's folder goes entirely.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
import time
from pathlib import Path

from load.scenario import load_scenario
from mlsandbox.config import KubeSettings, RoomSettings
from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import REPO_ROOT, STARTER, Ports
from mlsandbox.levels.brief import BRIEF, level_brief
from mlsandbox.levels.level import Level
from mlsandbox.levels.starting_point import COPY_IGNORED, build
from mlsandbox.say import Say
from mlsandbox.sessions.brief import IMPROVEMENT, write_brief, write_docs, write_improvement
from mlsandbox.sessions.grading import grade_from_disk, grade_live, keep_main_play_rules, session_rubric
from mlsandbox.sessions.history import History, HistoryError
from mlsandbox.sessions.store import (
    GradeRecord,
    RoundRecord,
    SessionLayout,
    SessionRecord,
    StoredSession,
    all_sessions,
    check_name,
    home_config,
    session_layout,
)
from mlsandbox.sessions.summary import write_summary
from mlsandbox.stack import bubblewrap
from mlsandbox.stack.backends import new_sandbox, open_sandbox
from mlsandbox.stack.preflight import check_candidate, check_scenario
from mlsandbox.stack.processes import port_is_free, spawn, stop
from mlsandbox.stack.state import ScenarioPlay

# Free blocks of eight ports are looked for from here, ten apart.
FIRST_BLOCK, LAST_BLOCK, BLOCK_STEP = 20000, 29990, 10
DEFAULT_ROUND_MINUTES = 15.0
NOT_PLAYED = "not graded: no scenario was played"


def snapshot_interval() -> float:
    return float(os.environ.get("MLSANDBOX_SNAPSHOT_SECONDS", "30"))


def free_ports(docker: bool, base: int | None = None) -> Ports:
    """A block of ports for a new session: from `base` when given (refused when any is taken), else the first
    block no other session holds and nothing listens on. The console, and natively MLflow, are the machine's."""
    home = home_config()
    taken = {s.record.ports.model_server for s in all_sessions() if s.state != "ended"}
    shared = {"console"} if docker else {"console", "mlflow"}

    def block(b: int) -> Ports:
        return Ports.block(b).model_copy(update={name: getattr(home.ports, name) for name in shared})

    def own(ports: Ports) -> list[int]:
        return [p for name, p in ports.items() if name not in shared]

    if base is not None:
        ports = block(base)
        busy = [p for p in own(ports) if not port_is_free(home.host, p)]
        if busy:
            raise MlsandboxError(f"ports already in use: {', '.join(map(str, busy))} (choose another --ports)")
        return ports
    for b in range(FIRST_BLOCK, LAST_BLOCK, BLOCK_STEP):
        ports = block(b)
        if ports.model_server not in taken and all(port_is_free(home.host, p) for p in own(ports)):
            return ports
    raise MlsandboxError(f"no free block of ports between {FIRST_BLOCK} and {LAST_BLOCK}; give one with --ports")


def history(layout: SessionLayout) -> History:
    return History(layout.candidate, layout.history)


def brief_template(layout: SessionLayout) -> Path:
    """The brief the room's is rendered from: the session's level's, or the starter's (no level)."""
    return layout.brief_template if layout.brief_template.is_file() else STARTER / BRIEF


def round_minutes(session: StoredSession) -> float:
    """The improvement round's length by default: the level's."""
    level = session.level()
    return level.spec.round_minutes if level is not None else DEFAULT_ROUND_MINUTES


def prepare_workspace(layout: SessionLayout, source: Path | None, level: Level | None) -> str:
    """The candidate's workspace (a copy of `source`, else the level's starting point, else the starter) and the
    session's copy of its level (its file and brief); where the workspace came from, in words."""
    if source is None and level is not None:
        build(level, layout.candidate)
        origin = f"the starting point of level {level.name} ({level.path})"
    else:
        source = source or STARTER
        shutil.copytree(source, layout.candidate, ignore=COPY_IGNORED)
        origin = str(source)
    if level is not None:
        layout.level.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(level.path, layout.level)
        layout.brief_template.write_text(level_brief(level))
    return origin


def _project_name(name: str) -> str:
    return "mlsandbox-" + re.sub(r"[^a-z0-9_-]", "-", name.lower())


# --- start ------------------------------------------------------------------------------------------------


def room_settings(name: str, docker: bool, listen: str, trust_candidate: bool) -> RoomSettings:
    """The candidate's room: sandboxed unless the candidate is trusted; refused where it cannot be sandboxed and
    the candidate is not."""
    if not docker and not trust_candidate:
        reason = bubblewrap.unavailable()
        if reason:
            raise MlsandboxError(
                f"{reason}; `--trust-candidate` starts the session without sandboxes (the candidate's code then "
                "runs as you and sees the whole machine)"
            )
    return RoomSettings(session=name, token=secrets.token_urlsafe(24), listen=listen, sandboxed=not trust_candidate)


def start(
    name: str,
    source: Path | None,
    play: ScenarioPlay | None,
    docker: bool = False,
    ports_base: int | None = None,
    local_images: bool = False,
    say: Say = print,
    kind: str = "interview",
    scrape_interval: str | None = None,
    listen: str = "127.0.0.1",
    trust_candidate: bool = False,
    level: Level | None = None,
    kube: KubeSettings | None = None,
) -> tuple[StoredSession, dict]:
    """A fresh workspace (`source` copied, else the level's starting point) and stack for the session, and the
    candidate's room; its URLs (`candidate`: their link). `kube`: the session as a namespace on that cluster (a
    container room, as under compose)."""
    check_name(name)
    contained = docker or kube is not None
    layout = session_layout(name)
    if layout.root.exists():
        raise MlsandboxError(f"session {name!r} already exists in {layout.root.parent}; choose another name")
    if source is not None or level is None:
        source = check_candidate(source or STARTER)
    if play is not None:
        check_scenario(play.scenario)
    room = room_settings(name, contained, listen, trust_candidate)
    ports = free_ports(contained, ports_base)
    layout.root.mkdir(parents=True)
    try:
        origin = prepare_workspace(layout, source, level)
        work = history(layout)
        work.init()
        record = SessionRecord(
            name=name,
            backend="kubernetes" if kube is not None else "docker" if docker else "native",
            play=play.model_copy(update={"web_ui": False}) if play else None,
            ports=ports,
            source=origin,
            compose_project=_project_name(name) if docker else None,
            kind=kind,
            scrape_interval=scrape_interval,
            room=room,
            level=level.name if level is not None else None,
        )
        record.save(layout)
        session = StoredSession(layout, record)
        write_brief(
            session.config,
            layout.candidate,
            compose=contained,
            grafana=docker and not local_images,
            template=brief_template(layout),
        )
        sandbox = new_sandbox(
            session.config,
            docker,
            local_images,
            record.compose_project or "mlsandbox",
            say,
            machine_dir=home_config().run_dir,
            kube=kube,
        )
        work.snapshot(f"session start: copied from {origin}")
        # Locust's web UI would show the candidate the scenario's failures and request mix: headless here.
        urls = sandbox.up(layout.candidate, record.play)
        write_docs(session.config, layout.candidate, sandbox.mlflow_url())
        sandbox.publish(layout.candidate, ["docs"])
        record.link = sandbox.candidate_link()
        record.save(layout)
    except BaseException:
        # Nothing was played: the name stays free for a second try; the logs are kept where the error says.
        kept = home_config().layout.logs / f"session-{name}-failed-start"
        if layout.run.logs.exists():
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(layout.run.logs, kept)
            say(f"the session's logs are kept in {kept}")
        shutil.rmtree(layout.root, ignore_errors=True)
        raise
    start_watcher(session)
    return session, {"candidate": record.link, **urls}


def start_watcher(session: StoredSession) -> None:
    """Snapshot the workspace while the session runs (its history); a watcher left from before is stopped."""
    if session.record.watcher_pid:
        stop(session.record.watcher_pid)
    # A room on a cluster keeps the workspace there: the watcher copies it out before each snapshot.
    pull = ["--session", session.name] if session.record.backend == "kubernetes" else []
    watcher = spawn(
        [sys.executable, "-m", "mlsandbox.sessions.history", str(session.layout.candidate), str(session.layout.history)]
        + ["--every", str(snapshot_interval()), *pull],
        session.config.layout.log("history"),
        cwd=REPO_ROOT,
    )
    session.record.watcher_pid = watcher.pid
    session.record.save(session.layout)


# --- the candidate's room -------------------------------------------------------------------------------------


def shell(session: StoredSession, command: list[str]) -> int:
    """A shell, or `command`, in the candidate's room as they see it; its exit status."""
    if session.state != "running":
        raise MlsandboxError(f"session {session.name!r} is {session.state}; its room is gone")
    if session.record.room is None:
        raise MlsandboxError(f"session {session.name!r} has no candidate's room")
    return open_sandbox(session.config).shell(command)


# --- the improvement round --------------------------------------------------------------------------------


def improve(
    session: StoredSession, minutes: float | None = None, rubric: Path | None = None, say: Say = print
) -> GradeRecord:
    """Grade now, give the improvement point, replay the scenario within the round (`minutes`: the level's round
    by default)."""
    record, layout = session.record, session.layout
    minutes = minutes if minutes is not None else round_minutes(session)
    if session.state != "running":
        raise MlsandboxError(f"session {session.name!r} is {session.state}; the round needs it running")
    if record.round is not None:
        raise MlsandboxError(f"session {session.name!r} is already in its improvement round")
    if record.play is None:
        raise MlsandboxError(f"session {session.name!r} plays no scenario (started with --no-load); nothing to replay")
    sandbox = open_sandbox(session.config, say)
    _wait_for_resolve_grace(session, sandbox, rubric, say)
    grade = grade_live(session, sandbox, "before the round", rubric, say, keep=False)
    record.grades.append(grade)
    snapshot = history(layout).snapshot("the improvement round starts") or history(layout).head()
    sandbox.stop_play()
    # The main play's truth goes aside; the round's play writes a fresh one, and `session end` grades that.
    sandbox.move_truth(layout.plays / "main")
    keep_main_play_rules(session, sandbox)
    scenario = load_scenario(record.play.scenario)
    speed = max(record.play.speed, scenario.duration_seconds / (minutes * 60))
    play = record.play.model_copy(update={"speed": speed})
    sandbox.start_play(play)
    record.round = RoundRecord(
        started_at=time.time(), minutes=minutes, improvement=grade.improvement, snapshot=snapshot, play=play
    )
    record.save(layout)
    if record.room is not None:
        compose = record.backend != "native"
        grafana = record.backend == "docker" and "grafana" in sandbox.urls()
        point = str(grade.improvement["text"])
        write_improvement(
            session.config, layout.candidate, point, minutes, compose, grafana, template=brief_template(layout)
        )
        sandbox.publish(layout.candidate, [BRIEF, IMPROVEMENT])
    return grade


def _wait_for_resolve_grace(session: StoredSession, sandbox, rubric: Path | None, say: Say) -> None:
    """A main play that has just finished is graded once its alerts have had the rubric's grace to resolve:
    graded sooner, `resolved_after_recovery` would be "not yet" on a play that is over."""
    timeline = sandbox.timeline()
    if timeline is None or timeline.status != "finished" or not timeline.phases:
        return  # still playing: the round cuts it, and the grade says the play was cut
    grace = session_rubric(session, rubric).tolerances.resolve_grace_seconds
    wait = timeline.phases[-1].finish + grace - time.time()
    if wait > 0:
        say(f"the main play has just ended: waiting {wait:.0f} s for its alerts to resolve before grading it ...")
        time.sleep(wait)


# --- end --------------------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return first if isinstance(exc, MlsandboxError) else f"{type(exc).__name__}: {first}".rstrip(": ")


def end(session: StoredSession, rubric: Path | None = None, say: Say = print) -> GradeRecord | None:
    record, layout = session.record, session.layout
    if session.state == "ended":
        raise MlsandboxError(
            f"session {session.name!r} already ended; `mlsandbox grade --session {session.name}` grades it again"
        )
    alive = session.state == "running"
    sandbox = open_sandbox(session.config, say)
    grade, live_failed = None, None
    played = _played(sandbox, layout) if alive else True
    if alive and played:
        try:
            grade = grade_live(session, sandbox, "final", rubric, say)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the session still ends: archived, stack stopped
            live_failed = _one_line(exc)
            say(f"grading the running session failed ({live_failed}): archiving it and grading from disk")
            record.notes.append(f"the live grade failed: {live_failed}")
    elif not played:
        say(NOT_PLAYED)
        record.notes.append(NOT_PLAYED)
    if record.watcher_pid:
        stop(record.watcher_pid)
    work = history(layout)
    try:
        work.snapshot("session end")
    except HistoryError as exc:
        record.notes.append(f"last snapshot failed: {exc}")
    if sandbox is not None:
        try:
            sandbox.archive_data(layout.run.root)
            # Under compose the volumes were copied out just now: the project goes entirely.
            sandbox.down(volumes=True)
        except MlsandboxError as exc:
            record.notes.append(f"stopping the stack: {exc}")
    if not alive:
        record.notes.append("the stack had stopped before `session end`; graded from what was on disk")
    if not alive or live_failed:
        grade = grade_from_disk(session, rubric, say)

    if grade is not None:
        record.grades.append(grade)
    if record.round is not None and record.round.snapshot:
        layout.archive.mkdir(parents=True, exist_ok=True)
        layout.round_diff.write_text(work.diff(record.round.snapshot))
    record.ended_at = time.time()
    record.save(layout)
    write_summary(StoredSession(layout, record))
    if live_failed and grade is None:
        raise MlsandboxError(
            f"session {session.name!r} ended and archived, but grading failed ({live_failed}); "
            f"`mlsandbox grade --session {session.name}` grades it again"
        )
    return grade


def _played(sandbox, layout: SessionLayout) -> bool:
    """Whether a scenario played in the session (its main play set aside by the round counts)."""
    try:
        return sandbox is not None and sandbox.timeline() is not None or (layout.plays / "main").exists()
    except MlsandboxError:
        return False


# --- delete -----------------------------------------------------------------------------------------------


def kept_paths(session: StoredSession) -> list[Path]:
    """What the machine keeps of a session: its folder (workspace, work history, run directory, archive,
    scorecards), and the logs of a start of that name that failed, when there are any."""
    failed = home_config().layout.logs / f"session-{session.name}-failed-start"
    return [session.layout.root] + ([failed] if failed.exists() else [])


def delete(session: StoredSession) -> list[Path]:
    """Remove everything the session keeps (kept_paths); refused unless it ended (a running session's processes
    write there, an interrupted one's are `session end`'s to stop). What was removed."""
    if session.state != "ended":
        raise MlsandboxError(
            f"session {session.name!r} is {session.state}: `mlsandbox session end --session {session.name}` "
            "first, then delete it"
        )
    paths = kept_paths(session)
    for path in paths:
        shutil.rmtree(path)
    return paths
