"""Every prediction and every ground-truth label that arrives later, in SQLite, joined by request id.

WAL mode with synchronous=NORMAL: each write is committed before the response goes out, so a server
restart (or reload) loses nothing, without an fsync per request.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    request_id      TEXT PRIMARY KEY,
    ts              REAL NOT NULL,
    model_version   TEXT NOT NULL,
    features        TEXT NOT NULL,
    score           REAL NOT NULL,
    predicted_label INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts);
CREATE TABLE IF NOT EXISTS feedback (
    request_id  TEXT PRIMARY KEY REFERENCES predictions (request_id),
    ts          REAL NOT NULL,
    true_label  INTEGER NOT NULL
);
CREATE VIEW IF NOT EXISTS labelled_predictions AS
    SELECT p.request_id, p.ts, p.model_version, p.features, p.score, p.predicted_label,
           f.true_label, f.ts AS label_ts, f.ts - p.ts AS label_delay_seconds
    FROM predictions p LEFT JOIN feedback f USING (request_id);
"""


@dataclass(frozen=True)
class PredictionRecord:
    request_id: str
    ts: float
    model_version: str
    features: dict
    score: float
    predicted_label: int


@dataclass(frozen=True)
class LabelledPrediction:
    request_id: str
    ts: float
    model_version: str
    score: float
    predicted_label: int
    true_label: int
    label_ts: float

    @property
    def label_delay_seconds(self) -> float:
        return self.label_ts - self.ts


class UnknownRequestId(KeyError):
    """Feedback named a request id that was never predicted."""


class PredictionLog:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def record_predictions(self, records: Sequence[PredictionRecord]) -> None:
        rows = [
            (r.request_id, r.ts, r.model_version, json.dumps(r.features), r.score, r.predicted_label) for r in records
        ]
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?)", rows)

    def record_feedback(self, request_id: str, true_label: int, ts: float | None = None) -> LabelledPrediction:
        """Store the true label for a past prediction (a repeated post replaces it) and return the pair."""
        ts = time.time() if ts is None else ts
        with self._lock, self._db:
            self._db.execute("BEGIN")
            row = self._db.execute(
                "SELECT ts, model_version, score, predicted_label FROM predictions WHERE request_id = ?",
                (request_id,),
            ).fetchone()
            if row is None:
                raise UnknownRequestId(request_id)
            self._db.execute("INSERT OR REPLACE INTO feedback VALUES (?, ?, ?)", (request_id, ts, int(true_label)))
        return LabelledPrediction(request_id, row[0], row[1], row[2], row[3], int(true_label), ts)

    def count_predictions(self) -> int:
        return self._db.execute("SELECT count(*) FROM predictions").fetchone()[0]

    def count_feedback(self) -> int:
        return self._db.execute("SELECT count(*) FROM feedback").fetchone()[0]

    def predictions(self, since: float = 0.0) -> Iterable[PredictionRecord]:
        for r in self._db.execute(
            "SELECT request_id, ts, model_version, features, score, predicted_label FROM predictions "
            "WHERE ts >= ? ORDER BY ts",
            (since,),
        ):
            yield PredictionRecord(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5])

    def labelled(self, since: float = 0.0) -> list[LabelledPrediction]:
        rows = self._db.execute(
            "SELECT request_id, ts, model_version, score, predicted_label, true_label, label_ts "
            "FROM labelled_predictions WHERE true_label IS NOT NULL AND ts >= ? ORDER BY ts",
            (since,),
        ).fetchall()
        return [LabelledPrediction(*r) for r in rows]

    def close(self) -> None:
        self._db.close()


def read_labelled(path: Path | str, label_from: float, label_until: float) -> list[LabelledPrediction]:
    """Labelled predictions whose label arrived between the two times, in arrival order, read-only (for
    readers outside the server, such as the grader); [] when there is no log."""
    rows = _read_only(
        path,
        "SELECT request_id, ts, model_version, score, predicted_label, true_label, label_ts "
        "FROM labelled_predictions WHERE true_label IS NOT NULL AND label_ts BETWEEN ? AND ? "
        "ORDER BY label_ts",
        (label_from, label_until),
    )
    return [LabelledPrediction(*r) for r in rows]


def read_predictions(path: Path | str, since: float, until: float) -> list[PredictionRecord]:
    """Predictions made between the two times, in order, read-only; [] when there is no log."""
    rows = _read_only(
        path,
        "SELECT request_id, ts, model_version, features, score, predicted_label FROM predictions "
        "WHERE ts BETWEEN ? AND ? ORDER BY ts",
        (since, until),
    )
    return [PredictionRecord(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]


def _read_only(path: Path | str, sql: str, params: tuple) -> list[tuple]:
    """The rows of a query on the log opened read-only (the server may be writing it); [] when there is no log."""
    path = Path(path)
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()
