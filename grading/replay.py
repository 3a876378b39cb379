"""Alert rules replayed over a recorded play: when would the candidate's rules, as they are now, have fired?

The improvement round replays the scenario compressed into a few minutes, which a production-minded solution
(windows of 10-30 minutes, `for:` of minutes) cannot fire within. So its alerting is judged again on the main play's
stored data, at the candidate's own time scale:

1. recording rules are resolved first: every selector of a recording rule's output is replaced, in the PromQL
   syntax tree (promql-parser), by that rule's expression (its static labels added, the selector's matchers
   applied, a range turned into a subquery at the evaluation step), so that a rule written during the round reads
   what the main play recorded;
2. each alert condition is evaluated with query_range at the evaluation step over the play;
3. Prometheus's alert state machine is applied to each label set: pending from the first evaluation it is
   present, firing once it has been present for `for:`, kept firing for `keep_firing_for:` after it is gone.

The result is the same kind of firing intervals the alerting checks read from `ALERTS` (Prometheus's own rule
backfill writes recording rules only, never ALERTS). The module also says how much compression an alert's windows
and `for:` allow: what a round of M minutes can judge at all.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import promql_parser as pp
import yaml

from . import promql
from .prometheus import PrometheusClient, prometheus_time

MAX_POINTS = 10_000  # Prometheus answers at most 11,000 points a series: longer plays are asked for in pieces
KEEP = "mlsandbox_keep"  # a temporary label while a regex matcher filters an inlined expression


@dataclass(frozen=True)
class Firing:
    """An alert (one label set) firing from `start` to `end` (its first and last firing evaluations)."""

    alert: str
    labels: tuple[tuple[str, str], ...]
    start: float
    end: float

    @property
    def key(self) -> str:
        feature = dict(self.labels).get("feature")
        return f"{self.alert}/{feature}" if feature else self.alert


@dataclass(frozen=True)
class Recording:
    expr: str
    labels: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_seconds: float = 0.0
    keep_firing_for: float = 0.0
    labels: dict = field(default_factory=dict)
    interval: float = 0.0  # its group's evaluation interval (0: Prometheus's global one)
    # When its group is evaluated: at times equal to this modulo the interval (Prometheus spreads its groups over
    # the interval); None: unknown, the replay's own grid.
    phase: float | None = None


@dataclass(frozen=True)
class RuleSet:
    records: dict[str, Recording]
    alerts: list[Alert]

    def inlined(self, expr: str, step: float) -> str:
        return inline(expr, self.records, step)

    def reading_recorded(self, then: RuleSet | None) -> RuleSet:
        """These rules with the recording rules that were already loaded, unchanged, in `then` (the rules of the
        recorded play) left out of the inlining: their series were recorded, at their group's own interval, and
        are read as they are. A recording rule new or changed since is inlined (evaluated at the replay's step)."""
        if then is None:
            return self
        kept = {name for name, rule in self.records.items() if then.records.get(name) == rule}
        return RuleSet({k: r for k, r in self.records.items() if k not in kept}, self.alerts)


# --- reading rules ------------------------------------------------------------------------------------------------
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration: str | float | int | None) -> float:
    """A Prometheus duration ('1m30s', '500ms') in seconds; a number is taken as seconds already."""
    if duration is None or duration == "":
        return 0.0
    if isinstance(duration, (int, float)):
        return float(duration)
    parts = _DURATION.findall(str(duration))
    if not parts or "".join(a + b for a, b in parts) != str(duration).strip():
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(float(n) * _UNIT[u] for n, u in parts)


