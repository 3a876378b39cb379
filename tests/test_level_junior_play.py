"""The junior level played: its compressed scenario (junior-smoke: incidents one at a time, each followed by a
recovery) once to the reference, the junior scaffold as shipped and the corpus's junior solution, each graded with
the junior level's rubric (tests/plays.py: level_play)."""

from __future__ import annotations

import pytest
from level_checks import assert_level_grades
from plays import JUNIOR_SOLUTION, check, level_play

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def junior_play(tmp_path_factory):
    return level_play(tmp_path_factory.mktemp("junior-play"), "junior")


def test_junior_level_reference_scaffold_and_junior_solution_score_as_expected(junior_play):
    assert_level_grades("junior", junior_play.reports, "starting-point")


def test_the_junior_scaffold_as_shipped_earns_only_its_hygiene(junior_play):
    scaffold = {i["key"]: i["points"] for i in junior_play.report("starting-point")["items"]}
    assert {k: v for k, v in scaffold.items() if v} == {"hygiene": 5.0}, scaffold


def test_a_plus_is_reported_beside_the_junior_score_and_never_counted(junior_play):
    junior = junior_play.report(JUNIOR_SOLUTION)
    plus = {(c["item"], c["name"]): c for c in junior["plus"]["checks"]}
    assert set(plus) == {
        ("drift", "right_feature"),
        ("alerting", "incidents_detected"),
        ("alerting", "resolved_after_recovery"),
    }
    counted = sum(c["points"] for i in junior["items"] for c in i["checks"] if c["applicable"] and not c["plus"])
    assert junior["points"] == pytest.approx(counted, abs=0.02), "a plus adds nothing to the points"
    assert check(junior, "alerting", "an_incident_caught")["passed"], "its accuracy alert caught the concept drift"
    assert "Plus, beside the score" in (junior["_out"] / "report.md").read_text()
    assert (junior["_out"] / "report.md").read_text().startswith(f"# Grade: {junior['score']}%")
    assert "at the junior level" in (junior["_out"] / "report.md").read_text().splitlines()[0]
