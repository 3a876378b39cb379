"""How long steps report progress: a function taking one line (print, typer.echo, or one that says nothing)."""

from __future__ import annotations

from typing import Callable

Say = Callable[[str], None]


def silent(_: str) -> None:
    """Say nothing (a background grade, a room looked up by the console)."""
