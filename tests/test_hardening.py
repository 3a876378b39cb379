"""The sandbox's promises under faults and hostile candidates, on one smoke play (tests/plays.py hardening_play):

- a model server killed (SIGKILL) and restarted, and Prometheus killed and restarted, mid-play: the grader finds
  both gaps itself, reports them first, and grades the reference as it grades an untouched copy of it;
- a model server killed for good as the concept drift begins: the incidents it never saw are not judged, the
  rest are judged on the time it ran, from the /metrics it last served;
- candidates whose /metrics is hostile (100,000 series, 30 s answers, NaN and ±Inf, a 1 MB HELP, invalid text):
  every Prometheus survives, the grader finishes each in seconds and says what it found.
"""

from __future__ import annotations

import json

import pytest
from plays import KILLED_FOR_GOOD_AT, PROMETHEUS_KILLED_AT, SERVER_KILLED_AT, check, hardening_play

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    return hardening_play(tmp_path_factory.mktemp("hardening-play"))


def _gaps(report: dict) -> list[dict]:
    start = report["session"]["start"]
    return [{**g, "from": g["start"] - start, "to": g["end"] - start} for g in report["session"]["gaps"]]


def test_the_untouched_reference_has_no_gap_and_full_marks(hard):
    ref = hard.report("reference")
    assert ref["session"]["gaps"] == [] and ref["score"] >= 95, (ref["score"], ref["notes"])
    assert not any("Not the candidate's doing" in n for n in ref["notes"])


def test_a_server_and_a_prometheus_killed_and_restarted_are_found_reported_first_and_cost_nothing(hard):
    report, ref = hard.report("gaps"), hard.report("reference")
    gaps = _gaps(report)
    assert [g["component"] for g in gaps] == ["model server", "Prometheus"], (gaps, hard.extra["faults"])
    server, prometheus = gaps
    assert SERVER_KILLED_AT - 1 <= server["from"] <= SERVER_KILLED_AT + 2 and server["failed_requests"] > 0
    assert PROMETHEUS_KILLED_AT - 1 <= prometheus["from"] <= PROMETHEUS_KILLED_AT + 3
    assert report["notes"][0].startswith("Not the candidate's doing: Model server was down from")
    assert "Prometheus was down" in report["notes"][0]
    assert report["score"] >= min(95.0, ref["score"]), (report["score"], report["improvement"])
    # Alerts that fired before Prometheus died resolved after it came back (no look-back ghost kept them firing).
    assert check(report, "alerting", "resolved_after_recovery")["passed"]


def test_a_server_killed_for_good_is_judged_on_the_time_it_ran_and_its_gap_is_no_advice(hard):
    report = hard.report("killed")
    [gap] = _gaps(report)
    assert gap["component"] == "model server"
    assert KILLED_FOR_GOOD_AT - 1 <= gap["from"] <= KILLED_FOR_GOOD_AT + 2
    assert gap["end"] >= report["session"]["end"] - 3  # down until the end
    assert {i["kind"] for i in report["session"]["not_judged"]} == {"concept_drift", "latency"}
    assert {i["kind"] for i in report["session"]["incidents"]} >= {"covariate_drift", "unit_change"}
    assert any("the /metrics it last served" in n for n in report["notes"]), report["notes"]
    assert check(report, "performance", "falls_in_concept_drift")["applicable"] is False
    # What the server did while it ran earns what it earns on the untouched copy.
    assert report["score"] >= 95, (report["score"], report["improvement"])
    for item, name in [
        ("system", "latency_histogram_seconds"),
        ("system", "errors_counted"),
        ("predictions", "distribution_exposed"),
        ("alerting", "resolved_after_recovery"),
    ]:
        assert check(report, item, name)["passed"], check(report, item, name)


HOSTILE_FINDINGS = {
    "bomb": "scrape rejected: sample limit",
    "slow": "scrape rejected: timeout",
    "invalid": "scrape failed:",
}


@pytest.mark.parametrize("kind", ["bomb", "slow", "nan", "big-help", "invalid"])
def test_a_hostile_metrics_endpoint_leaves_prometheus_running_and_the_grader_says_what_it_found(hard, kind):
    report = hard.report(kind)
    assert hard.extra["prometheus ready"][kind], f"{kind}: its Prometheus died"
    assert hard.extra["grading seconds"][kind] < 30, hard.extra["grading seconds"]
    said = " ".join(report["notes"])
    if kind in HOSTILE_FINDINGS:
        assert HOSTILE_FINDINGS[kind] in said, report["notes"]
    else:  # accepted by Prometheus: the honest counter is found among them
        assert not any("could not scrape" in n for n in report["notes"]), report["notes"]
        assert check(report, "predictions", "counter_tracks_predictions")["passed"], report["roles"]
    # The report stays readable: no 1 MB HELP and no 100,000 series copied into it.
    assert len(json.dumps(report, default=str)) < 200_000
    if kind == "invalid":
        assert "not valid exposition text" in check(report, "hygiene", "promtool_lint")["summary"]


@pytest.mark.parametrize("room", ["gaps", "killed"])
def test_every_prediction_and_label_a_client_got_an_answer_for_is_in_the_log_after_a_sigkill(hard, room):
    """Each prediction and label is committed before its response goes out: a SIGKILL loses none that was
    acknowledged (those in flight at the kill may be logged without their answer arriving)."""
    import sqlite3

    from load.truth import read_ledger

    ledger = read_ledger(hard.out / room)
    predictions, labels = sum(r.ok for r in ledger), sum(r.labels_posted for r in ledger)
    from model_service.settings import ServiceSettings

    with sqlite3.connect(ServiceSettings(run_dir=hard.out / room).prediction_log_path) as db:
        logged = db.execute("SELECT count(*) FROM predictions").fetchone()[0]
        labelled = db.execute("SELECT count(*) FROM feedback").fetchone()[0]
    assert predictions <= logged <= predictions + 50, (predictions, logged)
    assert labels <= labelled <= labels + 50, (labels, labelled)
