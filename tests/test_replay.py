"""Alert rules replayed over a recorded play (grading/replay.py): Prometheus's alert state machine (`for:`,
`keep_firing_for:`), recording rules inlined through the PromQL tree, and what compression a round allows."""

from __future__ import annotations

import math

import pytest

from grading import promql
from grading.replay import (
    Alert,
    Recording,
    RuleSet,
    alert_intervals,
    compression,
    inline,
    longest_window,
    read_rule_files,
    replay,
    rule_set,
    seconds,
)

TIMES = [float(t) for t in range(12)]


def test_an_alert_fires_once_its_condition_held_for_its_for_and_stops_with_it():
    held = {2.0, 3.0, 4.0, 5.0, 7.0, 8.0}
    assert alert_intervals(TIMES, held, for_seconds=2, keep_firing_for=0) == [(4.0, 5.0)]  # 7-8: pending only
    assert alert_intervals(TIMES, held, for_seconds=0, keep_firing_for=0) == [(2.0, 5.0), (7.0, 8.0)]
    assert alert_intervals(TIMES, held, for_seconds=1, keep_firing_for=0) == [(3.0, 5.0), (8.0, 8.0)]


def test_keep_firing_for_holds_a_firing_alert_over_a_gap_and_after_its_condition():
    held = {2.0, 3.0, 4.0, 5.0, 7.0, 8.0}
    # Gone at 6 (kept), back at 7, gone from 9: kept firing at 9, 10 and 11, resolved at 12 (3 s after it went).
    longer = [float(t) for t in range(15)]
    assert alert_intervals(longer, held, for_seconds=2, keep_firing_for=3) == [(4.0, 11.0)]
    # A pending alert is not kept: it never fired.
    assert alert_intervals(TIMES, {2.0, 3.0}, for_seconds=5, keep_firing_for=3) == []


RECORDS = {
    "job:accuracy:ratio": Recording("sum(rate(correct_total[1m])) / sum(rate(labels_total[1m]))"),
    "feature:drift": Recording("max by (feature) (drift_score)", {"team": "ml"}),
    "job:accuracy:smoothed": Recording("avg_over_time(job:accuracy:ratio[5m])"),
}


def test_a_recording_rule_is_replaced_by_its_expression_so_that_a_new_rule_reads_old_data():
    out = inline("job:accuracy:ratio < 0.7 and on() labels_window >= 50", RECORDS, 5)
    assert promql.selected(out) == {"correct_total", "labels_total", "labels_window"}
    assert str(promql.parse(out)).startswith("(sum(rate(correct_total")


def test_a_range_over_a_recorded_series_becomes_a_subquery_at_the_evaluation_step_and_rules_nest():
    out = inline("job:accuracy:smoothed < 0.7", RECORDS, 5)
    assert promql.selected(out) == {"correct_total", "labels_total"}
    assert "[5m:5s]" in out
    assert longest_window(out) == 300


def test_a_selectors_matchers_and_the_rules_labels_still_apply():
    out = inline('feature:drift{feature="monthly_charges"} > 1', RECORDS, 1)
    assert 'label_replace(vector(1), "feature", "monthly_charges", "", "")' in out
    assert '"team", "ml"' in out
    regex = inline('feature:drift{feature=~"m.*"} > 1', RECORDS, 1)
    assert "mlsandbox_keep" in regex and promql.selected(regex) == {"drift_score"}


def test_what_reads_no_recording_rule_or_is_not_promql_comes_back_as_it_was():
    assert inline("up == 0", RECORDS, 1) == "up == 0"
    assert inline("this is not ( promql", RECORDS, 1) == "this is not ( promql"


def test_rule_files_and_prometheus_answers_give_the_same_rules():
    files = read_rule_files(
        [
            """
groups:
  - name: g
    rules:
      - record: job:accuracy:ratio
        expr: sum(rate(correct_total[1m])) / sum(rate(labels_total[1m]))
      - alert: AccuracyLow
        expr: job:accuracy:ratio < 0.7
        for: 10m
        keep_firing_for: 1m30s
        labels: {severity: critical}
""",
            "not: [valid",
        ]
    )
    assert list(files.records) == ["job:accuracy:ratio"]
    [alert] = files.alerts
    assert (alert.name, alert.for_seconds, alert.keep_firing_for, alert.labels) == (
        "AccuracyLow",
        600,
        90,
        {"severity": "critical"},
    )
    assert seconds("500ms") == 0.5 and seconds(None) == 0.0
    with pytest.raises(ValueError):
        seconds("ten minutes")


