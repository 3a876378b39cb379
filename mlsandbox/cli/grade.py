"""`mlsandbox grade` and `mlsandbox calibrate`: score a session, or a corpus of candidates on one play."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from grading.rubric import rubric_or_fail
from mlsandbox.config import REPO_ROOT
from mlsandbox.levels.level import load_level
from mlsandbox.sessions.grading import regrade
from mlsandbox.sessions.store import load, resolve
from mlsandbox.stack.fanout import DEFAULT_BASE_PORT, calibrate, side_by_side
from mlsandbox.stack.sandbox import GradingInputs
from mlsandbox.stack.state import ScenarioPlay

from .common import LevelsDirOpt, RunDir, SeedOpt, SpeedOpt, say, say_aside


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
    session: Optional[str] = typer.Option(None, "--session", help="A session: running, graded live; ended, re-graded."),
) -> None:
    """Score the session from Prometheus (and Grafana) against the scenario's hidden truth; write the report."""
    from grading.api import run_grading  # the grader's imports take a second: only for the commands that grade

    talk = say_aside if as_json else say
    if session and not run_dir:
        found = load(session)
        if found.state != "running":
            _regraded(found, rubric, out, as_json)
            return
    target = resolve(run_dir, session)
    cfg = target.cfg
    sandbox = target.sandbox(say)
    inputs = (
        sandbox.grading_inputs()
        if sandbox
        else GradingInputs(cfg.run_dir, cfg.prometheus_url, None, mlflow_url=cfg.mlflow_url)
    )
    _, data, out_dir = run_grading(
        inputs.run_dir,
        prometheus or inputs.prometheus_url,
        candidate=candidate or inputs.candidate_dir,
        grafana=grafana,
        out=out or (cfg.layout.report if sandbox else None),
        rubric=rubric,
        mlflow_url=inputs.mlflow_url if log_to_mlflow else None,
        say=talk,
        server_address=inputs.server_address,
    )
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(f"score {data['score']}% ({data['points']} of {data['max_points']}); report in {out_dir}")
        typer.echo(f"improve: {data['improvement']['text']}")


def _regraded(found, rubric: Optional[Path], out: Optional[Path], as_json: bool) -> None:
    """Re-grade an ended (or interrupted) session from its archive."""
    record = regrade(found, rubric, out, say=say_aside if as_json else say)
    if as_json:
        typer.echo((Path(record.report) / "report.json").read_text())
        return
    final = found.record.final
    same = f" (at the end of the session: {final.score:g}%)" if final else ""
    typer.echo(f"score {record.score:g}% ({record.points:g} of {record.max_points:g}){same}; report in {record.report}")
    typer.echo(f"improve: {record.improvement['text']}")


def calibrate_command(
    candidates: list[Path] = typer.Argument(..., help="Candidate folders (app/, alerts/, dashboards/)."),
    scenario: Optional[str] = typer.Option(
        None, "--scenario", help="A shipped scenario or a file (default: smoke, or the level's compressed scenario)."
    ),
    seed: Optional[int] = SeedOpt,
    speed: float = SpeedOpt,
    surprise: Optional[bool] = typer.Option(
        None,
        "--surprise/--no-surprise",
        help="Draw hidden parameters from the seed; print none of them (default: the level's, else no).",
    ),
    out: Path = typer.Option(REPO_ROOT / "run" / "calibration", "--out", help="Where each room's data and report go."),
    rubric: Optional[Path] = typer.Option(None, "--rubric", help="Another rubric file."),
    level_name: Optional[str] = typer.Option(
        None, "--level", help="Grade at a level (`mlsandbox levels`): its rubric overlay on the rubric."
    ),
    levels_dir: Optional[Path] = LevelsDirOpt,
    base_port: int = typer.Option(
        DEFAULT_BASE_PORT, "--base-port", help="First of the ports used (shared services, then two per candidate)."
    ),
    scrape_interval: Optional[str] = typer.Option(
        None, "--scrape-interval", help="Prometheus's interval (smoke wants 1s)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Play one scenario to several candidates at once (each with its own server and Prometheus), grade each,
    and show the points per rubric item side by side: a rubric change's effect on a corpus of solutions."""
    rules = rubric_or_fail(rubric)
    level = load_level(level_name, levels_dir) if level_name else None
    if level is not None:
        rules = level.rubric(rules)
        scenario = scenario or level.spec.scenario.compressed
        surprise = level.spec.scenario.surprise if surprise is None else surprise
    play = ScenarioPlay(scenario=scenario or "smoke", seed=seed, speed=speed, surprise=bool(surprise))
    grades, summary = calibrate(candidates, play, rules, out, base_port, scrape_interval, say)
    typer.echo(json.dumps(summary, indent=2) if as_json else side_by_side(grades))
    typer.echo(f"reports: {out.resolve()}/<candidate>/report/  summary: {out.resolve() / 'calibration.json'}")


def register(app: typer.Typer) -> None:
    app.command()(grade)
    app.command("calibrate")(calibrate_command)
