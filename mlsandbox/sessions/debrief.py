"""The debrief: one self-contained HTML page per session for the hiring committee, and a PDF of it.

It holds the automatic grade with its evidence, the incidents against the candidate's alerts, the improvement
round before and after, the interviewers' scorecards and recommendations (calibration flagged), the candidate's
NOTES.md and a summary of their work history. Everything is inlined (styles, the grader's timeline picture as a
data: URI, the work history drawn in SVG) and the page's Content-Security-Policy forbids any request: opening it
asks nothing of another host, and nothing in it needs the sandbox running. Links a reader may click are kept.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import jinja2

from mlsandbox.errors import MlsandboxError
from mlsandbox.sessions import workspace
from mlsandbox.sessions.history import History, HistoryError
from mlsandbox.sessions.scorecard import SessionScorecards, calibration
from mlsandbox.sessions.store import GradeRecord, StoredSession
from mlsandbox.sessions.summary import phase_spans

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True, trim_blocks=True
)
# Nothing leaves the page: no script, no font, no frame, no request; images only from data: URIs.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
MAX_DIFF_LINES = 120
MAX_SNAPSHOTS_LISTED = 60
MAX_EVIDENCE_CHARS = 300
PDF_SECONDS = 120
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def _clock(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _short(value: object, limit: int = MAX_EVIDENCE_CHARS) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _report(grade: GradeRecord | None) -> tuple[dict | None, str | None]:
    """The grade's report.json and its timeline picture (base64), when the archive has them."""
    if grade is None:
        return None, None
    folder = Path(grade.report)
    try:
        data = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        data = None
    png = folder / "timeline.png"
    return data, base64.b64encode(png.read_bytes()).decode() if png.exists() else None


def _incidents(data: dict) -> list[dict]:
    """Each incident of the graded play, when it ran, and which alert caught it after how long."""
    t0 = data["session"]["start"]
    caught = {d["incident"]: d for d in data.get("detections", [])}
    rows = []
    for inc in data["session"].get("incidents", []):
        d = caught.get(inc["target"], {})
        rows.append(
            {
                "incident": inc["target"],
                "kind": inc["kind"],
                "from": inc["start"] - t0,
                "to": inc["end"] - t0,
                "alert": d.get("alert"),
                "after": d.get("detection_seconds"),
                "judged": d.get("judged", True),
            }
        )
    return rows


def _items(data: dict) -> list[dict]:
    items = []
    for item in data.get("items", []):
        checks = [
            {
                **c,
                "evidence": [
                    {"what": _short(e["what"], 160), "seen": _short(e["seen"]), "note": e.get("note", "")}
                    for e in c.get("evidence", [])[:6]
                ],
            }
            for c in item["checks"]
        ]
        items.append({**item, "checks": checks})
    return items


def _round(session: StoredSession) -> dict | None:
    r, layout = session.record, session.layout
    if r.round is None:
        return None
    before = next((g for g in r.grades if g.label == "before the round"), None)
    final = r.final
    item = r.round.improvement.get("item")
    diff = layout.round_diff.read_text(errors="replace") if layout.round_diff.exists() else ""
    lines = diff.splitlines()
    files = sorted({m.group(1) for m in re.finditer(r"^diff --git a/(\S+) b/", diff, re.M)})
    return {
        "started": _clock(r.round.started_at),
        "minutes": r.round.minutes,
        "point": r.round.improvement.get("text"),
        "item": item,
        "item_before": before.items.get(item) if before and item else None,
        "item_after": final.items.get(item) if final and item else None,
        "item_max": (final or before).max_items.get(item) if (final or before) and item else None,
        "score_before": before.score if before else None,
        "score_after": final.score if final else None,
        "files": files,
        "diff": "\n".join(lines[:MAX_DIFF_LINES]),
        "diff_more": max(0, len(lines) - MAX_DIFF_LINES),
    }


