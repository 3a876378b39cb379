"""mlsandbox: run the ML monitoring sandbox natively (no Docker)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .components import ScenarioPlay
from .config import REPO_ROOT, StackConfig
from .processes import load_state
from .stack import Stack, StackError, check_scenario

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)

RunDir = typer.Option(None, "--run-dir", help="State, logs and data of this sandbox (default: run/ in the repo).")


def _config(run_dir: Optional[Path]) -> StackConfig:
    return StackConfig(run_dir=run_dir) if run_dir else StackConfig()


def _fail(message: str) -> None:
    typer.echo(f"mlsandbox: {message}", err=True)
    raise typer.Exit(1)


def _say(line: str) -> None:
    typer.echo(line)


ScenarioOpt = typer.Option("interview", "--scenario", help="A shipped scenario (see `scenario list`) or a file.")
SeedOpt = typer.Option(None, "--seed", help="Seed of the traffic; default: the scenario's own.")
SpeedOpt = typer.Option(1.0, "--speed", min=0.001, help="Time compression: 10 plays ten minutes in one.")
SurpriseOpt = typer.Option(False, "--surprise", help="Draw hidden parameters from the seed; print none of them.")


@app.command()
def up(
    candidate: Path = typer.Option(
        REPO_ROOT / "starter_repo", "--candidate", help="The candidate's folder (app/, alerts/, dashboards/)."
    ),
    scenario: str = ScenarioOpt,
    seed: Optional[int] = SeedOpt,
    speed: float = SpeedOpt,
    surprise: bool = SurpriseOpt,
    no_load: bool = typer.Option(False, "--no-load", help="Start no load generator."),
    run_dir: Optional[Path] = RunDir,
) -> None:
    """Start MLflow, Alertmanager, Prometheus, the model server on the candidate's code, and Locust playing
    the scenario (its web UI lets the interviewer stop and restart it)."""
    cfg = _config(run_dir)
    play = None if no_load else ScenarioPlay(scenario, seed, speed, surprise)
    try:
        comps = Stack(cfg, _say).up(candidate, play)
    except StackError as exc:
        _fail(str(exc))
    typer.echo("\nThe sandbox is up:")
    for comp in comps:
        typer.echo(f"  {comp.name:<15} {comp.url}")
    typer.echo(f"\nCandidate folder: {candidate.resolve()}   Run directory: {cfg.run_dir.resolve()}")
    typer.echo("Stop everything with `mlsandbox down` (or `make down`).")


@app.command()
def down(run_dir: Optional[Path] = RunDir) -> None:
    """Stop every component (whole process groups) and free the ports."""
    stopped = Stack(_config(run_dir), _say).down()
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."), run_dir: Optional[Path] = RunDir
) -> None:
    """Each component: pid, port, health."""
    rows = Stack(_config(run_dir), _say).status()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("the sandbox is not running (`mlsandbox up` starts it)")
        return
    for r in rows:
        state = "healthy" if r["healthy"] else ("running, not healthy" if r["alive"] else "stopped")
        typer.echo(f"{r['name']:<15} pid {r['pid']:<7} {r['url']:<24} {state}")


@app.command()
def reload(run_dir: Optional[Path] = RunDir) -> None:
    """Check the candidate's alert rules and load them into the running Prometheus."""
    try:
        Stack(_config(run_dir), _say).reload_rules()
    except StackError as exc:
        _fail(str(exc))
    typer.echo("rules checked and loaded")


from .docker_cli import docker_app  # noqa: E402  (registered after the native commands)

app.add_typer(docker_app, name="docker")

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
) -> None:
    """Play a scenario headless, in the foreground, against the running sandbox (started with --no-load)."""
    try:
        Stack(_config(run_dir), _say).play(ScenarioPlay(scenario, seed, speed, surprise))
    except StackError as exc:
        _fail(str(exc))
    typer.echo("scenario played; its timeline and ledger are in the run directory's scenario/ folder")


@scenario_app.command("status")
def scenario_status(as_json: bool = typer.Option(False, "--json"), run_dir: Optional[Path] = RunDir) -> None:
    """For the interviewer: the phase playing now, what is injected, what comes next."""
    from load.truth import read_timeline

    from .scenario_view import describe

    timeline = read_timeline(_config(run_dir).run_dir)
    if timeline is None:
        _fail("no scenario has played in this run directory")
    typer.echo(timeline.model_dump_json(indent=2) if as_json else describe(timeline))


@scenario_app.command("next")
def scenario_next(run_dir: Optional[Path] = RunDir) -> None:
    """End the current phase now and go on to the next."""
    from load.player import request_skip
    from load.truth import read_timeline

    cfg = _config(run_dir)
    timeline = read_timeline(cfg.run_dir)
    if timeline is None or timeline.current is None:
        _fail("no scenario is playing")
    request_skip(cfg.run_dir)
    typer.echo(f"asked the player to end phase {timeline.current.name!r} (within a second)")


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
) -> None:
    """Score the session from Prometheus (and Grafana) against the scenario's hidden truth; write the report."""
    from grading.cli import GradingFailed, run_grading

    cfg = _config(run_dir)
    if candidate is None:
        _, extra = load_state(cfg.state_path)
        candidate = Path(extra["candidate_dir"]) if extra.get("candidate_dir") else None
    try:
        _, data, out_dir = run_grading(
            cfg.run_dir,
            prometheus or cfg.prometheus_url,
            candidate=candidate,
            grafana=grafana,
            out=out,
            rubric=rubric,
            mlflow_url=cfg.mlflow_url if log_to_mlflow else None,
            say=_say,
        )
    except GradingFailed as exc:
        typer.echo(f"mlsandbox grade: {exc}", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(f"score {data['score']}% ({data['points']} of {data['max_points']}); report in {out_dir}")
        typer.echo(f"improve: {data['improvement']['text']}")


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

    try:
        rules = rubric_or_fail(rubric)
        check_scenario(scenario)
        cal = Calibration(candidates, out, base_port, scrape_interval, _say)
    except (GradingFailed, StackError) as exc:
        typer.echo(f"mlsandbox calibrate: {exc}", err=True)
        raise typer.Exit(2)
    try:
        with cal:
            cal.play(ScenarioPlay(scenario, seed, speed, surprise))
            cal.wait_after_play(rules.tolerances.resolve_grace_seconds)
            cal.save_metrics()
            _say("grading ...")
            grades = cal.grade(rules)
    except (StackError, GradingFailed) as exc:
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


if __name__ == "__main__":
    app()
