"""`mlsandbox up|down|status|reload|restart`: the sandbox of a run directory, on either backend."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from mlsandbox.config import REPO_ROOT
from mlsandbox.errors import MlsandboxError
from mlsandbox.sessions.store import home_target, resolve, running
from mlsandbox.stack.backends import new_sandbox
from mlsandbox.stack.prometheus import evaluation_errors
from mlsandbox.stack.state import HEADLESS, ScenarioPlay

from .common import RunDir, ScenarioOpt, SeedOpt, SessionOpt, SpeedOpt, SurpriseOpt, running_sandbox, say

ProjectOpt = typer.Option(
    "mlsandbox", "--project", help="With --docker: the compose project's name (names its containers and volumes)."
)


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
        raise MlsandboxError("--local-images and --project go with --docker")
    target = home_target(run_dir)
    play = None if no_load else ScenarioPlay(scenario=scenario, seed=seed, speed=speed, surprise=surprise)
    running_now = target.sandbox(say)
    if running_now is not None and running_now.state is not None:
        raise MlsandboxError(
            f"a sandbox ({running_now.backend}) already runs in {target.cfg.run_dir}; `mlsandbox down` first"
        )
    sandbox = new_sandbox(target.cfg, docker, local_images, project, say)
    urls = sandbox.up(candidate, play)
    typer.echo(f"\nThe sandbox is up ({sandbox.backend}):")
    for name, url in urls.items():
        typer.echo(f"  {name:<15} {url or HEADLESS}")
    if docker and local_images:
        typer.echo("  (no Grafana: no image to be had without a registry)")
    typer.echo(f"\nCandidate folder: {candidate.resolve()}   Run directory: {target.cfg.run_dir.resolve()}")
    typer.echo("Grade with `mlsandbox grade`; stop everything with `mlsandbox down` (or `make down`).")


def _still_running() -> list[str]:
    """A line per session or course still running, with the command that stops it (`down` stops neither: a
    session is ended and archived, a course is paused with its progress)."""
    lines = []
    for found in running():
        if found.record.kind == "course":
            lines.append(f"  course {found.name}: `mlsandbox course stop --session {found.name}`")
        else:
            lines.append(f"  session {found.name}: `mlsandbox session end --session {found.name}`")
    return lines


def down(
    volumes: bool = typer.Option(
        False, "--volumes", help="Docker: delete the volumes too (model, data, Prometheus history)."
    ),
    keep_engine: bool = typer.Option(False, "--keep-engine", help="Docker: leave a private engine running."),
    run_dir: Optional[Path] = RunDir,
) -> None:
    """Stop every component (whole process groups, or the compose project) and free the ports. Sessions are
    ended (and archived) by `mlsandbox session end`, courses stopped by `mlsandbox course stop`: `down` names
    those still running."""
    sandbox = home_target(run_dir).sandbox(say)
    stopped = sandbox.down(volumes, keep_engine) if sandbox is not None else []
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running here")
    if sandbox is not None and sandbox.backend == "docker":
        typer.echo("volumes deleted" if volumes else "volumes kept (`--volumes` deletes them)")
    others = _still_running()
    if others:
        typer.echo("still running, with the machine's MLflow and console they use:\n" + "\n".join(others))


def status(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    run_dir: Optional[Path] = RunDir,
    session: Optional[str] = SessionOpt,
) -> None:
    """Each component: its state (healthy, unhealthy, stopped; Docker: starting, done, exited), URL and pid."""
    sandbox = resolve(run_dir, session).sandbox(say)
    rows = sandbox.status() if sandbox else []
    if as_json:
        fields = [
            {
                "name": r.name,
                "state": r.state,
                "healthy": r.state == "healthy",
                "url": r.url,
                "pid": r.pid,
                "log": r.log,
            }
            for r in rows
        ]
        typer.echo(json.dumps(fields, indent=2))
        return
    if not rows:
        typer.echo("the sandbox is not running (`mlsandbox up` starts it)")
        return
    for r in rows:
        pid = f"pid {r.pid:<7}" if r.pid else ""
        typer.echo(f"{r.name:<15} {pid:<12}{r.url or '':<24} {r.state}")


def reload(run_dir: Optional[Path] = RunDir, session: Optional[str] = SessionOpt) -> None:
    """Check the candidate's alert rules with promtool, load them into the running Prometheus, and name the rules
    that fail when Prometheus evaluates them."""
    sandbox = running_sandbox(run_dir, session)
    since = time.time()
    sandbox.reload_rules()
    typer.echo("rules checked and loaded; waiting for Prometheus to evaluate them ...")
    failing = evaluation_errors(sandbox.urls()["prometheus"], since)
    if failing:
        raise MlsandboxError(f"{len(failing)} rules fail at evaluation:\n" + "\n".join(f"  {line}" for line in failing))
    typer.echo("every rule evaluates")


def restart(
    component: str = typer.Argument(
        ..., help="model-server, prometheus, alertmanager, mlflow, alert-receiver or load."
    ),
    run_dir: Optional[Path] = RunDir,
    session: Optional[str] = SessionOpt,
) -> None:
    """Start one component again, on the same candidate folder and run directory (nothing of it is lost)."""
    running_sandbox(run_dir, session).restart(component)
    typer.echo(f"{component} restarted")


def register(app: typer.Typer) -> None:
    for command in (up, down, status, reload, restart):
        app.command()(command)
