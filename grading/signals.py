"""The candidate's signals: every series and expression they watch, evaluated over the session.

A signal is a PromQL expression and where the candidate wrote it: a gauge their server exposes, a recording
rule's expression, the value side of an alert (`x` in `x > 0.3`), a dashboard panel's query. Each is evaluated
with query_range on the grader's time grid; each resulting series is judged for the shape roles (performance,
drift, latency ...) by grading/judge.py. What an expression reads is resolved through recording rules to the
scraped metrics underneath, so that an alert on a recorded series is known to watch what the rule reads.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from model_service.spec import default_spec

from . import promql
from .families import JOB, Family
from .prometheus import PrometheusClient

MAX_SERIES_PER_SIGNAL = 40
ALERT_STATE = {"ALERTS", "ALERTS_FOR_STATE"}


class Source(StrEnum):
    SERIES = "exposed by the server"
    RECORDING_RULE = "recording rule"
    ALERT = "alert condition"
    PANEL = "dashboard panel"


@dataclass(frozen=True)
class Origin:
    source: Source
    where: str  # e.g. "rule job:accuracy:ratio30s (alerts/rules.yml)", "dashboard Model / panel Accuracy"

    def __str__(self) -> str:
        return f"{self.source.value}: {self.where}"


@dataclass(frozen=True)
class RuleInfo:
    """A rule as Prometheus loaded it."""

    kind: str  # "recording" or "alerting"
    name: str
    query: str
    file: str
    group: str
    health: str
    last_error: str
    labels: dict
    annotations: dict
    duration: float  # an alert's `for`, in seconds


def loaded_rules(prom: PrometheusClient) -> list[RuleInfo]:
    out = []
    for g in prom.rules():
        for r in g.get("rules", []):
            out.append(
                RuleInfo(
                    "alerting" if r.get("type") == "alerting" else "recording",
                    r.get("name", ""),
                    r.get("query", ""),
                    g.get("file", ""),
                    g.get("name", ""),
                    r.get("health", ""),
                    r.get("lastError", "") or "",
                    r.get("labels") or {},
                    r.get("annotations") or {},
                    float(r.get("duration") or 0),
                )
            )
    return out


@dataclass
class Series:
    """One series of a signal on the grid, and the feature it is about (by a label value or its name)."""

    labels: dict
    values: np.ndarray
    feature: str | None

    def describe(self, expr: str) -> str:
        rest = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()) if k not in ("instance", "job"))
        name = self.labels.get("__name__")
        if name:
            rest = ",".join(
                f'{k}="{v}"' for k, v in sorted(self.labels.items()) if k not in ("instance", "job", "__name__")
            )
            return f"{name}{{{rest}}}" if rest else name
        return f"{expr} {{{rest}}}" if rest else expr


@dataclass
class Signal:
    expr: str
    origins: list[Origin]
    reads: set[str]  # scraped metric names it reads, through recording rules
    series: list[Series] = field(default_factory=list)
    error: str | None = None

    @property
    def where(self) -> str:
        return "; ".join(str(o) for o in self.origins)


def _timestamp_like(values: np.ndarray, times: np.ndarray) -> bool:
    """A gauge holding a Unix time (last run, last label) moves with the clock, not with the data."""
    ok = np.isfinite(values)
    return bool(ok.sum() >= 3 and statistics.median(np.abs(values[ok] - times[ok])) < 86_400 * 365)


def feature_of(labels: dict, names: set[str], features: list[str]) -> str | None:
    """The feature a series is about: a label value equal to a feature's name, else the one feature named in
    the metric names it comes from (e.g. `input_monthly_charges_mean`)."""
    for k, v in labels.items():
        if k != "__name__" and v in features:
            return v
    text = " ".join([labels.get("__name__", ""), *names])
    named = [f for f in features if f in text]
    # total_charges contains no other feature's name, but "monthly_charges" is inside "total_monthly_charges":
    # take the longest name found.
    return max(named, key=len) if named else None


class SignalSet:
    """Every distinct signal of the candidate, evaluated on `times`."""

    def __init__(
        self,
        prom: PrometheusClient,
        times: np.ndarray,
        families: dict[str, Family],
        rules: list[RuleInfo],
        panels: list[tuple[str, str, str]],
        rewrite: Callable[[str], str] | None = None,
    ):
        """`rewrite`: how an alert's value side is evaluated (recording rules inlined, when the rules are replayed
        over data recorded before they existed)."""
        self.rewrite = rewrite or (lambda expr: expr)
        self.prom, self.times = prom, times
        self.step = float(times[1] - times[0]) if len(times) > 1 else 1.0
        self.records = {r.name: r.query for r in rules if r.kind == "recording"}
        self.features = list(default_spec().features)
        self.signals: dict[str, Signal] = {}
        for fam in families.values():
            if fam.type in ("gauge", "untyped", "unknown"):
                self._add(f'{fam.name}{{job="{JOB}"}}', Origin(Source.SERIES, fam.name))
        for r in rules:
            if r.kind == "recording":
                self._add(r.query, Origin(Source.RECORDING_RULE, f"{r.name} ({_short(r.file)})"))
            else:
                for side in promql.value_sides(r.query):
                    self._add(self.rewrite(side), Origin(Source.ALERT, f"{r.name} ({_short(r.file)})"))
        for board, title, expr in panels:
            self._add(expr, Origin(Source.PANEL, f"dashboard {board!r} / panel {title!r}"))

    def _add(self, expr: str, origin: Origin) -> None:
        if promql.selected(expr) and promql.selected(expr) <= ALERT_STATE:
            return  # the candidate's alerts themselves (a panel of what fires): not a measurement
        key = promql.normalized(expr)
        if key in self.signals:
            if origin not in self.signals[key].origins:
                self.signals[key].origins.append(origin)
            return
        reads = promql.resolve(promql.selected(expr), self.records)
        self.signals[key] = Signal(expr, [origin], reads)

    def evaluate(self) -> None:
        for sig in self.signals.values():
            try:
                result = self.prom.query_range(sig.expr, self.times[0], self.times[-1], self.step)
            except ValueError as exc:
                sig.error = str(exc)[:300]
                continue
            names = promql.selected(sig.expr) | sig.reads
            for s in result[:MAX_SERIES_PER_SIGNAL]:
                values = np.full(len(self.times), np.nan)
                for t, v in s.get("values", []):
                    k = int(round((float(t) - self.times[0]) / self.step))
                    if 0 <= k < len(values):
                        values[k] = float(v)
                values[~np.isfinite(values)] = np.nan
                if np.isfinite(values).sum() < 3 or _timestamp_like(values, self.times):
                    continue
                sig.series.append(Series(s["metric"], values, feature_of(s["metric"], names, self.features)))

    def by_origin(self, source: Source) -> list[Signal]:
        return [s for s in self.signals.values() if any(o.source == source for o in s.origins)]

    def of_expr(self, expr: str) -> Signal | None:
        """The signal of an expression; an alert's value side as it was evaluated (see `rewrite`)."""
        return self.signals.get(promql.normalized(expr)) or self.signals.get(promql.normalized(self.rewrite(expr)))


def _short(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else path
