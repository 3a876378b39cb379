"""What the console shows of a room, as JSON for its page: the scenario as played, the incidents against the
candidate's alerts, the grade so far (graded in the background, never on the page's request), the
candidate's dashboards drawn from their queries, their workspace (read-only, now or at a snapshot of the work
history) and the interviewers' scorecards."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict

from grading import dashboards as dashboards_mod
from grading.play import Play
from grading.prometheus import PrometheusClient, PrometheusUnreachable
from mlsandbox.console.rooms import Room
from mlsandbox.errors import InvalidInput
from mlsandbox.services.dashboards import render
from mlsandbox.sessions import scorecard, workspace
from mlsandbox.sessions.history import History, HistoryError
from mlsandbox.sessions.store import load
from mlsandbox.sessions.summary import phase_spans

GRADE_EVERY_SECONDS = 30.0
# After the play, the views stop here: the rubric's grace for alerts to resolve (and the same window each time).
AFTER_PLAY_SECONDS = 30.0


def _session(room: Room):
    timeline = room.timeline()
    if timeline is None or not timeline.phases:
        return None
    return Play(room.run_dir, timeline, [])


# --- the scenario ---------------------------------------------------------------------------------------


def scenario(room: Room) -> dict:
    timeline = room.timeline()
    if timeline is None:
        return {"played": False}
    played = [
        {
            "name": p.name,
            "start": p.start,
            "end": p.end,
            "planned_end": p.planned_end,
            "skipped": p.skipped,
            "injections": [i.model_dump(exclude_none=True) for i in p.injections],
            "notes": p.notes,
        }
        for p in timeline.phases
    ]
    current = timeline.current
    names = timeline.planned_phases
    upcoming = names[current.index + 1 :] if current is not None else []
    return {
        "played": True,
        "scenario": timeline.scenario,
        "seed": timeline.seed,
        "speed": timeline.speed,
        "status": timeline.status,
        "paused_at": timeline.paused_at,
        "phases": played,
        "current": current.name if current else None,
        "next": upcoming[:1],
        "upcoming": upcoming,
        "now": time.time(),
    }


# --- incidents against alerts -----------------------------------------------------------------------------


def firings(prom: PrometheusClient, start: float, end: float) -> list[dict]:
    """Each firing interval of each alert (and label set) between start and end, from ALERTS."""
    step = render.step(start, end)
    out = []
    for labels, points in prom.series_values('ALERTS{alertstate="firing"}', start, end, step):
        name = labels.get("alertname", "?")
        extra = {k: v for k, v in labels.items() if k not in ("__name__", "alertname", "alertstate")}
        begin = last = None
        for t, _ in points:
            if begin is None:
                begin = last = t
            elif t - last > step * 1.5:
                out.append({"alert": name, "labels": extra, "start": begin, "end": last})
                begin = last = t
            else:
                last = t
        if begin is not None:
            out.append({"alert": name, "labels": extra, "start": begin, "end": last})
    return sorted(out, key=lambda f: f["start"])


def lanes(room: Room, grade: dict | None) -> dict:
    """One lane per incident played (its span), the candidate's firings, each incident's detection latency (the
    grader's attribution when a grade is at hand, else the first firing during the incident), and the firings
    during the baseline, which are false alarms."""
    session = _session(room)
    if session is None:
        return {"incidents": [], "firings": [], "false_alarms": []}
    now = time.time()
    end = min(now, session.end + AFTER_PLAY_SECONDS) if session.finished else now
    fired: list[dict] = []
    error = None
    prometheus = room.urls().get("prometheus")
    if prometheus:
        try:
            with PrometheusClient(prometheus, timeout=10) as prom:
                fired = firings(prom, session.start - 30, end)
        except (PrometheusUnreachable, ValueError) as exc:
            error = str(exc)
    graded = {d["incident"]: d for d in (grade or {}).get("detections", [])}
    incidents = []
    for inc in session.incidents():
        row = {"label": inc.label, "kind": inc.kind, "start": inc.start, "end": min(inc.end, now)}
        by_grader = graded.get(inc.label) or {}
        first = next((f for f in fired if inc.start <= f["start"] <= inc.end + 30), None)
        if by_grader.get("detection_seconds") is not None:
            row.update(detected_by=by_grader["alert"], latency=by_grader["detection_seconds"], source="grader")
        elif first is not None:
            row.update(detected_by=first["alert"], latency=first["start"] - inc.start, source="first firing")
        else:
            row.update(detected_by=None, latency=None, source="under way" if inc.end >= now - 30 else "missed")
        incidents.append(row)
    baseline = session.baseline()
    false = [f for f in fired if baseline and f["start"] < baseline[1] and f["end"] >= baseline[0]]
    return {
        "start": session.start,
        "end": end,
        "incidents": incidents,
        "firings": fired,
        "false_alarms": false,
        "baseline": list(baseline) if baseline else None,
        "error": error,
    }


# --- the grade so far --------------------------------------------------------------------------------------


class Grader:
    """Grades each running room in the background, every GRADE_EVERY_SECONDS or when asked; the page reads
    the last grade and never waits for one."""

    def __init__(self, rooms, rubric=None):
        from grading.rubric import DEFAULT_RUBRIC, load_rubric

        self.rooms = rooms
        self.rubric = load_rubric(rubric or DEFAULT_RUBRIC)
        self._grades: dict[str, dict] = {}
        self._asked: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._busy: str | None = None

    def get(self, name: str) -> dict:
        with self._lock:
            found = dict(self._grades.get(name, {}))
        found["in_flight"] = self._busy == name
        return found

    def ask(self, name: str) -> None:
        with self._lock:
            self._asked.add(name)
        self._wake.set()

    def run_forever(self) -> None:
        while True:
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            for name, room in list(self.rooms.all().items()):
                if not room.running:
                    continue
                with self._lock:
                    last = self._grades.get(name, {}).get("graded_at", 0)
                    due = name in self._asked or time.time() - last >= GRADE_EVERY_SECONDS
                    self._asked.discard(name)
                if due:
                    self._grade(name, room)

    def rubric_for(self, room: Room):
        """A session is graded at its level, as `session end` will grade it."""
        return room.level.rubric(self.rubric) if room.level is not None else self.rubric

    def _grade(self, name: str, room: Room) -> None:
        from grading import report
        from grading.grade import grade

        self._busy = name
        t0 = time.time()
        try:
            inputs = room.sandbox.grading_inputs()
            with PrometheusClient(inputs.prometheus_url) as prom:
                result = grade(
                    prom, inputs.run_dir, self.rubric_for(room), inputs.candidate_dir, None, inputs.server_address
                )
            data = report.to_dict(result)
            data["error"] = None
        except Exception as exc:  # shown on the page, next to the last good grade; the console keeps going
            data = {**self._grades.get(name, {}), "error": f"{type(exc).__name__}: {exc}"}
        data["graded_at"] = t0
        with self._lock:
            self._grades[name] = data
        self._busy = None


# --- the candidate's dashboards ----------------------------------------------------------------------------


def dashboards(room: Room) -> dict:
    """Each dashboard of the candidate's dashboards/ folder, panel by panel, drawn over the session so far."""
    if room.candidate_dir is None:
        return {"dashboards": []}
    found = dashboards_mod.from_files(room.candidate_dir / "dashboards")
    urls = room.urls()
    session = _session(room)
    end = time.time()
    start = session.start - 30 if session else end - 900
    if session and session.finished:
        end = min(end, session.end + AFTER_PLAY_SECONDS)
    return render.boards(found, urls.get("prometheus"), start, end, grafana=urls.get("grafana"))


# --- the candidate's work: the workspace read-only, now or at a snapshot ------------------------------------------


def _history(room: Room) -> History | None:
    return History(room.layout.candidate, room.layout.history) if room.layout is not None else None


def work_history(room: Room) -> dict:
    """The snapshots of the workspace beside the phases played (the page's slider)."""
    history = _history(room)
    if history is None:
        return {"snapshots": [], "phases": [], "why": "not an interview session: no work history"}
    try:
        snaps = history.log()
    except HistoryError as exc:
        snaps, why = [], str(exc)
    else:
        why = None if snaps else "no snapshot yet"
    record = load(room.name).record
    return {
        "start": record.started_at,
        "end": record.ended_at or time.time(),
        "running": room.running,
        "snapshots": [asdict(s) for s in snaps],
        "phases": [asdict(p) for p in phase_spans(room.layout)],
        "round": record.round.started_at if record.round else None,
        "why": why,
    }


def workspace_tree(room: Room, at: str | None = None) -> dict:
    """The workspace's files now, or at the snapshot `at`."""
    if room.candidate_dir is None:
        return {"entries": [], "truncated": False, "at": None}
    if at:
        history = _history(room)
        if history is None:
            raise InvalidInput("no work history here: only the workspace as it is now")
        return {**workspace.tree_at(history, at).as_dict(), "at": at}
    return {**workspace.tree(room.candidate_dir).as_dict(), "at": None}


def workspace_file(room: Room, path: str, at: str | None = None) -> dict:
    """One file's text (Markdown rendered too), now or at the snapshot `at`; links shown, never followed."""
    if room.candidate_dir is None:
        raise InvalidInput("this room has no workspace")
    if at:
        history = _history(room)
        if history is None:
            raise InvalidInput("no work history here: only the workspace as it is now")
        return {**workspace.read_at(history, at, path).as_dict(), "at": at}
    return {**workspace.read(room.candidate_dir, path).as_dict(), "at": None}


# --- the scorecards ----------------------------------------------------------------------------------------------


def scorecards(room: Room, viewer: str | None) -> dict:
    """The scorecard, and what `viewer` may see of the cards: their own; the others' once theirs is complete.
    Without a viewer, nobody's ratings (only who has scored)."""
    if room.layout is None:
        raise InvalidInput("scorecards are for interview sessions")
    book = scorecard.SessionScorecards(room.layout)
    sheet, cards = book.scorecard(), book.cards()
    viewer = (viewer or "").strip() or None
    view = scorecard.view_for(cards, sheet, viewer) if viewer else scorecard.View(None, None, False, {}, sorted(cards))
    shown = set(view.others) | ({viewer} if viewer else set())
    return {
        "scorecard": sheet.model_dump(),
        "viewer": viewer,
        "mine": view.mine.as_dict(sheet) if view.mine else None,
        "unlocked": view.unlocked,
        "others": [card.as_dict(sheet) for card in view.others.values()],
        "waiting": view.waiting,
        "calibration": [{**asdict(d), "gap": d.gap} for d in scorecard.calibration(cards, sheet)]
        if view.unlocked
        else [],
        "changes": [e.model_dump() for e in book.entries() if e.interviewer in shown],
    }


def save_scorecard(room: Room, interviewer: str, ratings: dict, notes: dict, recommendation: str | None) -> dict:
    """Save one change of an interviewer's card (InvalidInput, nothing saved, when any part is wrong); what they
    may see now."""
    if room.layout is None:
        raise InvalidInput("scorecards are for interview sessions")
    _, card = scorecard.score(load(room.name), interviewer, ratings, notes, recommendation or None, "console")
    return scorecards(room, card.interviewer)