def rule_set(groups: list[dict]) -> RuleSet:
    """The rules of rule-file groups (`groups:` of a rule file: `record`/`alert`, `expr`, `for`, `labels` ...) or of
    Prometheus's /api/v1/rules groups (`type`, `name`, `query`, `duration` ...)."""
    records: dict[str, Recording] = {}
    alerts: list[Alert] = []
    for g in groups:
        interval = seconds(g.get("interval"))
        phase = _phase(g.get("lastEvaluation"), interval)
        for r in g.get("rules") or []:
            if "record" in r or r.get("type") == "recording":
                records[r.get("record") or r["name"]] = Recording(
                    r.get("expr") or r["query"], dict(r.get("labels") or {})
                )
            elif "alert" in r or r.get("type") == "alerting":
                alerts.append(
                    Alert(
                        r.get("alert") or r["name"],
                        r.get("expr") or r["query"],
                        seconds(r.get("for", r.get("duration"))),
                        seconds(r.get("keep_firing_for", r.get("keepFiringFor"))),
                        dict(r.get("labels") or {}),
                        interval,
                        phase,
                    )
                )
    return RuleSet(records, alerts)


def _phase(last_evaluation: str | None, interval: float) -> float | None:
    """Where in its interval a group is evaluated, from its last evaluation as Prometheus reported it (a rule file
    says nothing of it). Its evaluations fall on the same phase for as long as its name, file and interval stay."""
    if not last_evaluation or not interval or last_evaluation.startswith("0001"):
        return None
    try:
        return prometheus_time(last_evaluation) % interval
    except ValueError:
        return None


def read_rule_files(texts: list[str]) -> RuleSet:
    """The rules of rule files' texts (YAML); a file that does not parse is left out."""
    groups = []
    for text in texts:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            continue
        if isinstance(data, dict):
            groups += [g for g in data.get("groups") or [] if isinstance(g, dict)]
    return rule_set(groups)


# --- recording rules inlined ---------------------------------------------------------------------------------------
def _duration(step: float) -> str:
    return f"{int(step)}s" if float(step).is_integer() else f"{int(round(step * 1000))}ms"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _one(label: str, value: str) -> str:
    """A one-element vector with one label: what `and on(label)` filters against."""
    return f"label_replace(vector(1), {_quoted(label)}, {_quoted(value)}, {_quoted('')}, {_quoted('')})"


def _filtered(inner: str, label: str, op: str, value: str) -> str:
    """`inner` restricted to the series whose `label` matches (op: =, !=, =~, !~), as a selector's matcher would."""
    if op == "=":
        return f"({inner} and on({label}) {_one(label, value)})"
    if op == "!=":
        return f"({inner} unless on({label}) {_one(label, value)})"
    marked = f"label_replace({inner}, {_quoted(KEEP)}, {_quoted('1')}, {_quoted(label)}, {_quoted(value)})"
    kept = f"({marked} {'and' if op == '=~' else 'unless'} on({KEEP}) {_one(KEEP, '1')})"
    return f"label_replace({kept}, {_quoted(KEEP)}, {_quoted('')}, {_quoted('')}, {_quoted('')})"


_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def _op(matcher) -> str:
    name = str(matcher.op).split(".")[-1]
    return _OPS.get(name, "=")


def inline(expr: str, records: dict[str, Recording], step: float, _seen: frozenset[str] = frozenset()) -> str:
    """`expr` with every selector of a recording rule's output replaced by that rule's expression (recursively), so
    that it can be evaluated over data recorded before the rule existed, or when the rule read otherwise. An
    expression that is not PromQL, or reads no recording rule, comes back as it was."""
    try:
        tree = promql.parse(expr)
    except ValueError:
        return expr
    found = []
    for node in promql.walk(tree):
        if isinstance(node, pp.VectorSelector) and node.name in records and node.name not in _seen:
            matchers = [(m.name, _op(m), m.value) for m in node.matchers.matchers if m.name != "__name__"]
            found.append((node.name, matchers))
            node.name = f"mlsandbox_inline_{len(found) - 1}_"
    if not found:
        return expr
    text = str(tree)
    for k, (name, matchers) in enumerate(found):
        rule = records[name]
        inner = f"({inline(rule.expr, records, step, _seen | {name})})"
        for label, value in sorted(rule.labels.items()):
            inner = f"label_replace({inner}, {_quoted(label)}, {_quoted(str(value))}, {_quoted('')}, {_quoted('')})"
        for label, op, value in matchers:
            inner = _filtered(inner, label, op, value)
        text = _substitute(text, f"mlsandbox_inline_{k}_", inner, step)
    try:
        promql.parse(text)
    except ValueError:
        return expr
    return text


