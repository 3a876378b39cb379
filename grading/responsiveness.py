"""Responsiveness: how soon a signal shows an incident, and whether it comes back after it, measured against the
grader's own windowed curve for the role (accuracy over the last 200 labels; a feature's distance from its
baseline over the last 200 predictions).

For each incident the role must see, two timings:

- onset: the time from the incident's onset until the signal shows half of its move (its furthest departure from
  its level before the onset, the way the grader's curve moves, up to one onset phase after the incident ends: a
  cumulative signal keeps sliding after the incident), less the time the grader's own windowed curve takes to
  show half of its move (a window of recent labels needs its labels too);
- return: once the grader's curve is back (within half of its move from its level before), the time until the
  signal is back within half of its own move, less the time the grader's curve took; not judged when the grader's
  curve itself never came back before the end.

The time scale. A delay counts in full up to the longest of: a twelfth of the phase the incident begins in ("within
about a minute" is a minute of the interview's 12-minute concept drift); the time the grader's own window (200
labels or predictions) takes to show half of the incident once its data is in, the labels' delay left out: a
compressed play shortens phases but not the time a window fills at the same traffic, so on smoke a window of a few
hundred is as good as the grader's, as it is on the interview; three steps of the grader's grid; and 10 s (a
refresh of the candidate's statistics, a scrape and a rule evaluation). A signal that shows half of the incident only when its phase is over (or that comes back only
as the session ends) earns nothing, and so does one that never comes back; in between, the credit falls in
proportion. On smoke's 15-s concept drift (1 s grid) that is 10 s beyond the grader's own curve; on the
interview's 12-minute concept drift it is at least 60 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .context import Evidence

FULL_SHARE = 1 / 12  # of the phase: a minute of the interview's 12-minute concept drift
MIN_STEPS = 3  # ... but never less than this many steps of the grid
# ... nor than this: a refresh of the candidate's own statistics (the reference's every 5 s), a scrape and a rule
# evaluation. The untouched reference showed half of a 30-s concept drift 4 s after the grader's own curve on the
# Docker stack at speed 0.5, where a twelfth of the phase and three steps allowed 3 s.
MIN_SECONDS = 10.0
HALF = 0.5
MOVE_SHARE = 0.3  # an incident is timed when the grader's curve departs by this share of its range during it ...
FLAT_SHARE = 0.2  # ... from where it was within this share of its range of its normal level (for other kinds)
STEADY_POINTS = 2  # a level counts as reached when the signal holds it for this many grid points


@dataclass(frozen=True)
class Timing:
    """One timing of a signal at one incident: its onset or its return, against the grader's curve."""

    kind: str  # "onset" or "return"
    incident: str
    signal_seconds: float | None  # after the onset (or after the incident's end, for a return); None: never
    truth_seconds: float  # the grader's own windowed curve
    allowed: float  # a delay up to this beyond the grader's curve counts in full
    span: float  # the phase (or the rest of the session): a signal this late earns nothing
    judged: bool = True

    @property
    def delay(self) -> float | None:
        if self.signal_seconds is None:
            return None
        return max(0.0, self.signal_seconds - self.truth_seconds)

    @property
    def credit(self) -> float:
        if not self.judged:
            return 1.0
        if self.delay is None:
            return 0.0
        if self.delay <= self.allowed:
            return 1.0
        full, none = self.truth_seconds + self.allowed, max(self.span, self.truth_seconds + 2 * self.allowed)
        return float(min(1.0, max(0.0, (none - self.signal_seconds) / (none - full))))

    def describe(self, what: str) -> str:
        """In the report's words, e.g. 'took 14 min to show half of concept_drift (the grader's accuracy: 50 s)'."""
        if not self.judged:
            return f"the grader's own curve had not come back after {self.incident} by the end: its return not judged"
        if self.kind == "onset":
            if self.signal_seconds is None:
                return f"never showed {self.incident}"
            return (
                f"took {duration(self.signal_seconds)} to show half of {self.incident} ({what}: "
                f"{duration(self.truth_seconds)})"
            )
        if self.signal_seconds is None:
            return f"never came back after {self.incident}"
        return (
            f"came back {duration(self.signal_seconds)} after {what} did, after {self.incident}"
            if self.signal_seconds > self.truth_seconds
            else f"came back with {what} after {self.incident}"
        )


