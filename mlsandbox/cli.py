"""mlsandbox: run the ML monitoring sandbox, natively or on Docker, and grade what the candidate built.

One command set for both backends: `up` starts one (`--docker` for compose), and `status`, `reload`, `restart`,
`grade`, `scenario ...` and `down` find whichever runs in the run directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn, Optional

import typer

from .config import REPO_ROOT, StackConfig
from .sandbox import Sandbox, SandboxError, new_sandbox, open_sandbox
from .state import HEADLESS, Busy, SandboxState, ScenarioPlay

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)

RunDir = typer.Option(None, "--run-dir", help="State, logs and data of this sandbox (default: run/ in the repo).")
ScenarioOpt = typer.Option("interview", "--scenario", help="A shipped scenario (see `scenario list`) or a file.")
SeedOpt = typer.Option(None, "--seed", help="Seed of the traffic; default: the scenario's own.")
SpeedOpt = typer.Option(1.0, "--speed", min=0.001, help="Time compression: 10 plays ten minutes in one.")
SurpriseOpt = typer.Option(False, "--surprise", help="Draw hidden parameters from the seed; print none of them.")
ProjectOpt = typer.Option(
    "mlsandbox", "--project", help="With --docker: the compose project's name (names its containers and volumes)."
)


SessionOpt = typer.Option(
    None,
    "--session",
    help="An interview session (default: the only one running, when no sandbox runs in the run directory).",
)


def _home(run_dir: Optional[Path]) -> StackConfig:
    """The run directory given, or the home one (never a session's: `session start`/`end` manage those)."""
    return StackConfig(run_dir=run_dir) if run_dir else StackConfig()


def _config(run_dir: Optional[Path], session: Optional[str] = None) -> StackConfig:
    """The sandbox's settings: the run directory given, or the session named, or the home run directory, or,
    when nothing runs there, the only running session."""
    from . import session_store
    from .sessions import session_config

    if run_dir:
        return StackConfig(run_dir=run_dir)
    try:
        if session:
            found = session_store.load(session)
            return session_config(found.record, found.layout)
        home = StackConfig()
        if SandboxState.load(home.layout) is not None:
            return home
        running = session_store.running()
        if len(running) > 1:
            _fail(
                f"{len(running)} sessions are running: {', '.join(s.name for s in running)}; "
                "say which with --session NAME"
            )
        return session_config(running[0].record, running[0].layout) if running else home
    except session_store.SessionError as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"mlsandbox: {message}", err=True)
    raise typer.Exit(code)


def _say(line: str) -> None:
    typer.echo(line)


def _say_aside(line: str) -> None:
    """Progress that must not mix with machine-readable output on stdout."""
    typer.echo(line, err=True)


def _running(run_dir: Optional[Path], session: Optional[str] = None) -> Sandbox:
    sandbox = open_sandbox(_config(run_dir, session), _say)
    if sandbox is None:
        _fail("no sandbox runs in this run directory (`mlsandbox up` starts one)")
    return sandbox


# --- the sandbox ------------------------------------------------------------------------------------------


@app.command()
def up(
    candidate: Path = typer.Option(
        REPO_ROOT / "starter_repo", "--candidate", help="The candidate's folder (app/, alerts/, dashboards/)."
    ),
    scenario: str = ScenarioOpt,
    seed: Optional[int] = SeedOpt,
    speed: float = SpeedOpt,
    surprise: bool = SurpriseOpt,
    no_load: bool = typer.Option(False, "--no-load", help="Start no load generator (`scenario play` later)."),
    docker: bool = typer.Option(
        False, "--docker", help="Run the compose stack (Grafana included) instead of native processes."
    ),
    local_images: bool = typer.Option(
        False,
        "--local-images",
        help="With --docker, where no registry can be "
        "reached: build the base, Prometheus and Alertmanager images here, no Grafana.",
    ),
    project: str = ProjectOpt,
    run_dir: Optional[Path] = RunDir,
) -> None:
    """Start MLflow, Alertmanager, Prometheus, the model server on the candidate's code, and Locust playing the
    scenario (its web UI lets the interviewer stop and restart it); wait until each answers; print the URLs."""
    if (local_images or project != "mlsandbox") and not docker:
        _fail("--local-images and --project go with --docker")
    cfg = _home(run_dir)
    play = None if no_load else ScenarioPlay(scenario=scenario, seed=seed, speed=speed, surprise=surprise)
    running = open_sandbox(cfg, _say)
    if running is not None and running.state is not None:
        _fail(f"a sandbox ({running.backend}) already runs in {cfg.run_dir}; `mlsandbox down` first")
    sandbox = new_sandbox(cfg, docker, local_images, project, _say)
    try:
        urls = sandbox.up(candidate, play)
    except (SandboxError, Busy) as exc:
        _fail(str(exc))
    typer.echo(f"\nThe sandbox is up ({sandbox.backend}):")
    for name, url in urls.items():
        typer.echo(f"  {name:<15} {url or HEADLESS}")
    if docker and local_images:
        typer.echo("  (no Grafana: no image to be had without a registry)")
    typer.echo(f"\nCandidate folder: {candidate.resolve()}   Run directory: {cfg.run_dir.resolve()}")
    typer.echo("Grade with `mlsandbox grade`; stop everything with `mlsandbox down` (or `make down`).")


