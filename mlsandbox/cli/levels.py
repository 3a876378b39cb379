"""`mlsandbox levels`: what each level (levels/*.yaml, and a team's own) gives the candidate and expects of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from grading.rubric import rubric_or_fail
from mlsandbox.levels.level import all_levels
from mlsandbox.levels.overview import as_text, overview

from .common import LevelsDirOpt


def levels(
    levels_dir: Optional[Path] = LevelsDirOpt,
    rubric: Optional[Path] = typer.Option(
        None, "--rubric", help="The rubric the levels are laid over (default: the shipped one)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every level: its starting point, brief, scenario, time box, what it gives and expects, and its points per
    rubric item (a bad level file is one line naming the file, the line and the field; exit 2)."""
    found = all_levels(levels_dir)
    base = rubric_or_fail(rubric)
    if as_json:
        typer.echo(json.dumps([overview(level, base) for level in found], indent=2))
    else:
        typer.echo(as_text(found, base), nl=False)


def register(app: typer.Typer) -> None:
    app.command("levels")(levels)
