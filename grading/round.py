"""The improvement round's alerting, judged at the candidate's time scale.

`session improve` replays the scenario compressed into the round (15 minutes by default). An alert sized for
production (a 10-minute window, `for: 5m`) cannot fire within phases that short, so the round's own play would
grade the compression, not the candidate. The round's timed alerting checks (incidents detected, no false alarm,
resolved after recovery) therefore get one of two judgements:

- replay: the rules as Prometheus has them loaded at the end of the round, replayed over the main play's recorded
  data at its own time scale (grading/replay.py), against the main play's truth. This is the judgement whenever
  the rules read what the main play recorded; an alert on a metric first exposed during the round cannot fire in
  it, and is judged so when no compression fits;
- the round's play (as Prometheus recorded it): when some alert reads a metric first exposed during the round and
  the round's compression still lets the quickest such alert (its shortest window and `for:`) fire within the
  shortest incident (grading.replay.Compression).

The other alerting checks stay on the round's play. Every other item's check is judged on the round's play, or on
the main play with the workspace as it is now where that earns more: a performance window sized for the
scenario's phases shows less on their compressed replay, and a metric added during the round has data on the
round's play only. Per incident, the report shows what the main play's alerts caught
then ("before") and what the rules as they are now catch when replayed ("after").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import promql
from .context import CheckResult, ItemResult, Replayed
from .play import Play
from .prometheus import PrometheusClient
from .replay import Compression, compression, rule_set
from .rubric import Rubric

if TYPE_CHECKING:
    from .grade import Grade

TIMED = ("incidents_detected", "no_false_alarms", "resolved_after_recovery")
REPLAY, ROUND, MAIN = "replay over the main play", "the round's play", "the main play"


@dataclass(frozen=True)
class MainPlay:
    """The session's main play, seen from its improvement round: where its truth was kept, and how the round
    replayed it."""

    truth_dir: Path  # holds scenario/ (timeline, ledger) of the main play
    round_minutes: float
    round_speed: float  # how many times faster than the scenario's own time the round played it
    # The rule groups Prometheus had loaded when the main play ended (/api/v1/rules): the recording rules unchanged
    # since are read as recorded, not inlined (grading.replay.RuleSet.reading_recorded). None: not kept.
    rules: list[dict] | None = None


@dataclass(frozen=True)
class IncidentBeforeAfter:
    incident: str
    before: str | None  # the alert that caught it during the main play (None: nothing)
    before_seconds: float | None
    after: str | None  # the alert that catches it when the rules as they are now are replayed
    after_seconds: float | None


@dataclass
class RoundJudgement:
    judgement: str  # REPLAY or ROUND
    why: str
    compression: str
    new_data_alerts: list[str]
    incidents: list[IncidentBeforeAfter]
    round_play_points: dict[str, float] = field(default_factory=dict)  # the timed checks on the round's play alone
    main_grade: Grade | None = None  # the main play graded with the rules replayed

    def as_dict(self) -> dict:
        return {
            "judgement": self.judgement,
            "why": self.why,
            "compression": self.compression,
            "new_data_alerts": self.new_data_alerts,
            "checks": list(TIMED),
            "round_play_points": self.round_play_points,
            "incidents": [i.__dict__ for i in self.incidents],
        }


def _shortest_incident_phase(main: Play) -> float:
    """The scenario's shortest incident (an injection or a fault, held over consecutive phases), in the scenario's own
    seconds."""
    speed = main.timeline.speed or 1.0
    held = [(i.end - i.start) * speed for i in main.incidents()]
    return min(held, default=(main.end - main.start) * speed)


def _sampled(prom: PrometheusClient, names: set[str], start: float, end: float) -> set[str]:
    """Which of `names` have samples between `start` and `end` (by the samples themselves: the label values API
    answers for whole blocks, and the main play and the round share one)."""
    span = f"{max(1, int(end - start))}s"
    return {n for n in names if prom.query(f'count(count_over_time({{__name__="{n}"}}[{span}]))', end)}


def _new_data_alerts(prom: PrometheusClient, rules, main: Play) -> list[str]:
    """The alerts that read a metric Prometheus holds now but held no sample of during the main play."""
    now = set(prom.label_values("__name__", '{__name__=~".+"}'))
    records = {k: r.expr for k, r in rules.records.items()}
    reads = {a.name: promql.resolve(promql.selected(a.expr), records) & now for a in rules.alerts}
    then = _sampled(prom, set().union(*reads.values()) if reads else set(), main.start, main.end)
    return [name for name, names in reads.items() if names - then]


def _before_after(main_grade: Grade) -> list[IncidentBeforeAfter]:
    outcome = main_grade.alerts
    before = {d.incident.label: d for d in outcome.recorded or []}
    out = []
    for d in outcome.detections:
        b = before.get(d.incident.label)
        out.append(
            IncidentBeforeAfter(
                d.incident.label,
                b.firing.key if b and b.firing else None,
                b.latency if b else None,
                d.firing.key if d.firing else None,
                d.latency,
            )
        )
    return out


def _said(judgement: str, why: str, check: CheckResult) -> CheckResult:
    return replace(check, summary=f"{judgement}: {check.summary}; {why}")


def _at_either_time_scale(
    items: list[ItemResult], main_grade: Grade, main_play: MainPlay
) -> tuple[list[ItemResult], dict[str, float]]:
    """The other items' checks (not alerting's): each judged on the round's play, or on the main play with the
    workspace as it is now where that earns more. A window or a threshold sized for the scenario's own time scale
    shows less on a replay compressed into the round; a metric added during the round has data on the round's play
    only. The points a replaced check had on the round's play alone are returned beside."""
    on_main = {(i.key, c.name): c for i in main_grade.items for c in i.checks}
    why = (
        f"the main play, at the scenario's own time scale, with the workspace as it is now (the round replayed the "
        f"scenario {main_play.round_speed:.3g}x faster: this check earned less on it)"
    )
    out, alone = [], {}
    for item in items:
        if item.key == "alerting":
            out.append(item)
            continue
        checks = []
        for c in item.checks:
            m = on_main.get((item.key, c.name))
            if m is not None and m.applicable and m.points > c.points + 1e-9:
                alone[f"{item.key}.{c.name}"] = c.points
                c = _said(MAIN, why, m)
            checks.append(c)
        out.append(ItemResult(item.key, item.title, checks))
    return out, alone