def duration(seconds: float) -> str:
    """'45 s', '14 min'."""
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def allowed_delay(phase_seconds: float, window_seconds: float, step: float) -> float:
    """The delay that still counts in full (the time-scale rule above); `window_seconds`: the time the grader's own
    window took to show the change once its data was in."""
    return max(FULL_SHARE * phase_seconds, window_seconds, MIN_STEPS * step, MIN_SECONDS)


def _held(mask: np.ndarray) -> int | None:
    """The first index from which `mask` holds for STEADY_POINTS points (or to the end)."""
    run = 0
    for k, ok in enumerate(mask):
        run = run + 1 if ok else 0
        if run >= STEADY_POINTS or (ok and k == len(mask) - 1):
            return k - run + 1
    return None


def normal_level(times: np.ndarray, values: np.ndarray, normal: np.ndarray | None, onset: float, lookback: float):
    """The series' normal level: its median where `normal` (the settled baseline) holds, else in the `lookback`
    seconds before the onset (NaN without values there)."""
    if normal is not None:
        base = values[normal & np.isfinite(values)]
        if len(base) >= 3:
            return float(np.median(base))
    before = values[(times >= onset - lookback) & (times < onset) & np.isfinite(values)]
    if len(before):
        return float(np.median(before))
    # No value before the onset (a window that fills only after it, a server that started late): its first values.
    finite = values[np.isfinite(values)]
    return float(np.median(finite[:3])) if len(finite) else math.nan


def half_move(
    times: np.ndarray,
    values: np.ndarray,
    pre: float,
    onset: float,
    until: float,
    direction: float,
    extreme_until: float | None = None,
) -> tuple[float | None, float]:
    """(seconds after `onset` until the series holds half of its move, its extreme) where the move is its furthest
    departure from its normal level `pre` in `direction` (+1 up, -1 down) up to `until` (or up to `extreme_until`,
    when given, though half of it may show as late as `until`); (None, ...) when it never moved that way."""
    window = (times >= onset) & (times <= until) & np.isfinite(values)
    if not np.isfinite(pre) or not window.any():
        return None, math.nan
    v, t = values[window], times[window]
    own = v[t <= extreme_until] if extreme_until is not None and (t <= extreme_until).any() else v
    extreme = float(own.max() if direction > 0 else own.min())
    move = direction * (extreme - pre)
    if move <= 0:
        return None, extreme
    k = _held(direction * (v - pre) >= HALF * move)
    return (float(t[k] - onset) if k is not None else None), extreme


def back(times: np.ndarray, values: np.ndarray, pre: float, extreme: float, since: float, until: float) -> float | None:
    """Seconds after `since` until the series holds within half of its move (pre -> extreme) from `pre`; None when
    it never does before `until`."""
    move = abs(extreme - pre)
    window = (times >= since) & (times <= until) & np.isfinite(values)
    if not window.any() or not move > 0:
        return None
    k = _held(np.abs(values[window] - pre) <= HALF * move)
    return float(times[window][k] - since) if k is not None else None


