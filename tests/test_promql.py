"""What the grader reads from PromQL: from the syntax tree, not from regular expressions."""

from __future__ import annotations

import pytest

from grading import promql


@pytest.mark.parametrize(
    "expr, sides",
    [
        ("churn_model_accuracy < 0.7 and churn_window_labels >= 50", ["churn_model_accuracy{}"]),
        ("0.7 > acc", ["acc{}"]),
        ('up{job="model-server"} == 0', ['up{job="model-server"}']),
        ("count(x > 0.3) >= 2", ["count(x{} > 0.3)"]),
        ("(a / b) > 0.05 unless c", ["a{} / b{}"]),
        ("x > 1 or y < 2", ["x{}", "y{}"]),
        ("vector(1)", ["vector(1)"]),
    ],
)
def test_the_value_side_is_what_an_alert_holds_against_its_threshold(expr, sides):
    assert promql.value_sides(expr) == sides


def test_selected_names_and_their_resolution_through_recording_rules():
    records = {
        "job:accuracy:ratio": "sum(rate(correct_total[30s])) / sum(rate(labels_total[30s]))",
        "job:accuracy:low": "job:accuracy:ratio < bool 0.7",
    }
    assert promql.selected("job:accuracy:low > 0") == {"job:accuracy:low"}
    assert promql.resolve({"job:accuracy:low"}, records) == {"correct_total", "labels_total"}
    assert promql.selected('{__name__="foo", a="b"}') == {"foo"}
    assert promql.selected("not promql (") == set()


def test_a_recording_rule_that_reads_itself_does_not_loop():
    assert promql.resolve({"a"}, {"a": "a + b"}) == {"a", "b"}
