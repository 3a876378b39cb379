"""The reference solution on the real stack, playing `smoke`: each metric moves as the scenario says, the
alerts fire when they should and not before, Alertmanager's receiver records them, every dashboard panel
returns data, and the drift report reaches MLflow. The interviewer's console is watched in a real browser during
the play and after it (screenshots in run/test-output/console/).
"""

from __future__ import annotations

import json
import math
import subprocess
import time

import httpx
import pytest
from browser import chromium, visit
from conftest import REFERENCE_PORTS as TEST_PORTS
from driver import MLSANDBOX, Driver, copy_candidate, wait_for
from test_reference_solution import dashboard_files, panels

from load.truth import read_timeline
from mlsandbox.console.views import AFTER_PLAY_SECONDS
from mlsandbox.layout import REPO_ROOT
from mlsandbox.services.alert_receiver import read_notifications

pytestmark = pytest.mark.stack
SHOTS = REPO_ROOT / "run" / "test-output" / "console"
BROKEN_BOARD = {
    "title": "Half broken",
    "panels": [
        {"type": "timeseries", "title": "Fine", "targets": [{"expr": "sum(churn_predictions_total)"}]},
        {"type": "timeseries", "title": "Broken query", "targets": [{"expr": "sum(rate(churn_predictions_total[1m])"}]},
        {
            "type": "piechart",
            "title": "Unsupported",
            "targets": [{"expr": "sum by (predicted) (churn_predictions_total)"}],
        },
        {
            "type": "row",
            "title": "A row",
            "panels": [{"type": "stat", "title": "Nothing there", "targets": [{"expr": "no_such_metric_anywhere"}]}],
        },
    ],
}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    base = tmp_path_factory.mktemp("reference")
    s = Driver(
        base / "run",
        TEST_PORTS,
        copy_candidate(REPO_ROOT / "reference_solution", base / "candidate"),
        extra_env={"CHURN_MONITORING_REPORT_INTERVAL_SECONDS": "15"},
    )
    s.up("--no-load")
    try:
        play = subprocess.Popen(
            [*MLSANDBOX, "scenario", "play", "smoke", "--seed", "7"],
            env=s.env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        s.console = _watch_console(s, play, base)
        s.timeline = read_timeline(s.run_dir)
        s.phase = {p.name: (p.start, p.end) for p in s.timeline.phases}
        s.start, s.end = s.timeline.phases[0].start, s.timeline.phases[-1].end
        yield s
    finally:
        s.cli("down", check=False)


def _watch_console(s: Driver, play: subprocess.Popen, base) -> dict:
    """The console as the interviewer sees it: during concept drift, then once the play is over and its alerts
    had the time to resolve (the grade asked for then); and the candidate's preview of a half-broken dashboard."""
    token = (s.run_dir / "console.token").read_text().strip()
    console = s.url("console")
    page = f"{console}/room/sandbox?token={token}"
    seen = {
        "no token": [
            httpx.get(f"{console}{path}", timeout=10).status_code
            for path in ("/", "/room/sandbox", "/api/rooms", "/api/room/sandbox/scenario")
        ]
    }
    with chromium() as browser:
        wait_for(
            lambda: (
                (t := read_timeline(s.run_dir)) is not None
                and t.current is not None
                and t.current.name == "concept-drift"
            ),
            200,
            0.5,
            "concept drift to play",
        )
        seen["mid"] = visit(browser, page, lambda p: p["lanes"] and p["now"], shot=SHOTS / "console-mid-play.png")
        _, err = play.communicate(timeout=400)
        assert play.returncode == 0, err
        end = read_timeline(s.run_dir).phases[-1].end
        time.sleep(max(0.0, end + AFTER_PLAY_SECONDS + 2 - time.time()))
        httpx.post(f"{console}/api/room/sandbox/grade?token={token}", timeout=10)
        wait_for(
            lambda: (
                (g := httpx.get(f"{console}/api/room/sandbox/grade?token={token}", timeout=10).json()).get(
                    "graded_at", 0
                )
                > end + AFTER_PLAY_SECONDS
                and not g["in_flight"]
            ),
            90,
            1,
            "the grade after the play",
        )
        seen["final"] = visit(
            browser,
            page,
            lambda p: p["grade"] and p["panels"] and p["window"]["start"],
            shot=SHOTS / "console-after-play.png",
        )
        broken = base / "broken-candidate"
        (broken / "dashboards").mkdir(parents=True)
        (broken / "dashboards" / "half-broken.json").write_text(json.dumps(BROKEN_BOARD))
        (broken / "dashboards" / "not-json.json").write_text("{ this is not JSON")
        preview = s.cli("dashboards", "preview", "--candidate", str(broken), "--out", str(base / "preview.html"))
        seen["preview path"] = preview.stdout.strip()
        seen["preview"] = visit(
            browser, f"file://{base / 'preview.html'}", lambda p: p["panels"], shot=SHOTS / "preview-half-broken.png"
        )
    return seen


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
    notes = read_notifications(session.layout.notifications)
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


# --- the interviewer's console --------------------------------------------------------------------------


def test_the_console_answers_nothing_without_its_token(session):
    assert session.console["no token"] == [401, 401, 401, 401]


def test_the_console_shows_the_phase_playing_and_the_incidents_so_far(session):
    mid = session.console["mid"]
    assert "concept-drift" in mid["now"]
    assert [lane["incident"] for lane in mid["lanes"]][:3] == [
        "covariate_drift(monthly_charges)",
        "unit_change(total_charges)",
        "renamed_category(payment_method)",
    ]


def test_the_console_lanes_show_each_incident_with_the_alert_that_caught_it(session):
    from grading.play import Play

    lanes = session.console["final"]["lanes"]
    played = [i.label for i in Play.load(session.run_dir).incidents()]
    assert [lane["incident"] for lane in lanes] == played
    report = json.loads(
        httpx.get(
            f"{session.url('console')}/api/room/sandbox/grade",
            cookies={"mlsandbox_console": (session.run_dir / "console.token").read_text().strip()},
            timeout=10,
        ).text
    )
    caught = {d["incident"]: d["alert"] for d in report["detections"]}
    for lane in lanes:
        assert lane["detected_by"] and lane["detected_by"] == caught[lane["incident"]], lane
        assert 0 < float(lane["latency"]) < 60, lane
    assert "no false alarm" in session.console["final"]["baseline"]


def test_the_console_grade_so_far_fills_in_every_item(session):
    from grading.rubric import DEFAULT_RUBRIC, load_rubric

    grade = session.console["final"]["grade"]
    assert [row["item"] for row in grade] == list(load_rubric(DEFAULT_RUBRIC).items)
    assert all(float(row["points"]) >= 0 for row in grade)


def test_the_console_panels_show_what_query_range_gives_for_their_queries(session):
    from grading.dashboards import resolve_variables

    final = session.console["final"]
    window = {k: float(v) for k, v in final["window"].items()}
    drawn = [p for p in final["panels"] if p["type"] in ("timeseries", "stat", "gauge")]
    assert len(drawn) >= 10
    for panel in drawn:
        for q in panel["queries"]:
            series = session.prom_range(resolve_variables(q["expr"]), window["start"], window["end"], window["step"])
            assert int(q["series_count"]) == len(series), (panel["title"], q["expr"])
            if series:
                last = float(series[0]["values"][-1][1])
                shown = float(q["last"]) if q["last"] not in ("", None) else math.nan
                assert shown == pytest.approx(last, rel=1e-9, nan_ok=True), (panel["title"], q["expr"])
        if panel["type"] == "timeseries" and any(int(q["series_count"]) for q in panel["queries"]):
            assert panel["charts"] >= 1, panel["title"]


def test_the_console_shows_other_panel_types_as_their_queries_with_a_link(session):
    others = [p for p in session.console["final"]["panels"] if p["type"] not in ("timeseries", "stat", "gauge")]
    assert any(p["type"] == "heatmap" for p in others)
    for panel in others:
        assert panel["charts"] == 0
        for q in panel["queries"]:
            assert q["expr"] in q["text"]
            assert any("/graph?g0.expr=" in link for link in q["links"]), q


def test_a_half_broken_dashboard_preview_draws_the_rest_and_says_what_is_wrong(session):
    preview = session.console["preview"]
    assert session.console["preview path"].endswith("preview.html")
    by_title = {p["title"]: p for p in preview["panels"]}
    assert by_title["Fine"]["charts"] == 1 and by_title["Fine"]["queries"][0]["series_count"] == "1"
    assert "query failed" in by_title["Broken query"]["text"]
    assert "not drawn here" in by_title["Unsupported"]["text"]
    assert "no data" in by_title["Nothing there"]["text"]
    assert any("not valid JSON" in board for board in preview["boards"])
