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


class SessionError(ValueError):
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
class Session:
    run_dir: Path
    timeline: TimelineRecord
    ledger: list[LedgerRow]
    now: float = field(default_factory=time.time)

    @classmethod
    def load(cls, run_dir: Path, now: float | None = None) -> "Session":
        try:
            timeline = read_timeline(run_dir)
            ledger = read_ledger(run_dir)
        except TruthError as exc:
            raise SessionError(str(exc)) from None
        if timeline is None or not timeline.phases:
            raise SessionError(f"{run_dir} has no scenario timeline (scenario/timeline.json): play a scenario first")
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
            if p.injections or p.outage or p.faults.added_latency_seconds or p.faults.error_rate:
                break
            quiet.append(p)
        return quiet

    def baseline(self) -> tuple[float, float] | None:
        quiet = self.quiet_phases()
        return (quiet[0].start, self.phase_end(quiet[-1])) if quiet else None

    def incidents(self) -> list[Incident]:
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
        return [r for r in self.ledger if start <= r.second < end]

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
