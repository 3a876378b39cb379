"""Drifting traffic against the real bare server: `smoke` played by Locust, checked from the server's
prediction log and the hidden timeline and ledger (as they stood when smoke was over). Then, on the same
sandbox, an outage and a surprise play, each on its own.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import threading
import time

import httpx
import pytest
from conftest import TRAFFIC_PORTS as TEST_PORTS
from driver import Driver, copy_candidate, wait_for

from load.scenario import load_scenario
from load.traffic import plan_phase
from load.truth import read_ledger, read_timeline
from mlsandbox.layout import REPO_ROOT
from mlsandbox.stack.processes import stop
from model_service.spec import default_spec

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    base = tmp_path_factory.mktemp("traffic")
    s = Driver(base / "run", TEST_PORTS, copy_candidate(REPO_ROOT / "starter_repo", base / "candidate"))
    s.up_result = s.up("--scenario", "smoke", "--seed", "7")
    try:
        wait_for(lambda: getattr(read_timeline(s.run_dir), "phases", None), 30, what="the scenario to start")
        s.status_during_play = s.cli("scenario", "status").stdout
        s.locust_ui = httpx.get(s.url("locust"), timeout=10).status_code
        wait_for(lambda: read_timeline(s.run_dir).status == "finished", 150, interval=2, what="smoke to finish")
        # What smoke left, before any test plays something else on this sandbox.
        s.timeline, s.ledger = read_timeline(s.run_dir), read_ledger(s.run_dir)
        load = next(c for c in s.status() if c["name"] == "load")
        stop(load["pid"])  # Locust is idle now; the outage and surprise tests play headless
        yield s
    finally:
        s.cli("down", check=False)


def _log(stack):
    return sqlite3.connect(stack.layout.predictions)


def _window(timeline, name):
    p = next(p for p in timeline.phases if p.name == name)
    return p.start, p.end


def _features_in(stack, timeline, name):
    start, end = _window(timeline, name)
    rows = _log(stack).execute("SELECT features FROM predictions WHERE ts >= ? AND ts < ?", (start, end))
    return [json.loads(r[0]) for r in rows]


def test_interviewer_sees_the_current_phase_and_locust_ui_answers(played):
    assert "NOW: phase" in played.status_during_play and "smoke" in played.status_during_play
    assert played.locust_ui == 200


def test_timeline_has_every_phase_with_wall_clock_times_and_the_seed(played):
    timeline = played.timeline
    assert timeline.seed == 7 and timeline.scenario == "smoke"
    assert [p.name for p in timeline.phases] == [p.name for p in load_scenario("smoke").phases]
    for a, b in zip(timeline.phases, timeline.phases[1:]):
        assert a.end == b.start
    assert [i.kind for i in timeline.phases[2].injections] == ["covariate_drift", "unit_change", "renamed_category"]


def test_ledger_request_counts_match_the_servers_prediction_log(played):
    ledger = played.ledger
    sent = sum(r.requests for r in ledger)
    ok = sum(r.ok for r in ledger)
    rejected = sum(r.client_errors for r in ledger)
    plans = [plan_phase(load_scenario("smoke"), k, 7).requests for k in range(6)]
    renamed = sum('"payment_method": "card"' in r.body for plan in plans for r in plan)
    start, end = played.timeline.phases[0].start, played.timeline.finished_at
    received = (
        _log(played)
        .execute("SELECT count(*) FROM predictions WHERE ts BETWEEN ? AND ?", (start - 1, end + 1))
        .fetchone()[0]
    )
    assert sent == sum(map(len, plans))
    assert rejected == renamed > 0  # the upstream bug's renamed category: a 422 each
    assert ok == received == sent - renamed


def test_server_received_exactly_the_planned_stream(played):
    smoke = load_scenario("smoke")
    timeline = played.timeline
    for k in (0, 2):  # baseline, and the upstream bug (charges in cents)
        planned = sorted(r.body for r in plan_phase(smoke, k, 7).requests if '"card"' not in r.body)
        got = sorted(json.dumps(f) for f in _features_in(played, timeline, smoke.phases[k].name))
        assert got == planned


def test_injected_drift_is_measurable_in_the_prediction_log(played):
    timeline = played.timeline
    before = _features_in(played, timeline, "baseline")
    held = _features_in(played, timeline, "concept-drift")

    def mean(rows, f):
        return statistics.fmean(r[f] for r in rows)

    assert 34 < mean(held, "monthly_charges") - mean(before, "monthly_charges") < 46
    for f in ("tenure_months", "support_calls_90d", "data_usage_gb", "age_years", "num_products"):
        spread = statistics.pstdev(r[f] for r in before)
        assert abs(mean(held, f) - mean(before, f)) < 0.25 * spread, f


def test_labels_arrive_for_the_configured_fraction_after_the_configured_delay(played):
    timeline = played.timeline
    db = _log(played)
    for name, fraction in (("baseline", 0.5), ("concept-drift", 0.8)):
        start, end = _window(timeline, name)
        n, labelled = db.execute(
            "SELECT count(*), count(true_label) FROM labelled_predictions WHERE ts >= ? AND ts < ?", (start, end)
        ).fetchone()
        assert abs(labelled / n - fraction) < 0.08, name
    start, end = timeline.phases[0].start, timeline.finished_at
    delays = [
        d
        for (d,) in db.execute(
            "SELECT label_delay_seconds FROM labelled_predictions WHERE true_label IS NOT NULL AND ts BETWEEN ? AND ?",
            (start, end),
        )
    ]
    assert 2.0 <= statistics.median(delays) < 2.5 and min(delays) >= 1.99


def test_latency_fault_shows_in_client_latency_for_its_phase_only(played):
    start, end = _window(played.timeline, "latency-fault")
    ledger = [r for r in played.ledger if r.latency_mean_seconds is not None]
    inside = [r.latency_mean_seconds for r in ledger if start + 1 <= r.second < end - 1]
    outside = [r.latency_mean_seconds for r in ledger if not (start - 1 <= r.second < end + 1)]
    assert min(inside) >= 0.3
    assert statistics.median(outside) < 0.1


def test_nothing_of_the_truth_reaches_prometheus(played):
    names = httpx.get(f"{played.url('prometheus')}/api/v1/label/__name__/values", timeout=10).json()["data"]
    leaked = [n for n in names if any(w in n for w in ("scenario", "phase", "inject", "ledger", "locust"))]
    assert leaked == []


def test_an_outage_stops_the_server_answering_then_it_recovers(played, tmp_path):
    scenario = tmp_path / "outage.yaml"
    scenario.write_text(
        "name: outage-test\ndescription: short outage\nphases:\n"
        "  - {name: before, duration_seconds: 3, rate: 5}\n"
        "  - {name: outage, duration_seconds: 5, rate: 5, injections: [{kind: outage}]}\n"
        "  - {name: after, duration_seconds: 4, rate: 5}\n"
    )
    probes, done = [], threading.Event()

    def probe_health():  # as Prometheus or a health check would, every half second
        while not done.is_set():
            t = time.time()
            try:
                ok = httpx.get(f"{played.url('model_server')}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                ok = False
            probes.append((t, ok))
            done.wait(0.5)

    prober = threading.Thread(target=probe_health)
    prober.start()
    try:
        played.cli("scenario", "play", str(scenario))
    finally:
        done.set()
        prober.join()
    timeline = read_timeline(played.run_dir)
    by_phase = {}
    for r in read_ledger(played.run_dir):
        if r.second >= int(timeline.phases[0].start):
            by_phase.setdefault(r.phase, []).append(r)
    sent = sum(r.requests for r in by_phase["outage"])
    # Requests sent in the outage's last seconds are answered once it is over; the others time out.
    assert sum(r.failures for r in by_phase["outage"]) >= sent / 3
    assert all(r.failures == 0 for r in by_phase["before"])
    assert sum(r.ok for r in by_phase["after"]) > 0
    # Everything hung, /health too (and so /metrics: Prometheus would see the target down), and only then.
    start, end = _window(timeline, "outage")
    assert not any(ok for t, ok in probes if start + 0.5 <= t <= end - 1.5)
    assert all(ok for t, ok in probes if t < start - 0.5 or t > end + 1.5)
    assert httpx.get(f"{played.url('model_server')}/health", timeout=5).status_code == 200
    assert json.loads(played.layout.faults.read_text())["hold"] is False  # switched off at the end


def test_surprise_plays_hidden_parameters_and_prints_none(played, tmp_path):
    scenario = tmp_path / "surprise.yaml"
    scenario.write_text(
        "name: surprise-test\ndescription: d\nsurprise: {drift_features: [tenure_months, age_years]}\nphases:\n"
        "  - {name: calm, duration_seconds: 2, rate: 5}\n"
        "  - {name: drift, duration_seconds: 2, rate: 5, injections: "
        "[{kind: covariate_drift, feature: monthly_charges, shift: 30}]}\n"
    )
    result = played.cli("scenario", "play", str(scenario), "--surprise")
    timeline = read_timeline(played.run_dir)
    assert timeline.scenario == "surprise-test"
    assert timeline.surprise is True
    drifted = timeline.phases[1].injections[0].feature
    assert drifted in ("tenure_months", "age_years")
    log = played.layout.log("load-headless").read_text()
    printed = result.stdout + result.stderr + log
    for hidden in (*default_spec().features, "covariate_drift", str(timeline.seed)):
        assert hidden not in printed, hidden


def test_a_killed_load_generator_is_reported_interrupted_and_the_play_resumes_from_a_later_phase(played, tmp_path):
    import os
    import signal
    import subprocess

    import psutil
    from driver import MLSANDBOX

    scenario = tmp_path / "three.yaml"
    scenario.write_text(
        "name: three-test\ndescription: d\nphases:\n"
        "  - {name: one, duration_seconds: 4, rate: 5}\n"
        "  - {name: two, duration_seconds: 30, rate: 5}\n"
        "  - {name: three, duration_seconds: 4, rate: 5}\n"
    )
    play = subprocess.Popen(
        [*MLSANDBOX, "scenario", "play", str(scenario)],
        env=played.env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(
        lambda: (
            (t := read_timeline(played.run_dir)) is not None
            and t.scenario == "three-test"
            and t.current is not None
            and t.current.name == "two"
        ),
        30,
        0.5,
        "phase two",
    )
    locust = next(
        p
        for p in psutil.process_iter(["cmdline"])
        if "locust" in " ".join(p.info["cmdline"] or []) and str(scenario) in " ".join(p.info["cmdline"])
    )
    os.killpg(locust.pid, signal.SIGKILL)  # as an OOM kill would: no clean-up at all
    play.communicate(timeout=30)
    status = wait_for(
        lambda: "INTERRUPTED" in (out := played.cli("scenario", "status").stdout) and out,
        40,
        1,
        "scenario status to say the play was interrupted",
    )
    assert "INTERRUPTED in phase 2/3 'two'" in status and "--from three" in status
    played.cli("scenario", "play", str(scenario), "--from", "three")
    timeline = read_timeline(played.run_dir)
    assert [p.name for p in timeline.phases] == ["one", "two", "three"]
    assert timeline.status == "finished" and len(timeline.resumed_at) == 1
    assert "interrupted" in timeline.phases[1].notes[0] and timeline.phases[1].end < timeline.phases[2].start
    refused = played.cli("scenario", "play", str(scenario), "--from", "four", check=False)
    assert refused.returncode != 0 and "no phase 'four'" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
