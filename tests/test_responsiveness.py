"""Responsiveness, on made-up curves: how soon a signal shows an incident and whether it comes back, against the
grader's windowed curve, with a time scale that follows the play's (grading/responsiveness.py)."""

from __future__ import annotations

import numpy as np

from grading import responsiveness
from grading.checks.drift import _earned
from grading.checks.performance import _timing_words
from grading.expected import Curve
from grading.judge import Verdict
from grading.responsiveness import Timing, allowed_delay, timings
from grading.roles import Role
from grading.signals import Origin, Series, Signal, Source

# The interview (60 minutes): baseline 600 s, feature drift 600, upstream bug 480, concept drift 720, latency 480,
# recovery 720. Labels come back 120 s late; the grader's window of 200 labels spans about 100 s.
STEP = 3.0
TIMES = np.arange(0, 3600 + STEP, STEP)
CONCEPT = (2160.0, 2880.0)
LABEL_DELAY, WINDOW = 120.0, 100.0


def _instant(t):
    """Accuracy of the predictions made at t: 0.80, 0.45 while the unit-change bug plays, 0.35 in concept drift."""
    return np.where((t >= 1680) & (t < 2160), 0.45, np.where((t >= 2160) & (t < 2880), 0.35, 0.80))


def _seen(t):
    return _instant(t - LABEL_DELAY)


def windowed() -> np.ndarray:
    """The grader's accuracy over its last 200 labels."""
    return np.array([_seen(np.linspace(max(0.0, x - WINDOW), x, 50)).mean() for x in TIMES])


def cumulative() -> np.ndarray:
    """A junior's accuracy over every label since the server started."""
    seen = _seen(TIMES)
    out = np.cumsum(seen) / np.arange(1, len(seen) + 1)
    out[TIMES < LABEL_DELAY + 30] = np.nan
    return out


BUG = (1680.0, 2160.0)
NORMAL = (TIMES >= 300) & (TIMES < 600)  # the baseline, settled


def concept_timings(signal: np.ndarray) -> list[Timing]:
    """The signal at the upstream bug (which already lowers accuracy) and at the concept drift that follows it."""
    bug = timings(
        TIMES, signal, windowed(), 1.0, "unit_change", *BUG, 480.0, 3600 - BUG[1], STEP, NORMAL, CONCEPT[0], 120
    )
    concept = timings(
        TIMES, signal, windowed(), 1.0, "concept_drift", *CONCEPT, 720.0, 3600 - CONCEPT[1], STEP, NORMAL, None, 120
    )
    return bug + concept


def test_a_window_of_recent_labels_shows_each_fall_and_comes_back_in_full():
    found = concept_timings(windowed() + np.random.default_rng(1).normal(0, 0.005, len(TIMES)))
    assert [(t.incident, t.kind, t.credit) for t in found if t.judged] == [
        ("unit_change", "onset", 1.0),
        ("concept_drift", "onset", 1.0),
        ("concept_drift", "return", 1.0),
    ]


def test_an_accuracy_since_start_shows_the_fall_late_and_never_comes_back():
    found = {(t.incident, t.kind): t for t in concept_timings(cumulative())}
    bug, back = found["unit_change", "onset"], found["concept_drift", "return"]
    # It slides from 0.80 and shows half of its slide only some 10 minutes after the accuracy fell: most of the
    # 8-minute phase late, little credit; and it never comes back: none.
    assert bug.signal_seconds > 480 and bug.credit < 0.2, bug
    assert back.signal_seconds is None and back.credit == 0.0
    assert not found["unit_change", "return"].judged  # the accuracy came back only after the concept drift
    assert responsiveness.credit(list(found.values()), "onset") < 0.6


def test_the_report_says_the_accuracy_is_cumulative_and_what_a_window_would_do():
    truth = Curve(Role.PERFORMANCE, None, "accuracy over the last 200 labels", windowed())
    all_so_far = Curve(Role.PERFORMANCE, None, "accuracy over all so far", cumulative())
    sig = Signal("churn_accuracy", [Origin(Source.SERIES, "churn_accuracy")], {"churn_accuracy"})
    v = Verdict(Role.PERFORMANCE, sig, Series({}, cumulative(), None), all_so_far, 0.0, 0.9, cumulative())
    words = _timing_words(v, concept_timings(cumulative()), truth)
    assert words.startswith("it is cumulative since start: it took ") and " min to show half of concept_drift" in words
    assert "never came back after concept_drift" in words
    assert "a window of recent labels shows it within" in words


