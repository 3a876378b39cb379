"""The grader on the real stack, each session playing `smoke`: the reference scores at least 95%, the bare
starter at most 10%; mutants of the reference lose the points of the item they break and no others; a
solution with other metric names gets the reference's credit.

Two mutant sessions each carry two independent mutations that break different items, so that each item's
loss can be told apart: A = unreachable alert threshold (alerting) + latency in milliseconds (system);
B = no drift metric (drift) + an alert that always fires (alerting). The empty-panel mutant needs no
session of its own: it is the reference's session graded with other dashboards.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

import candidates
from load.truth import read_timeline
from mlsandbox.processes import stop
from stack_helpers import REPO, SandboxUnderTest, copy_candidate

pytestmark = pytest.mark.stack
RESOLVE_GRACE = 30  # the rubric's resolve_grace_seconds: grade once it has passed


def play_and_grade(base, build, regrade=None):
    """Play smoke on the candidate `build` makes, grade it, stop the stack (the tests share its ports).
    `regrade` grades the same session again with another candidate folder (dashboards differ, say)."""
    candidate = build(base / "candidate")
    s = SandboxUnderTest(run_dir=base / "run", candidate=candidate)
    s.up("--no-load")
    try:
        s.cli("scenario", "play", "smoke", "--seed", "7")
        wait = read_timeline(s.run_dir)["phases"][-1]["end"] + RESOLVE_GRACE + 1 - time.time()
        time.sleep(max(0.0, wait))
        s.report = grade(s, candidate)
        if regrade:
            s.regraded = grade(s, regrade(candidate, base / "other-candidate"), "report-regraded")
            server = next(c for c in s.status() if c["name"] == "model-server")
            stop(server["pid"])  # the candidate's server dies after the session
            s.server_down = grade(s, candidate, "report-server-down")
    finally:
        s.cli("down", check=False)
    return s


def grade(s, candidate, out_name="report"):
    out = s.run_dir.parent / out_name
    t0 = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "mlsandbox.cli", "grade", "--candidate", str(candidate),
                             "--out", str(out), "--json"], env=s.env, cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    report["_seconds"] = time.monotonic() - t0
    report["_out"] = out
    return report


def points(report) -> dict[str, float]:
    return {i["key"]: i["points"] for i in report["items"]}


def check(report, item, name) -> dict:
    it = next(i for i in report["items"] if i["key"] == item)
    return next(c for c in it["checks"] if c["name"] == name)


def with_empty_panel(candidate, dest):
    shutil.copytree(candidate, dest, ignore=shutil.ignore_patterns("dashboards"))
    candidates.empty_panel_dashboards(dest / "dashboards")
    return dest


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return play_and_grade(tmp_path_factory.mktemp("grade-reference"), candidates.copy_reference, with_empty_panel)


@pytest.fixture(scope="module")
def starter(tmp_path_factory):
    return play_and_grade(tmp_path_factory.mktemp("grade-starter"), lambda d: copy_candidate(REPO / "starter_repo", d))


@pytest.fixture(scope="module")
def mutant_a(tmp_path_factory):
    return play_and_grade(tmp_path_factory.mktemp("grade-mutant-a"), candidates.unreachable_threshold_and_ms_latency)


@pytest.fixture(scope="module")
def mutant_b(tmp_path_factory):
    return play_and_grade(tmp_path_factory.mktemp("grade-mutant-b"), candidates.no_drift_and_always_firing)


@pytest.fixture(scope="module")
def renamed(tmp_path_factory):
    return play_and_grade(tmp_path_factory.mktemp("grade-renamed"), candidates.renamed)


def assert_same(report, reference, items, tolerance=0.5):
    got, ref = points(report), points(reference)
    for item in items:
        assert abs(got[item] - ref[item]) <= tolerance, (item, got[item], ref[item])


def test_reference_scores_at_least_95_percent_and_writes_every_report(reference):
    r = reference.report
    assert r["score"] >= 95, json.dumps(r["items"], indent=1)[:4000]
    out = r["_out"]
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and r["improvement"]["text"] in html
    assert (out / "report.md").read_text().startswith(f"# Grade: {r['score']}%")
    assert {d["incident"] for d in r["detections"] if d["alert"]} >= {
        "covariate_drift(monthly_charges)", "concept_drift", "latency"}


def test_a_server_down_at_grading_time_still_gets_a_report_that_says_so(reference):
    r = reference.server_down
    assert any("down" in n for n in r["notes"])
    assert (r["_out"] / "report.html").exists()
    # What Prometheus recorded during the session still counts; only the live scrape is missing.
    assert_same(r, reference.report, ["predictions", "performance", "system", "drift", "alerting"], 0.5)


def test_bare_starter_scores_at_most_10_percent_and_the_report_says_the_server_exposed_nothing(starter):
    r = starter.report
    assert r["score"] <= 10
    assert any("no metric" in n or "down" in n for n in r["notes"])


def test_unreachable_threshold_loses_alerting_only_and_ms_latency_loses_system_only(mutant_a, reference):
    r = mutant_a.report
    assert check(r, "alerting", "incidents_detected")["points"] < check(reference.report, "alerting", "incidents_detected")["points"]
    missed = [d["incident"] for d in r["detections"] if not d["alert"]]
    assert missed == ["concept_drift"]
    assert not check(r, "system", "latency_histogram_seconds")["passed"]
    assert check(reference.report, "system", "latency_histogram_seconds")["passed"]
    assert_same(r, reference.report, ["predictions", "performance", "drift", "visualization", "hygiene"])
    for name in ("rules_valid", "alert_on_critical_metric", "no_false_alarms", "severity_and_summary"):
        assert check(r, "alerting", name)["points"] == check(reference.report, "alerting", name)["points"], name
    for name in ("throughput_counter", "errors_counted"):
        assert check(r, "system", name)["passed"], name


def test_no_drift_metric_loses_drift_only_and_always_firing_loses_false_alarms_only(mutant_b, reference):
    r = mutant_b.report
    assert points(r)["drift"] == 0
    assert not check(r, "alerting", "no_false_alarms")["passed"]
    assert check(reference.report, "alerting", "no_false_alarms")["passed"]
    assert_same(r, reference.report, ["predictions", "performance", "system", "visualization", "hygiene"])
    for name in ("rules_valid", "alert_on_critical_metric", "incidents_detected", "severity_and_summary"):
        assert check(r, "alerting", name)["points"] == check(reference.report, "alerting", name)["points"], name


def test_a_panel_that_returns_nothing_loses_visualization_only(reference):
    r = reference.regraded
    assert points(r)["visualization"] < points(reference.report)["visualization"]
    assert not check(r, "visualization", "panels_return_data")["passed"]
    assert_same(r, reference.report, ["predictions", "performance", "system", "drift", "alerting", "hygiene"], 0)


def test_other_metric_names_get_the_same_credit(renamed, reference):
    r = renamed.report
    assert r["score"] >= 95, json.dumps(r["items"], indent=1)[:4000]
    assert_same(r, reference.report, ["predictions", "performance", "system", "drift", "alerting"], 1.0)

