"""When the session could not be observed: the model server down (killed, or stopped by a reload that failed)
or Prometheus down, outside every injected fault. Found before any check, so that each check is judged on the
time both were alive, and reported first, so that nobody reads a dead component as the candidate's mistake.

- The model server was down in the seconds where the clients' requests failed (refused or timed out) and none
  was answered, outside an injected outage: the ledger says so, whatever the candidate's /metrics exposes (a
  candidate without /metrics has `up == 0` all session and is not down).
- Prometheus was down where its own record of the scrape target (`up`, written at every scrape, 0 or 1) stops:
  consecutive samples further apart than a few scrape intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from load.player import REQUEST_TIMEOUT_SECONDS

from .families import JOB
from .play import Play
from .prometheus import PrometheusClient

SERVER = "model server"
PROMETHEUS = "Prometheus"
MISSED_SCRAPES = 3  # samples of `up` further apart than this many intervals: Prometheus was not running
JOIN_SECONDS = 3  # failures this close together are one gap


@dataclass(frozen=True)
class Gap:
    component: str  # SERVER or PROMETHEUS
    start: float
    end: float
    failed_requests: int = 0  # what the clients saw fail in it
    # The server's: its last scrape that Prometheus took before the gap (its series' last values; after that
    # Prometheus marked them stale).
    last_scrape: float = 0.0

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def describe(self, session_start: float) -> str:
        where = f"from {self.start - session_start:.0f} s to {self.end - session_start:.0f} s into the scenario"
        failed = f", {self.failed_requests} requests failed" if self.failed_requests else ""
        return f"{self.component[0].upper() + self.component[1:] if self.component == SERVER else self.component} was down {where} ({self.seconds:.0f} s{failed})"

    def as_dict(self) -> dict:
        return {
            "component": self.component,
            "start": self.start,
            "end": self.end,
            "seconds": round(self.seconds, 1),
            "failed_requests": self.failed_requests,
        }


def _outages(session: Play) -> list[tuple[float, float]]:
    """The injected faults that make requests fail (an outage; an added latency past the client's time-out), and
    the client's time-out after each (requests sent just before its end)."""
    return [
        (p.start, session.phase_end(p) + REQUEST_TIMEOUT_SECONDS + 1)
        for p in session.phases
        if p.outage or p.faults.delay_seconds + 0.5 >= REQUEST_TIMEOUT_SECONDS
    ]


def server_gaps(session: Play) -> list[Gap]:
    """Seconds in which every request failed, outside injected outages, merged into gaps."""
    injected = _outages(session)
    down = [
        r
        for r in session.ledger
        if r.failures > 0 and r.answered == 0 and not any(lo <= r.second < hi for lo, hi in injected)
    ]
    gaps: list[list] = []
    for row in sorted(down, key=lambda r: r.second):
        if gaps and row.second - gaps[-1][1] <= JOIN_SECONDS:
            gaps[-1][1] = row.second + 1
            gaps[-1][2] += row.failures
        else:
            gaps.append([row.second, row.second + 1, row.failures])
    return [Gap(SERVER, lo, hi, n) for lo, hi, n in gaps]


def scrapes(prom: PrometheusClient, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """When Prometheus scraped the model server between start and end, and whether it answered (its raw `up`
    samples: times, values)."""
    span = max(int(end - start) + 1, 1)
    result = prom.query(f'up{{job="{JOB}"}}[{span}s]', end)
    samples = sorted({(float(t), float(v)) for s in result for t, v in s.get("values", [])})
    return np.array([t for t, _ in samples]), np.array([v for _, v in samples])


def _interval(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if len(times) >= 3 else 5.0


def prometheus_gaps(times: np.ndarray, session: Play) -> list[Gap]:
    """Stretches with no scrape at all (Prometheus not running), from the session's start to its end."""
    if len(times) < 3:
        return []
    end = min(session.now, session.end)
    interval = _interval(times)
    limit = max(MISSED_SCRAPES * interval, interval + 4)
    edges = list(times)
    if times[0] - session.start > limit:
        edges.insert(0, session.start - interval)
    if end - times[-1] > limit:
        edges.append(end)
    out = []
    for before, after in zip(edges[:-1], edges[1:]):
        if after - before > limit and after > session.start:
            out.append(Gap(PROMETHEUS, max(before + interval, session.start), after))
    return out


def _last_scrape(gap: Gap, times: np.ndarray, up: np.ndarray) -> Gap:
    """The server's gap with the time of the last scrape it answered before it (or, without one, a time safely
    before it failed: a hung server's requests fail only at the client's time-out)."""
    answered = times[(up == 1) & (times < gap.start)]
    last = float(answered[-1]) if len(answered) else gap.start - 1 - REQUEST_TIMEOUT_SECONDS - _interval(times)
    return replace(gap, last_scrape=last)


def find(prom: PrometheusClient, session: Play) -> list[Gap]:
    """Every gap of the session, in order."""
    times, up = scrapes(prom, session.start - 30, min(session.now, session.end + 5))
    server = [_last_scrape(g, times, up) for g in server_gaps(session)]
    return sorted(server + prometheus_gaps(times, session), key=lambda g: g.start)


def summary(gaps: list[Gap], session: Play) -> str:
    """One sentence for the top of the report."""
    said = "; ".join(g.describe(session.start) for g in gaps)
    return (
        f"Not the candidate's doing: {said}. No injected fault explains it; each check is judged on the time "
        "both were running, and an incident played while one was down is not judged."
    )
