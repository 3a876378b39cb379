"""The mid and dashboard-design levels on the main play (smoke, seed 7; tests/plays.py): the mid level is the
shipped rubric unchanged, so the main play's grades are its grades; the dashboard-design level grades the
reference, its own untouched starting point (the reference's metrics, no rule, no dashboard), the bare starter and
the corpus's junior solution again with its rubric."""

from __future__ import annotations

import pytest
from level_checks import assert_level_grades
from plays import JUNIOR_SOLUTION, check

from grading.rubric import load_rubric
from mlsandbox.levels.level import load_level

pytestmark = pytest.mark.stack


def test_mid_level_reference_starter_and_junior_solution_score_as_expected(main_play):
    assert load_level("mid").rubric().model_copy(update={"level": None}) == load_rubric()
    reports = {name: {**main_play.report(name), "level": "mid"} for name in ("reference", "starter", JUNIOR_SOLUTION)}
    assert_level_grades("mid", reports, "starter")


def test_dashboard_design_level_reference_starting_point_and_junior_solution_score_as_expected(main_play):
    assert_level_grades("dashboard-design", main_play.extra["level:dashboard-design"], "dashboard-design-start")


def test_at_the_dashboard_design_level_the_given_metrics_earn_nothing_and_the_design_everything(main_play):
    graded = main_play.extra["level:dashboard-design"]
    assert graded["starter"]["score"] == 0
    ref = graded["reference"]
    assert [i["key"] for i in ref["items"]] == ["alerting", "visualization"]
    stakeholders = check(ref, "visualization", "answers_stakeholders")
    assert stakeholders["passed"], stakeholders["summary"]
    assert check(ref, "alerting", "thresholds_argued")["passed"], check(ref, "alerting", "thresholds_argued")
    # The starting point exposes every metric the reference does: the grader finds the same roles in its series.
    # What a counter or a histogram amounts to (traffic, errors, latency, outputs) is read from the panels and
    # alerts that query it, and the starting point has none yet.
    from grading.roles import COUNTING_AS_SHAPE

    start, read_by_queries = (
        set(graded["dashboard-design-start"]["roles"]),
        {r.value for r in COUNTING_AS_SHAPE.values()},
    )
    assert start <= set(ref["roles"]) and set(ref["roles"]) - start <= read_by_queries, (start, ref["roles"])
