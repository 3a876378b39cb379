"""`mlsandbox session ...`: a day of interviews on one sandbox (see sessions.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from mlsandbox.config import KubeSettings
from mlsandbox.errors import MlsandboxError
from mlsandbox.sessions import store
from mlsandbox.sessions.idle import DEFAULT_IDLE_MINUTES, activity, idle_seconds
from mlsandbox.sessions.lifecycle import DEFAULT_ROUND_MINUTES, end, improve, shell, start
from mlsandbox.sessions.summary import as_csv, as_text, compare_rows, list_rows, list_table
from mlsandbox.stack.state import HEADLESS, ScenarioPlay

from .common import say

session_app = typer.Typer(
    no_args_is_help=True,
    help="Interview sessions: a fresh workspace and stack per "
    "candidate, archived at the end, re-gradable later, compared side by side.",
)

NameOpt = typer.Option(None, "--session", help="The session (default: the only one running).")


@session_app.command("start")
def session_start(
    name: str = typer.Argument(..., help="The session's name (the candidate's, say): letters, digits, . _ -"),
    candidate: Optional[Path] = typer.Option(
        None,
        "--candidate",
        help="Copy this folder instead of the starter (the session never serves a folder in place).",
    ),
    scenario: str = typer.Option("interview", "--scenario", help="A shipped scenario or a file."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    speed: float = typer.Option(1.0, "--speed", min=0.001),
    surprise: bool = typer.Option(False, "--surprise"),
    no_load: bool = typer.Option(False, "--no-load", help="Play nothing yet (`mlsandbox scenario play --session`)."),
    docker: bool = typer.Option(False, "--docker", help="A compose project of its own instead of native processes."),
    local_images: bool = typer.Option(False, "--local-images", help="With --docker: images built here."),
    kubernetes: bool = typer.Option(
        False,
        "--kubernetes",
        help="A namespace of its own on a cluster (the kubeconfig's current context; MLSANDBOX_KUBE_* settings).",
    ),
    context: Optional[str] = typer.Option(None, "--context", help="With --kubernetes: this kubeconfig context."),
    ports: Optional[int] = typer.Option(None, "--ports", help="First of its block of ports (default: a free one)."),
    listen: str = typer.Option(
        "127.0.0.1",
        "--listen",
        help="Where the candidate's room listens: an address of this machine a remote candidate can reach "
        "(only the room's door; everything else stays on 127.0.0.1).",
    ),
    trust_candidate: bool = typer.Option(
        False,
        "--trust-candidate",
        help="No sandboxes (where bubblewrap cannot run): the candidate's room and code run as you.",
    ),
) -> None:
    """A fresh workspace (a copy of starter_repo/) in the candidate's room, a fresh Prometheus, prediction log and
    truth, on ports of its own; MLflow and the trained model are shared. Prints the candidate's link and the URLs
    this session uses."""
    if kubernetes and docker:
        raise MlsandboxError("--docker or --kubernetes, not both")
    if context and not kubernetes:
        raise MlsandboxError("--context goes with --kubernetes")
    kube = (KubeSettings(context=context) if context else KubeSettings()) if kubernetes else None
    play = None if no_load else ScenarioPlay(scenario=scenario, seed=seed, speed=speed, surprise=surprise)
    session, urls = start(
        name,
        candidate,
        play,
        docker,
        ports,
        local_images,
        say,
        listen=listen,
        trust_candidate=trust_candidate,
        kube=kube,
    )
    typer.echo(f"\nSession {name} is running ({session.record.backend}):")
    for component, url in urls.items():
        typer.echo(f"  {component:<15} {url or HEADLESS}")
    typer.echo(f"\ncandidate: {urls['candidate']}")
    typer.echo("  (send this link to the candidate: it opens their room, and nothing else of this machine)")
    typer.echo(
        f"Their workspace is {session.layout.candidate}, snapshotted into {session.layout.history}; "
        f"`mlsandbox session end --session {name}` grades, stops and archives."
    )


@session_app.command("improve")
def session_improve(
    session: Optional[str] = NameOpt,
    minutes: float = typer.Option(
        DEFAULT_ROUND_MINUTES, "--minutes", min=0.1, help="Length of the round: the scenario is replayed within it."
    ),
    rubric: Optional[Path] = typer.Option(None, "--rubric"),
) -> None:
    """The improvement round: grade now, give the candidate the one improvement point, replay the scenario's
    incidents compressed into the round; `session end` grades the round's play."""
    found = store.pick(session)
    grade = improve(found, minutes, rubric, say)
    typer.echo(f"grade before the round: {grade.score:g}%; report in {grade.report}")
    typer.echo(f"the improvement point for the candidate: {grade.improvement['text']}")
    typer.echo(f"the scenario replays now, in {minutes:g} minutes; then `mlsandbox session end --session {found.name}`")


