"""What every command group shares: the options that name a sandbox, a session or a scenario, and how a command
talks (progress on stdout, or on stderr beside machine-readable output)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mlsandbox.errors import MlsandboxError
from mlsandbox.sessions.store import resolve
from mlsandbox.stack.sandbox import Sandbox

RunDir = typer.Option(None, "--run-dir", help="State, logs and data of this sandbox (default: run/ in the repo).")
SessionOpt = typer.Option(
    None,
    "--session",
    help="An interview session (default: the only one running, when no sandbox runs in the run directory).",
)
ScenarioOpt = typer.Option("interview", "--scenario", help="A shipped scenario (see `scenario list`) or a file.")
SeedOpt = typer.Option(None, "--seed", help="Seed of the traffic; default: the scenario's own.")
SpeedOpt = typer.Option(1.0, "--speed", min=0.001, help="Time compression: 10 plays ten minutes in one.")
SurpriseOpt = typer.Option(False, "--surprise", help="Draw hidden parameters from the seed; print none of them.")
LevelsDirOpt = typer.Option(
    None, "--levels-dir", help="A team's own folder of levels (*.yaml), looked in before the shipped levels/."
)


def say(line: str) -> None:
    typer.echo(line)


def say_aside(line: str) -> None:
    """Progress that must not mix with machine-readable output on stdout."""
    typer.echo(line, err=True)


def running_sandbox(run_dir: Optional[Path], session: Optional[str] = None) -> Sandbox:
    """The sandbox a command means (sessions/store.py's `resolve`), which must be running."""
    sandbox = resolve(run_dir, session).sandbox(say)
    if sandbox is None:
        raise MlsandboxError("no sandbox runs in this run directory (`mlsandbox up` starts one)")
    return sandbox
