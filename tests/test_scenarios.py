"""Scenarios: validated files, a reproducible request stream, injections that do what they say, surprise."""

import json
import subprocess
import sys

import numpy as np
import pytest

from load.player import ScenarioPlayer
from load.scenario import ScenarioError, load_scenario, shipped_scenarios
from load.surprise import apply_surprise
from load.traffic import plan_phase, render_stream
from load.truth import read_ledger, read_timeline
from mlsandbox.layout import REPO_ROOT as REPO
from model_service.spec import default_spec


def _phase(scenario, name):
    return next(i for i, p in enumerate(scenario.phases) if p.name == name)


def _means(planned, feature):
    vals = [json.loads(r.body)[feature] for r in planned.requests]
    return np.mean([v for v in vals if isinstance(v, (int, float))])


def test_every_shipped_scenario_is_valid_and_smoke_fits_in_90_seconds():
    names = shipped_scenarios()
    assert {"baseline", "interview", "smoke"} <= set(names)
    kinds = {
        "covariate-drift",
        "upstream-bug",
        "data-quality",
        "concept-drift",
        "latency",
        "errors",
        "outage",
        "traffic",
    }
    assert {f"training-{k}" for k in kinds} <= set(names)
    for name in names:
        load_scenario(name)
    assert load_scenario("smoke").duration_seconds <= 90
    assert 55 * 60 <= load_scenario("interview").duration_seconds <= 65 * 60


def test_same_seed_same_stream_byte_for_byte_other_seed_other_stream():
    smoke = load_scenario("smoke")
    assert render_stream(smoke, 7) == render_stream(smoke, 7)
    assert render_stream(smoke, 7) != render_stream(smoke, 8)
    assert render_stream(smoke, 7, speed=2) != render_stream(smoke, 7)


def test_covariate_drift_moves_the_named_feature_by_the_configured_shift_and_no_other():
    smoke = load_scenario("smoke")
    base = plan_phase(smoke, _phase(smoke, "baseline"), 7)
    held = plan_phase(smoke, _phase(smoke, "concept-drift"), 7)
    assert abs(_means(held, "monthly_charges") - _means(base, "monthly_charges") - 40) < 5
    sample = plan_phase(smoke, _phase(smoke, "baseline"), 99)
    for f in default_spec().numeric:
        if f != "monthly_charges":
            noise = abs(_means(sample, f) - _means(base, f)) + 0.1 * np.std(
                [json.loads(r.body)[f] for r in base.requests]
            )
            assert abs(_means(held, f) - _means(base, f)) < 3 * noise, f


def test_gradual_drift_ramps_within_its_phase():
    smoke = load_scenario("smoke")
    ramp = plan_phase(smoke, _phase(smoke, "feature-drift"), 7)
    values = [json.loads(r.body)["monthly_charges"] for r in ramp.requests]
    third = len(values) // 3
    assert np.mean(values[-third:]) - np.mean(values[:third]) > 20


def test_upstream_bug_sends_charges_in_cents_but_labels_follow_the_real_customer():
    smoke = load_scenario("smoke")
    k = _phase(smoke, "upstream-bug")
    bug = plan_phase(smoke, k, 7)
    phase = smoke.phases[k]
    fixed = phase.model_copy(update={"injections": [i for i in phase.injections if i.kind != "unit_change"]})
    clean = plan_phase(smoke.model_copy(update={"phases": [*smoke.phases[:k], fixed, *smoke.phases[k + 1 :]]}), k, 7)
    assert [r.true_label for r in bug.requests] == [r.true_label for r in clean.requests]
    for b, c in zip(bug.requests, clean.requests):
        sent, real = json.loads(b.body), json.loads(c.body)
        assert sent["total_charges"] == pytest.approx(real["total_charges"] * 100, abs=0.01)
        assert {k: v for k, v in sent.items() if k != "total_charges"} == {
            k: v for k, v in real.items() if k != "total_charges"
        }


