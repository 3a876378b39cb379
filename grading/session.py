"""What really happened in a session, from the run directory: the hidden timeline, the ledger of what was
sent, and the prediction log with its labels (from which the grader computes accuracy itself)."""
from __future__ import annotations

import sqlite3
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from load.truth import read_ledger, read_timeline


class SessionError(ValueError):
    """The run directory does not hold a gradable session."""


@dataclass(frozen=True)
class Incident:
    """One injection held over consecutive phases: its kind, parameters, onset and end (wall clock)."""

    kind: str
    params: dict
    start: float
    end: float

    @property
    def label(self) -> str:
        target = self.params.get("feature") or ",".join(self.params.get("features", [])) or ""
        return f"{self.kind}({target})" if target else self.kind


@dataclass
class Session:
    run_dir: Path
    timeline: dict
    ledger: list[dict]

    @classmethod
    def load(cls, run_dir: Path) -> "Session":
        timeline = read_timeline(run_dir)
        if timeline is None or not timeline.get("phases"):
            raise SessionError(f"{run_dir} has no scenario timeline (scenario/timeline.json): play a scenario first")
        return cls(Path(run_dir), timeline, read_ledger(run_dir))

    @property
    def phases(self) -> list[dict]:
        return self.timeline["phases"]

    @property
    def start(self) -> float:
        return self.phases[0]["start"]

    @property
    def end(self) -> float:
        last = self.phases[-1]
        return last["end"] or last["planned_end"]

    def phase(self, name: str) -> dict | None:
        return next((p for p in self.phases if p["name"] == name), None)

    def quiet_phases(self) -> list[dict]:
        """Phases before any injection: the baseline, where nothing should fire."""
        quiet = []
        for p in self.phases:
            if p["injections"]:
                break
            quiet.append(p)
        return quiet

    def incidents(self) -> list[Incident]:
        """Each injection, merged over the consecutive phases that hold it."""
        open_: dict[tuple, Incident] = {}
        done: list[Incident] = []
        for p in self.phases:
            end = p["end"] or p["planned_end"]
            seen = set()
            for inj in p["injections"]:
                params = {k: v for k, v in inj.items() if k not in ("kind", "start", "end", "onset", "shift", "scale")}
                key = (inj["kind"], tuple(sorted((k, str(v)) for k, v in params.items())))
                seen.add(key)
                if key in open_:
                    open_[key] = Incident(inj["kind"], params, open_[key].start, end)
                else:
                    open_[key] = Incident(inj["kind"], params, p["start"], end)
            for key in [k for k in open_ if k not in seen]:
                done.append(open_.pop(key))
        return sorted(done + list(open_.values()), key=lambda i: i.start)

    # --- the ledger ------------------------------------------------------------------------------------
    def _sum(self, column: str, start: float = -1, end: float = 1e18) -> int:
        return sum(int(r[column] or 0) for r in self.ledger if start <= int(r["second"]) < end)

    def in_session(self, column: str) -> int:
        return self._sum(column, int(self.start), int(self.end) + 1)

    def client_latency(self, start: float, end: float) -> float:
        """Mean /predict latency the client saw between start and end."""
        rows = [r for r in self.ledger if start <= int(r["second"]) < end and r["latency_mean_seconds"]]
        n = sum(int(r["requests"]) for r in rows)
        return sum(float(r["latency_mean_seconds"]) * int(r["requests"]) for r in rows) / n if n else float("nan")

    # --- the prediction log ----------------------------------------------------------------------------
    def rolling_accuracy(self, window: int) -> list[tuple[float, float]]:
        """(label arrival time, accuracy over the last `window` labels) for every label in the session."""
        path = self.run_dir / "predictions.sqlite"
        if not path.exists():
            return []
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        rows = db.execute("SELECT label_ts, predicted_label = true_label FROM labelled_predictions "
                          "WHERE true_label IS NOT NULL AND label_ts BETWEEN ? AND ? ORDER BY label_ts",
                          (self.start, self.end + 60)).fetchall()
        db.close()
        recent: deque[int] = deque(maxlen=window)
        out = []
        for ts, correct in rows:
            recent.append(int(correct))
            out.append((ts, sum(recent) / len(recent)))
        return out