@session_app.command("end")
def session_end(session: Optional[str] = NameOpt, rubric: Optional[Path] = typer.Option(None, "--rubric")) -> None:
    """Grade, stop the stack and archive everything under sessions/NAME/ (an interrupted session too, from what
    is on disk)."""
    found = store.pick(session, ("running", "interrupted"))
    grade = end(found, rubric, say)
    if grade is not None:
        typer.echo(f"final score {grade.score:g}%; report in {grade.report}")
    typer.echo(f"session {found.name} archived in {found.layout.root} (summary: {found.layout.summary})")


@session_app.command("list")
def session_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every session: name, scenario, start, duration, score, state (running, ended, interrupted)."""
    rows = list_rows(store.all_sessions())
    typer.echo(json.dumps(rows, indent=2) if as_json else list_table(rows))


@session_app.command("compare")
def session_compare(
    names: list[str] = typer.Argument(..., help="Two or more sessions."),
    csv: bool = typer.Option(False, "--csv", help="As CSV, for a spreadsheet."),
) -> None:
    """Points per rubric item side by side, the score, and each incident's detection latency (last grade of each)."""
    graded = {}
    for name in names:
        found = store.load(name)
        if not found.record.grades:
            raise MlsandboxError(f"session {name!r} has no grade yet (`mlsandbox session end --session {name}`)")
        graded[name] = found.record.grades[-1]
    rows = compare_rows(graded)
    typer.echo(as_csv(rows) if csv else as_text(rows), nl=not csv)


@session_app.command("idle")
def session_idle(
    minutes: float = typer.Option(
        DEFAULT_IDLE_MINUTES, "--minutes", min=0.0, help="Idle after this long without activity or play."
    ),
    end_them: bool = typer.Option(False, "--end", help="End (grade and archive) every idle session."),
    rubric: Optional[Path] = typer.Option(None, "--rubric"),
) -> None:
    """Running sessions and how long each has been idle: no activity in the candidate's room (JupyterLab, files
    saved) and no scenario playing. With --end, the idle ones are ended as `session end` does."""
    import time

    now, idle = time.time(), []
    for found in store.running():
        sandbox = store.session_target(found).sandbox(say)
        if sandbox is None:
            continue
        seconds = idle_seconds(activity(found, sandbox, now), now)
        verdict = "IDLE" if seconds >= minutes * 60 else "active"
        typer.echo(f"{found.name:<20} {found.record.backend:<11} idle {seconds / 60:6.1f} min  {verdict}")
        if seconds >= minutes * 60:
            idle.append(found)
    if not idle:
        typer.echo(f"no session idle for {minutes:g} minutes")
        return
    if not end_them:
        typer.echo(f"{len(idle)} idle; `mlsandbox session idle --minutes {minutes:g} --end` ends them")
        return
    for found in idle:
        grade = end(found, rubric, say)
        typer.echo(f"ended {found.name}" + (f": final score {grade.score:g}%" if grade else ""))


@session_app.command("shell", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def session_shell(
    ctx: typer.Context,
    session: Optional[str] = NameOpt,
) -> None:
    """A shell, or one command (after `--`), inside the candidate's room as they see it: their workspace, their
    session's services, nothing else. For the interviewer who helps with an environment problem."""
    found = store.pick(session)
    raise typer.Exit(shell(found, list(ctx.args)))
