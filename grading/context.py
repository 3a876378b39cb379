"""What every check needs: the candidate's metric families, the session's truth, Prometheus, the rubric,
and the result types the checks fill in."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .prometheus import PrometheusClient
from .rubric import Rubric
from .session import Session

JOB = "model-server"


@dataclass
class Family:
    name: str
    type: str
    help: str
    series: list[str]  # the series names Prometheus holds for it (name, name_total, name_bucket, ...)

    def sample(self, suffix: str = "") -> str:
        """The series name to query: the family itself (a counter's _total), or its _bucket/_sum/_count."""
        if not suffix and self.type == "counter" and f"{self.name}_total" in self.series:
            return f"{self.name}_total"
        return f"{self.name}{suffix}"


@dataclass
class Evidence:
    promql: str
    seen: object
    note: str = ""


@dataclass
class CheckResult:
    name: str
    points: float
    max_points: float
    passed: bool
    summary: str
    evidence: list[Evidence] = field(default_factory=list)
    advice: str = ""


@dataclass
class ItemResult:
    key: str
    title: str
    checks: list[CheckResult]

    @property
    def points(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def max_points(self) -> float:
        return sum(c.max_points for c in self.checks)


@dataclass
class GradingContext:
    prom: PrometheusClient
    session: Session
    rubric: Rubric
    families: dict[str, Family]
    candidate_dir: Path | None
    grafana_url: str | None
    server_up: bool
    scrape_url: str | None
    # What earlier checks found, for later ones (metric families by role).
    found: dict[str, list[str]] = field(default_factory=dict)
    # What checks computed that the report shows (alert intervals, detections, dashboards).
    artifacts: dict = field(default_factory=dict)

    @property
    def tol(self):
        return self.rubric.tolerances

    @property
    def window(self) -> str:
        """A range covering the whole session, for increase()."""
        return f"{self.window_seconds}s"

    @property
    def window_seconds(self) -> int:
        return int(self.session.end - self.session.start) + 10

    @property
    def eval_at(self) -> float:
        return self.session.end + 5

    def session_features(self) -> list[str]:
        from model_service.spec import default_spec

        return list(default_spec().features)

    def family_of(self, series: str) -> str | None:
        """The family a series name belongs to (http_requests_total -> http_requests_total or http_requests)."""
        return next((f.name for f in self.families.values() if series in f.series or series == f.name), None)

    def roles(self) -> dict[str, set[str]]:
        """role -> the candidate families found playing it by the earlier checks."""
        return {role: {self.family_of(s) or s for s in names} for role, names in self.found.items()}

    def of_type(self, *types: str) -> list[Family]:
        return [f for f in self.families.values() if f.type in types]

    def result(self, item: str, name: str, fraction: float, summary: str, evidence: list[Evidence]) -> CheckResult:
        spec = self.rubric.items[item].checks[name]
        fraction = 0.0 if math.isnan(fraction) else max(0.0, min(1.0, fraction))
        return CheckResult(name, round(spec.points * fraction, 2), spec.points, fraction >= 0.999, summary,
                           evidence, "" if fraction >= 0.999 else spec.advice)


def discover(prom: PrometheusClient) -> dict[str, Family]:
    """The candidate's metric families, by type and HELP, from Prometheus's target metadata; when there is
    none (the server is down now and Prometheus never scraped it since it started), by the series names
    Prometheus holds, with the type their suffixes imply and no HELP."""
    names = set(prom.label_values("__name__", f'{{job="{JOB}"}}'))
    families: dict[str, Family] = {}
    for meta in prom.target_metadata(JOB):
        name, kind = meta["metric"], meta["type"]
        if name in families or name.startswith(STANDARD_PREFIXES):
            continue
        candidates = {name, f"{name}_total", f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        series = sorted(candidates & names)
        if series:
            families[name] = Family(name, kind, meta.get("help", ""), series)
    if not families:
        families = _from_series_names(names)
    return families


def _from_series_names(names: set[str]) -> dict[str, Family]:
    families: dict[str, Family] = {}
    for name in sorted(names):
        if name.startswith(STANDARD_PREFIXES) or name in ("up", "ALERTS", "ALERTS_FOR_STATE") or name.startswith("scrape_"):
            continue
        if name.endswith("_bucket") and f"{name[:-7]}_count" in names:
            base = name[:-7]
            families[base] = Family(base, "histogram", "", [f"{base}{s}" for s in ("_bucket", "_count", "_sum")
                                                               if f"{base}{s}" in names])
        elif name.endswith(("_sum", "_count", "_created")) and any(f"{name.rsplit('_', 1)[0]}_bucket" == n for n in names):
            continue
        elif name.endswith("_created"):
            continue
        elif name.endswith("_total"):
            families[name[:-6]] = Family(name[:-6], "counter", "", [name])
        else:
            families[name] = Family(name, "gauge", "", [name])
    return families


# The client libraries' own process and runtime collectors: not the candidate's monitoring.
STANDARD_PREFIXES = ("process_", "python_", "go_", "promhttp_")

_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def families_in(expr: str, families: dict[str, Family]) -> set[str]:
    """The candidate families a PromQL expression reads (by the series names it mentions)."""
    words = set(_IDENT.findall(expr))
    return {f.name for f in families.values() if words & set(f.series) or f.name in words}
