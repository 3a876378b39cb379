"""A level's starting point: the workspace a candidate at that level begins with, built in a fresh folder:
starter_repo/ copied, the level's folders laid over it in order (a scaffold, or the reference solution's app/),
and its brief as CANDIDATE.md. The shipped folders are never edited."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import STARTER

from .brief import BRIEF, level_brief
from .level import Level

# Never copied into a workspace: caches and version control of wherever a folder comes from.
COPY_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".pytest_cache", ".ipynb_checkpoints")


def build(level: Level, dest: Path) -> Path:
    """The level's starting point in `dest` (which must not exist yet); `dest`."""
    if dest.exists():
        raise MlsandboxError(f"{dest} already exists: a starting point is built in a fresh folder")
    shutil.copytree(STARTER, dest, ignore=COPY_IGNORED)
    for folder, only in level.overlays():
        for entry in only or sorted(p.name for p in folder.iterdir()):
            source = folder / entry
            if source.is_dir():
                shutil.copytree(source, dest / entry, ignore=COPY_IGNORED, dirs_exist_ok=True)
            elif not COPY_IGNORED(str(folder), [entry]):
                shutil.copy2(source, dest / entry)
    (dest / BRIEF).write_text(level_brief(level))
    return dest
