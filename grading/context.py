"""What every check reads (the session's truth, Prometheus, the rubric, the candidate's families, rules,
dashboards and signals), and the result types checks return."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .dashboards import Dashboard
from .expected import Expected
from .families import Exposition, Family
from .play import Play
from .prometheus import PrometheusClient
from .replay import RuleSet
from .rubric import CheckSpec, Rubric
from .signals import RuleInfo, SignalSet


@dataclass
class Evidence:
    what: str  # a PromQL expression, an API, or a name
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
    applicable: bool = True
    plus: bool = False  # reported beside the score, never counted in it (the rubric's `plus`)


@dataclass
class ItemResult:
    key: str
    title: str
    checks: list[CheckResult]

    @property
    def counted(self) -> list[CheckResult]:
        """The checks that count in the score: applicable, and not a plus."""
        return [c for c in self.checks if c.applicable and not c.plus]

    @property
    def plus(self) -> list[CheckResult]:
        """The applicable checks reported beside the score."""
        return [c for c in self.checks if c.applicable and c.plus]

    @property
    def points(self) -> float:
        return round(sum(c.points for c in self.counted), 2)

    @property
    def max_points(self) -> float:
        return sum(c.max_points for c in self.counted)

    @property
    def not_applicable(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.applicable]


@dataclass(frozen=True)
class Replayed:
    rules: RuleSet
    step: float


@dataclass
class Context:
    prom: PrometheusClient
    session: Play
    rubric: Rubric
    families: dict[str, Family]
    exposition: Exposition | None  # the last /metrics body (scraped now, or archived); None when unreachable
    rules: list[RuleInfo]
    dashboards: list[Dashboard]
    dashboards_from: str
    signals: SignalSet
    expected: Expected
    candidate_dir: Path | None
    server_up: bool
    scrape_url: str | None
    # The rules to replay over the play instead of reading ALERTS (grading.replay), and the evaluation step.
    replayed: Replayed | None = None

    @property
    def tol(self):
        return self.rubric.tolerances

    @property
    def window(self) -> str:
        """A range covering the whole session, for increase()."""
        return f"{self.window_seconds}s"

    @property
    def window_seconds(self) -> int:
        return int(min(self.eval_at, self.session.end) - self.session.start) + 10

    @property
    def eval_at(self) -> float:
        """When counters are read: a few seconds after the end (the last scrape), or now, mid-session; when the
        server went down for good before the end, just before it did (Prometheus marked its series stale)."""
        gone = self.session.server_gone_at_end
        if gone is not None:
            return gone.last_scrape
        return self.session.end + 5 if self.session.finished else min(self.session.end + 5, self.session.now)

    def _spec(self, item: str, name: str) -> CheckSpec:
        """The rubric's weight and advice for a check; a check the rubric leaves out (`only:`, as a course lesson
        does) is still computed by its item's module, worth nothing, and dropped from the grade."""
        return self.rubric.items[item].checks.get(name) or CheckSpec(points=0, advice="")

    def not_applicable(self, item: str, name: str, why: str) -> CheckResult:
        """A check that cannot be judged yet (or at all) on this session: it leaves the total."""
        spec = self._spec(item, name)
        return CheckResult(name, 0.0, spec.points, False, f"not applicable: {why}", applicable=False, plus=spec.plus)

    def result(self, item: str, name: str, fraction: float, summary: str, evidence: list[Evidence]) -> CheckResult:
        spec = self._spec(item, name)
        fraction = 0.0 if math.isnan(fraction) else max(0.0, min(1.0, fraction))
        return CheckResult(
            name,
            round(spec.points * fraction, 2),
            spec.points,
            fraction >= 0.999,
            summary,
            evidence,
            "" if fraction >= 0.999 else spec.advice,
            plus=spec.plus,
        )
