"""Item 5, alerting: rules load and are valid; an alert watches a critical metric; each injected incident
is caught (with its detection latency); nothing fires in the baseline; alerts resolve after recovery;
every alert has a severity and a summary."""
from __future__ import annotations

import subprocess
import time

from ..context import CheckResult, Evidence, GradingContext, families_in
from ..session import Incident

ITEM = "alerting"
STEP = 1.0
# Which roles of metric can see which kind of incident. An alert reading none of the roles the grader
# recognised gets the benefit of the doubt for any incident.
SEES = {
    "covariate_drift": {"drift_indicator", "score_histogram", "class_counter"},
    "category_mix": {"drift_indicator", "score_histogram", "class_counter"},
    "unit_change": {"drift_indicator", "score_histogram", "class_counter"},
    "stuck_value": {"drift_indicator", "score_histogram", "class_counter"},
    "renamed_category": {"error_counter", "request_counter", "prediction_counter", "latency_histogram"},
    "missing_values": {"drift_indicator"},
    "out_of_range": {"drift_indicator"},
    "concept_drift": {"performance_gauge"},
    "latency": {"latency_histogram"},
    "errors": {"error_counter", "request_counter", "prediction_counter", "latency_histogram"},
    "outage": {"availability", "request_counter", "prediction_counter", "latency_histogram"},
}


def alerting_rules(ctx: GradingContext) -> list[dict]:
    return [r for g in ctx.prom.rules() for r in g.get("rules", []) if r.get("type") == "alerting"]


def firing_intervals(ctx: GradingContext, until: float) -> dict[tuple, list[tuple[float, float]]]:
    """(alertname, labels...) -> the intervals it was firing, from Prometheus's ALERTS series."""
    out = {}
    for labels, points in ctx.prom.series_values('ALERTS{alertstate="firing"}', ctx.session.start - 60, until, STEP):
        key = tuple(sorted((k, v) for k, v in labels.items() if k not in ("__name__", "alertstate")))
        intervals, open_start, last = [], None, None
        for t, _ in points:
            if open_start is None:
                open_start = t
            elif t - last > STEP * 1.5:
                intervals.append((open_start, last))
                open_start = t
            last = t
        if open_start is not None:
            intervals.append((open_start, last))
        out[key] = intervals
    return out


def _roles_of(ctx: GradingContext, rule: dict) -> tuple[set[str], bool]:
    """The roles of the metric families a rule reads, and whether it reads any family the grader could
    not place (then it may be about anything)."""
    read = families_in(rule["query"], ctx.families)
    roles, placed = set(), set()
    for role, fams in ctx.roles().items():
        if fams & read:
            roles.add(role)
            placed |= fams & read
    if re_up(rule["query"]):
        roles.add("availability")
    return roles, bool(read - placed) or not (read or roles)


def re_up(expr: str) -> bool:
    import re

    return re.search(r"(^|[^a-zA-Z0-9_:])up\s*(\{|$|[^a-zA-Z0-9_:(])", expr) is not None


def check(ctx: GradingContext) -> list[CheckResult]:
    rules = alerting_rules(ctx)
    results = [_valid(ctx, rules), _critical(ctx, rules)]
    until = min(time.time(), ctx.session.end + ctx.tol.resolve_grace_seconds)
    intervals = firing_intervals(ctx, until)
    roles = {r["name"]: _roles_of(ctx, r) for r in rules}
    results += [_incidents(ctx, intervals, roles), _false_alarms(ctx, intervals, rules),
                _resolved(ctx, intervals, until), _annotated(ctx, rules)]
    ctx.artifacts["alert_intervals"] = intervals
    return results


def _valid(ctx: GradingContext, rules: list[dict]) -> CheckResult:
    unhealthy = [r["name"] for r in rules if r.get("health") not in ("ok", "unknown")]
    evidence = [Evidence("/api/v1/rules", f"{len(rules)} alerting rules loaded", f"unhealthy: {unhealthy}" if unhealthy else "")]
    lint_ok = True
    if ctx.candidate_dir is not None:
        files = sorted((ctx.candidate_dir / "alerts").glob("*.y*ml"))
        if files:
            res = subprocess.run(["promtool", "check", "rules", *map(str, files)], capture_output=True, text=True)
            lint_ok = res.returncode == 0
            evidence.append(Evidence("promtool check rules alerts/*.yml", "SUCCESS" if lint_ok else "FAILED",
                                     "" if lint_ok else (res.stdout + res.stderr).strip()[-300:]))
    ok = bool(rules) and not unhealthy and lint_ok
    return ctx.result(ITEM, "rules_valid", 1 if ok else 0,
                      f"{len(rules)} alerting rules loaded and valid" if ok else
                      ("no alerting rule is loaded" if not rules else "some rules are invalid or fail to evaluate"), evidence)


def _critical(ctx: GradingContext, rules: list[dict]) -> CheckResult:
    critical_roles = {"performance_gauge", "drift_indicator", "latency_histogram", "error_counter",
                      "prediction_counter", "request_counter", "score_histogram", "class_counter"}
    watching = [r["name"] for r in rules if _roles_of(ctx, r)[0] & critical_roles]
    return ctx.result(ITEM, "alert_on_critical_metric", 1 if watching else 0,
                      f"alerts on critical metrics: {', '.join(sorted(set(watching)))}" if watching
                      else "no alert reads a prediction, performance, drift, latency or error metric",
                      [Evidence("metric families each rule reads", {r["name"]: sorted(_roles_of(ctx, r)[0]) for r in rules})])