@app.command()
def down(
    volumes: bool = typer.Option(
        False, "--volumes", help="Docker: delete the volumes too (model, data, Prometheus history)."
    ),
    keep_engine: bool = typer.Option(False, "--keep-engine", help="Docker: leave a private engine running."),
    run_dir: Optional[Path] = RunDir,
) -> None:
    """Stop every component (whole process groups, or the compose project) and free the ports. Sessions are
    stopped (and archived) by `mlsandbox session end`."""
    from . import session_store

    sandbox = open_sandbox(_home(run_dir), _say)
    if sandbox is None:
        sessions = session_store.running()
        typer.echo(
            "nothing was running"
            + (
                f" here; sessions running: {', '.join(s.name for s in sessions)} "
                "(`mlsandbox session end --session NAME` ends one)"
                if sessions
                else ""
            )
        )
        return
    try:
        stopped = sandbox.down(volumes, keep_engine) if sandbox.backend == "docker" else sandbox.down(volumes)
    except (SandboxError, Busy) as exc:
        _fail(str(exc))
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    if sandbox.backend == "docker":
        typer.echo("volumes deleted" if volumes else "volumes kept (`--volumes` deletes them)")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    run_dir: Optional[Path] = RunDir,
    session: Optional[str] = SessionOpt,
) -> None:
    """Each component: its state (healthy, unhealthy, stopped; Docker: starting, done, exited), URL and pid."""
    sandbox = open_sandbox(_config(run_dir, session), _say)
    try:
        rows = sandbox.status() if sandbox else []
    except SandboxError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "state": r.state,
                        "healthy": r.state == "healthy",
                        "url": r.url,
                        "pid": r.pid,
                        "log": r.log,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        typer.echo("the sandbox is not running (`mlsandbox up` starts it)")
        return
    for r in rows:
        pid = f"pid {r.pid:<7}" if r.pid else ""
        typer.echo(f"{r.name:<15} {pid:<12}{r.url or '':<24} {r.state}")


@app.command()
def reload(run_dir: Optional[Path] = RunDir, session: Optional[str] = SessionOpt) -> None:
    """Check the candidate's alert rules with promtool, load them into the running Prometheus, and name the rules
    that fail when Prometheus evaluates them."""
    import time

    from .rule_health import evaluation_errors

    sandbox = _running(run_dir, session)
    since = time.time()
    try:
        sandbox.reload_rules()
    except SandboxError as exc:
        _fail(str(exc))
    typer.echo("rules checked and loaded; waiting for Prometheus to evaluate them ...")
    failing = evaluation_errors(sandbox.urls()["prometheus"], since)
    if failing:
        _fail(f"{len(failing)} rules fail at evaluation:\n" + "\n".join(f"  {line}" for line in failing))
    typer.echo("every rule evaluates")


@app.command()
def restart(
    component: str = typer.Argument(
        ..., help="model-server, prometheus, alertmanager, mlflow, alert-receiver or load."
    ),
    run_dir: Optional[Path] = RunDir,
    session: Optional[str] = SessionOpt,
) -> None:
    """Start one component again, on the same candidate folder and run directory (nothing of it is lost)."""
    try:
        _running(run_dir, session).restart(component)
    except (SandboxError, Busy) as exc:
        _fail(str(exc))
    typer.echo(f"{component} restarted")


# --- scenarios --------------------------------------------------------------------------------------------

scenario_app = typer.Typer(no_args_is_help=True, help="Scenarios: list, check, play, and the interviewer's view.")
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("list")
def scenario_list() -> None:
    """The shipped scenarios, their length and what they do."""
    from load.scenario import load_scenario, shipped_scenarios

    for name in shipped_scenarios():
        s = load_scenario(name)
        typer.echo(f"{name:<26} {s.duration_seconds / 60:6.1f} min  {s.description.strip()}")


