"""Role tests: does a signal's series behave like the role says it must, against the hidden timeline?

For each shape role a series is held against the grader's own curves for that role (grading/expected.py), in
four tests, all of which it must pass to fill the role:

1. follows: it follows the role's curve over the session (the best of the curve's windows, and of a few
   seconds' lag), both in level (rank correlation) and in change (correlation of its changes over half the
   shortest phase, which is what tells apart two incidents that overlap in time), the same way for both. Either
   direction counts, and the verdict says which it took: an accuracy-like signal falls with accuracy, an
   error-like one rises; a distance rises with drift, a p-value falls (a signal spread over orders of
   magnitude, like a p-value, is judged on a log scale).
2. moves: at each incident the role must see (concept drift for performance, a drift of the feature for drift,
   the latency fault for latency ...), it moves away from where it was, the way the curve says, by more than its
   noise and by a good part of its whole range.
3. stays put: where the role's curve stays at its normal level (other incidents included), so does the signal.
4. explained best by this role: no other role it passes the first three tests for follows its changes better.
   An input mean that moved while accuracy fell is a drift signal, not a performance one. Drift and data quality are siblings: a share
   of out-of-range values may well be both.

A performance signal must also follow accuracy better than it follows the model's scores alone or the labels alone
(the share of churners among them). When a drift of the inputs moves the scores while accuracy falls (or a score
statistic over a long window catches up with a drift just as accuracy falls), a statistic of the scores follows both;
in a concept drift the share of churners moves with accuracy, but a model that stayed right would show the same move.
Each follows its own curve at least as well as accuracy's. The other way round, a series that names no feature and
fills performance is not taken for an input's drift or data quality: where a concept drift falls inside a drift of
the inputs, a precision follows the input's distance as well as it follows accuracy.

A series that names a feature (a label value, or a metric name with the feature's name in it) is only about that
feature's drift or data quality. A series that names none and is computed only from counted metrics (predictions,
requests, errors, latencies) is about no input: of the input roles' curves it is held against the model's scores
only, and only when it reads what the model answered (a score histogram, predictions by class). The rate of churn
predictions rises when an input drifts, but it would rise just the same for a worse model with unchanged inputs, and
it says nothing of which input moved. With labels but no incident that moves accuracy, a performance signal is judged
by its level instead: it stays near the accuracy (or 1 - accuracy) the grader computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
from scipy.stats import rankdata

from .expected import SCORE, Curve, Expected, accuracy_curve, unobserved
from .play import Incident, Play
from .roles import SEES, Role
from .rubric import Tolerances
from .signals import Series, Signal

LAGS_SECONDS = (0, 2, 5)
EXPLAINED = "explained best by this role"
PERFORMANCE_FIRST = "not a performance signal"
# How much better (levels and changes together) a performance signal must follow accuracy than the scores or the
# labels alone. Measured on three smoke plays: accuracy gauges beat the share of churners by 0.08-0.15, precision the
# scores by 0.04-0.09; a drift statistic of the scores over 500 predictions came within 0.02 either way of accuracy,
# and observed churn rates fell 0.02-0.15 short of the share of churners.
RIVAL_MARGIN = 0.03
NOT_THE_SCORES = "follows accuracy better than the scores or the labels alone"
CHANGE_FIT = 0.4  # least correlation of changes (on top of the tolerance's level correlation)
INPUT_ROLES = frozenset({Role.DRIFT, Role.DATA_QUALITY})  # siblings: one signal may well be both
FLAT_SHARE = 0.2  # the curve is "at its normal level" within this share of its range ...
SIGNAL_FLAT_SHARE = 0.35  # ... and the signal must then be within this share of its own range
STAY_PUT_FRACTION = 0.8
MOVE_SHARE = 0.3  # a move at an incident is at least this share of the signal's range (at a release, scaled) ...
NOISE_MULTIPLE = 3.0  # ... and this many times its baseline noise
AFTER_INCIDENT_SECONDS = 15  # windows and scrapes lag: a move may show up this long after the incident
LOG_SPAN = 100.0  # positive values spread over more than this factor are judged on a log scale too


@dataclass(frozen=True)
class Test:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Fit:
    """How a series follows one of the grader's curves: correlation of levels, correlation of changes."""

    curve: Curve
    lag: float
    level: float
    change: float
    column: int = -1  # of the judge's matrix

    @property
    def score(self) -> float:
        return (abs(self.level) + abs(self.change)) / 2 if np.sign(self.level) == np.sign(self.change) else 0.0


