"""Interview sessions: a candidate's workspace, stack, history and archive, over either backend.

start: copy the starter (or a given folder) into a fresh workspace, start a sandbox on it with a run directory
of its own (fresh TSDB, prediction log, notifications, truth) on a free block of ports, sharing the machine's
MLflow (hub.py); snapshot the workspace while it runs (history.py).
improve: grade now, keep the improvement point, move the main play's truth aside, replay the scenario
compressed into the round.
end: keep what a later re-grade needs (the last /metrics body, the rules as Prometheus loaded them), grade,
stop the stack, write the summary; everything stays under sessions/NAME/.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import httpx

from .config import REPO_ROOT, StackConfig
from .history import History, HistoryError
from .layout import STARTER, Ports
from .native import check_candidate, check_scenario
from .processes import port_is_free, spawn, stop
from .sandbox import Sandbox, SandboxError, Say, new_sandbox, open_sandbox
from .session_store import (
    GradeRecord,
    RoundRecord,
    SessionError,
    SessionLayout,
    SessionRecord,
    StoredSession,
    all_sessions,
    check_name,
    session_layout,
)
from .state import ScenarioPlay

# Free blocks of eight ports are looked for from here, ten apart.
FIRST_BLOCK, LAST_BLOCK, BLOCK_STEP = 20000, 29990, 10
DEFAULT_ROUND_MINUTES = 15.0
COPY_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".pytest_cache", ".ipynb_checkpoints")


def home_config() -> StackConfig:
    """The machine's own settings (run/ and the default ports unless MLSANDBOX_* say otherwise): where the shared
    MLflow lives."""
    return StackConfig()


def session_config(record: SessionRecord, layout: SessionLayout) -> StackConfig:
    home = home_config()
    update = {"run_dir": layout.run.root, **{f"{name}_port": port for name, port in record.ports.items()}}
    if record.scrape_interval:
        update["scrape_interval"] = record.scrape_interval
    return home.model_copy(update=update)


def snapshot_interval() -> float:
    import os

    return float(os.environ.get("MLSANDBOX_SNAPSHOT_SECONDS", "30"))


def free_ports(docker: bool, base: int | None = None) -> Ports:
    """A block of ports for a new session: from `base` when given (refused when any is taken), else the first
    block no other session holds and nothing listens on. The console, and natively MLflow, are the machine's."""
    home = home_config()
    taken = {s.record.ports.model_server for s in all_sessions() if s.state != "ended"}

    # The console is the machine's; natively MLflow is too.
    shared = {"console"} if docker else {"console", "mlflow"}

    def block(b: int) -> Ports:
        return Ports.block(b).model_copy(update={name: getattr(home, f"{name}_port") for name in shared})

    def own(ports: Ports) -> list[int]:
        return [p for name, p in ports.items() if name not in shared]

    if base is not None:
        ports = block(base)
        busy = [p for p in own(ports) if not port_is_free(home.host, p)]
        if busy:
            raise SessionError(f"ports already in use: {', '.join(map(str, busy))} (choose another --ports)")
        return ports
    for b in range(FIRST_BLOCK, LAST_BLOCK, BLOCK_STEP):
        ports = block(b)
        if ports.model_server not in taken and all(port_is_free(home.host, p) for p in own(ports)):
            return ports
    raise SessionError(f"no free block of ports between {FIRST_BLOCK} and {LAST_BLOCK}; give one with --ports")


def _sandbox(session: StoredSession, say: Say) -> Sandbox | None:
    return open_sandbox(session_config(session.record, session.layout), say)


def _history(layout: SessionLayout) -> History:
    return History(layout.candidate, layout.history)


def _project_name(name: str) -> str:
    import re

    return "mlsandbox-" + re.sub(r"[^a-z0-9_-]", "-", name.lower())


# --- start ------------------------------------------------------------------------------------------------


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
) -> tuple[StoredSession, dict]:
    check_name(name)
    layout = session_layout(name)
    if layout.root.exists():
        raise SessionError(f"session {name!r} already exists in {layout.root.parent}; choose another name")
    try:
        source = check_candidate(source or STARTER)
        if play is not None:
            check_scenario(play.scenario)
    except SandboxError as exc:
        raise SessionError(str(exc)) from None
    ports = free_ports(docker, ports_base)
    layout.root.mkdir(parents=True)
    try:
        shutil.copytree(source, layout.candidate, ignore=COPY_IGNORED)
        history = _history(layout)
        history.init()
        history.snapshot(f"session start: copied from {source}")
        record = SessionRecord(
            name=name,
            backend="docker" if docker else "native",
            play=play.model_copy(update={"web_ui": False}) if play else None,
            ports=ports,
            source=str(source),
            compose_project=_project_name(name) if docker else None,
            kind=kind,
            scrape_interval=scrape_interval,
        )
        record.save(layout)
        cfg = session_config(record, layout)
        sandbox = new_sandbox(
            cfg, docker, local_images, record.compose_project or "mlsandbox", say, hub_dir=home_config().run_dir
        )
        # Locust's web UI would show the candidate the scenario's failures and request mix: headless here.
        urls = sandbox.up(layout.candidate, play.model_copy(update={"web_ui": False}) if play else None)
    except BaseException:
        # Nothing was played: the name stays free for a second try.
        shutil.rmtree(layout.root, ignore_errors=True)
        raise
    session = StoredSession(layout, record)
    start_watcher(session)
    return session, urls


