"""The reference solution on the real stack, playing `smoke`: each metric moves as the scenario says, the
alerts fire when they should and not before, Alertmanager's receiver records them, every dashboard panel
returns data, and the drift report reaches MLflow.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest
from stack_helpers import REPO, SandboxUnderTest, copy_candidate
from test_reference_solution import dashboard_files, panels

from load.truth import read_timeline
from mlsandbox.alert_receiver import read_notifications

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    base = tmp_path_factory.mktemp("reference")
    s = SandboxUnderTest(
        run_dir=base / "run",
        candidate=copy_candidate(REPO / "reference_solution", base / "candidate"),
        extra_env={"CHURN_MONITORING_REPORT_INTERVAL_SECONDS": "15"},
    )
    s.up("--no-load")
    try:
        s.cli("scenario", "play", "smoke", "--seed", "7")
        s.timeline = read_timeline(s.run_dir)
        s.phase = {p.name: (p.start, p.end) for p in s.timeline.phases}
        s.start, s.end = s.timeline.phases[0].start, s.timeline.phases[-1].end
        yield s
    finally:
        s.cli("down", check=False)


def values(session, expr, start, end):
    """Every (time, value) of every series of `expr` between start and end, NaN left out."""
    out = []
    for series in session.prom_range(expr, start, end):
        out += [(float(t), float(v)) for t, v in series["values"] if not math.isnan(float(v))]
    return out


def by_label(session, expr, label, start, end):
    result = {}
    for series in session.prom_range(expr, start, end):
        result[series["metric"].get(label)] = [float(v) for _, v in series["values"] if not math.isnan(float(v))]
    return result


def firing(session, alertname, **labels):
    """(first, last) time the alert was firing, or None."""
    selector = ",".join([f'alertname="{alertname}"', 'alertstate="firing"', *[f'{k}="{v}"' for k, v in labels.items()]])
    times = [t for t, _ in values(session, f"ALERTS{{{selector}}}", session.start - 30, session.end + 30)]
    return (min(times), max(times)) if times else None


def test_drift_score_rises_for_the_drifted_feature_only(session):
    start, end = session.phase["concept-drift"]
    # From a pass (5s) after the phase starts: by then the drift has been held at full for a whole window.
    scores = by_label(session, "churn_feature_drift_score", "feature", start + 6, end)
    assert min(scores["monthly_charges"]) > 0.5
    for feature, vals in scores.items():
        if feature not in ("monthly_charges", "total_charges"):  # total_charges: the upstream bug's unit change
            assert max(vals) < 0.2, feature
    quiet = by_label(session, "churn_feature_drift_score", "feature", *session.phase["baseline"])
    assert all(max(v) < 0.2 for v in quiet.values() if v)


def test_unit_bug_shows_as_total_charges_out_of_range(session):
    start, end = session.phase["upstream-bug"]
    share = values(
        session,
        'sum(rate(churn_feature_out_of_range_total{feature="total_charges"}[5s]))'
        " / sum(rate(churn_feature_rows_checked_total[5s]))",
        start + 3,
        end,
    )
    assert max(v for _, v in share) > 0.5


def test_accuracy_falls_during_concept_drift(session):
    before = [v for _, v in values(session, "churn_model_accuracy", *session.phase["upstream-bug"])]
    start, end = session.phase["concept-drift"]
    during = [v for _, v in values(session, "churn_model_accuracy", end - 5, session.phase["latency-fault"][1])]
    assert min(before) > 0.7 and min(during) < 0.6


def test_latency_rises_during_the_latency_fault(session):
    p95 = 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{endpoint="/predict"}[5s])))'
    start, end = session.phase["latency-fault"]
    assert min(v for _, v in values(session, p95, start + 5, end)) > 0.25
    assert max(v for _, v in values(session, p95, *session.phase["baseline"])) < 0.15


def test_drift_alert_fires_after_onset_and_not_during_baseline(session):
    fired = firing(session, "FeatureDrift", feature="monthly_charges")
    assert fired and fired[0] > session.phase["feature-drift"][0]
    assert fired[0] - session.phase["feature-drift"][0] < 40
    baseline_start, baseline_end = session.phase["baseline"]
    anything = values(session, 'ALERTS{alertstate="firing"}', baseline_start, baseline_end)
    assert anything == []


def test_latency_and_performance_alerts_fire_in_their_phases(session):
    latency = firing(session, "PredictLatencyHigh")
    start, end = session.phase["latency-fault"]
    assert latency and start < latency[0] < end
    performance = firing(session, "ModelPerformanceDrop")
    start, end = session.phase["concept-drift"]
    assert performance and start < performance[0] < end + 5


def test_alertmanager_receiver_records_the_notifications_by_severity(session):
    notes = read_notifications(session.run_dir / "alerts" / "notifications.jsonl")
    received = {(n["receiver"], a["labels"]["alertname"]) for n in notes for a in n["payload"]["alerts"]}
    assert ("warning", "FeatureDrift") in received
    assert ("warning", "PredictLatencyHigh") in received
    assert ("critical", "ModelPerformanceDrop") in received


def test_every_dashboard_panel_returns_data_during_smoke(session):
    empty = []
    for path in dashboard_files():
        for panel in panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                if not values(session, target["expr"], session.start, session.end + 10):
                    empty.append((path.name, panel["title"], target["expr"]))
    assert empty == []


def test_evidently_drift_report_is_logged_to_mlflow(session):
    mlflow = session.url("mlflow")
    exp = httpx.get(
        f"{mlflow}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "churn-monitoring"}, timeout=10
    ).json()["experiment"]
    runs = httpx.post(
        f"{mlflow}/api/2.0/mlflow/runs/search", json={"experiment_ids": [exp["experiment_id"]]}, timeout=10
    ).json()["runs"]
    assert runs
    files = httpx.get(
        f"{mlflow}/api/2.0/mlflow/artifacts/list", params={"run_id": runs[0]["info"]["run_id"]}, timeout=10
    ).json()["files"]
    assert any(f["path"] == "drift_report.html" for f in files)
