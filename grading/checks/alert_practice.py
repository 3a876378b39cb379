"""The practices of production alerting, extra checks of the alerting item that a rubric names when it asks for
them (the senior level, the dashboard-design exercise): alerts routed by severity with the next step written down,
performance alerts that wait for enough labels, drift alerts that name the feature, an alert against an
objective, thresholds argued in NOTES.md.

Like the rest of the grader they read what the candidate wrote from PromQL's syntax tree and judge it by what it
did over the session where behaviour can tell (a label-count guard is one that held the alert back before any
label arrived), whatever the names.
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import promql
from ..context import CheckResult, Context, Evidence
from ..roles import Role
from .alerting import STEP, AlertOutcome, AlertRule

ITEM = "alerting"

# Annotations that hold a runbook: a link or the steps themselves.
RUNBOOK_ANNOTATIONS = ("runbook", "runbook_url", "playbook")
# What a description that names the next step says: an instruction to the person paged. Matched as whole words
# in the description or summary when no runbook annotation is given.
NEXT_STEP_WORDS = (
    "check",
    "look",
    "open",
    "restart",
    "roll back",
    "rollback",
    "revert",
    "retrain",
    "compare",
    "page",
    "escalate",
    "ask",
    "find",
    "read",
    "inspect",
    "investigate",
    "scale",
    "verify",
    "confirm",
    "call",
    "contact",
    "notify",
    "disable",
    "drain",
    "fail over",
    "reload",
    "run",
    "follow",
    "tell",
    "review",
    "pause",
    "promote",
    "see",
)
_NEXT_STEP = re.compile(r"\b(" + "|".join(re.escape(w) for w in NEXT_STEP_WORDS) + r")\b", re.I)
# Roles an objective (an SLI over a window) is about: the service's availability, errors and latency.
OBJECTIVE_ROLES = frozenset({Role.AVAILABILITY, Role.ERRORS, Role.LATENCY})
DRIFT_KINDS = ("covariate_drift", "category_mix")
NOTES = "NOTES.md"


def check(ctx: Context, outcome: AlertOutcome, named: set[str]) -> list[CheckResult]:
    """The practice checks among `named` (they cost Prometheus queries: none is computed unless the rubric asks)."""
    live = [r for r in outcome.rules if not r.dead and not r.broken]
    found = {
        "routed_by_severity": lambda: routed_by_severity(ctx, live),
        "performance_alerts_guarded": lambda: performance_alerts_guarded(ctx, live),
        "per_feature_drift_alerts": lambda: per_feature_drift_alerts(ctx, live, outcome),
        "objective_alert": lambda: objective_alert(ctx, live),
        "thresholds_argued": lambda: thresholds_argued(ctx, live),
    }
    return [run() for name, run in found.items() if name in named]


# --- routed by severity, with the next step ------------------------------------------------------------------


def names_next_step(annotations: dict) -> bool:
    """A runbook annotation, or a description (or summary) that tells the person paged what to do next."""
    if any(str(annotations.get(a, "")).strip() for a in RUNBOOK_ANNOTATIONS):
        return True
    text = " ".join(str(annotations.get(a, "")) for a in ("description", "summary"))
    return bool(_NEXT_STEP.search(text))


def routed_by_severity(ctx: Context, live: list[AlertRule]) -> CheckResult:
    if not live:
        return ctx.result(ITEM, "routed_by_severity", 0, "no alert that can fire", [])
    routed = ctx.tol.routed_severities
    good = [r for r in live if r.info.labels.get("severity") in routed and names_next_step(r.info.annotations)]
    severities = sorted({r.info.labels.get("severity") for r in live} & set(routed))
    # One severity for everything pages for a drifting feature as for a dead server: routing needs two.
    fraction = len(good) / len(live) * (1 if len(severities) >= 2 else 0.5)
    bad = sorted({r.name for r in live} - {r.name for r in good})
    summary = (
        f"every alert has a routed severity ({', '.join(severities)}) and a runbook or a next step"
        if not bad and len(severities) >= 2
        else f"{len(good)} of {len(live)} alerts have a severity Alertmanager routes ({', '.join(routed)}) and a "
        f"runbook or a next step"
        + (f" (not: {', '.join(bad[:5])})" if bad else "")
        + ("" if len(severities) >= 2 else f"; one severity for all ({', '.join(severities) or 'none routed'})")
    )
    return ctx.result(
        ITEM,
        "routed_by_severity",
        fraction,
        summary,
        [
            Evidence(
                f"alert {r.name}",
                r.info.labels.get("severity") or "no severity",
                "runbook or next step" if names_next_step(r.info.annotations) else "no runbook, no next step",
            )
            for r in live[:12]
        ],
    )


# --- performance alerts guarded by the number of labels ---------------------------------------------------------


def _true_times(ctx: Context, expr: str, start: float, end: float) -> list[float] | None:
    """When an expression had a value between start and end (a comparison: when it held); None when it fails."""
    try:
        return sorted(t for _, points in ctx.prom.series_values(expr, start, end, STEP) for t, _ in points)
    except Exception:  # an operand Prometheus refuses on its own (a vector matching that needs the whole)
        return None


def _guards(ctx: Context, rule: AlertRule) -> list[tuple[str, str]]:
    """The filters of an alert's condition, and of the recording rules its value side reads."""
    out = list(promql.filters(rule.info.query))
    records = ctx.signals.records
    for side in promql.value_sides(rule.info.query):
        for name in promql.selected(side):
            if name in records:
                out += promql.filters(records[name])
    return out