def test_concept_drift_changes_labels_not_inputs():
    from model_service.churn_data import churn_probability

    smoke = load_scenario("smoke")
    concept = plan_phase(smoke, _phase(smoke, "concept-drift"), 7)
    import pandas as pd

    frame = pd.DataFrame([json.loads(r.body) for r in concept.requests])
    p_old = churn_probability(frame, default_spec().dependence)
    labels = np.array([r.true_label for r in concept.requests])
    # Under the old dependence, the new labels are no better than chance at ranking.
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(labels, p_old) < 0.5


def test_data_quality_and_bug_injections():
    s = load_scenario("training-data-quality")
    dq = plan_phase(s, 1, 11, speed=10)
    bodies = [json.loads(r.body) for r in dq.requests]
    missing = np.mean([b["tenure_months"] is None for b in bodies])
    assert 0.15 < missing < 0.35
    assert any(b["monthly_charges"] is not None and b["monthly_charges"] > 120 for b in bodies)
    bug = plan_phase(load_scenario("training-upstream-bug"), 1, 11, speed=10)
    bodies = [json.loads(r.body) for r in bug.requests]
    assert {b["data_usage_gb"] for b in bodies} == {0}
    assert "credit-card" not in {b["payment_method"] for b in bodies} and "card" in {
        b["payment_method"] for b in bodies
    }


def test_ground_truth_fraction_and_delay_follow_the_phase_and_speed():
    smoke = load_scenario("smoke")
    concept = plan_phase(smoke, _phase(smoke, "concept-drift"), 7, speed=2)
    delays = [r.feedback_delay_seconds for r in concept.requests]
    share = np.mean([d is not None for d in delays])
    assert 0.7 < share < 0.9
    assert {d for d in delays if d is not None} == {1.0}  # 2 scenario seconds at speed 2


def test_faults_follow_the_phase():
    smoke = load_scenario("smoke")
    assert plan_phase(smoke, _phase(smoke, "latency-fault"), 7).faults.delay_seconds == 0.3
    assert plan_phase(smoke, _phase(smoke, "recovery"), 7).faults.delay_seconds == 0


def test_surprise_redraws_hidden_parameters_reproducibly():
    interview = load_scenario("interview")
    draws = [apply_surprise(interview, seed) for seed in range(12)]
    assert apply_surprise(interview, 3) == draws[3]
    features = {p.injections[0].feature for d in draws for p in d.phases[1:2]}
    assert len(features) > 1
    durations = {d.phases[0].duration_seconds for d in draws}
    assert len(durations) > 1 and all(450 <= x <= 750 for x in durations)
    for d in draws:  # the drift that ramps and the drift that holds are the same feature
        assert len({i.feature for p in d.phases for i in p.injections if i.kind == "covariate_drift"}) == 1