def timings(
    times: np.ndarray,
    signal: np.ndarray,
    truth: np.ndarray,
    sign: float,
    incident: str,
    onset: float,
    end: float,
    onset_phase: float,
    after_phase: float,
    step: float,
    normal: np.ndarray | None = None,
    next_onset: float | None = None,
    data_delay: float = 0.0,
    extreme_until: float | None = None,
) -> list[Timing]:
    """The onset and return timings of `signal` at one incident, against the grader's `truth` curve.

    `sign`: +1 when the signal moves the way the truth does (an error rate against accuracy: -1). Moves are measured
    from the normal level (`normal`: where the baseline has settled), so that an incident that follows another (the
    concept drift after an upstream bug that already lowered accuracy) is timed from where things were normal.
    `after_phase`: the time left after the incident (a return as late as that earns nothing). `next_onset`: when
    the next incident the role sees begins; a return after it belongs to that one. `data_delay`: how late the data
    behind the grader's curve comes (the labels' delay), which no window can make up for. `extreme_until`: the
    signal's move is what it shows up to then (a signal about no feature in particular sees the next incident on
    another input too: that move is not this one's)."""
    lookback = max(10.0, 0.5 * onset_phase)
    grid_end = float(times[-1])
    pre_truth = normal_level(times, truth, normal, onset, lookback)
    held = (times >= onset) & (times <= end) & np.isfinite(truth)
    if not np.isfinite(pre_truth) or not held.any():
        return []
    # The truth's way: its furthest departure while the incident lasts (its recovery after is no move).
    deviation = truth[held] - pre_truth
    direction = float(np.sign(deviation[np.argmax(np.abs(deviation))])) or -1.0
    horizon = min(grid_end, end + onset_phase)
    t_truth, ext_truth = half_move(times, truth, pre_truth, onset, horizon, direction)
    if t_truth is None:
        return []
    pre_sig = normal_level(times, signal, normal, onset, lookback)
    t_sig, ext_sig = half_move(times, signal, pre_sig, onset, horizon, direction * sign, extreme_until)
    allowed = allowed_delay(onset_phase, t_truth - data_delay, step)
    out = [Timing("onset", incident, t_sig, t_truth, allowed, onset_phase)]
    truth_back = back(times, truth, pre_truth, ext_truth, end, grid_end)
    if truth_back is None or (next_onset is not None and end + truth_back > next_onset):
        out.append(Timing("return", incident, None, 0.0, 0.0, after_phase, judged=False))
        return out
    sig_back = back(times, signal, pre_sig, ext_sig, end, grid_end) if t_sig is not None else None
    allowed = allowed_delay(onset_phase, truth_back - data_delay, step)
    out.append(Timing("return", incident, sig_back, truth_back, allowed, after_phase))
    return out


def _starts_a_move(session, times, truth, normal, incident, own_kinds) -> bool:
    if incident.kind in own_kinds:
        return moved(times, truth, normal, incident.start, incident.end) >= MOVE_SHARE
    first, _ = phase_lengths(session, incident)
    lookback = max(10.0, 0.5 * first)
    return (
        moved(times, truth, normal, incident.start, incident.start + first) >= MOVE_SHARE
        and moved(times, truth, normal, incident.start - lookback, incident.start) < FLAT_SHARE
    )


def moved(times: np.ndarray, truth: np.ndarray, normal: np.ndarray | None, onset: float, end: float) -> float:
    """How far the grader's curve departs from its normal level during an incident, as a share of its whole range
    (0 when it cannot tell)."""
    finite = np.isfinite(truth)
    pre = normal_level(times, truth, normal, onset, 10.0)
    held = (times >= onset) & (times <= end) & finite
    if not np.isfinite(pre) or not held.any() or finite.sum() < 3:
        return 0.0
    spread = float(np.max(np.abs(truth[finite] - pre)))
    return float(np.max(np.abs(truth[held] - pre)) / spread) if spread > 0 else 0.0


def credit(found: list[Timing], kind: str) -> float:
    """The mean credit of the judged timings of a kind; 1 when none was judged."""
    judged = [t.credit for t in found if t.kind == kind and t.judged]
    return float(np.mean(judged)) if judged else 1.0


def phase_lengths(session, incident) -> tuple[float, float]:
    """(the length of the phase the incident begins in, the rest of the session after the incident ends)."""
    onset = next((p for p in session.phases if p.start <= incident.start < session.phase_end(p)), None)
    onset_len = session.phase_end(onset) - onset.start if onset else incident.end - incident.start
    return onset_len, max(session.end - incident.end, 1.0)


