"""What a signal in each role should look like over the session, computed by the grader from the hidden truth.

For each shape role the grader builds curves on the session's time grid from what really happened: the
accuracy of the labels as they arrived (performance), each touched feature's distance from its baseline
distribution (drift), its share of nulls and out-of-range values (data quality), and the client's latency,
error share and request rate from the ledger. A candidate picks their own window (the last 200 labels, the
last minute, all time), so each curve comes in several windows ("variants"); a signal is judged against the
variant that fits it best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from load.scenario import DATA_KINDS
from model_service.spec import default_spec

from .play import Play
from .roles import Role

COUNT_WINDOWS = (30, 60, 100, 200, 300, 500, 1000)  # the last N labels or predictions
TIME_WINDOWS = (10, 30, 60, 120, 300)  # the last T seconds
LEDGER_WINDOWS = (5, 10, 15, 20, 30, 60, 120)
SCORE = "score"  # the model's output, judged like a feature for prediction drift
# After a gap (the server or Prometheus down), the candidate's windows refill: judged again this much later.
SETTLE_SECONDS = 15


@dataclass(frozen=True)
class Curve:
    role: Role
    feature: str | None
    variant: str  # e.g. "accuracy over the last 200 labels"
    values: np.ndarray  # one value per grid time (NaN where undefined)


@dataclass
class Expected:
    grid: np.ndarray
    curves: dict[tuple[Role, str | None], list[Curve]] = field(default_factory=dict)
    # What no role is about, held against performance signals: the share of churners among the labels. It moves with
    # accuracy in a concept drift, but it is a property of the customers, not of the model.
    labels: list[Curve] = field(default_factory=list)

    def add(self, curve: Curve) -> None:
        if _enough(curve):
            self.curves.setdefault((curve.role, curve.feature), []).append(curve)

    def add_labels(self, curve: Curve) -> None:
        if _enough(curve):
            self.labels.append(curve)

    def features(self, role: Role) -> list[str]:
        return sorted(f for r, f in self.curves if r == role and f is not None)


def _enough(curve: Curve) -> bool:
    """Five points or more: fewer (a curve born at the session's last seconds) follow nothing worth judging."""
    return np.isfinite(curve.values).sum() >= 5


def accuracy_curve(expected: Expected, labels: int) -> Curve | None:
    """The grader's accuracy over its window of the last `labels` labels (the rubric's accuracy_window_labels)."""
    wanted = f"the last {labels} labels"
    return next((c for c in expected.curves.get((Role.PERFORMANCE, None), []) if c.variant.endswith(wanted)), None)


def drift_curve(expected: Expected, feature: str, predictions: int) -> Curve | None:
    """The grader's distance of a feature from its baseline over its last `predictions` predictions."""
    wanted = f"the last {predictions} predictions"
    return next(
        (
            c
            for c in expected.curves.get((Role.DRIFT, feature), [])
            if c.variant.startswith("distance") and c.variant.endswith(wanted)
        ),
        None,
    )


def grid(session: Play, tail_seconds: float) -> np.ndarray:
    """The grader's time grid: the session and a tail after it, at most about 1,200 points."""
    end = min(session.end + tail_seconds, max(session.now, session.end))
    span = max(end - session.start, 1.0)
    step = max(1.0, math.ceil(span / 1200))
    return np.arange(session.start, end + 1e-9, step)


def _windows(ts: np.ndarray, times: np.ndarray, n: int | None = None, seconds: float | None = None):
    """For each grid time, the [lo, hi) index range of events in the window (the last n, or the last seconds)."""
    hi = np.searchsorted(ts, times, side="right")
    if n is not None:
        lo = np.maximum(hi - n, 0)
    elif seconds is not None:
        lo = np.searchsorted(ts, times - seconds, side="right")
    else:
        lo = np.zeros_like(hi)
    return lo, hi


def _cum(x: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(x)])


def _window_variants(kinds=("count", "time", "all")):
    for n in COUNT_WINDOWS if "count" in kinds else ():
        yield f"the last {n}", {"n": n}
    for s in TIME_WINDOWS if "time" in kinds else ():
        yield f"the last {s} s", {"seconds": s}
    if "all" in kinds:
        yield "all so far", {}


def _mean_in(cum_x, cum_k, lo, hi):
    k = cum_k[hi] - cum_k[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, (cum_x[hi] - cum_x[lo]) / np.maximum(k, 1), np.nan)


def build(session: Play, tail_seconds: float) -> Expected:
    times = grid(session, tail_seconds)
    out = Expected(times)
    _performance(session, out)
    _inputs(session, out)
    _ledger(session, out)
    _leave_out_gaps(session, out)
    return out


