"""A session's grades: live, on the running stack (keeping what a re-grade needs: the last /metrics body and the
rules as Prometheus had them loaded), and again later, from the archive on a Prometheus of its own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx

from grading.errors import GradingFailed
from grading.prometheus import PrometheusClient, PrometheusUnreachable
from grading.rubric import Rubric, rubric_or_fail
from mlsandbox.errors import MlsandboxError
from mlsandbox.say import Say
from mlsandbox.sessions.archive import ArchivedPrometheus, rule_files_from_api
from mlsandbox.sessions.store import GradeRecord, StoredSession
from mlsandbox.stack.native_config import copy_rules
from mlsandbox.stack.prometheus import rules_answer
from mlsandbox.stack.sandbox import GradingInputs, Sandbox


def _scrape_metrics(inputs: GradingInputs) -> str | None:
    """The candidate's /metrics now, as the grader scrapes it (kept: a re-grade reads it where the grader would
    scrape the server)."""
    from grading.grade import scrape

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
    data = rules_answer(prometheus_url)
    rules = session.layout.rules
    shutil.rmtree(rules, ignore_errors=True)
    session.layout.rule_files.mkdir(parents=True)
    (rules / "rules.json").write_text(json.dumps(data, indent=2))
    for filename, text in rule_files_from_api(data).items():
        (session.layout.rule_files / filename).write_text(text)
    return data["data"]["groups"]


def session_rubric(session: StoredSession, rubric: Path | Rubric | None) -> Rubric:
    """What the session is graded with: the rubric given (default: grading/rubric.yaml) with the session's level
    laid over it (its own copy of the level: a later edit of levels/ changes none of its grades)."""
    base = rubric if isinstance(rubric, Rubric) else rubric_or_fail(rubric)
    level = session.level()
    return level.rubric(base) if level is not None else base


MAIN_PLAY_RULES = "rules.json"  # in the main play's folder (archive/plays/main/)


def slug(label: str) -> str:
    return label.replace(" ", "-")


def _main_play(session: StoredSession):
    """After the improvement round: the main play, over which the round's alerting is judged by replaying the rules
    (grading/round.py); None without a round or when the main play's truth was not kept."""
    from grading.round import MainPlay

    round_ = session.record.round
    main = session.layout.plays / "main"
    if round_ is None or not main.exists():
        return None
    kept = main / MAIN_PLAY_RULES
    rules = json.loads(kept.read_text())["data"]["groups"] if kept.exists() else None
    return MainPlay(main, round_.minutes, round_.play.speed, rules)


def keep_main_play_rules(session: StoredSession, sandbox: Sandbox) -> None:
    """The rules Prometheus has loaded as the main play ends, beside its truth: the round's replay reads the
    recording rules that did not change as Prometheus recorded them."""
    main = session.layout.plays / "main"
    main.mkdir(parents=True, exist_ok=True)
    try:
        answer = rules_answer(sandbox.grading_inputs().prometheus_url)
    except (httpx.HTTPError, ValueError):
        return  # not kept: the replay inlines every recording rule, as for rules it has never seen
    (main / MAIN_PLAY_RULES).write_text(json.dumps(answer))


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
    from grading.api import run_grading  # the grader's imports take a second: not for every command

    inputs = sandbox.grading_inputs()
    body = _scrape_metrics(inputs)
    groups = None
    if keep:
        session.layout.archive.mkdir(parents=True, exist_ok=True)
        if body is not None:
            session.layout.metrics_body.write_text(body)
        groups = _keep_rules(session, inputs.prometheus_url)
    _, data, out = run_grading(
        inputs.run_dir,
        inputs.prometheus_url,
        candidate=session.layout.candidate,
        out=session.layout.report(slug(label)),
        rubric=session_rubric(session, rubric),
        say=say,
        server_address=inputs.server_address,
        metrics_body=body,
        rule_groups=groups,
        round_of=_main_play(session),
    )
    return data, out


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
    from grading.api import run_grading

    layout = session.layout
    if session.state == "running":
        raise MlsandboxError(
            f"session {session.name!r} is running; `mlsandbox grade --session {session.name}` grades "
            "archived sessions (`mlsandbox session end` first), `mlsandbox grade` a running one"
        )
    body = layout.metrics_body.read_text() if layout.metrics_body.exists() else None
    out = out or layout.report(slug(label))
    final = session.record.final
    as_of = (final.as_of or final.graded_at) if final is not None else None
    # The rules' health as Prometheus reported it at the end, not as a Prometheus evaluating them on old data now.
    snapshot = layout.rules / "rules.json"
    groups = json.loads(snapshot.read_text())["data"]["groups"] if snapshot.exists() else None
    with ArchivedPrometheus(layout.run, layout.rule_files, session.config.scrape_interval, say) as prometheus_url:
        _, data, out = run_grading(
            layout.run.root,
            prometheus_url,
            candidate=layout.candidate,
            out=out,
            rubric=session_rubric(session, rubric),
            say=say,
            metrics_body=body,
            now=as_of,
            rule_groups=groups,
            round_of=_main_play(session),
        )
    return GradeRecord.from_report(label, data, out)


def grade_from_disk(session: StoredSession, rubric: Path | None, say: Say) -> GradeRecord | None:
    """The final grade of a session whose stack stopped before its end (a reboot): from what is on disk; None
    when nothing was played, or grading failed (the record's notes say why)."""
    layout = session.layout
    if not layout.rule_files.exists():
        # The rules could not be read from a running Prometheus: the files as they are on disk.
        copy_rules(layout.candidate / "alerts", layout.rule_files)
    if not layout.run.timeline.exists() or not layout.run.prometheus_data.exists():
        say("nothing was played (no timeline or no Prometheus data): no grade")
        return None
    try:
        return regrade(session, rubric, say=say, label="final")
    except (MlsandboxError, GradingFailed) as exc:
        session.record.notes.append(f"grading from disk failed: {exc}")
        return None
