"""Grade a session: discover the candidate's metrics, run every check of the rubric, pick the improvement."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .checks import alerting, drift, hygiene, performance, predictions, system, visualization
from .context import JOB, CheckResult, GradingContext, ItemResult, discover
from .prometheus import PrometheusClient
from .rubric import Rubric
from .session import Session

# Order matters: later checks use what earlier ones found (performance before drift, roles before alerting).
CHECKS = {"predictions": predictions, "system": system, "performance": performance, "drift": drift,
          "alerting": alerting, "visualization": visualization, "hygiene": hygiene}


@dataclass
class Grade:
    session: Session
    items: list[ItemResult]
    improvement: dict
    notes: list[str]
    context: GradingContext
    graded_at: float = field(default_factory=time.time)
    duration_seconds: float = 0.0

    @property
    def points(self) -> float:
        return round(sum(i.points for i in self.items), 2)

    @property
    def max_points(self) -> float:
        return sum(i.max_points for i in self.items)

    @property
    def score(self) -> float:
        return round(100 * self.points / self.max_points, 1) if self.max_points else 0.0


def _target(prom: PrometheusClient, server_address: str | None) -> tuple[bool, str | None]:
    """Whether the model server answers a scrape now (Prometheus's last health may be seconds old).
    `server_address` (http://host:port) replaces the target's address when the grader cannot reach the one
    Prometheus scrapes, e.g. a container's name on a Docker network."""
    from urllib.parse import urlsplit, urlunsplit

    import httpx

    for t in prom.targets():
        if t["labels"].get("job") == JOB and t.get("scrapeUrl"):
            url = t["scrapeUrl"]
            if server_address:
                parts, address = urlsplit(url), urlsplit(server_address)
                url = urlunsplit((address.scheme, address.netloc, parts.path, parts.query, ""))
            try:
                ok = httpx.get(url, timeout=5, follow_redirects=True).status_code == 200
            except httpx.HTTPError:
                ok = False
            return ok, url
    return False, None


def improvement(items: list[ItemResult], rubric: Rubric) -> dict:
    """The failing check that loses the most points (ties: the rubric's priority), phrased for the candidate."""
    order = {key: i for i, key in enumerate(rubric.improvement_priority)}
    failing = [(c.max_points - c.points, -order.get(item.key, 99), item, c)
               for item in items for c in item.checks if c.points < c.max_points]
    if not failing:
        return {"item": None, "check": None,
                "text": "Nothing failed. Ask the candidate which alert they would trust least in production, and why."}
    _, _, item, check = max(failing, key=lambda f: (f[0], f[1]))
    return {"item": item.key, "check": check.name, "points_at_stake": round(check.max_points - check.points, 2),
            "text": f"{item.title}: {check.advice} (What the grader saw: {check.summary}.)"}


def grade(prom: PrometheusClient, run_dir: Path, rubric: Rubric, candidate_dir: Path | None = None,
          grafana_url: str | None = None, server_address: str | None = None) -> Grade:
    t0 = time.monotonic()
    session = Session.load(run_dir)
    prom.check()
    server_up, scrape_url = _target(prom, server_address)
    notes = []
    if not server_up:
        notes.append("The model server was down (or exposed no /metrics) at grading time; the grade uses what "
                     "Prometheus recorded during the session.")
    ctx = GradingContext(prom, session, rubric, discover(prom), candidate_dir, grafana_url, server_up,
                         scrape_url if server_up else None)
    if not ctx.families:
        notes.append("Prometheus holds no metric from the model server for this session.")
    items = []
    for key, module in CHECKS.items():
        if key not in rubric.items:
            continue
        wanted = rubric.items[key].checks
        results: list[CheckResult] = [r for r in module.check(ctx) if r.name in wanted]
        items.append(ItemResult(key, rubric.items[key].title, results))
    result = Grade(session, items, improvement(items, rubric), notes, ctx)
    result.duration_seconds = round(time.monotonic() - t0, 2)
    return result
