"""A level (levels/*.yaml): the same exercise pitched at a junior, a mid-level or a senior candidate, or varied
(the dashboard-design exercise). Read and validated here, and only here: a bad level file is one line naming the
file, the line and the field, exit 2.

A level names the workspace's starting point (the bare starter, or the starter with folders laid over it), the
brief's variant, the scenario played by default and whether it is a surprise, the time box and the improvement
round's length, and a rubric overlay (grading/rubric.py: points per item and per check, extra checks, items left
out, what is a plus). The level's name is its file's name. A team adds its own beside the shipped ones, or in a
folder of its own (`--levels-dir`), looked in first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from grading.rubric import DEFAULT_RUBRIC, OverlayError, Rubric, RubricOverlay, load_rubric, overlaid
from load.scenario import ScenarioError, load_scenario
from mlsandbox.data_files import located, read_yaml_model
from mlsandbox.errors import InvalidInput
from mlsandbox.layout import REPO_ROOT

LEVELS_DIR = REPO_ROOT / "levels"
DEFAULT_LEVEL = "mid"


class LevelError(InvalidInput):
    """A level that cannot be used (unknown, or a file that does not validate): one line, exit 2."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Overlay(_Strict):
    """A folder laid over the starter: its files replace the starter's at the same paths (new ones are added)."""

    path: str = Field(min_length=1, description="Relative to the level file's folder.")
    only: list[str] = Field([], description="The folder's top-level entries to take (default: all of them).")


class StartingPoint(_Strict):
    """The candidate's workspace at the start: starter_repo/, with these folders laid over it in order."""

    overlays: list[Overlay] = []


class LevelScenario(_Strict):
    name: str = Field(description="A shipped scenario or a scenario file, played unless `--scenario` says otherwise.")
    surprise: bool = False
    compressed: str = Field(description="The same incidents played in a minute or two: for tests and a quick try.")


class LevelFile(_Strict):
    order: int = Field(100, description="Where `mlsandbox levels` lists it, lowest first.")
    title: str
    summary: str
    starting_point: StartingPoint = StartingPoint()
    brief: str | None = Field(None, description="The brief's variant (Markdown), relative to the level file's folder.")
    scenario: LevelScenario
    minutes: tuple[int, int] = Field(description="The time box: [shortest, longest] minutes (equal for one length).")
    round_minutes: float = Field(gt=0)
    gives: list[str] = Field(min_length=1)
    expects: list[str] = Field(min_length=1)
    rubric: RubricOverlay = RubricOverlay()

    @field_validator("minutes")
    @classmethod
    def _time_box(cls, minutes: tuple[int, int]) -> tuple[int, int]:
        low, high = minutes
        if not 0 < low <= high:
            raise ValueError(f"[{low}, {high}] is not [shortest, longest] with 0 < shortest <= longest")
        return minutes


@dataclass(frozen=True)
class Level:
    """A level file, validated, with where its paths lead."""

    name: str
    path: Path
    spec: LevelFile

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def title(self) -> str:
        return self.spec.title

    def overlays(self) -> list[tuple[Path, list[str]]]:
        """Each folder laid over the starter, resolved, and the entries taken from it ([]: all)."""
        return [((self.folder / o.path).resolve(), list(o.only)) for o in self.spec.starting_point.overlays]

    @property
    def brief(self) -> Path | None:
        return (self.folder / self.spec.brief).resolve() if self.spec.brief else None

    def rubric(self, base: Rubric | None = None) -> Rubric:
        """The rubric of this level: `base` (default: grading/rubric.yaml) with the level's overlay laid over it;
        LevelError names the overlay's line and field when the two do not fit."""
        try:
            return overlaid(base or load_rubric(DEFAULT_RUBRIC), self.spec.rubric, level=self.name)
        except OverlayError as exc:
            text = self.path.read_text() if self.path.is_file() else ""
            raise LevelError(located(self.path, text, ("rubric", *exc.loc), exc.msg)) from None

    @property
    def time_box(self) -> str:
        """ "60–90 minutes", or "45 minutes"."""
        low, high = self.spec.minutes
        return f"{low}–{high} minutes" if low != high else f"{low} minutes"


def _file(name_or_path: str | Path, levels_dir: Path | None) -> Path:
    """A level's file: a path to a .yaml file, or a name looked up in `levels_dir` first, then in levels/."""
    given = Path(name_or_path)
    if given.suffix in (".yaml", ".yml"):
        return given
    for folder in [d for d in (levels_dir, LEVELS_DIR) if d is not None]:
        candidate = folder / f"{name_or_path}.yaml"
        if candidate.is_file():
            return candidate
    known = ", ".join(level_names(levels_dir)) or "none"
    raise LevelError(f"no level {str(name_or_path)!r} (levels: {known})")


def level_names(levels_dir: Path | None = None) -> list[str]:
    """Every level's name: the shipped ones and a team's (`levels_dir`), a team's own first."""
    names: list[str] = []
    for folder in [d for d in (levels_dir, LEVELS_DIR) if d is not None and d.is_dir()]:
        names += [p.stem for p in sorted(folder.glob("*.yaml")) if p.stem not in names]
    return names


def load_level(name_or_path: str | Path, levels_dir: Path | None = None) -> Level:
    """A level by name (`junior`) or file; LevelError, one line with the file, line and field at fault."""
    path = _file(name_or_path, levels_dir)
    spec = read_yaml_model(path, LevelFile, LevelError, "level", lines=True)
    level = Level(path.stem, path, spec)
    _check_references(level, path.read_text())
    level.rubric()  # the overlay fits the shipped rubric (a team's --rubric is checked when it is graded with)
    return level


def _check_references(level: Level, text: str) -> None:
    """What the file names exists: the overlay folders and their entries, the brief, the scenarios."""

    def fail(loc: tuple, msg: str) -> None:
        raise LevelError(located(level.path, text, loc, msg))

    for k, (folder, only) in enumerate(level.overlays()):
        if not folder.is_dir():
            fail(("starting_point", "overlays", k, "path"), f"no folder {folder}")
        for j, entry in enumerate(only):
            if not (folder / entry).exists():
                fail(("starting_point", "overlays", k, "only", j), f"no {entry!r} in {folder}")
    if level.brief is not None and not level.brief.is_file():
        fail(("brief",), f"no file {level.brief}")
    for key in ("name", "compressed"):
        try:
            load_scenario(getattr(level.spec.scenario, key))
        except ScenarioError as exc:
            fail(("scenario", key), str(exc))


def kept_level(path: Path, name: str) -> Level:
    """A session's copy of the level it started at: the file validated, its references not (they were when the
    session started; only its rubric overlay is used now)."""
    return Level(name, path, read_yaml_model(path, LevelFile, LevelError, "level", lines=True))


def all_levels(levels_dir: Path | None = None) -> list[Level]:
    """Every level, validated, in their `order`."""
    return sorted((load_level(name, levels_dir) for name in level_names(levels_dir)), key=lambda lv: lv.spec.order)
