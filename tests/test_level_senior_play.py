"""The senior level played: its compressed scenario (senior-smoke, as a surprise: labels 6 s late, a worse model
version promoted) once to the reference, the bare starter and the corpus's junior solution, each graded with the
senior level's rubric (tests/plays.py: level_play). The junior solution scores higher at the junior level than here,
as its band says (tests/test_levels.py)."""

from __future__ import annotations

import pytest
from level_checks import assert_level_grades
from plays import JUNIOR_SOLUTION, check, level_play

from mlsandbox.levels.level import load_level

pytestmark = pytest.mark.stack
PRACTICES = ("routed_by_severity", "performance_alerts_guarded", "per_feature_drift_alerts", "objective_alert")


@pytest.fixture(scope="module")
def senior_play(tmp_path_factory):
    return level_play(tmp_path_factory.mktemp("senior-play"), "senior")


def test_senior_level_reference_starter_and_junior_solution_score_as_expected(senior_play):
    assert_level_grades("senior", senior_play.reports, "starting-point")


def test_the_senior_play_was_a_surprise_with_a_worse_model_released(senior_play):
    session = senior_play.report("reference")["session"]
    kinds = {i["kind"] for i in session["incidents"]}
    assert session["scenario"] == "senior-smoke" and {"model_release", "concept_drift"} <= kinds, kinds


def test_the_reference_follows_every_production_practice_and_the_junior_solution_none(senior_play):
    ref, junior = senior_play.report("reference"), senior_play.report(JUNIOR_SOLUTION)
    for name in PRACTICES:
        assert check(ref, "alerting", name)["passed"], (name, check(ref, "alerting", name)["summary"])
        assert check(junior, "alerting", name)["points"] == 0, (name, check(junior, "alerting", name)["summary"])
    guarded = check(ref, "alerting", "performance_alerts_guarded")
    assert any("held it back until labels arrived" in e["note"] for e in guarded["evidence"]), guarded["evidence"]


def test_a_false_alarm_costs_more_at_the_senior_level(senior_play):
    false_alarm = check(senior_play.report(JUNIOR_SOLUTION), "alerting", "no_false_alarms")
    assert (
        false_alarm["points"] == 0
        and false_alarm["max_points"] > load_level("mid").rubric().items["alerting"].checks["no_false_alarms"].points
    )
