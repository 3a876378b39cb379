"""Item 5, alerting: rules load, evaluate and read something the server exposed; an alert watches a critical
metric; each injected incident is caught (with its detection latency) by an alert whose signal can see it;
nothing fires in the baseline; alerts resolve after recovery; every alert has a severity and a summary.

What an alert watches is found from its condition's value side (judged like any signal: an alert on a recorded
accuracy is a performance alert) or, failing that, from the scraped metrics it reads through recording rules.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from .. import promql
from .. import replay as replay_mod
from ..context import CheckResult, Context, Evidence
from ..families import JOB
from ..findings import Findings
from ..play import Incident
from ..replay import Firing
from ..roles import CRITICAL, SEES, Role
from ..signals import RuleInfo

__all__ = ["AlertOutcome", "AlertRule", "Detection", "Firing", "check", "detections", "firing_intervals"]

ITEM = "alerting"
STEP = 1.0


@dataclass
class AlertRule:
    info: RuleInfo
    reads: set[str]  # the metric names it reads, through recording rules
    missing: set[str]  # of those, the ones Prometheus never held
    roles: list[Role]  # what it watches, the role that explains its condition best first
    how: str  # how its roles were found

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def dead(self) -> bool:
        """It reads metrics, and none of them ever existed: it can never fire (or always does, on absent())."""
        return bool(self.reads) and self.missing == self.reads

    @property
    def broken(self) -> bool:
        return self.info.health == "err"

    @property
    def on_latency(self) -> bool:
        """It watches latency first: its condition follows latency best, or (its condition judged as nothing) it
        reads durations (a histogram's buckets or sum), not only the count of a timer as a traffic alert does."""
        if Role.LATENCY not in self.roles:
            return False
        if self.how.startswith("its condition"):
            return self.roles[0] == Role.LATENCY
        return any(name.endswith(("_bucket", "_sum")) for name in self.reads)


@dataclass(frozen=True)
class Detection:
    incident: Incident
    firing: Firing | None
    pending: bool = False  # mid-session: not caught yet, but still under way (or within the grace)
    cut_off: bool = False  # not caught, and the server or Prometheus was down for most of the time to catch it

    @property
    def judged(self) -> bool:
        return not self.pending and not self.cut_off

    @property
    def latency(self) -> float | None:
        return None if self.firing is None else self.firing.start - self.incident.start


@dataclass
class AlertOutcome:
    rules: list[AlertRule] = field(default_factory=list)
    firings: list[Firing] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)
    # When the rules were replayed (grading.replay): what the alerts recorded during the play caught.
    recorded: list[Detection] | None = None


def describe_rules(ctx: Context, found: Findings) -> list[AlertRule]:
    held = set(ctx.prom.label_values("__name__", '{__name__=~".+"}'))
    records = ctx.signals.records
    out = []
    for r in (r for r in ctx.rules if r.kind == "alerting"):
        reads = promql.resolve(promql.selected(r.query), records)
        roles: list[Role] = []
        how = ""
        for side in promql.value_sides(r.query):
            sig = ctx.signals.of_expr(side)
            if sig is None:
                continue
            judged = sorted(
                (v for v in found.verdicts if v.signal is sig and v.passed), key=lambda v: (not v.primary, -abs(v.rho))
            )
            for v in judged:
                if v.role not in roles:
                    roles.append(v.role)
            if judged:
                how = f"its condition {side} follows " + ", ".join(dict.fromkeys(v.role.title for v in judged))
        if not roles:
            roles = sorted(found.roles_of_families(reads), key=lambda x: x.value)
            if roles:
                how = "it reads " + ", ".join(x.title for x in roles) + " metrics"
        if "up" in reads and Role.AVAILABILITY not in roles:
            roles.append(Role.AVAILABILITY)
            how = how or "it reads the scrape target's up"
        out.append(AlertRule(r, reads, {n for n in reads if n not in held}, roles, how))
    return out


def _freshness(ctx: Context) -> float:
    """How old an ALERTS sample may be and still say the alert fires: a few rule evaluations. Older, it is one
    that Prometheus wrote before it was stopped, shown again by the query's look-back."""
    intervals = [float(g.get("interval") or 0) for g in ctx.prom.rules()]
    return 3 * max([STEP, *intervals]) + 2 * STEP


