"""Which of the candidate's signals fill which role: found once, before any check, and passed to every check
explicitly (typed), so that no check depends on another having run first."""

from __future__ import annotations

from dataclasses import dataclass

from . import counting
from .context import Context
from .counting import CountFinding, LatencyTrial
from .judge import Judge, Limits, Verdict
from .roles import COUNTED_CAN_BE, COUNTING_AS_SHAPE, OUTPUTS, Role


@dataclass
class Findings:
    counting: dict[Role, list[CountFinding]]
    latency_trials: list[LatencyTrial]
    verdicts: list[Verdict]  # every series judged for a shape role, passed or not

    def taken(self, role: Role, feature: str | None = None) -> list[Verdict]:
        """The series that fill a shape role (about `feature`, when given), best fit first."""
        out = [v for v in self.verdicts if v.role == role and v.passed and (feature is None or v.feature == feature)]
        return sorted(out, key=lambda v: -abs(v.rho))

    def tried(self, role: Role) -> list[Verdict]:
        """Series tested for a role that did not fill it, closest first."""
        return sorted((v for v in self.verdicts if v.role == role and not v.passed), key=lambda v: -abs(v.rho))

    def counted(self, role: Role) -> list[CountFinding]:
        return self.counting.get(role, [])

    def roles_of_families(self, names: set[str]) -> set[Role]:
        """The roles (as shape roles) of the scraped metrics among `names`: what an expression reading them watches."""
        roles: set[Role] = set()
        for role, found in self.counting.items():
            if any(
                f.series in names or f.family in names or f"{f.family}_sum" in names or f"{f.family}_bucket" in names
                for f in found
            ):
                roles.add(COUNTING_AS_SHAPE.get(role, role))
        for v in self.verdicts:
            if v.passed and v.signal.reads & names and any(o.source.name == "SERIES" for o in v.signal.origins):
                roles.add(v.role)
        return roles

    def summary(self) -> dict[str, list[str]]:
        """For the report: each role and what fills it."""
        out: dict[str, list[str]] = {}
        for role, found in self.counting.items():
            if found:
                out[role.value] = [f.describe() for f in found[:3]]
        for role in (Role.PERFORMANCE, Role.DRIFT, Role.DATA_QUALITY, Role.LATENCY, Role.ERRORS, Role.TRAFFIC):
            taken = self.taken(role)
            if taken:
                out[role.value] = [v.summary() for v in taken[:3]]
        return out


def limits(ctx: Context, counted: dict[Role, list[CountFinding]]):
    """What a signal can be, from the counting roles of the scraped metrics it reads: None (anything) when it
    reads any metric that fills no counting role."""
    by_family: dict[str, set[Role]] = {}
    for role, found in counted.items():
        for f in found:
            by_family.setdefault(f.family, set()).add(role)
    owner = {s: fam.name for fam in ctx.families.values() for s in (*fam.series, fam.name)}

    def can_be(family: str) -> frozenset[Role]:
        roles = by_family[family]
        out = frozenset().union(*(COUNTED_CAN_BE.get(r, frozenset()) for r in roles))
        # A histogram whose buckets are not scores measures some duration, in whatever unit it chose.
        if ctx.families[family].type in ("histogram", "summary") and Role.SCORE_HISTOGRAM not in roles:
            out |= {Role.LATENCY}
        return out

    def can_be_series(name: str) -> frozenset[Role]:
        family = owner[name]
        # The buckets of a latency histogram (its mean matched the client's latency) hold durations, whatever its
        # _count also counts: a quantile or a share of slow requests read from them is about latency only.
        if name.endswith("_bucket") and Role.LATENCY_HISTOGRAM in by_family[family]:
            return frozenset({Role.LATENCY})
        return can_be(family)

    def allowed(signal) -> Limits | None:
        families = {owner.get(name) for name in signal.reads}
        if not families or None in families or any(f not in by_family for f in families):
            return None
        return Limits(
            frozenset().union(*(can_be_series(name) for name in signal.reads)),
            scores=any(by_family[f] & OUTPUTS for f in families),
        )

    return allowed


def find(ctx: Context) -> Findings:
    counted, trials = counting.find(ctx)
    judge = Judge(ctx.session, ctx.expected, ctx.tol, limits(ctx, counted))
    verdicts = [v for sig in ctx.signals.signals.values() for series in sig.series for v in judge.judge(sig, series)]
    return Findings(counted, trials, verdicts)