def test_a_minute_scales_with_the_phase_but_never_below_what_the_graders_own_window_needs():
    assert allowed_delay(720, window_seconds=40, step=3) == 60  # the interview's concept drift: a minute
    assert allowed_delay(15, window_seconds=14, step=1) == 14  # 200 labels that take 14 s once they are in
    assert allowed_delay(15, window_seconds=1, step=5) == 15  # three steps of the grid
    assert allowed_delay(15, window_seconds=1, step=1) == 10  # never under a refresh, a scrape and an evaluation


def test_credit_falls_in_proportion_until_the_phase_is_over():
    def onset(seconds):  # the grader's curve showed it after 10 s; 20 s more count in full; the phase lasts 100 s
        return Timing("onset", "x", seconds, 10.0, 20.0, 100.0)

    assert onset(30).credit == 1.0
    assert abs(onset(65).credit - 0.5) < 1e-9
    assert onset(100).credit == 0.0 and onset(200).credit == 0.0
    assert onset(None).credit == 0.0
    assert Timing("return", "x", None, 0.0, 0.0, 10.0, judged=False).credit == 1.0


# Smoke's drift, 1-s grid at 20 predictions a second: baseline 25 s, monthly charges drift by 2 spreads over 12 s and
# hold until 70 s (a unit change and a renamed category on other inputs from 37 to 45 s), recovery 20 s. The grader's
# distance over its last 200 predictions spans 10 s.
D_TIMES = np.arange(0.0, 100.0, 1.0)
DRIFT = (25.0, 70.0)
OTHER_INPUTS = 37.0
D_NORMAL = (D_TIMES >= 12) & (D_TIMES < 25)


def _shift(t):
    return np.where(t < 25, 0.0, np.where(t < 37, 2.0 * (t - 25) / 12, np.where(t < 70, 2.0, 0.0)))


def _distance(seconds: float | None) -> np.ndarray:
    """The feature's distance from its baseline over the last `seconds` (None: every prediction since the start)."""
    return np.array(
        [_shift(np.linspace(0.0 if seconds is None else max(0.0, x - seconds), x, 60)).mean() for x in D_TIMES]
    )


def drift_timings(signal: np.ndarray, extreme_until: float | None = None) -> list[Timing]:
    return timings(
        D_TIMES, signal, _distance(10), 1.0, "covariate_drift", *DRIFT, 12.0, 30.0, 1.0, D_NORMAL,
        extreme_until=extreme_until,
    )  # fmt: skip


def test_a_drift_window_of_recent_predictions_shows_the_drift_and_comes_back_in_full():
    assert _earned(drift_timings(_distance(15))) == 1.0  # 300 predictions


def test_a_drift_since_start_never_comes_back_and_earns_half_at_most():
    found = {t.kind: t for t in drift_timings(_distance(None))}
    # 25 s of baseline weigh little: it shows half of its slide 18 s in, 7 s after the grader's own curve, in time
    # on a 90-s play; but it is still at half of its move when the play ends.
    assert found["onset"].signal_seconds > found["onset"].truth_seconds, found
    assert found["return"].signal_seconds is None and found["return"].credit == 0.0
    assert _earned(list(found.values())) <= 0.5


def test_a_share_of_drifted_inputs_is_timed_on_its_own_move_not_the_next_incidents():
    # One input of eight drifted once its 300-prediction window moved half a spread; three while the unit change
    # and the renamed category also play.
    share = np.where(_distance(15) > 0.5, 1 / 8, 0.0) + np.where((D_TIMES >= 38) & (D_TIMES < 55), 2 / 8, 0.0)
    seen_alone = drift_timings(share, extreme_until=OTHER_INPUTS)
    assert _earned(seen_alone) == 1.0, seen_alone
    # Held to the next incident's larger move, it would show half of "its" move only when the unit change began.
    assert drift_timings(share)[0].signal_seconds >= OTHER_INPUTS - DRIFT[0]