_SELECTOR_TAIL = re.compile(
    r"\[(?P<range>[^\]]+)\](?P<offset>\s+offset\s+-?[0-9a-z.]+)?|(?P<ioffset>\s+offset\s+-?[0-9a-z.]+)"
)


def _substitute(text: str, token: str, inner: str, step: float) -> str:
    """Replace the printed selector `token{...}` (with its range, subquery step or offset) by `inner`."""
    out, at = [], 0
    while True:
        k = text.find(token, at)
        if k < 0:
            return "".join(out) + text[at:]
        out.append(text[at:k])
        j = k + len(token)
        if j < len(text) and text[j] == "{":  # the matchers: skip them, minding quoted braces
            depth, quoted = 0, False
            while j < len(text):
                c = text[j]
                if quoted:
                    if c == "\\":
                        j += 1
                    elif c == '"':
                        quoted = False
                elif c == '"':
                    quoted = True
                elif c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        j += 1
                        break
                j += 1
        tail = _SELECTOR_TAIL.match(text, j)
        if tail and tail.group("range"):
            rng = tail.group("range")
            rng = rng if ":" in rng else f"{rng}:{_duration(step)}"
            out.append(f"{inner}[{rng}]{tail.group('offset') or ''}")
            j = tail.end()
        elif tail and tail.group("ioffset"):
            out.append(f"last_over_time({inner}[{_duration(step)}:{_duration(step)}]{tail.group('ioffset')})")
            j = tail.end()
        else:
            out.append(inner)
        at = j


# --- the alert state machine ---------------------------------------------------------------------------------------
def alert_intervals(
    times: list[float], present: set[float], for_seconds: float, keep_firing_for: float
) -> list[tuple[float, float]]:
    """When one label set of an alert fires, given the evaluation times and those at which its condition held, as
    Prometheus's rule manager does: pending from the first evaluation it holds, firing once it has held for
    `for_seconds`, kept firing `keep_firing_for` after it stops holding; (first firing, last firing) evaluations."""
    out: list[tuple[float, float]] = []
    state, active_at, fired_at, last_firing, keep_since = "inactive", 0.0, 0.0, 0.0, None
    for t in times:
        if t in present:
            keep_since = None
            if state == "inactive":
                state, active_at = "pending", t
        elif state == "firing" and keep_firing_for > 0:
            keep_since = t if keep_since is None else keep_since
            if t - keep_since >= keep_firing_for:
                out.append((fired_at, last_firing))
                state = "inactive"
                continue
        else:
            if state == "firing":
                out.append((fired_at, last_firing))
            state = "inactive"
            continue
        if state == "pending" and t - active_at >= for_seconds - 1e-9:
            state, fired_at = "firing", t
        if state == "firing":
            last_firing = t
    if state == "firing":
        out.append((fired_at, last_firing))
    return out


def _grid(start: float, end: float, step: float) -> list[float]:
    n = int(math.floor((end - start) / step + 1e-9))
    return [round(start + k * step, 6) for k in range(n + 1)]


def _presence(prom: PrometheusClient, expr: str, start: float, end: float, step: float) -> dict[tuple, set[float]]:
    """For each label set the condition returns, the evaluation times at which it held (in pieces of MAX_POINTS)."""
    out: dict[tuple, set[float]] = {}
    t = start
    while t <= end + 1e-9:
        stop = min(end, t + (MAX_POINTS - 1) * step)
        for s in prom.query_range(expr, t, stop, step):
            labels = tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__"))
            held = out.setdefault(labels, set())
            for ts, value in s["values"]:
                if value not in ("NaN", "nan"):
                    held.add(round(float(ts), 6))
        t = stop + step
    return out