def test_the_compression_a_round_allows_follows_the_quickest_alerts_window_and_for():
    rules = RuleSet(
        RECORDS,
        [
            Alert("AccuracyLow", "avg_over_time(accuracy_recent[10m]) < 0.7", for_seconds=300),
            Alert("DriftHigh", "max_over_time(drift_score[20m]) > 1", for_seconds=600),
        ],
    )
    # The interview: its shortest incident phase lasts 480 s; a round of 15 minutes plays it 4x faster.
    fit = compression(rules, ["AccuracyLow", "DriftHigh"], 5, round_speed=4, shortest_phase=480, grace=20)
    assert fit.quickest == "AccuracyLow" and fit.reaction == 300 + 300
    assert not fit.fits  # 120 s of phase and 20 s of grace cannot hold a 10-minute reaction
    assert math.isclose(fit.allowed_speed, 480 / 580)
    assert "too fast" in fit.describe(3600) and "73 minutes" in fit.describe(3600)
    quick = compression(rules, [], 5, round_speed=4, shortest_phase=480, grace=20)
    assert quick.quickest is None and quick.fits


def test_an_alert_is_evaluated_at_its_groups_interval_from_a_file_or_from_prometheus():
    text = """
groups:
  - name: slow
    interval: 15s
    rules:
      - alert: DriftHigh
        expr: drift_score > 1
"""
    [from_file] = read_rule_files([text]).alerts
    [from_api] = rule_set(
        [
            {
                "name": "slow",
                "interval": 15,
                "rules": [{"type": "alerting", "name": "DriftHigh", "query": "drift_score > 1"}],
            }
        ]
    ).alerts
    assert from_file.interval == from_api.interval == 15

    class Held:
        """A Prometheus whose condition holds from t=4 on, at whatever step it is asked."""

        def query_range(self, expr, start, end, step):
            times = [start + k * step for k in range(int((end - start) / step) + 1)]
            return [{"metric": {}, "values": [[t, "2"] for t in times if t >= 4]}]

    [every_second] = replay(Held(), RuleSet({}, [Alert("DriftHigh", "drift_score > 1")]), 0, 40, 1)
    [every_15s] = replay(Held(), RuleSet({}, [from_file]), 0, 40, 1)
    assert (every_second.start, every_15s.start) == (4, 15)
    # At the phase Prometheus evaluated the group at (its last evaluation, a quarter past a second).
    group = {"name": "g", "interval": 1, "lastEvaluation": "2026-12-07T15:05:21.250000123Z", "rules": []}
    group["rules"] = [{"type": "alerting", "name": "DriftHigh", "query": "drift_score > 1"}]
    [phased] = rule_set([group]).alerts
    [firing] = replay(Held(), RuleSet({}, [phased]), 0, 40, 1)
    assert abs(phased.phase - 0.25) < 1e-3 and abs(firing.start - 4.25) < 1e-3

    class TwoFeatures:
        """One feature's condition holds from t=4, another's from t=10: each label set on the group's phase."""

        def query_range(self, expr, start, end, step):
            times = [start + k * step for k in range(int((end - start) / step) + 1)]
            return [
                {"metric": {"feature": name}, "values": [[t, "2"] for t in times if t >= since]}
                for name, since in (("a", 4), ("b", 10))
            ]

    fired = {f.key: round(f.start, 3) for f in replay(TwoFeatures(), RuleSet({}, [phased]), 0, 40, 1)}
    assert fired == {"DriftHigh/a": 4.25, "DriftHigh/b": 10.25}


def test_recording_rules_unchanged_since_the_play_are_read_as_recorded_and_new_or_changed_ones_inlined():
    then = RuleSet({"job:accuracy:ratio": RECORDS["job:accuracy:ratio"], "feature:drift": Recording("x")}, [])
    now = RuleSet(RECORDS, [Alert("AccuracyLow", "job:accuracy:smoothed < 0.7 and feature:drift > 1")])
    replayed = now.reading_recorded(then)
    # job:accuracy:ratio was recorded as it is: read as recorded, inside the new smoothed rule too.
    assert set(replayed.records) == {"feature:drift", "job:accuracy:smoothed"}
    out = replayed.inlined(now.alerts[0].expr, 5)
    assert promql.selected(out) == {"job:accuracy:ratio", "drift_score"}
    assert now.reading_recorded(None) is now  # the play's rules unknown: everything inlined