def unobserved(session: Play, times: np.ndarray) -> np.ndarray:
    """Which of `times` fall in a gap (the server or Prometheus down) or while the candidate's windows refill."""
    unseen = np.zeros(len(times), bool)
    for g in session.gaps:
        unseen |= (times >= g.start) & (times < g.end + SETTLE_SECONDS)
    return unseen


def _leave_out_gaps(session: Play, out: Expected) -> None:
    """No expectation while the server or Prometheus was down, nor while the candidate's windows refill after:
    every check compares only where the session could be observed."""
    unseen = unobserved(session, out.grid)
    if unseen.any():
        for curves in (*out.curves.values(), out.labels):
            for curve in curves:
                curve.values[unseen] = np.nan


def _performance(session: Play, out: Expected) -> None:
    labelled = session.labelled()
    if len(labelled) < 20:
        return
    ts = np.array([lp.label_ts for lp in labelled])
    correct = np.array([float(lp.predicted_label == lp.true_label) for lp in labelled])
    churned = np.array([float(lp.true_label) for lp in labelled])
    c, k, p = _cum(correct), _cum(np.ones_like(correct)), _cum(churned)
    for name, w in _window_variants():
        lo, hi = _windows(ts, out.grid, **w)
        unit = " labels" if "n" in w else ""
        out.add(Curve(Role.PERFORMANCE, None, f"accuracy over {name}{unit}", _mean_in(c, k, lo, hi)))
        churners = _mean_in(p, k, lo, hi)
        out.add_labels(Curve(Role.PERFORMANCE, None, f"share of churners in the labels over {name}{unit}", churners))


def touched_features(session: Play) -> set[str]:
    return {f for inc in session.all_incidents() if inc.kind in DATA_KINDS for f in inc.features}