def start_watcher(session: StoredSession) -> None:
    """Snapshot the workspace while the session runs (its history); a watcher left from before is stopped."""
    if session.record.watcher_pid:
        stop(session.record.watcher_pid)
    watcher = spawn(
        [sys.executable, "-m", "mlsandbox.history", str(session.layout.candidate), str(session.layout.history)]
        + ["--every", str(snapshot_interval())],
        session_config(session.record, session.layout).layout.log("history"),
        cwd=REPO_ROOT,
    )
    session.record.watcher_pid = watcher.pid
    session.record.save(session.layout)


# --- grading ----------------------------------------------------------------------------------------------


def _scrape_metrics(inputs) -> str | None:
    """The candidate's /metrics now, as the grader scrapes it (kept: a re-grade reads it where the grader would
    scrape the server)."""
    from grading.grade import scrape
    from grading.prometheus import PrometheusClient, PrometheusUnreachable

    try:
        with PrometheusClient(inputs.prometheus_url, timeout=10) as prom:
            body, _ = scrape(prom, inputs.server_address)
    except (PrometheusUnreachable, ValueError):
        return None
    return body


def _keep_rules(session: StoredSession, prometheus_url: str) -> list[dict]:
    """The candidate's rules as Prometheus has them loaded (not as the files are now: an edit not yet reloaded
    is not what was evaluated), written back as rule files, with Prometheus's own JSON beside them; its groups
    (the final grade reads these, as a re-grade will)."""
    from .archive import rule_files_from_api

    data = httpx.get(f"{prometheus_url}/api/v1/rules", timeout=10).json()
    rules = session.layout.rules
    shutil.rmtree(rules, ignore_errors=True)
    session.layout.rule_files.mkdir(parents=True)
    (rules / "rules.json").write_text(json.dumps(data, indent=2))
    for filename, text in rule_files_from_api(data).items():
        (session.layout.rule_files / filename).write_text(text)
    return data["data"]["groups"]


def grade_live(
    session: StoredSession, sandbox: Sandbox, label: str, rubric: Path | None, say: Say, keep: bool = True
) -> GradeRecord:
    """Grade the running session; `keep`: archive the /metrics body and the loaded rules first."""
    data, out = grade_report(session, sandbox, label, rubric, say, keep)
    return GradeRecord.from_report(label, data, out)


def grade_report(
    session: StoredSession, sandbox: Sandbox, label: str, rubric, say: Say, keep: bool = True
) -> tuple[dict, Path]:
    """grade_live's report (report.json's data) and where it was written; `rubric` a path or a Rubric."""
    from grading.cli import GradingFailed, run_grading

    inputs = sandbox.grading_inputs()
    body = _scrape_metrics(inputs)
    groups = None
    if keep:
        session.layout.archive.mkdir(parents=True, exist_ok=True)
        if body is not None:
            session.layout.metrics_body.write_text(body)
        groups = _keep_rules(session, inputs.prometheus_url)
    out = session.layout.report(_slug(label))
    try:
        _, data, out = run_grading(
            inputs.run_dir,
            inputs.prometheus_url,
            candidate=session.layout.candidate,
            out=out,
            rubric=rubric,
            say=say,
            server_address=inputs.server_address,
            metrics_body=body,
            rule_groups=groups,
        )
    except GradingFailed as exc:
        raise SessionError(str(exc)) from None
    return data, out


def _slug(label: str) -> str:
    return label.replace(" ", "-")


