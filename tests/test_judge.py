"""Role tests on made-up curves shaped like `smoke`: a signal fills the role whose truth it follows, moves where
that truth moves and stays put where it stays put; a signal another role explains better is not taken."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from grading.expected import SCORE, Curve, Expected
from grading.judge import NOT_THE_SCORES, PERFORMANCE_FIRST, Judge, Limits
from grading.play import Play
from grading.roles import Role
from grading.rubric import load_rubric
from grading.signals import Origin, Series, Signal, Source
from load.truth import PhaseRecord, PlayedGroundTruth, TimelineRecord
from model_service.faults import FaultState

T0 = 1_000_000.0
PHASES = [
    ("baseline", 0, 25, []),
    ("feature-drift", 25, 37, ["drift"]),
    ("upstream-bug", 37, 45, ["drift"]),
    ("concept-drift", 45, 60, ["drift", "concept"]),
    ("latency-fault", 60, 70, ["drift", "latency"]),
    ("recovery", 70, 90, []),
]
INJECTIONS = {
    "drift": {"kind": "covariate_drift", "feature": "monthly_charges", "shift": 40},
    "concept": {"kind": "concept_drift", "weights": {"tenure_months": 1.1}},
    "latency": {"kind": "latency", "seconds": 0.3},
}


def session() -> Play:
    phases = [
        PhaseRecord(
            index=k,
            name=name,
            start=T0 + a,
            end=T0 + b,
            planned_end=T0 + b,
            rate=20,
            requests_planned=0,
            ground_truth=PlayedGroundTruth(fraction=0.5, delay_seconds=2, wall_delay_seconds=2),
            faults=FaultState(),
            injections=[INJECTIONS[i] for i in inj],
        )
        for k, (name, a, b, inj) in enumerate(PHASES)
    ]
    timeline = TimelineRecord(
        scenario="synthetic",
        seed=1,
        speed=1,
        surprise=False,
        status="finished",
        planned_phases=[p[0] for p in PHASES],
        phases=phases,
    )
    return Play(None, timeline, [], now=T0 + 200)


def ramp(t, start, end, a, b):
    return np.clip((t - start) / (end - start), 0, 1) * (b - a) + a


def smooth(values, seconds):
    kernel = np.ones(seconds) / seconds
    return np.convolve(np.concatenate([np.full(seconds - 1, values[0]), values]), kernel, mode="valid")


TIMES = T0 + np.arange(0, 101, 1.0)
t = TIMES - T0
ACCURACY = (
    0.83
    - 0.05 * ramp(t, 25, 37, 0, 1) * (t < 45)
    - ramp(t, 45, 60, 0, 0.45) * (t < 62)
    - 0.45 * ((t >= 62) & (t < 64))
    - ramp(t, 64, 84, 0.45, 0) * (t >= 64)
)
DRIFT = ramp(t, 25, 37, 0, 1.6) * (t < 70) + ramp(t, 70, 80, 1.6, 0) * (t >= 70)
LATENCY = 0.01 + 0.3 * ((t >= 60) & (t < 70))
ERRORS = 0.3 * ((t >= 37) & (t < 45))  # requests refused while the upstream bug lasts (no incident of their own)
SCORES = 0.3 + 0.25 * DRIFT / 1.6  # the mean score rises with monthly_charges, not with the concept drift
# Among the labels: the drifted customers churn more, and more again in the concept drift.
CHURNERS = 0.26 + 0.15 * DRIFT / 1.6 + ramp(t, 45, 60, 0, 0.3) * (t < 62) + ramp(t, 62, 84, 0.3, 0) * (t >= 62)


def rolling_max(values, seconds):
    return np.array([values[max(0, k - seconds + 1) : k + 1].max() for k in range(len(values))])


def expected() -> Expected:
    e = Expected(TIMES)
    for w in (1, 10, 15, 20):
        e.add(Curve(Role.PERFORMANCE, None, f"accuracy over {w} s", smooth(ACCURACY, w)))
        e.add(Curve(Role.DRIFT, "monthly_charges", f"mean of monthly_charges over {w} s", smooth(DRIFT, w)))
        e.add(Curve(Role.LATENCY, None, f"latency over {w} s", smooth(LATENCY, w)))
        e.add(Curve(Role.LATENCY, None, f"slowest call over {w} s", rolling_max(LATENCY, w)))
        e.add(Curve(Role.ERRORS, None, f"share of failed calls over {w} s", smooth(ERRORS, w)))
    for w in (1, 10, 20, 30):
        e.add(Curve(Role.DRIFT, SCORE, f"mean of score over {w} s", smooth(SCORES, w)))
    for w in (1, 10, 15, 20):  # the accuracy's windows
        e.add_labels(Curve(Role.PERFORMANCE, None, f"share of churners in the labels over {w} s", smooth(CHURNERS, w)))
    return e


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge(session(), expected(), load_rubric().tolerances)


def judged(judge, values, feature=None, noisy=True) -> dict[Role, object]:
    """Verdicts by role for a series (with a little noise, as a real one has)."""
    scale = 0.01 * (np.nanmax(values) - np.nanmin(values) + 1e-9)
    noise = np.random.default_rng(0).normal(0, scale, len(values)) if noisy else 0.0
    sig = Signal("x", [Origin(Source.SERIES, "x")], {"x"})
    series = Series({}, values + noise, feature)
    return {v.role: v for v in judge.judge(sig, series)}


def taken(verdicts) -> set[Role]:
    return {role for role, v in verdicts.items() if v.passed}


def test_an_accuracy_over_a_window_fills_performance_and_says_it_is_accuracy_like(judge):
    v = judged(judge, smooth(ACCURACY, 15))
    assert taken(v) == {Role.PERFORMANCE}
    assert v[Role.PERFORMANCE].sense.startswith("accuracy-like")


def test_an_error_rate_fills_performance_too_and_says_it_is_error_like(judge):
    v = judged(judge, 1 - smooth(ACCURACY, 15))
    assert taken(v) == {Role.PERFORMANCE}
    assert v[Role.PERFORMANCE].sense.startswith("error-like")


def test_an_input_mean_is_drift_not_performance_however_it_correlates_with_accuracy(judge):
    mean_of_input = 0.65 + 0.4 * smooth(DRIFT, 10) / 1.6
    assert abs(np.corrcoef(mean_of_input, ACCURACY)[0, 1]) > 0.6  # a whole-session correlation would be fooled
    v = judged(judge, mean_of_input)
    assert Role.PERFORMANCE not in taken(v) and Role.DRIFT in taken(v)
    assert "explained" in v[Role.PERFORMANCE].test("explained best by this role").name
    assert not v[Role.PERFORMANCE].test("explained best by this role").passed


def test_a_score_drift_that_jumps_while_requests_fail_is_still_drift(judge):
    # The upstream bug both shifts the scores and gets requests refused: the error rate follows the jump as well
    # as the drift curve does, but not the drift before and after it, so it is no rival explanation.
    score_drift = smooth(DRIFT, 10) + 2 * smooth(((t >= 37) & (t < 47)).astype(float), 5)
    v = judged(judge, score_drift)
    assert taken(v) == {Role.DRIFT}
    assert v[Role.ERRORS].test("follows").passed and not v[Role.ERRORS].test("stays put").passed


def test_a_p_value_of_the_drifted_feature_is_drift_on_a_log_scale(judge):
    rng = np.random.default_rng(3)
    p_value = np.where(smooth(DRIFT, 10) > 0.2, 10.0 ** (-20 * smooth(DRIFT, 10)), rng.uniform(0.05, 1, len(t)))
    v = judged(judge, p_value, feature="monthly_charges", noisy=False)  # its own noise; never below 0
    assert taken(v) == {Role.DRIFT}
    assert v[Role.DRIFT].log and v[Role.DRIFT].rho < 0


def test_a_series_about_a_feature_is_never_taken_for_performance(judge):
    v = judged(judge, smooth(ACCURACY, 15), feature="tenure_months")
    assert Role.PERFORMANCE not in v


def test_a_latency_quantile_is_latency_not_performance_although_both_are_low_together(judge):
    p95 = 0.02 + 0.45 * ((t >= 61) & (t < 84))  # a p95 over [15s] stays up until the slow calls leave the window
    v = judged(judge, p95)
    assert Role.LATENCY in taken(v) and Role.PERFORMANCE not in taken(v)


def test_a_signal_that_does_not_move_where_its_role_moves_fails_the_move_test(judge):
    flat_then_late = smooth(ACCURACY, 15)
    flat_then_late[t < 75] = 0.83  # reacts to nothing during concept drift
    v = judged(judge, flat_then_late)
    assert not v.get(Role.PERFORMANCE) or not v[Role.PERFORMANCE].passed


def test_a_constant_fills_no_role(judge):
    sig = Signal("c", [Origin(Source.SERIES, "c")], {"c"})
    assert not [v for v in judge.judge(sig, Series({}, np.full(len(t), 0.8), None)) if v.passed]


def test_a_faithful_accuracy_moves_enough_at_a_smaller_second_incident():
    """A worse model released after a concept drift: accuracy falls a third as far. A signal that follows it is
    asked to move in proportion, not by the same share of its range as at the concept drift."""
    phases = [("baseline", 0, 25, []), ("concept-drift", 25, 40, ["concept"]), ("recovery", 40, 65, [])]
    phases += [("model-release", 65, 80, ["release"]), ("recovery-release", 80, 100, [])]
    injections = {**INJECTIONS, "release": {"kind": "model_release", "alias": "challenger"}}
    records = [
        PhaseRecord(
            index=k,
            name=name,
            start=T0 + a,
            end=T0 + b,
            planned_end=T0 + b,
            rate=20,
            requests_planned=0,
            ground_truth=PlayedGroundTruth(fraction=0.5, delay_seconds=2, wall_delay_seconds=2),
            faults=FaultState(),
            injections=[injections[i] for i in inj],
        )
        for k, (name, a, b, inj) in enumerate(phases)
    ]
    timeline = TimelineRecord(
        scenario="synthetic",
        seed=1,
        speed=1,
        surprise=False,
        status="finished",
        planned_phases=[p[0] for p in phases],
        phases=records,
    )
    times = T0 + np.arange(0, 111, 1.0)
    tt = times - T0
    accuracy = 0.8 - 0.45 * ((tt >= 27) & (tt < 42)) - 0.1 * ((tt >= 67) & (tt < 82))
    e = Expected(times)
    for w in (1, 10, 15, 20):
        e.add(Curve(Role.PERFORMANCE, None, f"accuracy over {w} s", smooth(accuracy, w)))
    judge = Judge(Play(None, timeline, [], now=T0 + 200), e, load_rubric().tolerances)
    noise = np.random.default_rng(0).normal(0, 0.004, len(tt))
    sig = Signal("x", [Origin(Source.SERIES, "x")], {"x"})
    verdict = next(
        v for v in judge.judge(sig, Series({}, smooth(accuracy, 15) + noise, None)) if v.role == Role.PERFORMANCE
    )
    assert verdict.passed, [(x.name, x.detail) for x in verdict.tests]
    assert verdict.moves["model_release"] < 0.3 * verdict.moves["concept_drift"] + 0.05


def test_no_signal_is_held_against_the_accuracy_when_the_server_was_down_while_it_moved():
    from grading.checks.performance import _accuracy_move_unseen
    from grading.gaps import Gap

    down_through_the_drift = session()
    down_through_the_drift.gaps = [Gap("model server", T0 + 8, T0 + 64)]  # a restart that took 56 s
    why = _accuracy_move_unseen(SimpleNamespace(session=down_through_the_drift))
    assert "down for" in why
    briefly_down = session()
    briefly_down.gaps = [Gap("model server", T0 + 8, T0 + 14)]  # back long before the concept drift (T0+45)
    assert _accuracy_move_unseen(SimpleNamespace(session=briefly_down)) == ""


def _counted(reads_scores: bool) -> Judge:
    """A judge for signals computed only from counted metrics (`reads_scores`: predictions by class among them)."""
    roles = frozenset({Role.TRAFFIC, Role.DRIFT, Role.ERRORS})
    return Judge(session(), expected(), load_rubric().tolerances, lambda _: Limits(roles, reads_scores))


def test_a_rate_of_churn_predictions_is_about_the_scores_not_the_drifted_input():
    # The share of customers predicted to churn rises because monthly_charges drifted; it would rise the same for a
    # worse model with unchanged inputs, and it does not say which input moved.
    churn_rate = 4 + 3 * smooth(DRIFT, 10) / 1.6
    v = judged(_counted(reads_scores=True), churn_rate)
    assert Role.DRIFT in taken(v)
    assert v[Role.DRIFT].about == SCORE


def test_a_ratio_of_requests_is_about_no_input_at_all():
    share_refused = 0.05 + 0.2 * smooth(DRIFT, 10) / 1.6
    assert Role.DRIFT not in judged(_counted(reads_scores=False), share_refused)


def test_a_statistic_of_the_scores_that_rises_as_accuracy_falls_is_not_performance(judge):
    # Over a long window, the scores' drift shows up late: just as accuracy falls in the concept drift.
    late_score_drift = smooth(SCORES, 30)
    v = judged(judge, late_score_drift)
    assert Role.PERFORMANCE not in taken(v)
    assert Role.DRIFT in taken(v) and v[Role.DRIFT].about == SCORE
    if Role.PERFORMANCE in v:
        assert not v[Role.PERFORMANCE].test(NOT_THE_SCORES).passed


def test_a_series_with_a_denormal_value_is_judged_without_a_warning(judge):
    # Grading once printed numpy's "overflow encountered in scalar divide" into the interviewer's terminal.
    values = smooth(ACCURACY, 15).copy()
    values[3] = 1e-320
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        judged(judge, values, noisy=False)


def test_the_share_of_churners_among_the_labels_is_not_performance(judge):
    # In a concept drift more customers churn than the model expects: the share of churners moves with accuracy,
    # but a model that stayed right would show the same move.
    v = judged(judge, smooth(CHURNERS, 15))
    assert Role.PERFORMANCE not in taken(v)
    if Role.PERFORMANCE in v:
        assert not v[Role.PERFORMANCE].test(NOT_THE_SCORES).passed


def test_a_signal_that_fills_performance_is_not_also_taken_for_an_inputs_drift():
    # Smoke's concept drift falls inside its covariate drift: over a long window the drifted input's distance rises
    # and falls just as accuracy falls and recovers, and a precision follows both as well.
    e = expected()
    lagging_distance = 2 * (0.83 - smooth(ACCURACY, 15))
    e.add(Curve(Role.DRIFT, "monthly_charges", "distance of monthly_charges over a long window", lagging_distance))
    v = judged(Judge(session(), e, load_rubric().tolerances), smooth(ACCURACY, 15))
    assert Role.PERFORMANCE in taken(v)
    assert Role.DRIFT not in taken(v)
    assert [t.name for t in v[Role.DRIFT].tests if not t.passed] == [PERFORMANCE_FIRST]