def judge(
    prom: PrometheusClient,
    round_grade: Grade,
    main_play: MainPlay,
    rubric: Rubric,
    grade_main: Callable[[Play, Replayed], Grade],
) -> Grade:
    """The round's grade with its timed alerting checks judged as the module says; `grade_main(session, replayed)`
    grades the main play with the rules replayed."""
    from .grade import improvement

    tol = rubric.tolerances
    try:
        main = Play.load(round_grade.session.run_dir, truth_dir=main_play.truth_dir)
    except ValueError:
        main = None
    if main is None or not main.phases:
        round_grade.round = RoundJudgement(ROUND, "the main play's truth was not kept", "", [], [])
        return round_grade
    main.now = main.end + tol.resolve_grace_seconds  # graded at its end and the grace, as it was finished
    step = prom.evaluation_interval()
    rules = rule_set(prom.rules())
    new_data = _new_data_alerts(prom, rules, main)
    fit: Compression = compression(
        rules,
        new_data,
        step,
        main_play.round_speed,
        _shortest_incident_phase(main),
        tol.detection_grace_seconds,
    )
    scenario_seconds = (main.end - main.start) * (main.timeline.speed or 1.0)
    said_fit = fit.describe(scenario_seconds)
    then = rule_set(main_play.rules) if main_play.rules is not None else None
    main_grade = grade_main(main, Replayed(rules.reading_recorded(then), step))
    if new_data and fit.fits:
        judgement = ROUND
        why = (
            f"{', '.join(new_data)} read metrics first exposed during the round, and the round's compression fits "
            f"their windows: {said_fit}"
        )
    else:
        judgement = REPLAY
        why = (
            "the rules as they are now, replayed over the main play's data at its own time scale (the round replayed "
            f"the scenario {main_play.round_speed:.3g}x faster, in {main_play.round_minutes:g} min)"
        )
        if new_data:
            why += (
                f"; {', '.join(new_data)} read metrics the main play did not record, and no compression within the "
                f"round fits their windows ({said_fit}): judged on the recorded play only"
            )
    alone = {c.name: c.points for i in round_grade.items if i.key == "alerting" for c in i.checks if c.name in TIMED}
    if judgement == REPLAY:
        replayed = {c.name: c for i in main_grade.items if i.key == "alerting" for c in i.checks}
        items = []
        for item in round_grade.items:
            if item.key != "alerting":
                items.append(item)
                continue
            checks = [
                _said(REPLAY, why, replayed[c.name]) if c.name in TIMED and c.name in replayed else c
                for c in item.checks
            ]
            items.append(ItemResult(item.key, item.title, checks))
    else:
        items = [
            ItemResult(
                i.key,
                i.title,
                [_said(ROUND, why, c) if i.key == "alerting" and c.name in TIMED else c for c in i.checks],
            )
            for i in round_grade.items
        ]
    items, kept = _at_either_time_scale(items, main_grade, main_play)
    alone |= kept
    round_grade.items = items
    round_grade.improvement = improvement(items, rubric)
    round_grade.round = RoundJudgement(judgement, why, said_fit, new_data, _before_after(main_grade), alone, main_grade)
    return round_grade