@scenario_app.command("check")
def scenario_check(scenario: str = typer.Argument(..., help="A scenario name or file.")) -> None:
    """Validate a scenario file: one line naming the file, line and field at fault, exit 1."""
    from load.scenario import ScenarioError, load_scenario

    try:
        s = load_scenario(scenario)
    except ScenarioError as exc:
        _fail(str(exc))
    typer.echo(f"{s.name}: {len(s.phases)} phases, {s.duration_seconds:g} s")


@scenario_app.command("play")
def scenario_play(
    scenario: str = typer.Argument(..., help="A scenario name or file."),
    seed: Optional[int] = SeedOpt,
    speed: float = SpeedOpt,
    surprise: bool = SurpriseOpt,
    run_dir: Optional[Path] = RunDir,
    session: Optional[str] = SessionOpt,
    from_phase: Optional[str] = typer.Option(
        None,
        "--from",
        help="Start at this phase (name or number), going on with the timeline of a play that was interrupted "
        "(`scenario status` says which); its seed and surprise are kept.",
    ),
) -> None:
    """Play a scenario headless, in the foreground, on the running sandbox (started with --no-load)."""
    try:
        _running(run_dir, session).play(
            ScenarioPlay(scenario=scenario, seed=seed, speed=speed, surprise=surprise, from_phase=from_phase)
        )
    except SandboxError as exc:
        _fail(str(exc))
    typer.echo("scenario played; its timeline and ledger are with the sandbox's hidden truth")


def _timeline(run_dir: Optional[Path], session: Optional[str] = None):
    from load.truth import TruthError, read_timeline

    cfg = _config(run_dir, session)
    sandbox = open_sandbox(cfg, _say)
    try:
        # Nothing runs: the timeline a native sandbox left in its run directory.
        return sandbox.timeline() if sandbox else read_timeline(cfg.run_dir)
    except (SandboxError, TruthError) as exc:
        _fail(str(exc))


@scenario_app.command("status")
def scenario_status(
    as_json: bool = typer.Option(False, "--json"), run_dir: Optional[Path] = RunDir, session: Optional[str] = SessionOpt
) -> None:
    """For the interviewer: the phase playing now, what is injected, what comes next, what was played when."""
    from .scenario_view import describe

    timeline = _timeline(run_dir, session)
    if timeline is None:
        _fail("no scenario has played in this run directory")
    typer.echo(timeline.model_dump_json(indent=2) if as_json else describe(timeline))


@scenario_app.command("next")
def scenario_next(run_dir: Optional[Path] = RunDir, session: Optional[str] = SessionOpt) -> None:
    """End the current phase now and go on to the next."""
    timeline = _timeline(run_dir, session)
    if timeline is None or timeline.current is None:
        _fail("no scenario is playing")
    try:
        _running(run_dir, session).request_skip()
    except SandboxError as exc:
        _fail(str(exc))
    typer.echo(f"asked the player to end phase {timeline.current.name!r} (within a second)")


def _pause(paused: bool, run_dir: Optional[Path], session: Optional[str]) -> None:
    timeline = _timeline(run_dir, session)
    if timeline is None or timeline.current is None:
        _fail("no scenario is playing")
    if (timeline.paused_at is not None) == paused:
        _fail(f"the traffic is already {'paused' if paused else 'playing'}")
    try:
        _running(run_dir, session).request_pause(paused)
    except SandboxError as exc:
        _fail(str(exc))
    typer.echo(f"asked the player to {'pause' if paused else 'resume'} the traffic (within a second)")


@scenario_app.command("pause")
def scenario_pause(run_dir: Optional[Path] = RunDir, session: Optional[str] = SessionOpt) -> None:
    """Pause the traffic: no request or label is sent, and the phase's clock stands still until `resume`."""
    _pause(True, run_dir, session)


@scenario_app.command("resume")
def scenario_resume(run_dir: Optional[Path] = RunDir, session: Optional[str] = SessionOpt) -> None:
    """Resume the traffic; the phase playing is longer by the pause."""
    _pause(False, run_dir, session)


# --- the candidate's dashboards ---------------------------------------------------------------------------

dashboards_app = typer.Typer(no_args_is_help=True, help="The candidate's dashboards, without Grafana.")
app.add_typer(dashboards_app, name="dashboards")