def _guard_verdict(ctx: Context, rule: AlertRule, first_label: float) -> tuple[bool, str]:
    """Whether one of the alert's filters is a label-count guard: it reads something else than the value side, held
    the alert back before any label arrived and let it through once labels came."""
    s = ctx.session
    side_reads = promql.resolve(
        set().union(*map(promql.selected, promql.value_sides(rule.info.query))), ctx.signals.records
    )
    guards = [
        (g, op) for g, op in _guards(ctx, rule) if promql.resolve(promql.selected(g), ctx.signals.records) - side_reads
    ]
    if not guards:
        return False, "no filter on anything but what it compares"
    before = (s.start + STEP, first_label)
    testable = before[1] - before[0] >= 3 * STEP
    for guard, op in guards:
        if not testable:
            return True, f"filtered by `{guard}` (no time before the first label to see it hold the alert back)"
        held = _true_times(ctx, guard, s.start, s.end)
        if held is None:
            continue
        early = [t for t in held if before[0] <= t < before[1]]
        later = [t for t in held if t >= before[1]]
        blocks_early = not early if op == "and" else bool(early)
        lets_through = bool(later) if op == "and" else len(later) < (s.end - before[1]) / STEP * 0.9
        if blocks_early and lets_through:
            return True, f"`{guard}` held it back until labels arrived ({first_label - s.start:.0f} s in)"
    return False, "its filters do not wait for labels: " + ", ".join(f"`{g}`" for g, _ in guards[:3])


def performance_alerts_guarded(ctx: Context, live: list[AlertRule]) -> CheckResult:
    perf = [r for r in live if Role.PERFORMANCE in r.roles]
    if not perf:
        return ctx.result(ITEM, "performance_alerts_guarded", 0, "no alert watches performance: nothing to guard", [])
    labelled = ctx.session.labelled()
    first_label = min((lp.label_ts for lp in labelled), default=ctx.session.end)
    verdicts = {r.name: _guard_verdict(ctx, r, first_label) for r in perf}
    guarded = [n for n, (ok, _) in verdicts.items() if ok]
    return ctx.result(
        ITEM,
        "performance_alerts_guarded",
        len(guarded) / len(perf),
        f"{len(guarded)} of {len(perf)} performance alerts wait for enough labels in their window",
        [Evidence(f"alert {n}", "guarded" if ok else "not guarded", why) for n, (ok, why) in verdicts.items()],
    )


# --- drift alerts per feature -------------------------------------------------------------------------------------


