"""`mlsandbox dashboards preview`: the candidate's dashboards drawn without Grafana."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mlsandbox.console.rooms import Room
from mlsandbox.console.views import dashboards
from mlsandbox.errors import MlsandboxError
from mlsandbox.services.dashboards.preview import write

from .common import RunDir, SessionOpt, running_sandbox

dashboards_app = typer.Typer(no_args_is_help=True, help="The candidate's dashboards, without Grafana.")


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
    sandbox = running_sandbox(run_dir, session)
    folder = (candidate or sandbox.candidate_dir() or Path("starter_repo")).resolve()
    if not (folder / "dashboards").is_dir():
        raise MlsandboxError(f"{folder} has no dashboards/ folder")
    run = sandbox.cfg.run_dir
    room = Room("preview", "sandbox", "running", run, sandbox, folder, None)
    page = write(
        dashboards(room), f"Dashboards of {folder}", out or sandbox.cfg.layout.root / "preview" / "dashboards.html"
    )
    typer.echo(str(page.resolve()))