def firing_intervals(ctx: Context, until: float) -> list[Firing]:
    """When each alert (and label set) was firing, from Prometheus's ALERTS series."""
    out = []
    firing = 'ALERTS{alertstate="firing"}'
    expr = f"{firing} and (time() - timestamp({firing}) < {_freshness(ctx):g})"
    for labels, points in ctx.prom.series_values(expr, ctx.session.start - 60, until, STEP):
        key = tuple(sorted((k, v) for k, v in labels.items() if k not in ("__name__", "alertstate")))
        name = labels.get("alertname", "?")
        open_start, last = None, None
        for t, _ in points:
            if open_start is None:
                open_start = t
            elif t - last > STEP * 1.5:
                out.append(Firing(name, key, open_start, last))
                open_start = t
            last = t
        if open_start is not None:
            out.append(Firing(name, key, open_start, last))
    return sorted(out, key=lambda f: f.start)


def _rank(incident: Incident, roles: list[Role]) -> tuple[int, float]:
    """Incidents seen by the alert's first role first, then by later ones; then the latest to begin."""
    seen = SEES.get(incident.kind, frozenset())
    order = next((k for k, role in enumerate(roles) if role in seen), len(roles))
    return -order, incident.start


def detections(ctx: Context, rules: list[AlertRule], firings: list[Firing]) -> list[Detection]:
    """For each incident, the first alert that started firing for it.

    A firing belongs to an incident under way (or just over: within the grace) that what the alert watches can
    see, and whose feature it names when it names one; among those, the latest to begin. An alert whose roles the
    grader could not find gets the benefit of the doubt for any incident.
    """
    incidents = ctx.session.incidents()
    by_name = {r.name: r for r in rules}
    first: dict[int, Firing] = {}
    features = set(ctx.signals.features)
    for f in firings:
        rule = by_name.get(f.alert)
        roles = rule.roles if rule else []
        named = {v for _, v in f.labels if v in features}
        fitting = [
            i
            for i, inc in enumerate(incidents)
            if inc.start <= f.start <= inc.end + ctx.tol.detection_grace_seconds
            and (not roles or set(roles) & SEES.get(inc.kind, frozenset()))
            and (not named or not inc.features or named & inc.features)
        ]
        if not fitting:
            continue

        first.setdefault(max(fitting, key=lambda i, roles=roles: _rank(incidents[i], roles)), f)
    s, grace = ctx.session, ctx.tol.detection_grace_seconds
    return [
        Detection(
            inc,
            first.get(i),
            pending=first.get(i) is None and not s.finished and inc.end + grace > s.now,
            cut_off=first.get(i) is None
            and s.unobserved(inc.start, inc.end + grace) > 0.5 * (inc.end + grace - inc.start),
        )
        for i, inc in enumerate(incidents)
    ]


def check(ctx: Context, found: Findings) -> tuple[list[CheckResult], AlertOutcome]:
    rules = describe_rules(ctx, found)
    until = min(ctx.session.now, ctx.session.end + ctx.tol.resolve_grace_seconds)
    recorded = firing_intervals(ctx, until)
    firings = recorded
    if ctx.replayed is not None:  # the rules as they are now, over what the play recorded
        firings = replay_mod.replay(ctx.prom, ctx.replayed.rules, ctx.session.start - 60, until, ctx.replayed.step)
    live = [r for r in rules if not r.dead and not r.broken]
    outcome = AlertOutcome(
        rules,
        firings,
        detections(ctx, live, firings) if live else [Detection(i, None) for i in ctx.session.incidents()],
    )
    if ctx.replayed is not None:
        outcome.recorded = detections(ctx, live, recorded)
    results = [
        _valid(ctx, rules),
        _critical(ctx, live),
        _incidents(ctx, outcome),
        _false_alarms(ctx, live, outcome),
        _resolved(ctx, live, outcome, until),
        _annotated(ctx, live, rules),
        _an_incident(ctx, live, outcome),
    ]
    return results, outcome


def _valid(ctx: Context, rules: list[AlertRule]) -> CheckResult:
    evidence = []
    recording_errors = [r for r in ctx.rules if r.kind == "recording" and r.health == "err"]
    for r in [*[x.info for x in rules if x.broken], *recording_errors]:
        evidence.append(Evidence(f"{r.kind} rule {r.name}", "fails at evaluation", r.last_error[:300]))
    for r in rules:
        if r.dead:
            evidence.append(
                Evidence(
                    f"alert {r.name}",
                    "can never see anything",
                    f"reads {', '.join(sorted(r.missing))}, which the server never exposed",
                )
            )
    lint_ok = True
    if ctx.candidate_dir is not None:
        files = sorted(p for pattern in ("*.yml", "*.yaml") for p in (ctx.candidate_dir / "alerts").glob(pattern))
        if files:
            res = subprocess.run(["promtool", "check", "rules", *map(str, files)], capture_output=True, text=True)
            lint_ok = res.returncode == 0
            evidence.append(
                Evidence(
                    "promtool check rules alerts/*.yml",
                    "SUCCESS" if lint_ok else "FAILED",
                    "" if lint_ok else (res.stdout + res.stderr).strip()[-300:],
                )
            )
    if not rules:
        return ctx.result(ITEM, "rules_valid", 0, "no alerting rule is loaded", evidence)
    good = [r for r in rules if not r.dead and not r.broken]
    fraction = 0.0 if not lint_ok else (len(good) - len(recording_errors)) / len(rules)
    summary = (
        f"{len(rules)} alerting rules loaded, all evaluate and read what the server exposes"
        if fraction >= 0.999
        else "promtool rejects the rule files"
        if not lint_ok
        else f"{len(good)} of {len(rules)} alerting rules evaluate and read what the server exposes"
        + (f"; {len(recording_errors)} recording rules fail" if recording_errors else "")
    )
    return ctx.result(ITEM, "rules_valid", fraction, summary, evidence)


