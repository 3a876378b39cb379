"""The hidden truth of a played scenario: a timeline of what was injected and a per-second ledger of what
was sent. Both live in the run directory's `scenario/` folder, which the candidate's code never sees and
which never reaches the candidate's Prometheus; the grader and the interviewer read them.
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from pathlib import Path

from model_service.spec import default_spec

from .scenario import Scenario
from .traffic import PlannedPhase

OUTCOMES = ("ok", "client_errors", "server_errors", "failures")


def scenario_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "scenario"


def timeline_path(run_dir: Path) -> Path:
    return scenario_dir(run_dir) / "timeline.json"


def ledger_path(run_dir: Path) -> Path:
    return scenario_dir(run_dir) / "ledger.csv"


def control_path(run_dir: Path) -> Path:
    return scenario_dir(run_dir) / "control.json"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


class Timeline:
    """Each phase and its injections with wall-clock start and end, the parameters played, the seed."""

    def __init__(self, run_dir: Path, scenario: Scenario, seed: int, speed: float, surprise: bool):
        self.path = timeline_path(run_dir)
        self.doc = {
            "scenario": scenario.name, "seed": seed, "speed": speed, "surprise": surprise,
            "status": "running", "started_at": None, "finished_at": None, "phases": [],
            "planned_phases": [p.name for p in scenario.phases],
        }

    def phase_started(self, planned: PlannedPhase, now: float, notes: list[str] | None = None) -> None:
        p = planned.phase
        truth = planned.ground_truth
        if self.doc["started_at"] is None:
            self.doc["started_at"] = now
        self.doc["phases"].append({
            "index": planned.index, "name": p.name, "start": now, "end": None,
            "planned_end": now + planned.wall_seconds, "rate": p.rate,
            "requests_planned": len(planned.requests),
            "ground_truth": {"fraction": truth.fraction, "delay_seconds": truth.delay_seconds,
                             "wall_delay_seconds": truth.delay_seconds / self.doc["speed"]},
            "faults": planned.faults.model_dump(), "outage": planned.outage,
            "injections": [{**i.model_dump(), "start": now, "end": None} for i in p.injections],
            "notes": notes or [],
        })
        self._write()

    def phase_ended(self, now: float, skipped: bool = False) -> None:
        phase = self.doc["phases"][-1]
        phase["end"] = now
        phase["skipped"] = skipped
        for inj in phase["injections"]:
            inj["end"] = now
        self._write()

    def finish(self, now: float, status: str) -> None:
        self.doc["status"] = status
        self.doc["finished_at"] = now
        self._write()

    def _write(self) -> None:
        _atomic_write(self.path, json.dumps(self.doc, indent=2))


def read_timeline(run_dir: Path) -> dict | None:
    path = timeline_path(run_dir)
    return json.loads(path.read_text()) if path.exists() else None


class Ledger:
    """Per wall-clock second: requests sent, their outcomes as the client saw them, labels posted, and the
    mean of each numeric feature over what was sent (nulls and non-numbers left out)."""

    def __init__(self, run_dir: Path):
        self.path = ledger_path(run_dir)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.features = list(default_spec().numeric)
        self.columns = ["second", "phase", "requests", *OUTCOMES, "labels_posted",
                        "latency_mean_seconds", "latency_max_seconds", *[f"mean_{f}" for f in self.features]]
        new = not self.path.exists()
        self._fh = open(self.path, "a", newline="")
        self._csv = csv.writer(self._fh)
        if new:
            self._csv.writerow(self.columns)
            self._fh.flush()
        self._rows: dict[int, dict] = {}

    def _row(self, now: float, phase: str) -> dict:
        second = int(now)
        row = self._rows.get(second)
        if row is None:
            row = self._rows[second] = {"phase": phase, "counts": defaultdict(int),
                                        "sums": defaultdict(float), "ns": defaultdict(int)}
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
            latency = [round(row["latency_sum"] / c["requests"], 4), round(row["latency_max"], 4)] \
                if c["requests"] else ["", ""]
            self._csv.writerow([second, row["phase"], c["requests"], *[c[o] for o in OUTCOMES],
                                c["labels_posted"], *latency, *means])
        self._fh.flush()

    def close(self) -> None:
        self.flush()
        self._fh.close()


def read_ledger(run_dir: Path) -> list[dict]:
    path = ledger_path(run_dir)
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