def _inputs(session: Play, out: Expected) -> None:
    """Drift (distance from the baseline's distribution) and data quality (nulls, out-of-range values) of each
    feature an incident touched, and drift of the model's scores."""
    spec = default_spec()
    touched = touched_features(session)
    predictions = session.predictions(session.start, out.grid[-1])
    if len(predictions) < 20:
        return
    ts = np.array([p.ts for p in predictions])
    base_lo, base_hi = session.baseline() or (session.start, session.start + 0.2 * (session.end - session.start))
    in_base = (ts >= base_lo) & (ts < base_hi)
    if in_base.sum() < 10:
        in_base = np.arange(len(ts)) < max(10, len(ts) // 5)
    columns = {f: np.array([p.features.get(f) for p in predictions], dtype=object) for f in touched}
    columns[SCORE] = np.array([p.score for p in predictions], dtype=object)
    for f, raw in columns.items():
        present = np.array([v is not None for v in raw])
        if f == SCORE or f in spec.numeric:
            x = np.array([float(v) if v is not None else np.nan for v in raw])
            _numeric_drift(f, ts, x, in_base, out)
            if f in spec.numeric:
                lo, hi = spec.numeric[f].expected.min, spec.numeric[f].expected.max
                outside = np.where(present, (x < lo) | (x > hi), False).astype(float)
                _share(Role.DATA_QUALITY, f, "share of values outside the typical range", ts, outside, out)
        elif f in spec.categorical:
            _categorical_drift(f, ts, raw, present, in_base, out)
        if f != SCORE:
            _share(Role.DATA_QUALITY, f, "share of nulls", ts, (~present).astype(float), out)


def _numeric_drift(f: str, ts, x, in_base, out: Expected) -> None:
    valid = np.isfinite(x)
    base = x[in_base & valid]
    if len(base) < 5:
        return
    mu, sigma = float(np.mean(base)), float(np.std(base)) or 1.0
    z = np.where(valid, (x - mu) / sigma, 0.0)
    cz, cz2, ck = _cum(z), _cum(z * z), _cum(valid.astype(float))
    for name, w in _window_variants(("count", "time")):
        lo, hi = _windows(ts, out.grid, **w)
        mean = _mean_in(cz, ck, lo, hi)
        second = _mean_in(cz2, ck, lo, hi)
        spread = np.sqrt(np.maximum(second - mean * mean, 1e-12))
        with np.errstate(divide="ignore", invalid="ignore"):
            distance = np.abs(mean) + np.abs(np.log(np.clip(spread, 1e-6, None)))
        unit = " predictions" if "n" in w else ""
        out.add(Curve(Role.DRIFT, f, f"mean of {f} over {name}{unit}, in baseline spreads", mean))
        out.add(Curve(Role.DRIFT, f, f"distance of {f} from the baseline over {name}{unit}", np.clip(distance, 0, 50)))


def _categorical_drift(f: str, ts, raw, present, in_base, out: Expected) -> None:
    levels = sorted({v for v in raw if v is not None})
    if not levels:
        return
    onehot = np.array([[float(v == lv) for lv in levels] for v in raw])
    base = onehot[in_base & present]
    if len(base) < 5:
        return
    p0 = base.mean(axis=0)
    cums = [_cum(onehot[:, j]) for j in range(len(levels))]
    ck = _cum(present.astype(float))
    for name, w in _window_variants(("count", "time")):
        lo, hi = _windows(ts, out.grid, **w)
        shares = np.stack([_mean_in(c, ck, lo, hi) for c in cums], axis=1)
        tv = 0.5 * np.abs(shares - p0).sum(axis=1)
        unit = " predictions" if "n" in w else ""
        out.add(Curve(Role.DRIFT, f, f"distance of {f}'s mix from the baseline over {name}{unit}", tv))


def _share(role: Role, f: str, what: str, ts, flags, out: Expected) -> None:
    if not flags.any():
        return
    c, k = _cum(flags), _cum(np.ones_like(flags))
    for name, w in _window_variants(("count", "time")):
        lo, hi = _windows(ts, out.grid, **w)
        unit = " predictions" if "n" in w else ""
        out.add(Curve(role, f, f"{f}: {what} over {name}{unit}", _mean_in(c, k, lo, hi)))


def _ledger(session: Play, out: Expected) -> None:
    """Latency, error share and request rate as the client saw them, per second, in time windows."""
    rows = session.rows(session.start - 1, math.floor(out.grid[-1]) + 1)  # the server's gaps left out
    if len(rows) < 5:
        return
    ts = np.array([r.second + 0.5 for r in rows])
    requests = np.array([r.requests for r in rows], dtype=float)
    latency = np.array([(r.latency_mean_seconds or 0.0) * r.requests for r in rows])
    errors = np.array([r.client_errors + r.server_errors + r.failures for r in rows], dtype=float)
    server = np.array([r.server_errors + r.failures for r in rows], dtype=float)
    answered = np.array([r.answered for r in rows], dtype=float)
    labels = np.array([r.labels_posted for r in rows], dtype=float)
    ok = np.array([r.ok for r in rows], dtype=float)
    slowest = np.array([r.latency_max_seconds or 0.0 for r in rows])
    creq, clat, cerr, cserv, cans, clab, cok = map(_cum, (requests, latency, errors, server, answered, labels, ok))
    for s in LEDGER_WINDOWS:
        lo, hi = _windows(ts, out.grid, seconds=s)
        n = creq[hi] - creq[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            out.add(
                Curve(
                    Role.LATENCY,
                    None,
                    f"the client's mean /predict latency over the last {s} s",
                    np.where(n > 0, (clat[hi] - clat[lo]) / np.maximum(n, 1), np.nan),
                )
            )
            # A high quantile over a window (p95 over [30s]) stays up while any slow call is in the window.
            out.add(
                Curve(
                    Role.LATENCY,
                    None,
                    f"the client's slowest /predict call in the last {s} s",
                    np.array([slowest[a:b].max() if b > a else np.nan for a, b in zip(lo, hi)]),
                )
            )
            if errors.any():
                out.add(
                    Curve(
                        Role.ERRORS,
                        None,
                        f"the share of /predict calls that failed (4xx, 5xx, time-outs) over the last {s} s",
                        np.where(n > 0, (cerr[hi] - cerr[lo]) / np.maximum(n, 1), np.nan),
                    )
                )
            if server.any():
                out.add(
                    Curve(
                        Role.ERRORS,
                        None,
                        f"the share of /predict calls that failed on the server side over the last {s} s",
                        np.where(n > 0, (cserv[hi] - cserv[lo]) / np.maximum(n, 1), np.nan),
                    )
                )
        out.add(
            Curve(
                Role.TRAFFIC, None, f"/predict calls answered per second over the last {s} s", (cans[hi] - cans[lo]) / s
            )
        )
        # Labels come back in waves of their own (more of them during concept drift here): their volume is
        # traffic, not performance.
        if labels.any():
            out.add(
                Curve(Role.TRAFFIC, None, f"labels posted per second over the last {s} s", (clab[hi] - clab[lo]) / s)
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                served = cok[hi] - cok[lo]
                out.add(
                    Curve(
                        Role.TRAFFIC,
                        None,
                        f"labels posted per prediction served over the last {s} s",
                        np.where(served > 0, (clab[hi] - clab[lo]) / np.maximum(served, 1), np.nan),
                    )
                )
