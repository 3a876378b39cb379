"""`mlsandbox session ...`: a day of interviews on one sandbox (see sessions.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from mlsandbox.config import KubeSettings
from mlsandbox.errors import InvalidInput, MlsandboxError
from mlsandbox.levels.level import DEFAULT_LEVEL, load_level
from mlsandbox.sessions import debrief, scorecard, store
from mlsandbox.sessions.idle import DEFAULT_IDLE_MINUTES, activity, idle_seconds
from mlsandbox.sessions.lifecycle import delete, end, improve, kept_paths, shell, start
from mlsandbox.sessions.summary import as_csv, as_text, compare_note, compare_rows, list_rows, list_table
from mlsandbox.stack.state import HEADLESS, ScenarioPlay

from .common import LevelsDirOpt, say

session_app = typer.Typer(
    no_args_is_help=True,
    help="Interview sessions: a fresh workspace and stack per "
    "candidate, archived at the end, re-gradable later, compared side by side.",
)

NameOpt = typer.Option(None, "--session", help="The session (default: the only one running).")
ScorecardOpt = typer.Option(
    None,
    "--scorecard",
    help="A team's own scorecard (default: grading/scorecard.yaml); the session keeps a copy of the one it is "
    "scored on.",
)


@session_app.command("start")
def session_start(
    name: str = typer.Argument(..., help="The session's name (the candidate's, say): letters, digits, . _ -"),
    candidate: Optional[Path] = typer.Option(
        None,
        "--candidate",
        help="Copy this folder instead of the starter (the session never serves a folder in place).",
    ),
    level_name: str = typer.Option(
        DEFAULT_LEVEL,
        "--level",
        help="junior, mid, senior, dashboard-design or a team's own (`mlsandbox levels`): the workspace's starting "
        "point, the brief, the scenario, the round's length and the rubric.",
    ),
    levels_dir: Optional[Path] = LevelsDirOpt,
    scenario: Optional[str] = typer.Option(
        None, "--scenario", help="A shipped scenario or a file (default: the level's)."
    ),
    seed: Optional[int] = typer.Option(None, "--seed"),
    speed: float = typer.Option(1.0, "--speed", min=0.001),
    surprise: Optional[bool] = typer.Option(
        None, "--surprise/--no-surprise", help="Draw the hidden parameters from the seed (default: the level's)."
    ),
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
    scorecard_file: Optional[Path] = ScorecardOpt,
) -> None:
    """A fresh workspace (the level's starting point) in the candidate's room, a fresh Prometheus, prediction log and
    truth, on ports of its own; MLflow and the trained model are shared. Prints the candidate's link and the URLs
    this session uses."""
    if kubernetes and docker:
        raise MlsandboxError("--docker or --kubernetes, not both")
    if context and not kubernetes:
        raise MlsandboxError("--context goes with --kubernetes")
    kube = (KubeSettings(context=context) if context else KubeSettings()) if kubernetes else None
    level = load_level(level_name, levels_dir)  # a bad level is refused before anything starts
    chosen = level.spec.scenario
    play = (
        None
        if no_load
        else ScenarioPlay(
            scenario=scenario or chosen.name,
            seed=seed,
            speed=speed,
            surprise=chosen.surprise if surprise is None else surprise,
        )
    )
    if scorecard_file is not None:
        scorecard.load_scorecard(scorecard_file)  # refused before anything starts
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
        level=level,
        kube=kube,
    )
    if scorecard_file is not None:
        scorecard.SessionScorecards(session.layout).adopt(scorecard_file)
    typer.echo(f"\nSession {name} is running ({session.record.backend}), level {level.name} ({level.title}):")
    for component, url in urls.items():
        typer.echo(f"  {component:<15} {url or HEADLESS}")
    typer.echo(f"\ncandidate: {urls['candidate']}")
    typer.echo("  (send this link to the candidate: it opens their room, and nothing else of this machine)")
    typer.echo(
        f"Time box: {level.time_box}, then `mlsandbox session improve --session {name}` "
        f"({level.spec.round_minutes:g} minutes)."
    )
    typer.echo(
        f"Their workspace is {session.layout.candidate}, snapshotted into {session.layout.history}; "
        f"`mlsandbox session end --session {name}` grades, stops and archives."
    )


@session_app.command("improve")
def session_improve(
    session: Optional[str] = NameOpt,
    minutes: Optional[float] = typer.Option(
        None,
        "--minutes",
        min=0.1,
        help="Length of the round: the scenario is replayed within it (default: the level's, 15 for mid).",
    ),
    rubric: Optional[Path] = typer.Option(None, "--rubric"),
) -> None:
    """The improvement round: grade now, give the candidate the one improvement point, replay the scenario's
    incidents compressed into the round; `session end` grades the round's play."""
    found = store.pick(session)
    grade = improve(found, minutes, rubric, say)
    typer.echo(f"grade before the round: {grade.score:g}%; report in {grade.report}")
    typer.echo(f"the improvement point for the candidate: {grade.improvement['text']}")
    minutes = found.record.round.minutes if found.record.round else minutes
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
    """Points per rubric item side by side, the score, the interviewers' ratings and recommendations
    (scorecard:<interviewer>:<competency>; calibration:<competency> where two are 2 or more apart), and each
    incident's detection latency (last grade of each). Sessions of different levels are compared item by item as
    percentages of each one's maximum, and it says so."""
    graded, scored, levels = {}, {}, {}
    for name in names:
        found = store.load(name)
        if not found.record.grades:
            raise MlsandboxError(f"session {name!r} has no grade yet (`mlsandbox session end --session {name}`)")
        graded[name] = found.record.grades[-1]
        levels[name] = found.record.level
        book = scorecard.SessionScorecards(found.layout)
        scored[name] = (book.scorecard(), book.cards())
    note = compare_note(levels)
    if note:
        typer.echo(note, err=csv)  # beside a CSV, not in it
    rows = compare_rows(graded, scored, levels)
    typer.echo(as_csv(rows) if csv else as_text(rows), nl=not csv)


def _pairs(given: list[str], option: str, example: str) -> dict[str, str]:
    pairs = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{option} {item!r}: write {example}")
        pairs[key.strip()] = value
    return pairs


@session_app.command("score")
def session_score(
    session: Optional[str] = typer.Option(None, "--session", help="The session (default: the only one running)."),
    interviewer: Optional[str] = typer.Option(None, "--interviewer", help="Who scores: a name or an id (no ':')."),
    ratings: Optional[list[str]] = typer.Option(
        None, "--set", help="ID=RATING: a competency's rating, 1-4 (again for another competency)."
    ),
    notes: Optional[list[str]] = typer.Option(None, "--note", help="ID=TEXT: a note on a competency."),
    recommend: Optional[str] = typer.Option(
        None, "--recommend", help="The overall recommendation: strong-no, no, yes or strong-yes."
    ),
    show: bool = typer.Option(
        False,
        "--show",
        help="Show the scorecards: with --interviewer, theirs, and the others' once theirs is complete; without, "
        "every card (the committee's view).",
    ),
    scorecard_file: Optional[Path] = ScorecardOpt,
) -> None:
    """An interviewer's scorecard for a session, during it or after: a rating of 1-4 and a note per competency
    (code quality, explanation, production thinking ...), and the overall recommendation. Every change is kept
    with who and when; an interviewer sees the others' ratings only once their own card is complete."""
    found = scorecard.session_to_score(session)
    book = scorecard.SessionScorecards(found.layout)
    if show:
        sheet = book.scorecard()
        typer.echo(scorecard.as_text(sheet, scorecard.view_for(book.cards(), sheet, interviewer)))
        return
    if interviewer is None:
        raise InvalidInput("--interviewer: who scores (a name or an id)")
    sheet, card = scorecard.score(
        found,
        interviewer,
        _pairs(ratings or [], "--set", "ID=RATING, e.g. code_quality=3"),
        _pairs(notes or [], "--note", "ID=TEXT, e.g. explanation='justified the drift threshold'"),
        recommend,
        "cli",
        scorecard_file,
    )
    typer.echo(f"saved for session {found.name}: {scorecard.summary_line(sheet, card)}")


@session_app.command("debrief")
def session_debrief(
    session: Optional[str] = typer.Option(None, "--session", help="The session (default: the only one)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="The HTML file to write (default: sessions/NAME/archive/debrief.html)."
    ),
    pdf: bool = typer.Option(False, "--pdf", help="Also print it to a PDF beside it, with headless Chromium."),
) -> None:
    """One self-contained HTML page for the hiring committee: the automatic grade with its evidence, the incidents
    against the alerts, the improvement round, the scorecards and recommendations, NOTES.md, the work history."""
    found = store.pick(session, ("ended", "running", "interrupted"))
    page = debrief.write(found, out or found.layout.archive / "debrief.html")
    typer.echo(f"debrief: {page}")
    if pdf:
        typer.echo(f"pdf: {debrief.print_pdf(page, page.with_suffix('.pdf'))}")


@session_app.command("delete")
def session_delete(
    session: str = typer.Option(..., "--session", help="The session to delete."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask."),
) -> None:
    """Delete an ended session and every trace of the candidate the machine keeps: the workspace, the work
    history, the run data (predictions, Prometheus's data, logs), the archive (reports, summary, debrief) and the
    scorecards."""
    found = store.load(session)
    if found.state != "ended":
        delete(found)  # refuses, in one line
    paths = kept_paths(found)
    if not yes:
        typer.confirm(f"delete session {found.name} ({', '.join(map(str, paths))})?", abort=True)
    for path in delete(found):
        typer.echo(f"deleted {path}")


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
    failed = []
    for found in idle:
        try:  # one session whose grading fails leaves the others to end
            grade = end(found, rubric, say)
        except MlsandboxError as exc:
            failed.append(found.name)
            typer.echo(str(exc), err=True)
            continue
        typer.echo(f"ended {found.name}" + (f": final score {grade.score:g}%" if grade else ""))
    if failed:
        raise MlsandboxError(f"not graded: {', '.join(failed)}")


@session_app.command("shell", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def session_shell(
    ctx: typer.Context,
    session: Optional[str] = NameOpt,
) -> None:
    """A shell, or one command (after `--`), inside the candidate's room as they see it: their workspace, their
    session's services, nothing else. For the interviewer who helps with an environment problem."""
    found = store.pick(session)
    raise typer.Exit(shell(found, list(ctx.args)))
