"""Which incident an alert's firing is credited to: one that what the alert watches can see (an accuracy alert
catches concept drift even when it fires during the next phase), and the feature it names."""

from __future__ import annotations

from types import SimpleNamespace

from test_judge import T0, session

from grading.checks.alerting import (
    AlertRule,
    Firing,
    _saw_real_outage,
    _saw_real_slowness,
    detections,
)
from grading.roles import Role
from grading.rubric import load_rubric
from grading.signals import RuleInfo


def ctx():
    return SimpleNamespace(
        session=session(),
        tol=load_rubric().tolerances,
        signals=SimpleNamespace(features=["monthly_charges", "total_charges"]),
    )


def rule(name: str, roles: list[Role], how: str = "", reads: frozenset[str] = frozenset({"x"})) -> AlertRule:
    return AlertRule(
        RuleInfo("alerting", name, "x > 1", "a.yml", "g", "ok", "", {}, {}, 10.0), set(reads), set(), roles, how
    )


def caught(rules, firings) -> dict[str, str | None]:
    return {d.incident.kind: d.firing.alert if d.firing else None for d in detections(ctx(), rules, firings)}


def test_an_accuracy_alert_firing_during_the_latency_fault_is_credited_to_concept_drift():
    got = caught([rule("AccuracyLow", [Role.PERFORMANCE])], [Firing("AccuracyLow", (), T0 + 64, T0 + 80)])
    assert got["concept_drift"] == "AccuracyLow" and got["latency"] is None


def test_a_latency_alert_is_credited_to_the_latency_fault_not_to_the_drift_under_way():
    got = caught([rule("Slow", [Role.LATENCY])], [Firing("Slow", (), T0 + 64, T0 + 72)])
    assert got["latency"] == "Slow" and got["covariate_drift"] is None and got["concept_drift"] is None


def test_an_alert_whose_role_is_unknown_gets_the_latest_incident_under_way():
    got = caught([rule("Something", [])], [Firing("Something", (), T0 + 64, T0 + 72)])
    assert got["latency"] == "Something"


def test_an_alert_naming_a_feature_is_credited_only_to_an_incident_on_that_feature():
    firing = Firing("Drift", (("alertname", "Drift"), ("feature", "total_charges")), T0 + 30, T0 + 40)
    assert caught([rule("Drift", [Role.DRIFT])], [firing])["covariate_drift"] is None
    firing = Firing("Drift", (("alertname", "Drift"), ("feature", "monthly_charges")), T0 + 30, T0 + 40)
    assert caught([rule("Drift", [Role.DRIFT])], [firing])["covariate_drift"] == "Drift"


def test_a_down_alert_that_fired_because_the_server_was_down_is_no_false_alarm():
    down_alert = rule("ServerDown", [Role.AVAILABILITY])
    firing = Firing("ServerDown", (), T0 + 2, T0 + 4)
    assert _saw_real_outage(down_alert, firing, down=[T0 - 8, T0 - 7, T0 - 1])  # a slow start, then up
    assert not _saw_real_outage(down_alert, firing, down=[])  # up all along: a false alarm
    assert not _saw_real_outage(down_alert, firing, down=[T0 - 60])  # long before its `for`
    assert not _saw_real_outage(rule("Slow", [Role.LATENCY]), firing, down=[T0 - 1])  # only availability alerts


def _answers_with_latency(slow: dict[int, float]) -> SimpleNamespace:
    """The synthetic play, its clients answered in 5 ms a second but at the seconds in `slow` (from T0)."""
    from load.truth import LedgerRow

    play = session()
    for k in range(0, 120):
        latency = slow.get(k, 0.005)
        play.ledger.append(
            LedgerRow(
                second=int(T0) + k,
                phase="",
                requests=20,
                ok=20,
                client_errors=0,
                server_errors=0,
                failures=0,
                labels_posted=0,
                latency_mean_seconds=latency,
                latency_max_seconds=latency,
                means={},
            )
        )
    return SimpleNamespace(session=play, tol=load_rubric().tolerances)


def test_a_latency_alert_firing_while_the_clients_were_really_answered_slowly_is_right():
    slow_alert = rule("Slow", [Role.LATENCY], "its condition p95 follows latency")
    loaded = _answers_with_latency({k: 0.9 for k in range(100, 106)})  # a loaded machine, after the recovery
    assert _saw_real_slowness(loaded, slow_alert, T0 + 110)
    assert not _saw_real_slowness(loaded, rule("AccuracyLow", [Role.PERFORMANCE]), T0 + 110)  # latency alerts only
    # Judged as nothing, an alert on a timer's buckets watches latency; one on its count (a traffic drop) does not.
    on_buckets = rule("P95High", [Role.LATENCY, Role.TRAFFIC], "it reads latency, traffic metrics", {"t_bucket"})
    assert _saw_real_slowness(loaded, on_buckets, T0 + 110)
    on_count = rule("TrafficDrop", [Role.ERRORS, Role.LATENCY, Role.TRAFFIC], "it reads ...", {"t_count"})
    assert not _saw_real_slowness(loaded, on_count, T0 + 110)
    judged_traffic = rule("TrafficDrop", [Role.TRAFFIC, Role.LATENCY], "its condition rate follows traffic")
    assert not _saw_real_slowness(loaded, judged_traffic, T0 + 110)
    assert not _saw_real_slowness(_answers_with_latency({}), slow_alert, T0 + 110)  # fast answers: no excuse
    # The injected fault (T0+60..70) is the incident: its slow answers excuse nothing afterwards.
    assert not _saw_real_slowness(_answers_with_latency({k: 0.3 for k in range(60, 70)}), slow_alert, T0 + 100)
