"""Grade a session: read what the candidate built (families, rules, dashboards, signals), find which signal fills
each role, run every applicable check of the rubric, pick the one improvement."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np

from . import dashboards as dashboards_mod
from . import expected as expected_mod
from . import gaps as gaps_mod
from . import round as round_mod
from .checks import alert_practice, alerting, drift, hygiene, performance, predictions, system, visualization
from .checks.alerting import AlertOutcome
from .context import CheckResult, Context, ItemResult, Replayed
from .families import JOB, Exposition, Family, from_metadata, from_series_names, parse_exposition
from .findings import Findings, find
from .play import Play
from .prometheus import PrometheusClient
from .roles import Role
from .round import MainPlay, RoundJudgement
from .rubric import CONDITIONS, Needs, Rubric
from .signals import SignalSet, loaded_rules

MODULES = {
    "predictions": predictions,
    "performance": performance,
    "system": system,
    "drift": drift,
    "alerting": alerting,
    "visualization": visualization,
    "hygiene": hygiene,
}


@dataclass(frozen=True)
class Improvement:
    item: str | None
    check: str | None
    points_at_stake: float
    text: str


@dataclass
class PlotSeries:
    label: str
    times: np.ndarray
    values: np.ndarray


@dataclass
class Grade:
    session: Play
    items: list[ItemResult]
    improvement: Improvement
    notes: list[str]
    findings: Findings
    alerts: AlertOutcome
    dashboards: list[str]
    server_up: bool
    performance_plot: list[PlotSeries] = field(default_factory=list)
    drift_plot: list[PlotSeries] = field(default_factory=list)
    graded_at: float = field(default_factory=time.time)
    duration_seconds: float = 0.0
    level: str | None = None  # the level the rubric was composed for (levels/), for the report's header
    round: RoundJudgement | None = None  # an improvement round's alerting, judged again (grading/round.py)

    @property
    def points(self) -> float:
        return round(sum(i.points for i in self.items), 2)

    @property
    def max_points(self) -> float:
        return sum(i.max_points for i in self.items)

    @property
    def score(self) -> float:
        return round(100 * self.points / self.max_points, 1) if self.max_points else 0.0

    @property
    def plus(self) -> list[tuple[str, CheckResult]]:
        """The rubric's plus checks that applied, by item: reported beside the score, never counted in it."""
        return [(i.key, c) for i in self.items for c in i.plus]

    @property
    def not_applicable(self) -> list[tuple[str, CheckResult]]:
        return [(i.key, c) for i in self.items for c in i.not_applicable]


SCRAPE_TIMEOUT_SECONDS = 5  # a /metrics that answers slower is as good as down (Prometheus gives up at 4 s)

# Why Prometheus refused the model server's scrape (its target's lastError), in the report's words.
SCRAPE_REFUSALS = {
    "sample limit exceeded": "scrape rejected: sample limit (more series in one scrape than the job's sample_limit)",
    "body size limit exceeded": "scrape rejected: body size limit (the /metrics answer is larger than the job allows)",
    "context deadline exceeded": "scrape rejected: timeout (/metrics answered slower than the job's scrape_timeout)",
}


def scrape_refused(prom: PrometheusClient) -> str | None:
    """Why Prometheus's last scrape of the model server failed, when it did; None when it succeeded."""
    for t in prom.targets():
        if t["labels"].get("job") == JOB and t.get("health") == "down" and t.get("lastError"):
            error = t["lastError"]
            said = next((words for key, words in SCRAPE_REFUSALS.items() if key in error), None)
            return said or f"scrape failed: {error[:300]}"
    return None


@dataclass(frozen=True)
class Scrape:
    body: str | None  # None unless /metrics answered 200
    url: str | None  # None when Prometheus has no target for the model server
    answered: bool  # False when the server refused the connection or hung past the time-out


def scrape_now(prom: PrometheusClient, server_address: str | None) -> Scrape:
    """The model server's /metrics now, where Prometheus scrapes it. `server_address` (http://host:port) replaces
    the target's address when the grader cannot reach the one Prometheus scrapes, e.g. a container's name on a
    Docker network."""
    for t in prom.targets():
        if t["labels"].get("job") == JOB and t.get("scrapeUrl"):
            url = t["scrapeUrl"]
            if server_address:
                parts, address = urlsplit(url), urlsplit(server_address)
                url = urlunsplit((address.scheme, address.netloc, parts.path, parts.query, ""))
            try:
                response = httpx.get(url, timeout=SCRAPE_TIMEOUT_SECONDS, follow_redirects=True)
            except httpx.HTTPError:
                return Scrape(None, url, False)
            return Scrape(response.text if response.status_code == 200 else None, url, True)
    return Scrape(None, None, True)


