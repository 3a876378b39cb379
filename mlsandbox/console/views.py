"""What the console shows of a room, as JSON for its page: the scenario as played, the incidents against the
candidate's alerts, the grade so far (graded in the background, never on the page's request), and the
candidate's dashboards drawn from their queries."""

from __future__ import annotations

import threading
import time

from grading import dashboards as dashboards_mod
from grading.play import Play
from grading.prometheus import PrometheusClient, PrometheusUnreachable
from mlsandbox.console.rooms import Room
from mlsandbox.services.dashboards import render

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

    def _grade(self, name: str, room: Room) -> None:
        from grading import report
        from grading.grade import grade

        self._busy = name
        t0 = time.time()
        try:
            inputs = room.sandbox.grading_inputs()
            with PrometheusClient(inputs.prometheus_url) as prom:
                result = grade(prom, inputs.run_dir, self.rubric, inputs.candidate_dir, None, inputs.server_address)
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
