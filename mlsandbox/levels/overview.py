"""What a level gives and expects, for a person choosing one (`mlsandbox levels`, the console's room page): its
starting point, brief, scenario, time box, and its rubric as the grader will apply it (points per item, what is
a plus)."""

from __future__ import annotations

from pathlib import Path

from grading.rubric import Rubric
from mlsandbox.layout import REPO_ROOT

from .level import Level


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def starting_point(level: Level) -> str:
    overlays = level.overlays()
    if not overlays:
        return "the bare starter (starter_repo/)"
    laid = [f"{_shown(folder)}/" + (f" ({', '.join(only)})" if only else "") for folder, only in overlays]
    return "starter_repo/ with " + ", ".join(laid) + " laid over it"


def overview(level: Level, rubric: Rubric | None = None) -> dict:
    """The level in a few fields; `rubric`: the base it is laid over (default: grading/rubric.yaml)."""
    graded = level.rubric(rubric)
    chosen = level.spec.scenario
    return {
        "name": level.name,
        "title": level.title,
        "summary": level.spec.summary,
        "file": _shown(level.path),
        "starting_point": starting_point(level),
        "brief": _shown(level.brief) if level.brief else "the starter's CANDIDATE.md",
        "scenario": chosen.name + (" (surprise)" if chosen.surprise else ""),
        "compressed": chosen.compressed,
        "time_box": level.time_box,
        "round_minutes": level.spec.round_minutes,
        "gives": list(level.spec.gives),
        "expects": list(level.spec.expects),
        "points": {key: round(item.expected_points, 2) for key, item in graded.items.items()},
        "plus": [f"{key}.{name}" for key, item in graded.items.items() for name, c in item.checks.items() if c.plus],
    }


def as_text(levels: list[Level], rubric: Rubric | None = None) -> str:
    out = []
    for level in levels:
        o = overview(level, rubric)
        out += [f"{o['name']}: {o['title']}. {o['summary']}"]
        out += [
            f"  starting point: {o['starting_point']}",
            f"  brief:          {o['brief']}",
            f"  scenario:       {o['scenario']} (compressed for tests: {o['compressed']})",
            f"  time:           {o['time_box']}, then an improvement round of {o['round_minutes']:g} minutes",
            "  gives:",
            *(f"    - {g}" for g in o["gives"]),
            "  expects:",
            *(f"    - {e}" for e in o["expects"]),
            "  points:         " + ", ".join(f"{k} {v:g}" for k, v in o["points"].items()),
        ]
        if o["plus"]:
            out.append("  plus (reported beside the score, never counted in it): " + ", ".join(o["plus"]))
        out.append("")
    return "\n".join(out).rstrip() + "\n"