def direction(values: np.ndarray, truth: np.ndarray, fallback: float) -> float:
    """+1 when the signal moves the way the grader's curve does (a distance against a distance), -1 the other way
    (an error rate against accuracy, a p-value against a distance)."""
    both = np.isfinite(values) & np.isfinite(truth)
    if both.sum() >= 5 and np.std(values[both]) > 0 and np.std(truth[both]) > 0:
        r = float(np.corrcoef(values[both], truth[both])[0, 1])
        if np.isfinite(r) and r != 0:
            return float(np.sign(r))
    return 1.0 if fallback >= 0 else -1.0


def of_signal(
    session,
    times: np.ndarray,
    values: np.ndarray,
    truth: np.ndarray,
    incidents,
    fallback_sign: float,
    normal=None,
    data_delay: float = 0.0,
    own_kinds: tuple[str, ...] = (),
    extreme_until: float | None = None,
):
    """Every timing of a signal at the incidents that move the grader's curve `truth`: those of the role's own
    kinds (`own_kinds`) during which it moves by at least MOVE_SHARE of its range, and any other that starts such a
    move in its first phase (on the interview, the upstream bug lowers accuracy before concept drift does; on smoke,
    a drift held through the concept drift does not). `normal`: where the baseline has settled; `data_delay`: how
    late the data behind the grader's curve comes (the labels' delay); `extreme_until`: see `timings`."""
    step = float(times[1] - times[0]) if len(times) > 1 else 1.0
    sign = direction(values, truth, fallback_sign)
    judged = [i for i in incidents if _starts_a_move(session, times, truth, normal, i, own_kinds)]
    out = []
    for k, inc in enumerate(judged):
        onset_len, after_len = phase_lengths(session, inc)
        later = judged[k + 1].start if k + 1 < len(judged) else None
        out += timings(
            times,
            values,
            truth,
            sign,
            inc.label,
            inc.start,
            inc.end,
            onset_len,
            after_len,
            step,
            normal,
            later,
            data_delay,
            extreme_until,
        )
    return out


def late_words(found: list[Timing], what: str, recent: str) -> str:
    """The report's words on the timings that cost something ('' when none did), e.g. 'took 14 min to show half of
    concept_drift (...); never came back ...; a window of recent labels shows it within 60 s'."""
    late = [t for t in found if t.judged and t.credit < 0.999]
    if not late:
        return ""
    allowed = min(t.allowed for t in late)
    return summary(late, what) + f"; a window of recent {recent} shows it within {duration(allowed)}"


def evidence(name: str, found: list[Timing]) -> list[Evidence]:
    """The judged timings of a signal as the report's evidence."""
    return [
        Evidence(
            name,
            "never" if t.signal_seconds is None else f"{t.signal_seconds:.0f} s",
            f"{t.kind} at {t.incident}: the grader's curve {t.truth_seconds:.0f} s; a delay up to "
            f"{t.allowed:.0f} s counts in full, one of {t.span:.0f} s "
            f"({'the phase' if t.kind == 'onset' else 'the rest of the session'}) earns nothing; credit {t.credit:.2f}",
        )
        for t in found
        if t.judged
    ]


def summary(found: list[Timing], what: str) -> str:
    """The timings in the report's words, e.g. 'took 14 min to show half of concept_drift (...); never came back'."""
    return "; ".join(t.describe(what) for t in found)


def settled_baseline(session, times: np.ndarray) -> np.ndarray | None:
    """Where the baseline has settled (its second half, windows full): the normal level of every curve."""
    base = session.baseline()
    if base is None:
        return None
    return (times >= (base[0] + base[1]) / 2) & (times < base[1])


def label_delay(session, incident=None) -> float:
    """How late the labels came, as played: in the phase an incident begins in (else the longest of the play)."""
    phases = [p for p in session.phases if incident is None or p.start <= incident.start < session.phase_end(p)]
    return max((p.ground_truth.wall_delay_seconds for p in phases or session.phases), default=0.0)