def _starts(intervals) -> list[tuple[float, tuple]]:
    return sorted((start, key) for key, ivs in intervals.items() for start, _ in ivs)


def _features(inc: Incident) -> set[str]:
    return {f for f in [inc.params.get("feature"), *inc.params.get("features", [])] if f}


def detections(ctx: GradingContext, intervals, roles) -> list[tuple[Incident, tuple | None, float | None]]:
    """For each incident: the first alert that started firing for it, and how long after its onset.

    Each start of an alert is given to one incident: among those under way (or just over) whose kind the
    alert's metrics can see (or, failing that, any, when it reads metrics the grader could not place), and
    whose feature it names when it names one, the one that began last.
    """
    incidents = ctx.session.incidents()
    first: dict[int, tuple[float, tuple]] = {}
    for start, key in _starts(intervals):
        labels = dict(key)
        seen_by, unplaced = roles.get(labels.get("alertname"), (set(), True))
        named = labels.get("feature")
        fitting = [i for i, inc in enumerate(incidents)
                   if inc.start <= start <= inc.end + ctx.tol.detection_grace_seconds
                   and (seen_by & SEES.get(inc.kind, set()) or unplaced)
                   and (not named or named in _features(inc))]
        if not fitting:
            continue
        # An incident its metrics can see beats one it is only given the benefit of the doubt for.
        seeing = [i for i in fitting if seen_by & SEES.get(incidents[i].kind, set())]
        chosen = max(seeing or fitting, key=lambda i: incidents[i].start)
        if chosen not in first:
            first[chosen] = (start, key)
    return [(inc, first[i][1] if i in first else None, first[i][0] - inc.start if i in first else None)
            for i, inc in enumerate(incidents)]


def _incidents(ctx: GradingContext, intervals, roles) -> CheckResult:
    found = detections(ctx, intervals, roles)
    ctx.artifacts["detections"] = found
    if not found:
        return ctx.result(ITEM, "incidents_detected", 1, "the scenario injected no incident", [])
    caught = [f for f in found if f[1] is not None]
    evidence = [Evidence('ALERTS{alertstate="firing"}', f"{dict(key)['alertname']} after {lat:.0f}s" if key else "no alert",
                         inc.label) for inc, key, lat in found]
    return ctx.result(ITEM, "incidents_detected", len(caught) / len(found),
                      f"{len(caught)} of {len(found)} incidents caught by an alert", evidence)


def _false_alarms(ctx: GradingContext, intervals, rules: list[dict]) -> CheckResult:
    if not rules:
        return ctx.result(ITEM, "no_false_alarms", 0, "no alerting rule: nothing could fire, rightly or not", [])
    quiet = ctx.session.quiet_phases()
    if not quiet:
        return ctx.result(ITEM, "no_false_alarms", 1, "the scenario has no baseline", [])
    start, end = quiet[0]["start"], quiet[-1]["end"]
    false = sorted({dict(k)["alertname"] for k, ivs in intervals.items() for a, b in ivs if a < end and b >= start})
    return ctx.result(ITEM, "no_false_alarms", 0 if false else 1,
                      f"{len(false)} alerts fired during the baseline: {', '.join(false)}" if false
                      else "nothing fired during the baseline",
                      [Evidence('ALERTS{alertstate="firing"} during the baseline', false or "none")])


def _resolved(ctx: GradingContext, intervals, until: float) -> CheckResult:
    first_incident = min((i.start for i in ctx.session.incidents()), default=None)
    if first_incident is None:
        return ctx.result(ITEM, "resolved_after_recovery", 1, "no incident to recover from", [])
    started = {k: ivs for k, ivs in intervals.items() if any(a >= first_incident for a, _ in ivs)}
    if not started:
        return ctx.result(ITEM, "resolved_after_recovery", 0, "no alert fired for the incidents", [])
    still = sorted({dict(k)["alertname"] for k, ivs in started.items() if ivs[-1][1] >= until - 2 * STEP})
    fraction = 1 - len(still) / len({dict(k)["alertname"] for k in started})
    return ctx.result(ITEM, "resolved_after_recovery", fraction,
                      "every alert resolved after recovery" if not still else f"still firing: {', '.join(still)}",
                      [Evidence('ALERTS{alertstate="firing"}', still or "none firing",
                                f"at {until - ctx.session.end:.0f}s after the scenario ended")])


def _annotated(ctx: GradingContext, rules: list[dict]) -> CheckResult:
    if not rules:
        return ctx.result(ITEM, "severity_and_summary", 0, "no alerting rule", [])
    good = [r["name"] for r in rules if r.get("labels", {}).get("severity")
            and (r.get("annotations", {}).get("summary") or r.get("annotations", {}).get("description"))]
    missing = sorted({r["name"] for r in rules} - set(good))
    return ctx.result(ITEM, "severity_and_summary", len(good) / len(rules),
                      "every alert has a severity and a summary" if not missing else f"missing on {', '.join(missing)}",
                      [Evidence("/api/v1/rules labels.severity, annotations.summary", f"{len(good)} of {len(rules)}")])