@dataclass
class Verdict:
    role: Role
    signal: Signal
    series: Series
    curve: Curve | None  # the grader's curve it follows best (its feature: what it is about)
    lag: float
    rho: float  # how it follows that curve (sign: which way)
    values: np.ndarray  # the series as judged (on a log scale when `log`)
    log: bool = False
    primary: bool = True  # the role that explains it best
    tests: list[Test] = field(default_factory=list)
    moves: dict[str, float] = field(default_factory=dict)  # incident label -> the signal's move there

    @property
    def passed(self) -> bool:
        return bool(self.tests) and all(t.passed for t in self.tests)

    @property
    def feature(self) -> str | None:
        """The feature the candidate's series names (a label value or its metric name), if any."""
        return self.series.feature

    @property
    def about(self) -> str | None:
        """The input the curve it follows is about (a feature, or the model's scores)."""
        return self.curve.feature if self.curve else None

    @property
    def name(self) -> str:
        return self.series.describe(self.signal.expr)

    @property
    def sense(self) -> str:
        if self.role == Role.PERFORMANCE:
            return (
                "accuracy-like (falls when accuracy falls)"
                if self.rho >= 0
                else "error-like (rises when accuracy falls)"
            )
        return "rises with it" if self.rho >= 0 else "falls as it rises (like a p-value)"

    def summary(self) -> str:
        curve = self.curve.variant if self.curve else "the grader's curve"
        lag = f", {self.lag:g} s behind" if self.lag else ""
        scale = ", on a log scale" if self.log else ""
        return f"{self.name} follows {curve} (rho {self.rho:+.2f}{lag}{scale}; {self.sense}); {self.signal.where}"

    def test(self, name: str) -> Test | None:
        return next((t for t in self.tests if t.name == name), None)