@dashboards_app.command("preview")
def dashboards_preview(
    candidate: Optional[Path] = typer.Option(
        None, "--candidate", help="Whose dashboards/ (default: the folder the sandbox serves)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="The HTML file (default: RUN_DIR/preview/dashboards.html)."),
    run_dir: Optional[Path] = RunDir,
    session: Optional[str] = SessionOpt,
) -> None:
    """Draw each dashboard of the candidate's dashboards/ folder from its queries against the running Prometheus,
    into one static HTML file (data embedded; it shows the candidate's work only, none of the hidden truth)."""
    from .console.preview import write
    from .console.rooms import Room

    cfg = _config(run_dir, session)
    sandbox = open_sandbox(cfg, _say)
    if sandbox is None:
        _fail("no sandbox runs in this run directory (`mlsandbox up` starts one)")
    folder = (candidate or sandbox.candidate_dir() or Path("starter_repo")).resolve()
    if not (folder / "dashboards").is_dir():
        _fail(f"{folder} has no dashboards/ folder")
    room = Room("preview", "sandbox", "running", cfg.run_dir, sandbox, folder, None)
    path = write(room, out or cfg.layout.root / "preview" / "dashboards.html")
    typer.echo(str(path.resolve()))


# --- grading ----------------------------------------------------------------------------------------------


@app.command()
def grade(
    prometheus: Optional[str] = typer.Option(None, "--prometheus", help="Prometheus URL (default: the sandbox's)."),
    grafana: Optional[str] = typer.Option(
        None,
        "--grafana",
        help="Grafana URL, credentials in it if needed "
        "(http://user:password@127.0.0.1:3000); else dashboards come from files.",
    ),
    run_dir: Optional[Path] = RunDir,
    candidate: Optional[Path] = typer.Option(
        None, "--candidate", help="The candidate's folder (default: the one the sandbox serves)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Where the report goes (default: RUN_DIR/report)."),
    rubric: Optional[Path] = typer.Option(None, "--rubric", help="Another rubric file."),
    as_json: bool = typer.Option(False, "--json", help="Print report.json to stdout."),
    log_to_mlflow: bool = typer.Option(False, "--log-to-mlflow", help="Log the score and report as an MLflow run."),
    session: Optional[str] = typer.Option(
        None,
        "--session",
        help="A session: running, graded live; ended, re-graded from its archive (its data, rules and last /metrics).",
    ),
) -> None:
    """Score the session from Prometheus (and Grafana) against the scenario's hidden truth; write the report."""
    from grading.cli import GradingFailed, run_grading

    from .sandbox import GradingInputs

    if session and not run_dir:
        if _regrade_archived(session, rubric, out, as_json):
            return
    cfg = _config(run_dir, session)
    sandbox = open_sandbox(cfg, _say)
    try:
        inputs = (
            sandbox.grading_inputs()
            if sandbox
            else GradingInputs(cfg.run_dir, cfg.prometheus_url, None, mlflow_url=cfg.mlflow_url)
        )
    except SandboxError as exc:
        _fail(str(exc), 2)
    try:
        _, data, out_dir = run_grading(
            inputs.run_dir,
            prometheus or inputs.prometheus_url,
            candidate=candidate or inputs.candidate_dir,
            grafana=grafana,
            out=out or (cfg.layout.report if sandbox else None),
            rubric=rubric,
            mlflow_url=inputs.mlflow_url if log_to_mlflow else None,
            say=_say_aside if as_json else _say,
            server_address=inputs.server_address,
        )
    except GradingFailed as exc:
        typer.echo(f"mlsandbox grade: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(f"score {data['score']}% ({data['points']} of {data['max_points']}); report in {out_dir}")
        typer.echo(f"improve: {data['improvement']['text']}")


def _regrade_archived(name: str, rubric: Optional[Path], out: Optional[Path], as_json: bool) -> bool:
    """Re-grade an ended (or interrupted) session from its archive; False when it is running (graded live)."""
    from . import session_store
    from .sessions import regrade

    try:
        found = session_store.load(name)
        if found.state == "running":
            return False
        record = regrade(found, rubric, out, say=_say_aside if as_json else _say)
    except (session_store.SessionError, SandboxError) as exc:
        _fail(str(exc), 2)
    if as_json:
        typer.echo((Path(record.report) / "report.json").read_text())
    else:
        final = found.record.final
        same = f" (at the end of the session: {final.score:g}%)" if final else ""
        typer.echo(
            f"score {record.score:g}% ({record.points:g} of {record.max_points:g}){same}; report in {record.report}"
        )
        typer.echo(f"improve: {record.improvement['text']}")
    return True


@app.command()
def calibrate(
    candidates: list[Path] = typer.Argument(..., help="Candidate folders (app/, alerts/, dashboards/)."),
    scenario: str = typer.Option("smoke", "--scenario", help="A shipped scenario or a file."),
    seed: Optional[int] = SeedOpt,
    speed: float = SpeedOpt,
    surprise: bool = SurpriseOpt,
    out: Path = typer.Option(REPO_ROOT / "run" / "calibration", "--out", help="Where each room's data and report go."),
    rubric: Optional[Path] = typer.Option(None, "--rubric", help="Another rubric file."),
    base_port: int = typer.Option(
        31000, "--base-port", help="First of the ports used (shared services, then two per candidate)."
    ),
    scrape_interval: Optional[str] = typer.Option(
        None, "--scrape-interval", help="Prometheus's interval (smoke wants 1s)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Play one scenario to several candidates at once (each with its own server and Prometheus), grade each,
    and show the points per rubric item side by side: a rubric change's effect on a corpus of solutions."""
    from grading.cli import GradingFailed, rubric_or_fail

    from .calibrate import Calibration, side_by_side
    from .native import check_scenario

    try:
        rules = rubric_or_fail(rubric)
        check_scenario(scenario)
        cal = Calibration(candidates, out, base_port, scrape_interval, _say)
    except (GradingFailed, SandboxError) as exc:
        _fail(str(exc), 2)
    try:
        with cal:
            cal.play(ScenarioPlay(scenario=scenario, seed=seed, speed=speed, surprise=surprise))
            cal.wait_after_play(rules.tolerances.resolve_grace_seconds)
            cal.save_metrics()
            _say("grading ...")
            grades = cal.grade(rules)
    except (SandboxError, GradingFailed) as exc:
        _fail(str(exc))
    summary = {
        name: {
            "score": g.score,
            "items": {i.key: i.points for i in g.items},
            "report": str(cal.out_dir / name / "report"),
        }
        for name, g in grades.items()
    }
    (cal.out_dir / "calibration.json").write_text(json.dumps(summary, indent=2))
    typer.echo(json.dumps(summary, indent=2) if as_json else side_by_side(grades))
    typer.echo(f"reports: {cal.out_dir}/<candidate>/report/  summary: {cal.out_dir / 'calibration.json'}")


from .session_cli import session_app  # noqa: E402

app.add_typer(session_app, name="session")

from .course_cli import course_app  # noqa: E402

app.add_typer(course_app, name="course")

from .incident_cli import incident_app  # noqa: E402

app.add_typer(incident_app, name="incident")


# --- the former `mlsandbox docker ...` commands -----------------------------------------------------------

docker_app = typer.Typer(
    no_args_is_help=True, help="Former names of `up --docker`, `down`, `status` and `grade` (kept for this release)."
)
app.add_typer(docker_app, name="docker")


def _renamed(old: str, new: str) -> None:
    typer.echo(
        f"note: `mlsandbox docker {old}` is now `mlsandbox {new}`; this name goes in the next release.", err=True
    )


@docker_app.command("up")
def docker_up(
    local_images: bool = typer.Option(False, "--local-images"),
    candidate: Path = typer.Option(REPO_ROOT / "starter_repo", "--candidate"),
    scenario: str = ScenarioOpt,
    seed: Optional[int] = SeedOpt,
    speed: float = SpeedOpt,
    surprise: bool = SurpriseOpt,
    no_load: bool = typer.Option(False, "--no-load"),
    project: str = ProjectOpt,
    run_dir: Optional[Path] = RunDir,
) -> None:
    """Same as `mlsandbox up --docker`."""
    _renamed("up", "up --docker")
    up(candidate, scenario, seed, speed, surprise, no_load, True, local_images, project, run_dir)


@docker_app.command("down")
def docker_down(
    volumes: bool = typer.Option(False, "--volumes"),
    keep_engine: bool = typer.Option(False, "--keep-engine"),
    run_dir: Optional[Path] = RunDir,
) -> None:
    """Same as `mlsandbox down`."""
    _renamed("down", "down")
    down(volumes, keep_engine, run_dir)


@docker_app.command("status")
def docker_status(run_dir: Optional[Path] = RunDir) -> None:
    """Same as `mlsandbox status`."""
    _renamed("status", "status")
    status(False, run_dir)


@docker_app.command("grade")
def docker_grade(
    grafana: Optional[str] = typer.Option(None, "--grafana"),
    out: Optional[Path] = typer.Option(None, "--out"),
    run_dir: Optional[Path] = RunDir,
) -> None:
    """Same as `mlsandbox grade`."""
    _renamed("grade", "grade")
    grade(None, grafana, run_dir, None, out, None, False, False)


if __name__ == "__main__":
    app()