def scrape(prom: PrometheusClient, server_address: str | None) -> tuple[str | None, str | None]:
    """(/metrics body, its URL) scraped from the model server now; (None, url) when it does not answer."""
    now = scrape_now(prom, server_address)
    return now.body, now.url


def last_served(session: Play) -> tuple[str | None, float]:
    """The /metrics body the server last answered with during the session (model_service kept it in the run
    directory), and when, in seconds into the scenario; (None, 0) when there is none."""
    from model_service.last_metrics import read_last_metrics

    kept = read_last_metrics(session.run_dir)
    if kept is None or kept[1] < session.start:
        return None, 0.0
    return as_classic_text(kept[0]), kept[1] - session.start


def as_classic_text(text: str) -> str:
    """Exposition text in Prometheus's classic format: OpenMetrics (what the server answers when Prometheus asks
    for it, as it does first) rewritten, so that it reads as the grader's own scrape would."""
    if not text.rstrip().endswith("# EOF"):
        return text
    from prometheus_client.exposition import generate_latest
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError):
        return text

    class Parsed:
        def collect(self):
            return families

    return generate_latest(Parsed()).decode()


def _families(prom: PrometheusClient, exposition: Exposition | None) -> dict[str, Family]:
    held = set(prom.label_values("__name__", f'{{job="{JOB}"}}'))
    if exposition is not None and exposition.families:
        fams = parse_exposition(exposition.text, held).families
        return {k: f for k, f in fams.items() if f.series}
    return from_metadata(prom.target_metadata(JOB), held) or from_series_names(held)


def unmet(needs: Needs, session: Play, rubric: Rubric) -> list[str]:
    """What a check needs that the session has not (yet) given: [] when the check applies."""
    kinds = session.played_kinds()
    missing = []
    if needs.any_of and not kinds & set(needs.any_of):
        missing.append(f"no {' or '.join(k.replace('_', ' ') for k in needs.any_of)} was played")
    facts = {
        "baseline": session.baseline() is not None,
        "labels": len(session.labelled()) >= 20,
        "errors": session.total("client_errors") + session.total("server_errors") > 0,
        "incident": bool(kinds),
        "finished": session.finished and session.now >= session.end + rubric.tolerances.resolve_grace_seconds,
    }
    missing += [
        f"not yet: {CONDITIONS[c]}" if c == "finished" else f"needs: {CONDITIONS[c]}"
        for c in needs.conditions
        if not facts[c]
    ]
    return missing


def improvement(items: list[ItemResult], rubric: Rubric) -> Improvement:
    """The applicable failing check that loses the most points (ties: the rubric's priority), for the candidate."""
    order = {key: i for i, key in enumerate(rubric.improvement_priority)}
    failing = [
        (c.max_points - c.points, -order.get(item.key, 99), item, c)
        for item in items
        for c in item.counted
        if c.points < c.max_points
    ]
    if not failing:
        return Improvement(
            None,
            None,
            0.0,
            "Nothing failed. Ask the candidate which alert they would trust least in production, and why.",
        )
    lost, _, item, check = max(failing, key=lambda f: (f[0], f[1]))
    return Improvement(
        item.key, check.name, round(lost, 2), f"{item.title}: {check.advice} (What the grader saw: {check.summary}.)"
    )


def _plots(ctx: Context, found: Findings) -> tuple[list[PlotSeries], list[PlotSeries]]:
    times = ctx.expected.grid
    truth = expected_mod.accuracy_curve(ctx.expected, ctx.tol.accuracy_window_labels)
    perf = [PlotSeries(f"grader: {truth.variant}", times, truth.values)] if truth is not None else []
    perf += [PlotSeries(v.name, times, v.series.values) for v in found.taken(Role.PERFORMANCE)[:2]]
    drifted = next((i for i in ctx.session.incidents() if i.kind in drift.DRIFTS), None)
    feature = sorted(drifted.features)[0] if drifted else None
    chosen = next((v for v in found.taken(Role.DRIFT) if feature and v.feature == feature), None) or next(
        iter(found.taken(Role.DRIFT)), None
    )
    drift_plot = []
    if chosen is not None:
        drift_plot = [PlotSeries(s.describe(chosen.signal.expr), times, s.values) for s in chosen.signal.series[:12]]
    return perf, drift_plot