def _centred(a: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit length, so that a dot product is their correlation."""
    a = a - a.mean(axis=0)
    norm = np.sqrt((a * a).sum(axis=0))
    return a / np.where(norm > 0, norm, np.inf)


def _ranks(a: np.ndarray) -> np.ndarray:
    return _centred(rankdata(a, axis=0))


def _shifted(values: np.ndarray, steps: int) -> np.ndarray:
    if steps <= 0:
        return values
    return np.concatenate([np.full(steps, values[0]), values[:-steps]])


def _robust_noise(values: np.ndarray) -> float:
    v = values[np.isfinite(values)]
    if len(v) < 3:
        return 0.0
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def log_scale(values: np.ndarray) -> np.ndarray | None:
    """log10 of a positive series spread over orders of magnitude (zeros floored below its smallest positive
    value); None for any other series."""
    finite = values[np.isfinite(values)]
    positive = finite[finite > 0]
    if len(finite) < 3 or (finite < 0).any() or not len(positive) or positive.max() < LOG_SPAN * positive.min():
        return None
    floor = positive.min() / 10
    return np.log10(np.where(np.isfinite(values), np.maximum(values, floor), np.nan))


@dataclass(frozen=True)
class Limits:
    """What a signal computed only from counted metrics can be, from their counting roles."""

    roles: frozenset[Role]  # the shape roles it can fill
    scores: bool  # it reads what the model answered (scores, classes): the one input it can be about


class Judge:
    """Judges series against `expected`. `limits(signal)` may say what a signal can be at all (from the counting
    roles of the metrics it reads); None: anything."""

    def __init__(
        self,
        session: Play,
        expected: Expected,
        tol: Tolerances,
        limits: Callable[[Signal], Limits | None] = lambda _: None,
    ):
        self.session, self.expected, self.tol, self.limits = session, expected, tol, limits
        self.times = expected.grid
        self.step = float(self.times[1] - self.times[0]) if len(self.times) > 1 else 1.0
        base = session.baseline()
        self.base_mask = (
            (self.times >= base[0]) & (self.times < base[1])
            if base
            else self.times < self.times[0] + 0.2 * (self.times[-1] - self.times[0])
        )
        # The baseline's second half: windows have filled up (the first labels make a noisy accuracy).
        self.settled = self.base_mask & (self.times >= (base[0] + base[1]) / 2 if base else self.base_mask)
        # After the baseline; neither it nor that counts the time the server or Prometheus was down.
        observed = ~unobserved(session, self.times)
        self.after_base = ~self.base_mask & observed
        self.base_mask &= observed
        self.settled &= observed
        self.incidents = session.incidents()
        # Where no incident is under way (nor has just ended), after the baseline.
        self.calm = self.after_base.copy()
        for inc in self.incidents:
            self.calm &= ~((self.times >= inc.start) & (self.times <= inc.end + AFTER_INCIDENT_SECONDS))
        # Changes are taken over half the shortest phase: fine enough to tell which incident a move follows.
        shortest = min((session.phase_end(p) - p.start for p in session.phases), default=10.0)
        self.change_steps = max(2, int(round(shortest / 2 / self.step)))
        self.columns: list[tuple[Curve, float]] = []
        stacked = []
        # The labels' curves are columns too (a performance signal is held against them), but no role's.
        self.no_role = {id(c) for c in expected.labels}
        for curves in (*expected.curves.values(), expected.labels):
            for c in curves:
                for lag in LAGS_SECONDS:
                    self.columns.append((c, lag))
                    stacked.append(_shifted(c.values, int(round(lag / self.step))))
        self.matrix = np.stack(stacked, axis=1) if stacked else np.zeros((len(self.times), 0))
        self.changes = self._change(self.matrix)
        self.rows = np.all(np.isfinite(self.matrix), axis=1) if stacked else np.zeros(len(self.times), bool)
        self.change_rows = self.rows & np.all(np.isfinite(self.changes), axis=1) if stacked else self.rows
        self._cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        self.accuracy_moves = bool(self._must_move(Role.PERFORMANCE, None))

    def _change(self, a: np.ndarray) -> np.ndarray:
        out = np.full(a.shape, np.nan)
        k = self.change_steps
        if len(a) > k:
            out[k:] = a[k:] - a[:-k]
        return out

    # --- fitting --------------------------------------------------------------------------------------
    def _correlations(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For every (curve, lag) column: the correlation of levels (rank or linear, whichever is stronger: ranks
        for a signal that saturates, linear for one that sits still and then spikes) and of changes."""
        n = len(self.columns)
        mask = self.rows & np.isfinite(values)
        changes = self._change(values[:, None])[:, 0]
        cmask = mask & self.change_rows & np.isfinite(changes)
        if mask.sum() < 10 or np.nanstd(values[mask]) == 0 or cmask.sum() < 5 or np.std(changes[cmask]) == 0:
            return np.zeros(n), np.zeros(n)
        key = mask.tobytes() + cmask.tobytes()
        if key not in self._cache:
            self._cache[key] = (_ranks(self.matrix[mask]), _centred(self.matrix[mask]), _centred(self.changes[cmask]))
        level_ranks, level_cols, change_cols = self._cache[key]
        ranked, linear = level_ranks.T @ _ranks(values[mask]), level_cols.T @ _centred(values[mask])
        levels = np.where(np.abs(linear) > np.abs(ranked), linear, ranked)
        return levels, change_cols.T @ _centred(changes[cmask])

    @staticmethod
    def _allowed(curve: Curve, series: Series, limits: Limits | None) -> bool:
        if series.feature is not None:
            return curve.role in INPUT_ROLES and curve.feature == series.feature
        if limits is not None and curve.role in INPUT_ROLES:
            return limits.scores and curve.feature == SCORE
        return True

    def fits(self, series: Series, values: np.ndarray | None = None, limits: Limits | None = None) -> dict[Role, Fit]:
        """The best fit of each role the series may fill (best by level and change together)."""
        best: dict[Role, Fit] = {}
        for fit in self._every_fit(series.values if values is None else values):
            if id(fit.curve) in self.no_role or not self._allowed(fit.curve, series, limits):
                continue
            if fit.curve.role not in best or fit.score > best[fit.curve.role].score:
                best[fit.curve.role] = fit
        return best

    def best_of(self, values: np.ndarray, curves: list[Curve]) -> Fit | None:
        """How the series follows the best of `curves` (and of a few seconds' lag), level and change together."""
        wanted = {id(c) for c in curves}
        return max(
            (fit for fit in self._every_fit(values) if id(fit.curve) in wanted), key=lambda fit: fit.score, default=None
        )

    def _every_fit(self, values: np.ndarray) -> Iterator[Fit]:
        """How the series follows each column of the matrix (a curve at a lag) where both correlations exist."""
        levels, changes = self._correlations(values)
        for k, ((curve, lag), rl, rc) in enumerate(zip(self.columns, levels, changes)):
            if np.isfinite(rl) and np.isfinite(rc):
                yield Fit(curve, lag, float(rl), float(rc), k)

    def _partial(self, values: np.ndarray, fit: Fit, rival: Fit) -> tuple[float, float]:
        """How much of the series' changes each of two curves explains that the other does not: the partial
        correlations (fit | rival) and (rival | fit). Two curves that move together all session cannot be told
        apart: both get 1."""
        changes = self._change(values[:, None])[:, 0]
        mask = self.change_rows & np.isfinite(values) & np.isfinite(changes)
        a, b = self.changes[mask, fit.column], self.changes[mask, rival.column]
        if mask.sum() < 5 or np.std(a) == 0 or np.std(b) == 0:
            return abs(fit.change), abs(rival.change)
        r_ab = float(np.corrcoef(a, b)[0, 1])
        if abs(r_ab) > 0.95:
            return 1.0, 1.0
        r_a, r_b = abs(fit.change), abs(rival.change)
        r_ab = r_ab * np.sign(fit.change) * np.sign(rival.change)  # in the directions each is followed
        denominator_a = np.sqrt(max(1e-12, (1 - r_b**2) * (1 - r_ab**2)))
        denominator_b = np.sqrt(max(1e-12, (1 - r_a**2) * (1 - r_ab**2)))
        return (r_a - r_b * r_ab) / denominator_a, (r_b - r_a * r_ab) / denominator_b

    # --- judging --------------------------------------------------------------------------------------
    def judge(self, signal: Signal, series: Series) -> list[Verdict]:
        """A verdict for each shape role this series comes near enough to be worth testing."""
        values, log = series.values, False
        limits = self.limits(signal)
        allowed = limits.roles if limits is not None else None
        fits = self.fits(series, limits=limits)
        logged = log_scale(series.values)
        if logged is not None:
            fits_log = self.fits(series, logged, limits)
            if max((f.score for f in fits_log.values()), default=0) > max((f.score for f in fits.values()), default=0):
                values, log, fits = logged, True, fits_log
        if allowed is not None:
            fits = {role: f for role, f in fits.items() if role in allowed}
        near = {role: fit for role, fit in fits.items() if fit.score >= self.tol.role_fit - 0.25}
        # A rival must be a role the series could fill on its own evidence: one whose curve it follows, that it
        # moves with and stays put with. A curve it merely resembles in places (an error rate that rose while
        # the scores drifted) explains nothing the signal's own role does not.
        alone = {role: self._verdict(role, signal, series, fit, values, log, None) for role, fit in near.items()}
        viable = {role for role, v in alone.items() if all(t.passed for t in v.tests if t.name != EXPLAINED)}
        # A series that names no feature and follows accuracy, moving at the concept drift (which no input statistic
        # sees) and staying put with it, is about the model: an input it also moved with (a drift that hurt the
        # model) is no rival of its performance.
        about_the_model = series.feature is None and Role.PERFORMANCE in viable
        # ... and so is one that does all that but follows the share of churners among the labels about as well (a
        # recall): about the model or its labels, never an input's drift, whichever input it also moved with.
        of_model_or_labels = (
            series.feature is None
            and Role.PERFORMANCE in alone
            and Role.PERFORMANCE not in viable
            and all(t.passed for t in alone[Role.PERFORMANCE].tests if t.name not in (EXPLAINED, NOT_THE_SCORES))
            and self._labels_rival_it(values)
        )
        verdicts: list[Verdict] = []
        for role, fit in near.items():
            if of_model_or_labels and role in INPUT_ROLES:
                continue
            rivals = [
                fits[r]
                for r in viable
                if r != role
                and not ({r, role} <= INPUT_ROLES)
                and not (about_the_model and role == Role.PERFORMANCE and r in INPUT_ROLES)
            ]
            rival = max(rivals, key=lambda f: abs(f.change), default=None)
            verdicts.append(
                alone[role] if rival is None else self._verdict(role, signal, series, fit, values, log, rival)
            )
        if not self.accuracy_moves and series.feature is None and (allowed is None or Role.PERFORMANCE in allowed):
            level = self._accuracy_level(signal, series)
            if level is not None:
                verdicts = [v for v in verdicts if v.role != Role.PERFORMANCE] + [level]
        performance = next((v for v in verdicts if v.role == Role.PERFORMANCE and v.passed), None)
        if performance is not None and series.feature is None:
            # Smoke's concept drift falls inside its covariate drift: a precision can follow an input's distance as
            # well as accuracy. A signal that names no feature and fills performance is about the model.
            for v in verdicts:
                if v.role in INPUT_ROLES:
                    v.tests.append(Test(PERFORMANCE_FIRST, False, f"it fills performance: {performance.summary()}"))
        return verdicts

    def _verdict(
        self, role: Role, signal: Signal, series: Series, fit: Fit, values: np.ndarray, log: bool, rival: Fit | None
    ) -> Verdict:
        curve, lag = fit.curve, fit.lag
        if rival is None:
            mine, theirs = abs(fit.change), 0.0
        else:
            mine, theirs = self._partial(values, fit, rival)
        better = theirs - mine
        v = Verdict(role, signal, series, curve, lag, fit.level, values, log, primary=better <= 0)
        x = _shifted(curve.values, int(round(lag / self.step)))
        same_sense = np.sign(fit.level) == np.sign(fit.change)
        v.tests.append(
            Test(
                "follows",
                abs(fit.level) >= self.tol.role_fit and abs(fit.change) >= CHANGE_FIT and bool(same_sense),
                f"levels: correlation {fit.level:+.2f} (at least {self.tol.role_fit} needed); "
                f"changes over {self.change_steps * self.step:g} s: correlation {fit.change:+.2f} "
                f"(at least {CHANGE_FIT} needed, the same way) with {curve.variant}"
                f"{f', {lag:g} s behind' if lag else ''}{', on a log scale' if log else ''}",
            )
        )
        v.tests.append(self._moves(v, values, x))
        v.tests.append(self._stays_put(values, x))
        if role == Role.PERFORMANCE:
            v.tests.append(self._not_the_scores(fit, values))
        rival_name = f"{rival.curve.role.title} ({rival.curve.variant})" if rival else ""
        v.tests.append(
            Test(
                EXPLAINED,
                better <= self.tol.role_margin,
                "no other role explains its changes"
                if rival is None
                else f"of its changes, this role explains {mine:.2f} that {rival_name} does not, and that "
                f"one {theirs:.2f} that this role does not (partial correlations)",
            )
        )
        return v

    def _labels_rival_it(self, values: np.ndarray) -> bool:
        """Whether the share of churners among the labels follows the series at least as well as the model's scores
        do (a recall, not a statistic of the model's outputs)."""
        labels = self.best_of(values, self.expected.labels)
        scores = self.best_of(values, self.expected.curves.get((Role.DRIFT, SCORE), []))
        return labels is not None and labels.score > 0 and (scores is None or labels.score >= scores.score)

    def _not_the_scores(self, fit: Fit, values: np.ndarray) -> Test:
        """Accuracy is known from the labels and the model's answers together: a signal that follows either alone
        as well (the scores, or the share of churners among the labels) says nothing of how right the model is."""
        rivals = [
            f
            for f in (
                self.best_of(values, self.expected.curves.get((Role.DRIFT, SCORE), [])),
                self.best_of(values, self.expected.labels),
            )
            if f is not None and f.score > 0
        ]
        if not rivals:
            return Test(NOT_THE_SCORES, True, "it follows neither the model's scores nor the share of churners")
        rival = max(rivals, key=lambda f: f.score)
        return Test(
            NOT_THE_SCORES,
            fit.score >= rival.score + RIVAL_MARGIN,
            f"it follows {fit.curve.variant} by {fit.score:.2f} (levels and changes together), "
            f"{rival.curve.variant} by {rival.score:.2f} (at least {RIVAL_MARGIN} better needed)",
        )

    def _reference(self, values: np.ndarray) -> float:
        base = values[self.settled & np.isfinite(values)]
        if len(base) >= 3:
            return float(np.median(base))
        # A series born during the session (a share of 422s, from a counter created at the first 422): its level
        # where no incident is under way, not its first values, which are the incident itself.
        calm = values[self.calm & np.isfinite(values)]
        if len(calm) >= 3:
            return float(np.median(calm))
        finite = values[np.isfinite(values)]
        return float(np.median(finite[: max(3, len(finite) // 5)])) if len(finite) else np.nan

    def _must_move(self, role: Role, feature: str | None) -> list[Incident]:
        out = []
        for inc in self.incidents:
            if role not in SEES.get(inc.kind, frozenset()):
                continue
            if role in INPUT_ROLES and feature is not None and inc.features and feature not in inc.features:
                continue
            out.append(inc)
        return out

    def _range(self, values: np.ndarray, ref: float) -> float:
        """How far a series gets from its normal level, once settled (not counting a noisy start)."""
        after = values[(self.settled | self.after_base) & np.isfinite(values)]
        return float(np.max(np.abs(after - ref))) if len(after) else 0.0

    def _moves(self, v: Verdict, s: np.ndarray, x: np.ndarray) -> Test:
        s_ref, x_ref = self._reference(s), self._reference(x)
        s_range, x_range = self._range(s, s_ref), self._range(x, x_ref)
        noise = _robust_noise(s[self.settled])
        results = []
        about = v.about if v.about != SCORE else None
        for inc in self._must_move(v.role, about):
            window = (self.times >= inc.start) & (self.times <= inc.end + v.lag + AFTER_INCIDENT_SECONDS)
            before = (self.times >= inc.start - 10) & (self.times < inc.start)
            x_pre = np.nanmedian(x[before]) if np.isfinite(x[before]).any() else x_ref
            s_pre = np.nanmedian(s[before]) if np.isfinite(s[before]).any() else s_ref
            xw, sw = x[window], s[window]
            if not np.isfinite(xw).any() or not np.isfinite(sw).any():
                continue
            x_move = xw[np.nanargmax(np.abs(xw - x_pre))] - x_pre
            if abs(x_move) < FLAT_SHARE * x_range:
                continue  # the grader's own curve hardly moved here: nothing to expect
            sign = np.sign(v.rho) * np.sign(x_move)
            move = float(np.nanmax(sign * (sw - s_pre)))
            v.moves[inc.label] = move
            # A worse model released moves a faithful accuracy by how much worse it is, a third as far as a concept
            # drift may have: at a release the share of its range asked for is in proportion to the curve's move.
            share = (
                MOVE_SHARE * min(1.0, abs(x_move) / max(x_range, abs(x_move), 1e-12))
                if inc.kind == "model_release"
                else MOVE_SHARE
            )
            ok = move > 0 and move >= share * s_range and move > NOISE_MULTIPLE * noise
            results.append((inc, ok, move))
        if not results:
            return Test("moves", False, "no incident played where it should have moved")
        failed = [inc for inc, ok, _ in results if not ok]
        detail = "; ".join(
            f"{'moved' if ok else 'did not move enough at'} {inc.label} ({m:+.3g}{', the right way' if ok else ''})"
            for inc, ok, m in results
        )
        return Test("moves", not failed, detail + f"; its normal level {s_ref:.3g}, noise {noise:.2g}")

    def _stays_put(self, s: np.ndarray, x: np.ndarray) -> Test:
        s_ref, x_ref = self._reference(s), self._reference(x)
        if not np.isfinite(s_ref) or not np.isfinite(x_ref):
            return Test("stays put", False, "no normal level to compare with")
        x_dev, s_dev = np.abs(x - x_ref), np.abs(s - s_ref)
        x_range, s_range = self._range(x, x_ref), self._range(s, s_ref)
        flat = (x_dev <= FLAT_SHARE * x_range) & np.isfinite(s_dev) & (self.settled | self.after_base)
        if flat.sum() < 5:
            return Test("stays put", True, "the curve is never at its normal level long enough to tell")
        share = float(np.mean(s_dev[flat] <= SIGNAL_FLAT_SHARE * max(s_range, 1e-12)))
        return Test(
            "stays put",
            share >= STAY_PUT_FRACTION,
            f"at its normal level {share:.0%} of the time the grader's curve was at its own",
        )

    def _accuracy_level(self, signal: Signal, series: Series) -> Verdict | None:
        """No incident moved accuracy: a performance signal stays near the accuracy (or error rate) of the labels."""
        curve = accuracy_curve(self.expected, self.tol.accuracy_window_labels)
        if curve is None:
            return None
        x, s = curve.values, series.values
        both = np.isfinite(x) & np.isfinite(s)
        if both.sum() < 10 or np.std(s[both]) == 0:
            return None  # a constant is a setting, not a measurement
        truth, level = float(np.median(x[both])), float(np.median(s[both]))
        if not 0 <= level <= 1:
            return None
        rho = 1.0 if abs(level - truth) <= abs(level - (1 - truth)) else -1.0
        target = truth if rho > 0 else 1 - truth
        if abs(level - target) > 0.15:
            return None
        v = Verdict(Role.PERFORMANCE, signal, series, curve, 0.0, rho, s)
        v.tests.append(
            Test(
                "level",
                abs(level - target) <= 0.05,
                f"median {level:.3f} against the labels' {'accuracy' if rho > 0 else 'error rate'} "
                f"{target:.3f} (within 0.05 needed)",
            )
        )
        spread = float(np.percentile(np.abs(s[both] - level), 90))
        v.tests.append(Test("steady", spread <= 0.1, f"90% of the time within {spread:.3f} of its median"))
        return v
