"""What the console shows of a room, as JSON for its page: the scenario as played, the incidents against the
candidate's alerts, the grade so far (graded in the background, never on the page's request), and the
candidate's dashboards drawn from their queries."""

from __future__ import annotations

import math
import threading
import time
from urllib.parse import quote

from grading import dashboards as dashboards_mod
from grading.play import Play
from grading.prometheus import PrometheusClient, PrometheusUnreachable
from mlsandbox.console.rooms import Room

GRADE_EVERY_SECONDS = 30.0
# After the play, the views stop here: the rubric's grace for alerts to resolve (and the same window each time).
AFTER_PLAY_SECONDS = 30.0
MAX_POINTS_PER_SERIES = 400
MAX_SERIES_PER_QUERY = 12
TIME_SERIES_PANELS = {"timeseries", "graph"}
LAST_VALUE_PANELS = {"stat", "gauge", "bargauge", "singlestat"}


def _float(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


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
    step = max(1.0, (end - start) / MAX_POINTS_PER_SERIES)
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


def graph_link(prometheus: str, expr: str, seconds: float) -> str:
    return f"{prometheus}/graph?g0.expr={quote(expr)}&g0.tab=0&g0.range_input={max(60, int(seconds))}s"


def _panel(prom: PrometheusClient | None, prometheus: str | None, panel, start: float, end: float) -> dict:
    """A panel as the page draws it: for time series and last-value panels each query's series over the session
    (its count, and the first series' last value); for any other type its queries and links to Prometheus."""
    out = {"title": panel.title, "type": panel.type, "unit": panel.unit, "queries": []}
    drawn = panel.type in TIME_SERIES_PANELS or panel.type in LAST_VALUE_PANELS
    out["drawn"] = drawn
    if not panel.queries:
        out["problem"] = "no PromQL query in this panel"
    step = max(1.0, (end - start) / MAX_POINTS_PER_SERIES)
    for written, expr in zip(panel.queries, panel.resolved()):
        q = {"expr": written, "link": graph_link(prometheus, expr, end - start) if prometheus else None}
        if drawn and prom is not None:
            try:
                series = prom.query_range(expr, start, end, step)
            except (PrometheusUnreachable, ValueError) as exc:
                q["error"] = str(exc)
                series = []
            q["series_count"] = len(series)
            q["series"] = []
            for s in series[:MAX_SERIES_PER_QUERY]:
                label = ", ".join(f"{k}={v}" for k, v in s["metric"].items() if k != "__name__") or s["metric"].get(
                    "__name__", expr
                )
                points = [[float(t), _float(v)] for t, v in s["values"]]
                q["series"].append({"label": label, "points": points})
            lasts = [s["points"][-1][1] for s in q["series"] if s["points"]]
            q["last"] = lasts[0] if lasts else None
            if "error" not in q and not series:
                q["empty"] = True
        out["queries"].append(q)
    return out


def dashboards(room: Room) -> dict:
    """Each dashboard of the candidate's dashboards/ folder, panel by panel, drawn over the session so far."""
    if room.candidate_dir is None:
        return {"dashboards": []}
    boards = dashboards_mod.from_files(room.candidate_dir / "dashboards")
    urls = room.urls()
    prometheus = urls.get("prometheus")
    prom = PrometheusClient(prometheus, timeout=10) if prometheus else None
    try:
        return _dashboards(room, boards, urls, prometheus, prom)
    finally:
        if prom is not None:
            prom.close()


def _dashboards(room, boards, urls: dict, prometheus: str | None, prom: PrometheusClient | None) -> dict:
    session = _session(room)
    end = time.time()
    start = session.start - 30 if session else end - 900
    if session and session.finished:
        end = min(end, session.end + AFTER_PLAY_SECONDS)
    grafana = urls.get("grafana")
    out = []
    for b in boards:
        entry = {"title": b.title, "source": b.source, "error": b.error, "panels": []}
        if grafana and b.uid:
            entry["grafana"] = f"{grafana}/d/{b.uid}"
        for panel in b.panels:
            entry["panels"].append(_panel(prom, prometheus, panel, start, end))
        out.append(entry)
    return {
        "dashboards": out,
        "start": start,
        "end": end,
        "step": max(1.0, (end - start) / MAX_POINTS_PER_SERIES),
        "prometheus": prometheus,
    }
