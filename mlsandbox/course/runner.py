"""A trainee's course on a session of kind *course* (sessions/): start or resume its stack, check a lesson (play
its scenario on the running stack, grade the lesson's checks, judge), stop the stack, keeping everything.

The session's workspace is kept across lessons; progress is in sessions/NAME/course.json.
"""

from __future__ import annotations

import time
from pathlib import Path

from load.scenario import load_scenario
from mlsandbox.course.lessons import Course, Progress, Verdict, judge
from mlsandbox.errors import MlsandboxError
from mlsandbox.say import Say
from mlsandbox.sessions import store
from mlsandbox.sessions.grading import grade_report
from mlsandbox.sessions.history import HistoryError
from mlsandbox.sessions.lifecycle import history, start, start_watcher
from mlsandbox.sessions.store import StoredSession, home_config
from mlsandbox.stack.backends import new_sandbox, open_sandbox
from mlsandbox.stack.processes import stop
from mlsandbox.stack.prometheus import wait_first_scrape, wait_quiet
from mlsandbox.stack.state import SandboxState, ScenarioPlay

DEFAULT_NAME = "course"
# The lessons' scenarios have phases of 10-22 s: Prometheus scrapes every second to see them.
SCRAPE_INTERVAL = "1s"
# After the fresh server's first scrape: two rule evaluations (one a second), for alerts that no longer hold
# to resolve before the play's baseline begins.
RULES_SETTLE_SECONDS = 2.5
# How long a check waits for the last play's alerts to resolve before playing anyway.
QUIET_TIMEOUT_SECONDS = 60.0
WARMUP = "course-warmup"


def find(name: str | None) -> StoredSession:
    """The course session named, or the only one not ended."""
    return store.pick(name, ("running", "interrupted"), kind="course")


def begin(name: str | None, candidate: Path | None, ports: int | None, say: Say) -> tuple[StoredSession, dict, bool]:
    """A new course session (a copy of the starter, or of `candidate`, and a stack with nothing playing), or the
    existing one of that name (by default the only course not ended) with its stack started again. Returns the
    session, its URLs, and whether it was resumed."""
    if name is None:
        existing = [s for s in store.all_sessions() if s.record.kind == "course" and s.state != "ended"]
        name = existing[0].name if len(existing) == 1 and candidate is None else DEFAULT_NAME
    layout = store.session_layout(name)
    if not layout.record.exists():
        session, urls = start(
            name, candidate, None, ports_base=ports, say=say, kind="course", scrape_interval=SCRAPE_INTERVAL
        )
        return session, urls, False
    session = store.load(name)
    if session.record.kind != "course":
        raise MlsandboxError(f"session {name!r} is an interview; choose another name for the course")
    if candidate is not None:
        raise MlsandboxError(
            f"course {name!r} exists: its workspace is {session.layout.candidate} (--candidate is for a new course)"
        )
    if session.state == "ended":
        raise MlsandboxError(f"course {name!r} was ended; start another with --session NEW-NAME")
    cfg = session.config
    if session.state == "running":
        sandbox = open_sandbox(cfg, say)
        if all(c.ok for c in sandbox.status()):
            return session, sandbox.urls(), True
        say(f"course {name!r}: part of its stack stopped; starting it again ...")
        pause(session, say)
    say(f"resuming course {name!r}: starting its stack again on the same workspace ...")
    sandbox = new_sandbox(cfg, False, False, "mlsandbox", say, machine_dir=home_config().run_dir)
    urls = sandbox.up(session.layout.candidate, None)
    start_watcher(session)
    return session, urls, True


def check(session: StoredSession, course: Course, number: int, rubric, say: Say) -> Verdict:
    """Play lesson `number`'s scenario on the course's running stack with the trainee's rules reloaded, grade
    the lesson's checks (`rubric`: already restricted to them), record the verdict in the progress, return it."""
    lesson = course.lesson(number)
    progress = Progress.load(session.layout.course_progress, course)
    sandbox = open_sandbox(session.config, say)
    if sandbox is None or session.state != "running":
        raise MlsandboxError(
            f"course {session.name!r} is not running: `mlsandbox course start --session {session.name}`"
        )
    try:
        sandbox.reload_rules()
    except MlsandboxError as exc:
        raise MlsandboxError(f"your alert rules: {exc}") from None
    entry = progress.of(lesson)
    try:
        history(session.layout).snapshot(f"course check: lesson {number} ({lesson.id})")
    except HistoryError as exc:
        say(f"(the workspace's snapshot failed: {exc})")
    say("starting your server afresh (the last play's windows would carry its incident into this one) ...")
    fresh_server(sandbox)
    # An idle stack's no-traffic alerts fire; ten seconds of normal traffic, set aside, let them resolve.
    say(f"warming it up with {load_scenario(WARMUP).duration_seconds:.0f} s of normal traffic ...")
    _set_aside(session, sandbox, "before")
    sandbox.play(ScenarioPlay(scenario=WARMUP, web_ui=False))
    _set_aside(session, sandbox, "warmup")
    still = wait_quiet(sandbox.cfg.prometheus_url, QUIET_TIMEOUT_SECONDS)
    if still:
        say(f"still firing after {QUIET_TIMEOUT_SECONDS:.0f} s, playing anyway: {', '.join(still)}")
    seconds = lesson.play().duration_seconds
    say(f"playing {lesson.scenario} ({seconds:.0f} s) on your server ...")
    sandbox.play(ScenarioPlay(scenario=lesson.scenario, web_ui=False))
    say("grading the lesson's checks ...")
    label = f"course {lesson.id} {entry.checks + 1}"
    data, out = grade_report(session, sandbox, label, rubric, lambda _: None, keep=False)
    verdict = judge(lesson, data, entry.failures)
    progress.record(course, number, verdict)
    progress.save(session.layout.course_progress)
    session.record.grades.append(store.GradeRecord.from_report(label, data, out))
    session.record.save(session.layout)
    return verdict


def _set_aside(session: StoredSession, sandbox, what: str) -> None:
    """The last play's truth out of the way (kept under archive/plays/): the grader reads the next play."""
    sandbox.move_truth(session.layout.plays / f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6}-{what}")


def fresh_server(sandbox) -> None:
    """Restart the model server and wait until Prometheus has scraped it and evaluated the rules on what it
    exposes: the previous play's drift and label windows are gone before the baseline of the next."""
    try:
        sandbox.restart("model-server")
        restarted = time.time()
        cfg = sandbox.cfg
        wait_first_scrape(cfg.prometheus_url, cfg.health_timeout_seconds, since=restarted)
    except MlsandboxError as exc:
        raise MlsandboxError(f"your server does not start: {exc}") from None
    time.sleep(RULES_SETTLE_SECONDS)


def pause(session: StoredSession, say: Say) -> None:
    """Stop the course's stack; the workspace, the data and the progress stay for `course start` to resume."""
    if session.record.watcher_pid:
        stop(session.record.watcher_pid)
        session.record.watcher_pid = None
        session.record.save(session.layout)
    # Only the course's own stack (natively its state file): never the machine's compose stack.
    if SandboxState.load(session.layout.run) is None:
        return
    sandbox = open_sandbox(session.config, say)
    if sandbox is not None:
        sandbox.down()