def replay(prom: PrometheusClient, rules: RuleSet, start: float, end: float, step: float) -> list[Firing]:
    """When each alert of `rules` would have fired between `start` and `end`, evaluated at its group's interval
    (default `step`, the global evaluation interval) over what Prometheus holds (the recording rules in `rules`
    inlined). An alert whose condition Prometheus refuses fires never."""
    out = []
    for alert in rules.alerts:
        every = alert.interval or step
        first = start if alert.phase is None else start + (alert.phase - start) % every
        times = _grid(first, end, every)
        expr = rules.inlined(alert.expr, step)
        try:
            held = _presence(prom, expr, first, end, every)
        except ValueError:
            continue
        for labels, present in held.items():
            full = dict(labels) | {k: str(v) for k, v in alert.labels.items()} | {"alertname": alert.name}
            key = tuple(sorted(full.items()))
            snapped = {times[k] for p in present if 0 <= (k := int(round((p - first) / every))) < len(times)}
            for fired, last in alert_intervals(times, snapped, alert.for_seconds, alert.keep_firing_for):
                out.append(Firing(alert.name, key, fired, last))
    return sorted(out, key=lambda f: f.start)


# --- what a compressed replay can judge ----------------------------------------------------------------------------
def longest_window(expr: str) -> float:
    """The longest range (a range selector's or a subquery's) an expression reads, in seconds; 0 for none."""
    try:
        tree = promql.parse(expr)
    except ValueError:
        return 0.0
    longest = 0.0
    for node in promql.walk(tree):
        if isinstance(node, (pp.MatrixSelector, pp.SubqueryExpr)):
            longest = max(longest, node.range.total_seconds())
    return longest


def reaction_seconds(alert: Alert, rules: RuleSet, step: float) -> float:
    """How long the alert needs to fire after a sudden change: half of its longest window (rates and averages show
    half of a step change by then) and its `for:`."""
    return longest_window(rules.inlined(alert.expr, step)) / 2 + alert.for_seconds


@dataclass(frozen=True)
class Compression:
    """Whether a compressed replay of the scenario can show what some alerts would catch."""

    alerts: list[str]  # the alerts it is about (those that need new data)
    quickest: str | None  # the alert that reacts soonest
    reaction: float  # its reaction, in seconds
    round_speed: float  # how much the round compressed the scenario
    shortest_phase: float  # the scenario's shortest incident phase, in the scenario's seconds
    grace: float  # how long after an incident an alert still counts for it (seconds, not compressed)

    @property
    def allowed_speed(self) -> float:
        """The most compression at which the quickest alert still fires within the shortest incident phase (and
        the grace after it); infinite when it reacts within the grace."""
        room = self.reaction - self.grace
        return math.inf if room <= 0 else self.shortest_phase / room

    @property
    def fits(self) -> bool:
        return self.round_speed <= self.allowed_speed + 1e-9

    def minutes_needed(self, scenario_seconds: float) -> float:
        """The shortest round (minutes) in which the scenario plays slowly enough."""
        return 0.0 if math.isinf(self.allowed_speed) else scenario_seconds / self.allowed_speed / 60

    def describe(self, scenario_seconds: float) -> str:
        if self.quickest is None:
            return "no alert needs data the main play did not record"
        within = f"the round replayed the scenario {self.round_speed:.3g}x faster (its shortest incident lasted "
        within += f"{self.shortest_phase / self.round_speed:.0f} s, and an alert counts up to {self.grace:.0f} s after)"
        if self.fits:
            return f"{self.quickest}, the quickest alert on new data, needs about {self.reaction:.0f} s; {within}: fits"
        return (
            f"{self.quickest}, the quickest alert on new data, needs about {self.reaction:.0f} s; {within}: too fast "
            f"(a round of at least {math.ceil(self.minutes_needed(scenario_seconds))} minutes would fit)"
        )


def compression(
    rules: RuleSet,
    alerts: list[str],
    step: float,
    round_speed: float,
    shortest_phase: float,
    grace: float,
) -> Compression:
    """How the round's compression fits the quickest of `alerts` (their shortest window and `for:`)."""
    reactions = {a.name: reaction_seconds(a, rules, step) for a in rules.alerts if a.name in alerts}
    quickest = min(reactions, key=reactions.get, default=None)
    return Compression(sorted(reactions), quickest, reactions.get(quickest, 0.0), round_speed, shortest_phase, grace)