def grade(
    prom: PrometheusClient,
    run_dir: Path,
    rubric: Rubric,
    candidate_dir: Path | None = None,
    grafana_url: str | None = None,
    server_address: str | None = None,
    metrics_body: str | None = None,
    now: float | None = None,
    round_of: MainPlay | None = None,
) -> Grade:
    """Grade the session in `run_dir`. `metrics_body`: the /metrics text archived at the end of a session, used
    instead of scraping the server now (re-grading an archive). `round_of`: the play graded is an improvement
    round's, replayed after `round_of`, the session's main play: its alerting is judged again by replaying the
    rules over the main play (grading/round.py)."""
    t0 = time.monotonic()
    result = grade_play(prom, Play.load(run_dir, now), rubric, candidate_dir, grafana_url, server_address, metrics_body)
    if round_of is not None:

        def main_grade(session: Play, replayed: Replayed) -> Grade:
            return grade_play(prom, session, rubric, candidate_dir, grafana_url, server_address, metrics_body, replayed)

        result = round_mod.judge(prom, result, round_of, rubric, main_grade)
    result.duration_seconds = round(time.monotonic() - t0, 2)
    return result


def grade_play(
    prom: PrometheusClient,
    session: Play,
    rubric: Rubric,
    candidate_dir: Path | None = None,
    grafana_url: str | None = None,
    server_address: str | None = None,
    metrics_body: str | None = None,
    replayed: Replayed | None = None,
) -> Grade:
    """Grade one play; `replayed`: alerts judged on these rules replayed over the play, not on ALERTS."""
    t0 = time.monotonic()
    prom.check()
    notes = []
    session.gaps = gaps_mod.find(prom, session)
    if session.gaps:
        notes.append(gaps_mod.summary(session.gaps, session))
    unseen = session.unseen_incidents()
    if unseen:
        notes.append("Not judged, played while a component was down: " + ", ".join(i.label for i in unseen) + ".")
    refused = scrape_refused(prom) if metrics_body is None else None
    if refused:
        notes.append(f"Prometheus could not scrape the model server at grading time: {refused}.")
    scrape_url, answered = None, True
    if metrics_body is None:
        taken = scrape_now(prom, server_address)
        metrics_body, scrape_url, answered = taken.body, taken.url, taken.answered
    server_up = metrics_body is not None
    if metrics_body is None:
        # Only a server that is gone stands in for its last body: one that answers without metrics is graded so.
        gone = not answered or session.server_gone_at_end is not None
        metrics_body, served_at = last_served(session) if gone else (None, 0.0)
        if metrics_body is not None:
            notes.append(
                "The model server was down (or exposed no /metrics) at grading time; the grade uses what "
                f"Prometheus recorded, and the /metrics it last served ({served_at:.0f} s into the scenario)."
            )
        else:
            notes.append(
                "The model server was down (or exposed no /metrics) at grading time; the grade uses what "
                "Prometheus recorded during the session."
            )
    exposition = parse_exposition(metrics_body) if metrics_body is not None else None
    families = _families(prom, exposition)
    if not families:
        notes.append("Prometheus holds no metric from the model server for this session.")
    boards, boards_from = dashboards_mod.load(candidate_dir, grafana_url)
    rules = loaded_rules(prom)
    expected = expected_mod.build(session, tail_seconds=10)
    panels = [(b.title, title, q) for b in boards if b.error is None for title, q in b.queries()]
    rewrite = (lambda expr: replayed.rules.inlined(expr, replayed.step)) if replayed else None
    signals = SignalSet(prom, expected.grid, families, rules, panels, rewrite)
    signals.evaluate()
    ctx = Context(
        prom,
        session,
        rubric,
        families,
        exposition,
        rules,
        boards,
        boards_from,
        signals,
        expected,
        candidate_dir,
        server_up,
        scrape_url if server_up else None,
        replayed,
    )
    found = find(ctx)
    items, outcome = [], AlertOutcome()
    for key, module in MODULES.items():
        if key not in rubric.items:
            continue
        spec = rubric.items[key]
        if key == "alerting":
            results, outcome = module.check(ctx, found)
            results += alert_practice.check(ctx, outcome, set(spec.checks))
        else:
            results = module.check(ctx, found)
        checks = []
        for r in results:
            if r.name not in spec.checks:
                continue
            missing = unmet(spec.checks[r.name].needs, session, rubric)
            if missing:
                r = CheckResult(
                    r.name, 0.0, r.max_points, False, "not applicable: " + "; ".join(missing), applicable=False
                )
            r.plus = spec.checks[r.name].plus
            checks.append(r)
        items.append(ItemResult(key, spec.title, checks))
    perf_plot, drift_plot = _plots(ctx, found)
    result = Grade(
        session,
        items,
        improvement(items, rubric),
        notes,
        found,
        outcome,
        [b.title for b in boards if b.error is None],
        server_up,
        perf_plot,
        drift_plot,
        level=rubric.level,
    )
    result.duration_seconds = round(time.monotonic() - t0, 2)
    return result