def _work(session: StoredSession) -> dict:
    """The work history: snapshots beside the phases played, as rows and as a strip to draw."""
    r, layout = session.record, session.layout
    try:
        snaps = History(layout.candidate, layout.history).log()
    except HistoryError:
        snaps = []
    phases = phase_spans(layout)
    t0 = r.started_at
    t1 = max([r.ended_at or time.time()] + [s.time for s in snaps] + [p.end for p in phases])
    span = max(1.0, t1 - t0)

    def x(t: float) -> float:
        return round(1000 * min(1.0, max(0.0, (t - t0) / span)), 1)

    def phase_of(t: float) -> str:
        return next((p.name for p in phases if p.start <= t < p.end), "")

    edits = Counter(f for s in snaps[1:] for f in s.files)
    rows = [
        {
            "at": max(0.0, s.time - t0) / 60,
            "clock": _clock(s.time)[11:],
            "message": s.message,
            "files": s.files,
            "phase": phase_of(s.time),
        }
        for s in snaps
    ]
    return {
        "count": len(snaps),
        "minutes": span / 60,
        "most_edited": edits.most_common(8),
        "rows": rows[:MAX_SNAPSHOTS_LISTED],
        "more": max(0, len(rows) - MAX_SNAPSHOTS_LISTED),
        "bands": [
            {
                "x": x(p.start),
                "w": max(1.0, x(p.end) - x(p.start)),
                "name": p.name,
                "incident": bool(p.injected),
                "title": f"{p.name}: {', '.join(p.injected) or 'nothing injected'}"
                + (f" ({p.play})" if p.play else ""),
            }
            for p in phases
        ],
        "ticks": [
            {"x": x(s.time), "title": f"+{max(0.0, s.time - t0) / 60:.1f} min: {', '.join(s.files[:5])}"} for s in snaps
        ],
        "round": x(r.round.started_at) if r.round else None,
        "axis": [{"x": x(t0 + span * k / 4), "label": f"+{span * k / 4 / 60:.0f} min"} for k in range(5)],
    }


def _notes(session: StoredSession) -> dict:
    view = workspace.read(session.layout.candidate, "NOTES.md")
    if view.kind != "file" or view.html is None:
        return {"html": None, "problem": view.problem or "not shown"}
    return {"html": view.html, "problem": view.problem}


def context(session: StoredSession) -> dict:
    """Everything the debrief shows, read from the session's folder."""
    r = session.record
    grade = r.final or (r.grades[-1] if r.grades else None)
    data, png = _report(grade)
    book = SessionScorecards(session.layout)
    scorecard, cards = book.scorecard(), book.cards()
    titles = {rec.id: rec.title for rec in scorecard.recommendations}
    play = r.play
    return {
        "csp": CSP,
        "name": r.name,
        "state": session.state,
        "generated": _clock(time.time()),
        "folder": str(session.layout.root),
        "facts": {
            "scenario": play.scenario if play else None,
            "seed": play.seed if play else None,
            "speed": play.speed if play else None,
            "surprise": play.surprise if play else False,
            "backend": r.backend,
            "started": _clock(r.started_at),
            "ended": _clock(r.ended_at),
            "minutes": ((r.ended_at or time.time()) - r.started_at) / 60,
        },
        "grade": grade,
        "grades": r.grades,
        "report": data,
        "items": _items(data) if data else [],
        "incidents": _incidents(data) if data else [],
        "png": png,
        "round": _round(session),
        "scorecard": scorecard,
        "cards": cards,
        "recommendation_titles": titles,
        "calibration": calibration(cards, scorecard),
        "changes": book.entries(),
        "clock": _clock,
        "notes": _notes(session),
        "work": _work(session),
        "record_notes": r.notes,
    }


def write(session: StoredSession, out: Path) -> Path:
    """The debrief as one HTML file at `out`."""
    html = TEMPLATES.get_template("debrief.html.j2").render(**context(session))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html)
    return out


def print_pdf(html: Path, pdf: Path) -> Path:
    """The page printed to PDF by headless Chromium, on a fresh profile that talks to nothing."""
    binary = next((found for name in CHROMIUM if (found := shutil.which(name))), None)
    if binary is None:
        raise MlsandboxError("--pdf needs Chromium (Debian: apt-get install chromium); the HTML is written")
    pdf = Path(pdf).resolve()
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlsandbox-pdf-") as profile:
        argv = [
            binary,
            "--headless",
            "--no-sandbox",  # as root (CI) Chromium refuses to start with its sandbox; the page is our own file
            "--disable-gpu",
            # No background traffic of the browser's own: updates, sync, field trials, QUIC probes.
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            Path(html).resolve().as_uri(),
        ]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=PDF_SECONDS)
        except subprocess.TimeoutExpired:
            raise MlsandboxError(f"Chromium did not print {html} within {PDF_SECONDS} s") from None
    if done.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MlsandboxError(f"Chromium could not print {html} (exit {done.returncode}): {last}")
    return pdf