def per_feature_drift_alerts(ctx: Context, live: list[AlertRule], outcome: AlertOutcome) -> CheckResult:
    drifts = [i for i in ctx.session.incidents() if i.kind in DRIFT_KINDS and i.features]
    if not drifts:
        return ctx.not_applicable(ITEM, "per_feature_drift_alerts", "no drift of a feature was played")
    rules = {r.name: r for r in live if Role.DRIFT in r.roles}
    grace = ctx.tol.detection_grace_seconds
    named_right, evidence = 0, []
    for inc in drifts:
        said = set()
        for f in outcome.firings:
            rule = rules.get(f.alert)
            if rule is None or not inc.start <= f.start <= inc.end + grace:
                continue
            said |= {v for _, v in f.labels} | promql.matcher_values(rule.info.query)
        right = sorted(said & inc.features)
        named_right += bool(right)
        evidence.append(
            Evidence(
                inc.label,
                f"named {', '.join(right)}" if right else "no drift alert named it",
                f"drift alerts that fired: {', '.join(sorted({f.key for f in outcome.firings if f.alert in rules})) or 'none'}",
            )
        )
    return ctx.result(
        ITEM,
        "per_feature_drift_alerts",
        named_right / len(drifts),
        f"{named_right} of {len(drifts)} drifts caught by a drift alert that names the feature",
        evidence,
    )


# --- an alert against an objective ----------------------------------------------------------------------------


def _against_objective(ctx: Context, rule: AlertRule) -> bool:
    """Its condition (or a recording rule it reads) is a ratio over a window."""
    records = ctx.signals.records
    exprs = [rule.info.query] + [records[n] for n in promql.selected(rule.info.query) if n in records]
    return any(promql.ratio_over_window(e) for e in exprs)


def objective_alert(ctx: Context, live: list[AlertRule]) -> CheckResult:
    about = [r for r in live if set(r.roles) & OBJECTIVE_ROLES]
    against = [r for r in about if _against_objective(ctx, r)]
    return ctx.result(
        ITEM,
        "objective_alert",
        1 if against else 0,
        f"alerts against an objective (a ratio over a window): {', '.join(r.name for r in against)}"
        if against
        else "no availability, error or latency alert is a ratio over a window (an objective, a burn rate)",
        [
            Evidence(
                f"alert {r.name}",
                "a ratio over a window" if r in against else "a threshold on a level",
                r.info.query[:200],
            )
            for r in about[:8]
        ],
    )


# --- thresholds argued in NOTES.md -------------------------------------------------------------------------------


def passages(text: str) -> list[str]:
    """NOTES.md cut where a reader would cut it: paragraphs, and each table row and list item on its own."""
    out, lines = [], []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            out.append(" ".join(lines))
            lines = []
        elif stripped.startswith(("|", "- ", "* ", "+ ")) or re.match(r"\d+\. ", stripped):
            out.append(" ".join(lines))
            lines = [stripped]
        else:
            lines.append(stripped)
    out.append(" ".join(lines))
    return [p for p in out if p]


def _number_forms(value: float) -> list[str]:
    """How a threshold may be written in prose: as in the rule, as a percentage, in milliseconds."""
    forms = {f"{value:g}"}
    if 0 < abs(value) < 1:
        forms |= {f"{value * 100:g}%", f"{value * 100:g} %", f"{value * 1000:g}ms", f"{value * 1000:g} ms"}
    return sorted(forms)


def argued(passages_: list[str], name: str, thresholds: list[float]) -> bool:
    """A passage names the alert and gives a number, or states one of its thresholds."""
    for p in passages_:
        if name in p and re.search(r"\d", p.replace(name, "")):
            return True
        if any(re.search(rf"(?<![\d.]){re.escape(form)}(?![\d])", p) for v in thresholds for form in _number_forms(v)):
            return True
    return False


def thresholds_argued(ctx: Context, live: list[AlertRule]) -> CheckResult:
    notes = ctx.candidate_dir / NOTES if ctx.candidate_dir is not None else None
    if notes is None or not Path(notes).is_file():
        return ctx.result(ITEM, "thresholds_argued", 0, f"no {NOTES} in the workspace", [])
    if not live:
        return ctx.result(ITEM, "thresholds_argued", 0, "no alert that can fire: no threshold to argue", [])
    text = Path(notes).read_text(errors="replace")[:200_000]
    cut = passages(text)
    verdicts = {r.name: argued(cut, r.name, promql.thresholds(r.info.query)) for r in live}
    done = [n for n, ok in verdicts.items() if ok]
    return ctx.result(
        ITEM,
        "thresholds_argued",
        len(done) / len(verdicts),
        f"{len(done)} of {len(verdicts)} alerts have their threshold in {NOTES}",
        [Evidence(f"alert {n}", "in NOTES.md" if ok else "not in NOTES.md") for n, ok in verdicts.items()],
    )