def _critical(ctx: Context, live: list[AlertRule]) -> CheckResult:
    watching = sorted({r.name for r in live if set(r.roles) & CRITICAL})
    return ctx.result(
        ITEM,
        "alert_on_critical_metric",
        1 if watching else 0,
        f"alerts on what matters: {', '.join(watching)}"
        if watching
        else "no alert watches performance, drift, data quality, latency, errors or traffic",
        [
            Evidence(f"alert {r.name}", [x.value for x in r.roles] or "nothing the grader recognised", r.how)
            for r in live
        ],
    )


def _incidents(ctx: Context, outcome: AlertOutcome) -> CheckResult:
    judged = [d for d in outcome.detections if d.judged]
    if not judged:
        return ctx.not_applicable(
            ITEM,
            "incidents_detected",
            "no incident can be judged yet (each is still under way)"
            if outcome.detections
            else "the scenario injected no incident",
        )
    caught = [d for d in judged if d.firing is not None]
    evidence = [
        Evidence(
            'ALERTS{alertstate="firing"}',
            f"{d.firing.key} after {d.latency:.0f} s"
            if d.firing
            else ("not yet" if d.pending else "a component was down" if d.cut_off else "no alert"),
            d.incident.label,
        )
        for d in outcome.detections
    ]
    pending = sum(d.pending for d in outcome.detections)
    cut_off = sum(d.cut_off for d in outcome.detections)
    return ctx.result(
        ITEM,
        "incidents_detected",
        len(caught) / len(judged),
        f"{len(caught)} of {len(judged)} incidents caught by an alert that watches what they change"
        + (f" ({pending} still under way, not judged yet)" if pending else "")
        + (f" ({cut_off} cut short by the server or Prometheus being down, not judged)" if cut_off else ""),
        evidence,
    )


def _an_incident(ctx: Context, live: list[AlertRule], outcome: AlertOutcome) -> CheckResult:
    """A first alert that works (an extra check, for a junior): one incident caught by an alert on something that
    matters, whatever the others."""
    judged = [d for d in outcome.detections if d.judged]
    if not judged:
        return ctx.not_applicable(ITEM, "an_incident_caught", "no incident can be judged yet")
    rules = {r.name: r for r in live}
    caught = [
        d
        for d in judged
        if d.firing is not None
        and (
            d.firing.alert not in rules
            or not rules[d.firing.alert].roles
            or set(rules[d.firing.alert].roles) & CRITICAL
        )
    ]
    return ctx.result(
        ITEM,
        "an_incident_caught",
        1 if caught else 0,
        f"{caught[0].firing.key} caught {caught[0].incident.label} after {caught[0].latency:.0f} s"
        if caught
        else "no alert on a critical signal caught any incident",
        [
            Evidence('ALERTS{alertstate="firing"}', f"{d.firing.key} after {d.latency:.0f} s", d.incident.label)
            for d in caught[:5]
        ],
    )


def _false_alarms(ctx: Context, live: list[AlertRule], outcome: AlertOutcome) -> CheckResult:
    if not live:
        return ctx.result(ITEM, "no_false_alarms", 0, "no alert can fire: quiet proves nothing", [])
    judged = [d for d in outcome.detections if d.judged]
    if judged and not any(d.firing for d in judged):
        return ctx.result(
            ITEM, "no_false_alarms", 0, "no alert caught any incident either: quiet in the baseline proves nothing", []
        )
    base = ctx.session.baseline()
    if base is None:
        return ctx.result(ITEM, "no_false_alarms", 0, "the scenario has no baseline", [])
    rules = {r.name: r for r in live}
    down = _server_down_times(ctx, base[0] - 120, base[1])
    false = sorted(
        {
            f.key
            for f in outcome.firings
            if f.start < base[1]
            and f.end >= base[0]
            and not _saw_real_outage(rules.get(f.alert), f, down)
            and not _saw_real_slowness(ctx, rules.get(f.alert), f.start)
        }
    )
    return ctx.result(
        ITEM,
        "no_false_alarms",
        0 if false else 1,
        f"{len(false)} alerts fired during the baseline: {', '.join(false)}"
        if false
        else "nothing fired during the baseline",
        [Evidence('ALERTS{alertstate="firing"} during the baseline', false or "none")],
    )