def regrade(
    session: StoredSession,
    rubric: Path | None = None,
    out: Path | None = None,
    say: Say = print,
    label: str = "re-grade",
) -> GradeRecord:
    """Grade an archived session again: a Prometheus on a copy of its data, the archived rules loaded, the
    archived /metrics body in place of the server, and the session seen as it stood when it was graded at its
    end (a check that was not yet applicable then, such as alerts resolving after a play that had just ended,
    is not applicable now either)."""
    from grading.cli import GradingFailed, run_grading

    from .archive import ArchivedPrometheus

    layout = session.layout
    if session.state == "running":
        raise SessionError(
            f"session {session.name!r} is running; `mlsandbox grade --session {session.name}` grades "
            "archived sessions (`mlsandbox session end` first), `mlsandbox grade` a running one"
        )
    body = layout.metrics_body.read_text() if layout.metrics_body.exists() else None
    out = out or layout.report(_slug(label))
    cfg = session_config(session.record, layout)
    final = session.record.final
    as_of = (final.as_of or final.graded_at) if final is not None else None
    # The rules' health as Prometheus reported it at the end, not as a Prometheus evaluating them on old data now.
    snapshot = layout.rules / "rules.json"
    groups = json.loads(snapshot.read_text())["data"]["groups"] if snapshot.exists() else None
    with ArchivedPrometheus(layout.run, layout.rule_files, cfg.scrape_interval, say) as prometheus_url:
        try:
            _, data, out = run_grading(
                layout.run.root,
                prometheus_url,
                candidate=layout.candidate,
                out=out,
                rubric=rubric,
                say=say,
                metrics_body=body,
                now=as_of,
                rule_groups=groups,
            )
        except GradingFailed as exc:
            raise SessionError(str(exc)) from None
    return GradeRecord.from_report(label, data, out)


# --- the improvement round --------------------------------------------------------------------------------


def improve(
    session: StoredSession, minutes: float = DEFAULT_ROUND_MINUTES, rubric: Path | None = None, say: Say = print
) -> GradeRecord:
    from load.scenario import load_scenario

    record, layout = session.record, session.layout
    if session.state != "running":
        raise SessionError(f"session {session.name!r} is {session.state}; the round needs it running")
    if record.round is not None:
        raise SessionError(f"session {session.name!r} is already in its improvement round")
    if record.play is None:
        raise SessionError(f"session {session.name!r} plays no scenario (started with --no-load); nothing to replay")
    sandbox = _sandbox(session, say)
    grade = grade_live(session, sandbox, "before the round", rubric, say, keep=False)
    record.grades.append(grade)
    snapshot = _history(layout).snapshot("the improvement round starts") or _history(layout).head()
    sandbox.stop_play()
    # The main play's truth goes aside; the round's play writes a fresh one, and `session end` grades that.
    main = layout.plays / "main"
    sandbox.move_truth(main)
    scenario = load_scenario(record.play.scenario)
    speed = max(record.play.speed, scenario.duration_seconds / (minutes * 60))
    play = record.play.model_copy(update={"speed": speed})
    sandbox.start_play(play)
    record.round = RoundRecord(
        started_at=time.time(), minutes=minutes, improvement=grade.improvement, snapshot=snapshot, play=play
    )
    record.save(layout)
    return grade


# --- end --------------------------------------------------------------------------------------------------


def end(session: StoredSession, rubric: Path | None = None, say: Say = print) -> GradeRecord | None:
    record, layout = session.record, session.layout
    if session.state == "ended":
        raise SessionError(
            f"session {session.name!r} already ended; `mlsandbox grade --session {session.name}` grades it again"
        )
    alive = session.state == "running"
    sandbox = _sandbox(session, say)
    grade = None
    if alive:
        grade = grade_live(session, sandbox, "final", rubric, say)
    if record.watcher_pid:
        stop(record.watcher_pid)
    history = _history(layout)
    try:
        history.snapshot("session end")
    except HistoryError as exc:
        record.notes.append(f"last snapshot failed: {exc}")
    if sandbox is not None:
        try:
            sandbox.archive_data(layout.run.root)
            # Under compose the volumes were copied out just now: the project goes entirely.
            sandbox.down(volumes=True)
        except SandboxError as exc:
            record.notes.append(f"stopping the stack: {exc}")
    if not alive:
        record.notes.append("the stack had stopped before `session end`; graded from what was on disk")
        grade = _grade_from_disk(session, rubric, say)
    if grade is not None:
        record.grades.append(grade)
    if record.round is not None and record.round.snapshot:
        layout.archive.mkdir(parents=True, exist_ok=True)
        layout.round_diff.write_text(history.diff(record.round.snapshot))
    record.ended_at = time.time()
    record.save(layout)
    from .session_report import write_summary

    write_summary(StoredSession(layout, record))
    return grade


def _grade_from_disk(session: StoredSession, rubric: Path | None, say: Say) -> GradeRecord | None:
    layout = session.layout
    if not layout.rule_files.exists():
        # The rules could not be read from a running Prometheus: the files as they are on disk.
        from .archive import copy_rule_files

        copy_rule_files(layout.candidate / "alerts", layout.rule_files)
    if not layout.run.timeline.exists() or not layout.run.prometheus_data.exists():
        say("nothing was played (no timeline or no Prometheus data): no grade")
        return None
    try:
        return regrade(StoredSession(layout, session.record), rubric, say=say, label="final")
    except SessionError as exc:
        session.record.notes.append(f"grading from disk failed: {exc}")
        return None