@pytest.mark.parametrize(
    "text, where",
    [
        (
            "name: x\ndescription: y\nphases:\n  - name: a\n    duration_seconds: -1\n    rate: 5\n",
            ":5: phases.0.duration_seconds:",
        ),
        (
            "name: x\ndescription: y\nphases:\n  - name: a\n    duration_seconds: 10\n    rate: 5\n"
            "    injections:\n      - {kind: covariate_drift, feature: monthly_charge, shift: 3}\n",
            ":8: phases.0.injections.0.feature: 'monthly_charge' is not a numeric feature",
        ),
        (
            "name: x\ndescription: y\nphases:\n  - name: a\n    duration_seconds: 10\n    rate: 5\n"
            "    injections:\n      - {kind: teleport}\n",
            ":8: phases.0.injections.0",
        ),
        ("name: x\n  description: [\n", ":2: not valid YAML"),
        ("- just\n- a list\n", ":1: a scenario is a mapping"),
    ],
    ids=["negative-duration", "unknown-feature", "unknown-kind", "bad-yaml", "not-a-mapping"],
)
def test_malformed_scenario_gives_one_readable_line_and_exit_1(tmp_path, text, where):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ScenarioError, match=None) as err:
        load_scenario(bad)
    assert where in str(err.value) and "\n" not in str(err.value)
    result = subprocess.run(
        [sys.executable, "-m", "mlsandbox.cli", "scenario", "check", str(bad)], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and where in result.stderr


def test_up_with_a_broken_scenario_starts_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndescription: y\nphases: []\n")
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "mlsandbox.cli", "up", "--scenario", str(bad), "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 1 and "phases" in result.stderr
    assert not (run_dir / "sandbox.json").exists()


class FakeClock:
    def __init__(self, t=1_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_player_switches_phases_and_faults_and_writes_the_timeline(tmp_path):
    clock = FakeClock()
    smoke = load_scenario("smoke")
    player = ScenarioPlayer(smoke, 7, speed=1, run_dir=tmp_path, clock=clock)
    player.start()
    faults = tmp_path / "control" / "faults.json"
    assert player.phase_name == "baseline" and json.loads(faults.read_text())["delay_seconds"] == 0
    clock.t += 25 + 12 + 8 + 15 + 0.5
    player.advance()
    assert player.phase_name == "latency-fault" and json.loads(faults.read_text())["delay_seconds"] == 0.3
    timeline = read_timeline(tmp_path)
    assert [p.name for p in timeline.phases][-1] == "latency-fault"
    assert timeline.phases[1].start == 1_000_025.0 and timeline.phases[1].end == 1_000_037.0
    assert timeline.phases[1].injections[0].feature == "monthly_charges"
    clock.t += 100
    player.advance()
    assert player.finished and read_timeline(tmp_path).status == "finished"
    assert json.loads(faults.read_text())["delay_seconds"] == 0


def test_player_hands_out_requests_in_order_then_labels_when_due(tmp_path):
    clock = FakeClock()
    player = ScenarioPlayer(load_scenario("smoke"), 7, speed=1, run_dir=tmp_path, clock=clock)
    player.start()
    first, second = player.next_action(), player.next_action()
    assert first.kind == second.kind == "predict"
    assert second.due - first.due == pytest.approx(1 / 20)
    player.schedule_feedback("abc", True, clock.t + 0.01)
    assert player.next_action().kind == "feedback"
    for a in (first, second):
        player.done(a)


def test_scenario_next_ends_the_current_phase(tmp_path):
    from load.player import request_skip

    clock = FakeClock()
    player = ScenarioPlayer(load_scenario("smoke"), 7, speed=1, run_dir=tmp_path, clock=clock)
    player.start()
    request_skip(tmp_path)
    clock.t += 1
    player.advance()
    assert player.phase_name == "feature-drift"
    assert read_timeline(tmp_path).phases[0].skipped is True


def test_scenario_pause_holds_the_traffic_and_the_phase_clock_until_resume(tmp_path):
    from load.player import request_pause

    clock = FakeClock()
    player = ScenarioPlayer(load_scenario("smoke"), 7, speed=1, run_dir=tmp_path, clock=clock)
    player.start()
    player.schedule_feedback("abc", True, clock.t + 5)
    request_pause(tmp_path, True)
    clock.t += 1
    assert player.next_action().kind == "wait" and player.paused
    assert read_timeline(tmp_path).paused_at == pytest.approx(clock.t)
    clock.t += 60  # longer than the baseline (25 s): paused, it does not end
    assert player.next_action().kind == "wait" and player.phase_name == "baseline"
    request_pause(tmp_path, False)
    clock.t += 1
    action = player.next_action()
    assert action.kind == "predict" and player.phase_name == "baseline"
    timeline = read_timeline(tmp_path)
    assert timeline.paused_at is None
    assert timeline.phases[0].planned_end == pytest.approx(timeline.phases[0].start + 25 + 61, abs=0.6)
    assert player._feedback[0][0] == pytest.approx(clock.t - 62 + 5 + 61, abs=0.6)  # the label waits too
    player.done(action)


def test_a_player_that_died_leaves_a_timeline_that_says_interrupted_and_where(tmp_path):
    from mlsandbox.console.scenario_text import describe

    clock = FakeClock()
    player = ScenarioPlayer(load_scenario("smoke"), 7, speed=1, run_dir=tmp_path, clock=clock)
    player.start()
    for _ in range(30):  # baseline (25 s), then into feature-drift; then Locust is killed: nothing more
        clock.t += 1
        player.advance()
    died = clock.t
    assert not read_timeline(tmp_path).interrupted(died + 5)
    clock.t += 60
    timeline = read_timeline(tmp_path)
    assert timeline.interrupted(clock.t) and timeline.heartbeat_at >= died - 2
    text = describe(timeline, clock.t)
    assert "INTERRUPTED in phase 2/6 'feature-drift'" in text
    assert "scenario play smoke --from upstream-bug" in text and "NOW:" not in text


def test_a_play_resumed_from_a_later_phase_goes_on_with_the_same_timeline(tmp_path):
    clock = FakeClock()
    first = ScenarioPlayer(load_scenario("smoke"), 11, speed=1, run_dir=tmp_path, clock=clock, surprise=True)
    first.start()
    for _ in range(30):
        clock.t += 1
        first.advance()
    died = clock.t
    clock.t += 60
    # Resumed with another seed and no surprise: the interrupted play's draw is kept.
    second = ScenarioPlayer(load_scenario("smoke"), 7, speed=1, run_dir=tmp_path, clock=clock, from_phase="3")
    second.start()
    assert second.seed == 11 and second.phase_name == "upstream-bug"
    timeline = read_timeline(tmp_path)
    assert [p.name for p in timeline.phases] == ["baseline", "feature-drift", "upstream-bug"]
    interrupted = timeline.phases[1]
    assert interrupted.end == pytest.approx(died, abs=2.1) and "interrupted" in interrupted.notes[0]
    assert timeline.resumed_at == [clock.t] and timeline.status == "running" and timeline.surprise
    assert timeline.phases[2].start == clock.t
    second.stop()


def test_an_unknown_phase_to_resume_from_is_one_readable_error(tmp_path):
    from load.player import PhaseError

    with pytest.raises(PhaseError, match="no phase 'nope' in smoke .*baseline, feature-drift"):
        ScenarioPlayer(load_scenario("smoke"), 7, speed=1, run_dir=tmp_path, from_phase="nope")


def test_ledger_rows_per_second(tmp_path):
    clock = FakeClock()
    player = ScenarioPlayer(load_scenario("smoke"), 7, speed=1, run_dir=tmp_path, clock=clock)
    player.ledger.record_request(10.2, "baseline", {"monthly_charges": 50, "tenure_months": None}, "ok", 0.01)
    player.ledger.record_request(10.7, "baseline", {"monthly_charges": 70}, "server_errors", 0.03)
    player.ledger.record_label(11.1, "baseline")
    player.ledger.close()
    rows = read_ledger(tmp_path)
    assert rows[0].second == 10 and rows[0].requests == 2 and rows[0].server_errors == 1
    assert rows[0].means["monthly_charges"] == 60 and rows[0].means["tenure_months"] is None
    assert rows[0].latency_mean_seconds == pytest.approx(0.02)
    assert rows[1].labels_posted == 1


def test_a_model_release_names_the_version_to_serve_for_its_phase_only(tmp_path):
    path = tmp_path / "release.yaml"
    path.write_text(
        "name: release\ndescription: a worse version for a while\nphases:\n"
        "  - {name: before, duration_seconds: 5, rate: 2}\n"
        "  - {name: released, duration_seconds: 5, rate: 2, injections: [{kind: model_release}]}\n"
        "  - {name: rolled-back, duration_seconds: 5, rate: 2}\n"
    )
    scenario = load_scenario(path)
    assert [plan_phase(scenario, k, 7).faults.model_alias for k in range(3)] == [None, "challenger", None]
