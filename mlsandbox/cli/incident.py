"""`mlsandbox incident ...`: packs for the root-cause exercise (incident_causes.py, incident_pack.py)."""

from __future__ import annotations

import random
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from mlsandbox.errors import InvalidInput
from mlsandbox.incidents.causes import CAUSES_FILE, load_causes, plan
from mlsandbox.incidents.pack import make

incident_app = typer.Typer(
    no_args_is_help=True,
    help="The root-cause exercise: a degraded model's data for the candidate, the answer key for the interviewer.",
)
DEFAULT_START = "2025-03-03 08:00"
DEFAULT_BASE_PORT = 34000


@incident_app.command("list")
def incident_list(causes_file: Path = typer.Option(CAUSES_FILE, "--causes", hidden=True)) -> None:
    """The causes a pack can hide (for the interviewer's eyes)."""
    catalogue = load_causes(causes_file)
    width = max(len(k) for k in catalogue.causes)
    for kind, cause in catalogue.causes.items():
        typer.echo(f"  {kind:<{width}}  {cause.title}")


@incident_app.command("make")
def incident_make(
    cause: Optional[str] = typer.Option(None, "--cause", help="A cause from `incident list` (default: from the seed)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Default: a random one (written to the answer key)."),
    out: Path = typer.Option(Path("incident-pack"), "--out", help="The pack's folder (replaced if it exists)."),
    minutes: float = typer.Option(60.0, "--minutes", help="Pack time covered (played compressed into about a minute)."),
    start: str = typer.Option(
        DEFAULT_START, "--start", help="The fictional calendar's first minute (YYYY-MM-DD HH:MM)."
    ),
    ports: int = typer.Option(DEFAULT_BASE_PORT, "--ports", help="First port of the throwaway stack's block."),
    causes_file: Path = typer.Option(CAUSES_FILE, "--causes", hidden=True),
) -> None:
    """Play the cause on a throwaway stack (never a running interview's) serving the reference solution, and write
    the pack: OUT/candidate/ to hand over, OUT/interviewer/ to keep."""
    try:
        started = datetime.strptime(start, "%Y-%m-%d %H:%M")
    except ValueError:
        raise InvalidInput(f"--start {start!r}: give YYYY-MM-DD HH:MM") from None
    seed = seed if seed is not None else random.SystemRandom().randrange(1, 10**6)
    catalogue = load_causes(causes_file)
    plan(catalogue, cause, seed, minutes, started)  # refuses a bad request before anything starts
    with tempfile.TemporaryDirectory(prefix="incident-") as work:
        [made] = make([(cause, seed)], [out.resolve()], minutes, started, ports, Path(work), typer.echo, catalogue)
    typer.echo(f"\npack written to {made}:")
    typer.echo(f"  {made / 'candidate'}    hand this folder to the candidate")
    typer.echo(f"  {made / 'interviewer'}  the answer key (answer_key.md): keep it")
