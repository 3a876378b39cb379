"""What really happened in a session, from the run directory: the hidden timeline, the ledger of what was
sent, and the prediction log with its labels (from which the grader computes accuracy itself)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from load.scenario import Injection
from load.truth import LedgerRow, PhaseRecord, TimelineRecord, TruthError, read_ledger, read_timeline
from model_service.prediction_log import read_labelled, read_predictions
from model_service.settings import ServiceSettings

# What an incident's identity leaves out: how it ramps up, so that a gradual onset and the held drift
# that follows it are one incident.
_ONSET_FIELDS = {"onset"}
# An incident is judged when the server and Prometheus ran for at least half of its onset (its first seconds, up
# to this many): whatever a check looks for follows the onset.
ONSET_SECONDS = 20.0


class PlayError(ValueError):
    """The run directory does not hold a gradable session."""


@dataclass(frozen=True)
class Incident:
    """One injection held over consecutive phases: what it was, its onset and its end (wall clock)."""

    injection: Injection
    start: float
    end: float

    @property
    def kind(self) -> str:
        return self.injection.kind

    @property
    def features(self) -> frozenset[str]:
        """The features it touches (none for concept drift and service faults)."""
        one = getattr(self.injection, "feature", None)
        return frozenset([one] if one else getattr(self.injection, "features", []))

    @property
    def label(self) -> str:
        target = ",".join(sorted(self.features))
        return f"{self.kind}({target})" if target else self.kind


def _identity(inj: Injection) -> str:
    return inj.model_dump_json(exclude=_ONSET_FIELDS)


@dataclass
class Play:
    run_dir: Path
    timeline: TimelineRecord
    ledger: list[LedgerRow]
    now: float = field(default_factory=time.time)
    # When the model server or Prometheus was down outside injected faults (grading.gaps.Gap), set by the grader
    # before any check: the ledger's totals leave the server's gaps out, and incidents played in one are not judged.
    gaps: list = field(default_factory=list)

    @classmethod
    def load(cls, run_dir: Path, now: float | None = None, truth_dir: Path | None = None) -> "Play":
        """The play whose truth (timeline, ledger) is in `truth_dir` (default: the run directory's own), its
        predictions and labels in the run directory's prediction log (an earlier play of a session kept its truth
        aside when the next one began)."""
        try:
            timeline = read_timeline(truth_dir or run_dir)
            ledger = read_ledger(truth_dir or run_dir)
        except TruthError as exc:
            raise PlayError(str(exc)) from None
        if timeline is None or not timeline.phases:
            raise PlayError(f"{run_dir} has no scenario timeline (scenario/timeline.json): play a scenario first")
        return cls(Path(run_dir), timeline, ledger, time.time() if now is None else now)

    @property
    def phases(self) -> list[PhaseRecord]:
        return self.timeline.phases

    @property
    def start(self) -> float:
        return self.phases[0].start

    @property
    def end(self) -> float:
        """When the scenario ended; while it plays, now."""
        last = self.phases[-1]
        return last.end if last.end is not None else min(self.now, last.planned_end)

    @property
    def finished(self) -> bool:
        return self.timeline.status != "running"

    def phase(self, name: str) -> PhaseRecord | None:
        return next((p for p in self.phases if p.name == name), None)

    def phase_end(self, phase: PhaseRecord) -> float:
        return phase.end if phase.end is not None else self.end

    def quiet_phases(self) -> list[PhaseRecord]:
        """Phases before any injection: the baseline, where nothing should fire."""
        quiet = []
        for p in self.phases:
            if p.injections or p.outage or p.faults.delay_seconds or p.faults.error_share:
                break
            quiet.append(p)
        return quiet

    def baseline(self) -> tuple[float, float] | None:
        quiet = self.quiet_phases()
        return (quiet[0].start, self.phase_end(quiet[-1])) if quiet else None

    def unobserved(self, start: float, end: float) -> float:
        """Seconds of [start, end) in a gap of the server or of Prometheus (overlapping gaps counted once)."""
        total, reached = 0.0, start
        for g in sorted(self.gaps, key=lambda g: g.start):
            lo, hi = max(g.start, reached), min(g.end, end)
            if hi > lo:
                total += hi - lo
                reached = hi
        return total

    def incidents(self) -> list[Incident]:
        """Each injection whose onset the server and Prometheus saw (ONSET_SECONDS), in order of onset."""
        return [i for i in self.all_incidents() if not self._unseen(i)]

    def unseen_incidents(self) -> list[Incident]:
        """Incidents whose onset was played while the server or Prometheus was down: nothing could see them."""
        return [i for i in self.all_incidents() if self._unseen(i)]

    def _unseen(self, incident: Incident) -> bool:
        onset = max(min(incident.end - incident.start, ONSET_SECONDS), 1e-9)
        return self.unobserved(incident.start, incident.start + onset) > 0.5 * onset

    @property
    def server_gone_at_end(self):
        """The model server's gap that lasts to the scenario's end (it never came back), or None."""
        return next((g for g in self.gaps if g.component == "model server" and g.end >= self.end - 3), None)

    def all_incidents(self) -> list[Incident]:
        """Each injection, merged over the consecutive phases that hold it, in order of onset."""
        open_: dict[str, Incident] = {}
        done: list[Incident] = []
        for p in self.phases:
            end = self.phase_end(p)
            seen = set()
            for inj in p.injections:
                key = _identity(inj)
                seen.add(key)
                first = open_.get(key)
                open_[key] = Incident(first.injection if first else inj, first.start if first else p.start, end)
            for key in [k for k in open_ if k not in seen]:
                done.append(open_.pop(key))
        return sorted(done + list(open_.values()), key=lambda i: i.start)

    def played_kinds(self) -> set[str]:
        return {i.kind for i in self.incidents()}

    # --- the ledger ------------------------------------------------------------------------------------
    def rows(self, start: float, end: float) -> list[LedgerRow]:
        """The ledger's seconds in [start, end), but those in which the model server was down (in one of its
        gaps, nothing answered)."""
        down = [(g.start, g.end) for g in self.gaps if g.component == "model server"]
        return [
            r
            for r in self.ledger
            if start <= r.second < end and (r.answered > 0 or not any(lo <= r.second < hi for lo, hi in down))
        ]

    def total(self, column: str, start: float | None = None, end: float | None = None) -> int:
        """The sum of a ledger column (a LedgerRow field or property) between two times (default: the session)."""
        lo = int(self.start) if start is None else start
        hi = int(self.end) + 1 if end is None else end
        return sum(getattr(r, column) for r in self.rows(lo, hi))

    def client_latency(self, start: float, end: float) -> float:
        """Mean /predict latency the client saw between start and end."""
        rows = [r for r in self.rows(start, end) if r.latency_mean_seconds is not None]
        n = sum(r.requests for r in rows)
        return sum(r.latency_mean_seconds * r.requests for r in rows) / n if n else float("nan")

    # --- the prediction log ----------------------------------------------------------------------------
    @property
    def prediction_log(self) -> Path:
        return ServiceSettings(run_dir=self.run_dir).prediction_log_path

    def labelled(self):
        """Every labelled prediction whose label arrived in the session (or in the minute after it)."""
        return read_labelled(self.prediction_log, self.start, self.end + 60)

    def rolling_accuracy(self, window: int) -> list[tuple[float, float]]:
        """(label arrival time, accuracy over the last `window` labels) for every label in the session."""
        recent: deque[int] = deque(maxlen=window)
        out = []
        for lp in self.labelled():
            recent.append(int(lp.predicted_label == lp.true_label))
            out.append((lp.label_ts, sum(recent) / len(recent)))
        return out

    def predictions(self, start: float, end: float):
        return read_predictions(self.prediction_log, start, end)
