"""mlsandbox: run the ML monitoring sandbox natively (no Docker)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .config import REPO_ROOT, StackConfig
from .stack import Stack, StackError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

RunDir = typer.Option(None, "--run-dir", help="State, logs and data of this sandbox (default: run/ in the repo).")


def _config(run_dir: Optional[Path]) -> StackConfig:
    return StackConfig(run_dir=run_dir) if run_dir else StackConfig()


def _fail(message: str) -> None:
    typer.echo(f"mlsandbox: {message}", err=True)
    raise typer.Exit(1)


def _say(line: str) -> None:
    typer.echo(line)


@app.command()
def up(
    candidate: Path = typer.Option(REPO_ROOT / "starter_repo", "--candidate",
                                   help="The candidate's folder (app/, alerts/, dashboards/)."),
    run_dir: Optional[Path] = RunDir,
) -> None:
    """Start MLflow, the model server on the candidate's code, Prometheus and Alertmanager."""
    cfg = _config(run_dir)
    try:
        comps = Stack(cfg, _say).up(candidate)
    except StackError as exc:
        _fail(str(exc))
    typer.echo("\nThe sandbox is up:")
    for comp in comps:
        typer.echo(f"  {comp.name:<13} {comp.url}")
    typer.echo(f"\nCandidate folder: {candidate.resolve()}   Run directory: {cfg.run_dir.resolve()}")
    typer.echo("Stop everything with `mlsandbox down` (or `make down`).")


@app.command()
def down(run_dir: Optional[Path] = RunDir) -> None:
    """Stop every component (whole process groups) and free the ports."""
    stopped = Stack(_config(run_dir), _say).down()
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
           run_dir: Optional[Path] = RunDir) -> None:
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
        typer.echo(f"{r['name']:<13} pid {r['pid']:<7} {r['url']:<24} {state}")


@app.command()
def reload(run_dir: Optional[Path] = RunDir) -> None:
    """Check the candidate's alert rules and load them into the running Prometheus."""
    try:
        Stack(_config(run_dir), _say).reload_rules()
    except StackError as exc:
        _fail(str(exc))
    typer.echo("rules checked and loaded")


if __name__ == "__main__":
    app()
