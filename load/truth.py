"""The hidden truth of a played scenario: a timeline of what was injected and a per-second ledger of what
was sent. Both live in the run directory's `scenario/` folder, which the candidate's code never sees and
which never reaches the candidate's Prometheus; the grader and the interviewer read them.

Both are typed here, for writing and for reading: `TimelineRecord` (timeline.json) and `LedgerRow`
(one row of ledger.csv). A scenario played to several servers at once (`mlsandbox calibrate`) writes the
same timeline into each server's run directory and a ledger of its own to each.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from model_service.faults import FaultState
from model_service.spec import default_spec

from .scenario import Injection, Scenario
from .traffic import PlannedPhase

OUTCOMES = ("ok", "client_errors", "server_errors", "failures")


# The player writes a heartbeat into the timeline this often; a running timeline without one for
# INTERRUPTED_AFTER_SECONDS was left by a player that died.
HEARTBEAT_SECONDS = 2.0
INTERRUPTED_AFTER_SECONDS = 15.0


class TruthError(ValueError):
    """A timeline or ledger file that cannot be read; str() is one readable line."""


def scenario_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "scenario"


def timeline_path(run_dir: Path) -> Path:
    return scenario_dir(run_dir) / "timeline.json"


def ledger_path(run_dir: Path) -> Path:
    return scenario_dir(run_dir) / "ledger.csv"


def control_path(run_dir: Path) -> Path:
    return scenario_dir(run_dir) / "control.json"


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` in one step: a reader sees the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


# --- the timeline ---------------------------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlayedGroundTruth(_Record):
    fraction: float
    delay_seconds: float  # scenario seconds
    wall_delay_seconds: float  # as played (divided by the speed)


class PhaseRecord(_Record):
    """One phase as played: wall-clock start and end, what was injected, the faults switched on."""

    index: int
    name: str
    start: float
    end: float | None = None  # None while it plays
    planned_end: float
    rate: float
    requests_planned: int
    ground_truth: PlayedGroundTruth
    faults: FaultState
    outage: bool = False
    injections: list[Injection] = []
    notes: list[str] = []
    skipped: bool = False

    @property
    def finish(self) -> float:
        """When the phase ended, or is planned to end while it plays."""
        return self.end if self.end is not None else self.planned_end


class TimelineRecord(_Record):
    """timeline.json: the scenario, its seed and speed, and each phase played so far."""

    scenario: str
    seed: int
    speed: float
    surprise: bool
    status: Literal["running", "finished", "stopped"] = "running"
    started_at: float | None = None
    finished_at: float | None = None
    paused_at: float | None = None  # the traffic is paused (`mlsandbox scenario pause`) since then
    heartbeat_at: float | None = None  # the player was alive then (it writes at least every HEARTBEAT_SECONDS)
    resumed_at: list[float] = []  # each time a play resumed this one (`scenario play --from PHASE`)
    planned_phases: list[str]
    phases: list[PhaseRecord] = []

    def interrupted(self, now: float) -> bool:
        """The player died mid-play (Locust killed): the timeline says running, but nothing wrote it lately."""
        beat = self.heartbeat_at or (self.phases[-1].start if self.phases else self.started_at)
        return self.status == "running" and beat is not None and now - beat > INTERRUPTED_AFTER_SECONDS

    def next_phase(self) -> str | None:
        """The phase after the last one played (None when the last was the scenario's last)."""
        if not self.phases:
            return self.planned_phases[0] if self.planned_phases else None
        following = self.phases[-1].index + 1
        return self.planned_phases[following] if following < len(self.planned_phases) else None

    @property
    def current(self) -> PhaseRecord | None:
        """The phase playing now (None before the first and after the last)."""
        if self.status == "running" and self.phases and self.phases[-1].end is None:
            return self.phases[-1]
        return None


class Timeline:
    """Writes the timeline as phases start and end, to each of `run_dirs` (the same document). `resume`: go on
    with the timeline already there (an interrupted play resumed from a later phase): its phases are kept, the
    one the player died in is closed at its last heartbeat."""

    def __init__(
        self,
        run_dirs: Path | list[Path],
        scenario: Scenario,
        seed: int,
        speed: float,
        surprise: bool,
        resume: bool = False,
        now: float | None = None,
    ):
        dirs = [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)
        self.paths = [timeline_path(d) for d in dirs]
        self._beat = 0.0
        earlier = read_timeline(dirs[0]) if resume else None
        if earlier is not None and earlier.scenario == scenario.name:
            self.record = earlier
            now = time.time() if now is None else now
            if self.record.phases and self.record.phases[-1].end is None:
                last = self.record.phases[-1]
                last.end = max(last.start, self.record.heartbeat_at or last.start)
                last.notes.append("interrupted: the load generator stopped")
            self.record.status, self.record.finished_at, self.record.paused_at = "running", None, None
            self.record.resumed_at.append(now)
            return
        self.record = TimelineRecord(
            scenario=scenario.name,
            seed=seed,
            speed=speed,
            surprise=surprise,
            planned_phases=[p.name for p in scenario.phases],
        )

    def beat(self, now: float) -> None:
        """The player is alive: written at most every HEARTBEAT_SECONDS."""
        if now - self._beat >= HEARTBEAT_SECONDS:
            self._beat = self.record.heartbeat_at = now
            self._write()

    def paused(self, now: float) -> None:
        self.record.paused_at = now
        self._write()

    def resumed(self, now: float, paused_seconds: float) -> None:
        """The phase playing is longer by the pause: its traffic stood still."""
        self.record.paused_at = None
        if self.record.phases and self.record.phases[-1].end is None:
            phase = self.record.phases[-1]
            phase.planned_end += paused_seconds
            phase.notes.append(f"traffic paused for {paused_seconds:.0f} s")
        self._write()

    def phase_started(self, planned: PlannedPhase, now: float, notes: list[str] | None = None) -> None:
        p, truth = planned.phase, planned.ground_truth
        if self.record.started_at is None:
            self.record.started_at = now
        self.record.phases.append(
            PhaseRecord(
                index=planned.index,
                name=p.name,
                start=now,
                planned_end=now + planned.wall_seconds,
                rate=p.rate,
                requests_planned=len(planned.requests),
                ground_truth=PlayedGroundTruth(
                    fraction=truth.fraction,
                    delay_seconds=truth.delay_seconds,
                    wall_delay_seconds=truth.delay_seconds / self.record.speed,
                ),
                faults=planned.faults,
                outage=planned.outage,
                injections=list(p.injections),
                notes=notes or [],
            )
        )
        self._write()

    def phase_ended(self, now: float, skipped: bool = False) -> None:
        phase = self.record.phases[-1]
        phase.end, phase.skipped = now, skipped
        self._write()

    def finish(self, now: float, status: Literal["finished", "stopped"]) -> None:
        self.record.status, self.record.finished_at = status, now
        self._write()

    def _write(self) -> None:
        text = self.record.model_dump_json(indent=2)
        for path in self.paths:
            atomic_write(path, text)


def read_timeline(run_dir: Path) -> TimelineRecord | None:
    """The run directory's timeline; None when no scenario has played there."""
    path = timeline_path(run_dir)
    if not path.exists():
        return None
    try:
        return TimelineRecord.model_validate_json(path.read_text())
    except ValidationError as exc:
        err = exc.errors()[0]
        raise TruthError(f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


# --- the ledger -----------------------------------------------------------------------------------------


class LedgerRow(_Record):
    """One wall-clock second as the client saw it: requests sent, their outcomes, labels posted, the
    latency of /predict, and the mean of each numeric feature sent (None when none was)."""

    second: int
    phase: str
    requests: int
    ok: int
    client_errors: int
    server_errors: int
    failures: int
    labels_posted: int
    latency_mean_seconds: float | None
    latency_max_seconds: float | None
    means: dict[str, float | None]

    @property
    def answered(self) -> int:
        """Requests the server answered (any status), as opposed to time-outs and refused connections."""
        return self.requests - self.failures


def _columns(features: list[str]) -> list[str]:
    return [
        "second",
        "phase",
        "requests",
        *OUTCOMES,
        "labels_posted",
        "latency_mean_seconds",
        "latency_max_seconds",
        *[f"mean_{f}" for f in features],
    ]


class Ledger:
    """Writes ledger.csv: a row per completed wall-clock second (see LedgerRow)."""

    def __init__(self, run_dir: Path):
        self.path = ledger_path(run_dir)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.features = list(default_spec().numeric)
        new = not self.path.exists()
        self._fh = open(self.path, "a", newline="")
        self._csv = csv.writer(self._fh)
        if new:
            self._csv.writerow(_columns(self.features))
            self._fh.flush()
        self._rows: dict[int, dict] = {}

    def _row(self, now: float, phase: str) -> dict:
        second = int(now)
        row = self._rows.get(second)
        if row is None:
            row = self._rows[second] = {
                "phase": phase,
                "counts": defaultdict(int),
                "sums": defaultdict(float),
                "ns": defaultdict(int),
            }
        return row

    def record_request(self, now: float, phase: str, body: dict, outcome: str, latency_seconds: float) -> None:
        """One /predict as the client saw it: its outcome and its latency (time-outs included)."""
        row = self._row(now, phase)
        row["counts"]["requests"] += 1
        row["counts"][outcome] += 1
        row["latency_sum"] = row.get("latency_sum", 0.0) + latency_seconds
        row["latency_max"] = max(row.get("latency_max", 0.0), latency_seconds)
        for f in self.features:
            v = body.get(f)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                row["sums"][f] += v
                row["ns"][f] += 1

    def record_label(self, now: float, phase: str) -> None:
        self._row(now, phase)["counts"]["labels_posted"] += 1

    def flush(self, now: float | None = None) -> None:
        """Write every completed second (every second, when `now` is None)."""
        cutoff = math.inf if now is None else int(now)
        for second in sorted(s for s in self._rows if s < cutoff):
            row = self._rows.pop(second)
            c = row["counts"]
            means = [round(row["sums"][f] / row["ns"][f], 4) if row["ns"][f] else "" for f in self.features]
            latency = (
                [round(row["latency_sum"] / c["requests"], 4), round(row["latency_max"], 4)]
                if c["requests"]
                else ["", ""]
            )
            self._csv.writerow(
                [second, row["phase"], c["requests"], *[c[o] for o in OUTCOMES], c["labels_posted"], *latency, *means]
            )
        self._fh.flush()

    def close(self) -> None:
        self.flush()
        self._fh.close()


def _number(text: str) -> float | None:
    return float(text) if text != "" else None


def read_ledger(run_dir: Path) -> list[LedgerRow]:
    """Every row of the run directory's ledger, typed; [] when there is none."""
    path = ledger_path(run_dir)
    if not path.exists():
        return []
    rows = []
    with open(path, newline="") as fh:
        for line, raw in enumerate(csv.DictReader(fh), start=2):
            try:
                rows.append(
                    LedgerRow(
                        second=int(raw["second"]),
                        phase=raw["phase"],
                        **{k: int(raw[k]) for k in ("requests", *OUTCOMES, "labels_posted")},
                        latency_mean_seconds=_number(raw["latency_mean_seconds"]),
                        latency_max_seconds=_number(raw["latency_max_seconds"]),
                        means={k.removeprefix("mean_"): _number(v) for k, v in raw.items() if k.startswith("mean_")},
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise TruthError(f"{path}:{line}: not a ledger row ({type(exc).__name__}: {exc})") from None
    return rows