def _server_down_times(ctx: Context, start: float, end: float) -> list[float]:
    """When Prometheus could not scrape the model server (up == 0)."""
    return [t for _, points in ctx.prom.series_values(f'up{{job="{JOB}"}} == 0', start, end, STEP) for t, _ in points]


def _saw_real_outage(rule: AlertRule | None, f: Firing, down: list[float]) -> bool:
    """An alert on availability that fired because the server really was down (a restart, a slow start) is
    right, not a false alarm: the server was unreachable within the rule's `for` before it fired, or while it
    fired."""
    if rule is None or Role.AVAILABILITY not in rule.roles:
        return False
    since = f.start - rule.info.duration - 5 * STEP
    return any(since <= t <= f.end for t in down)


def _saw_real_slowness(ctx: Context, rule: AlertRule | None, at: float) -> bool:
    """A latency alert that fires because the clients really were answered slowly (a loaded machine, outside any
    injected fault) is right: in the minute before `at` (and the rule's `for`), at least `slow_answer_share` of
    the answers took `slow_answer_seconds` or longer, as the load generator measured them."""
    if rule is None or not rule.on_latency:
        return False
    # The injected latency (and the queue it leaves for a few seconds) is the incident, not the machine.
    injected = [(i.start, i.end + 5) for i in ctx.session.incidents() if i.kind == "latency"]
    rows = [
        r
        for r in ctx.session.rows(at - 60 - rule.info.duration, at + STEP)
        if not any(lo <= r.second < hi for lo, hi in injected)
    ]
    answers = sum(r.requests for r in rows)
    slow = sum(r.requests for r in rows if (r.latency_mean_seconds or 0.0) >= ctx.tol.slow_answer_seconds)
    return answers > 0 and slow / answers >= ctx.tol.slow_answer_share


def _resolved(ctx: Context, live: list[AlertRule], outcome: AlertOutcome, until: float) -> CheckResult:
    if not any(d.firing for d in outcome.detections):
        return ctx.result(ITEM, "resolved_after_recovery", 0, "no alert caught an incident: nothing to resolve", [])
    first_incident = min(i.start for i in ctx.session.incidents())
    started = [f for f in outcome.firings if f.end >= first_incident]
    # An availability alert still firing because the server really is down at the end is right.
    rules = {r.name: r for r in live}
    down = ctx.session.server_gone_at_end is not None
    left = [
        f
        for f in started
        if f.end >= until - 2 * STEP
        and not (down and rules.get(f.alert) is not None and Role.AVAILABILITY in rules[f.alert].roles)
    ]
    # A latency alert still firing because the answers really are slow is right too.
    slow = sorted({f.key for f in left if _saw_real_slowness(ctx, rules.get(f.alert), until)})
    still = sorted({f.key for f in left} - set(slow))
    return ctx.result(
        ITEM,
        "resolved_after_recovery",
        0 if still else 1,
        f"still firing: {', '.join(still)}"
        if still
        else "every alert resolved after recovery"
        + (f" (still firing, rightly, while the clients saw slow answers: {', '.join(slow)})" if slow else ""),
        [
            Evidence(
                'ALERTS{alertstate="firing"}',
                still or "none firing",
                f"at {until - ctx.session.end:.0f} s after the scenario ended",
            ),
            *(
                [
                    Evidence(
                        "what the clients saw (the load generator's ledger)",
                        slow,
                        f"at least {ctx.tol.slow_answer_share:.0%} of the answers in the minute before took "
                        f"{ctx.tol.slow_answer_seconds:g} s or longer, outside any injected latency",
                    )
                ]
                if slow
                else []
            ),
        ],
    )


def _annotated(ctx: Context, live: list[AlertRule], rules: list[AlertRule]) -> CheckResult:
    if not live:
        return ctx.result(
            ITEM, "severity_and_summary", 0, "no alert that can fire" if rules else "no alerting rule", []
        )
    good = [
        r
        for r in live
        if r.info.labels.get("severity")
        and (r.info.annotations.get("summary") or r.info.annotations.get("description"))
    ]
    missing = sorted({r.name for r in live} - {r.name for r in good})
    return ctx.result(
        ITEM,
        "severity_and_summary",
        len(good) / len(live),
        "every alert has a severity and a summary" if not missing else f"missing on {', '.join(missing)}",
        [Evidence("/api/v1/rules labels.severity, annotations.summary", f"{len(good)} of {len(live)}")],
    )
