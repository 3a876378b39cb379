"""What every level's play must show (tests/test_level_*_play.py and test_levels_main_play.py share it): the
reference solution at 95% or more, the untouched starting point at 10% or less (20% for the junior scaffold),
and the corpus's junior solution within its band at that level."""

from __future__ import annotations

import json

import yaml
from plays import CORPUS, JUNIOR_SOLUTION, points

from mlsandbox.levels.level import load_level

TOLERANCE = 0.05  # points are rounded to hundredths
# The most an untouched starting point may score: a scaffold that already serves /metrics earns its hygiene.
STARTING_POINT_CEILING = {"junior": 20.0}


def junior_band(level: str) -> dict[str, tuple[float, float]]:
    """The junior solution's band at a level (BAND.yaml, written before its first grade; `items` is the mid level's)."""
    band = yaml.safe_load((CORPUS / JUNIOR_SOLUTION / "BAND.yaml").read_text())
    return {k: tuple(v) for k, v in (band["items"] if level == "mid" else band["levels"][level]).items()}


def outside_band(report: dict, level: str) -> list[str]:
    got = points(report)
    return [
        f"{JUNIOR_SOLUTION} at {level}: {item} {got.get(item)} not in [{low}, {high}]"
        for item, (low, high) in junior_band(level).items()
        if got.get(item) is None or not low - TOLERANCE <= got[item] <= high + TOLERANCE
    ]


def assert_level_grades(level: str, reports: dict[str, dict], starting_point: str) -> None:
    """The reference, the untouched starting point and the junior solution, each graded at `level`."""
    ref, start, junior = reports["reference"], reports[starting_point], reports[JUNIOR_SOLUTION]
    for report in (ref, start, junior):
        assert report["level"] == level, report["level"]
        assert set(points(report)) == set(load_level(level).rubric().items), "graded with the level's items"
    assert ref["score"] >= 95, f"reference at {level}: {ref['score']}%\n" + json.dumps(points(ref))
    ceiling = STARTING_POINT_CEILING.get(level, 10.0)
    assert start["score"] <= ceiling, f"starting point at {level}: {start['score']}%\n" + json.dumps(points(start))
    problems = outside_band(junior, level)
    assert not problems, "\n".join(problems) + f"\n(score {junior['score']}%)"
