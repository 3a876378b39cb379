"""Item 6, visualization: dashboards (from Grafana's API when it answers, else the candidate's JSON files),
panels covering what the candidate measures, and panel queries that return data over the session; and, when the
rubric asks (the dashboard-design exercise), panels that answer the questions of the model card's stakeholders."""

from __future__ import annotations

from ..context import CheckResult, Context, Evidence
from ..findings import Findings
from ..roles import CATEGORIES, CATEGORY_ORDER, Role
from ..signals import Source

ITEM = "visualization"

# The model card's "who cares about what" (docs/model_card.md): a stakeholder's question is answered by a panel that
# draws a signal of one of these roles.
STAKEHOLDERS: dict[str, frozenset[Role]] = {
    "retention team: are the churners caught (recall)": frozenset({Role.PERFORMANCE}),
    "finance: are the flagged customers really leaving, how long is the call list (precision)": frozenset(
        {Role.PERFORMANCE, Role.SCORE_HISTOGRAM, Role.CLASS_COUNTER}
    ),
    "on-call engineering: latency, errors, availability": frozenset(
        {Role.LATENCY_HISTOGRAM, Role.LATENCY, Role.ERROR_COUNTER, Role.ERRORS}
    ),
    "data engineering: the inputs' schema and units": frozenset({Role.DRIFT, Role.DATA_QUALITY}),
}


def _panel_signals(ctx: Context):
    return ctx.signals.by_origin(Source.PANEL)


def _names_by_role(found: Findings) -> dict[Role, set[str]]:
    """role -> the metric names that fill it (a counting role: its family's series; a shape role: what its signals
    read)."""
    out: dict[Role, set[str]] = {}
    for role in CATEGORY_ORDER:
        for f in found.counted(role):
            out.setdefault(role, set()).update(
                {f.family, f"{f.family}_total", f"{f.family}_sum", f"{f.family}_count", f"{f.family}_bucket"}
            )
    for role in (Role.PERFORMANCE, Role.DRIFT, Role.DATA_QUALITY, Role.LATENCY, Role.ERRORS):
        for v in found.taken(role):
            out.setdefault(role, set()).update(v.signal.reads)
    return out


def answers_stakeholders(ctx: Context, found: Findings, read: set[str]) -> CheckResult:
    """The share of the model card's stakeholders whose question a panel answers."""
    names = _names_by_role(found)
    answered = {
        who: sorted(r.value for r in roles if names.get(r, set()) & read) for who, roles in STAKEHOLDERS.items()
    }
    done = [who for who, roles in answered.items() if roles]
    missing = [who.split(":")[0] for who in STAKEHOLDERS if who not in done]
    return ctx.result(
        ITEM,
        "answers_stakeholders",
        len(done) / len(STAKEHOLDERS),
        f"panels answer {len(done)} of {len(STAKEHOLDERS)} stakeholders' questions"
        + (f" (not: {', '.join(missing)})" if missing else ""),
        [
            Evidence(who, f"a panel draws {', '.join(roles)}" if roles else "no panel")
            for who, roles in answered.items()
        ],
    )


def _measured(found: Findings) -> dict[str, set[str]]:
    """category -> the metric names that measure it (what a panel may draw). A family that fills several
    counting roles belongs to one category (a latency histogram's _count counts predictions too: it is latency)."""
    home: dict[str, Role] = {}
    for role in CATEGORY_ORDER:
        for f in found.counted(role):
            home.setdefault(f.family, role)
    out: dict[str, set[str]] = {}
    for cat, roles in CATEGORIES.items():
        names: set[str] = set()
        for family, role in home.items():
            if role in roles:
                names |= {family, f"{family}_total", f"{family}_sum", f"{family}_count", f"{family}_bucket"}
        for role in roles:
            for v in found.taken(role):
                names |= v.signal.reads
        if names:
            out[cat] = names
    return out


def check(ctx: Context, found: Findings) -> list[CheckResult]:
    boards = [b for b in ctx.dashboards if b.error is None]
    broken = [b for b in ctx.dashboards if b.error is not None]
    queries = [(b.title, title, q) for b in boards for title, q in b.queries()]
    notes = [Evidence(b.source, "unreadable", b.error) for b in broken]
    has = ctx.result(
        ITEM,
        "has_dashboard",
        1 if queries else 0,
        f"{len(boards)} dashboards with {len(queries)} queries, from {ctx.dashboards_from}"
        if queries
        else f"no dashboard with a query, from {ctx.dashboards_from}",
        [Evidence("dashboards", [b.title for b in boards])] + notes,
    )
    if not queries:
        return [
            has,
            ctx.result(ITEM, "covers_categories", 0, "no dashboard", []),
            ctx.result(ITEM, "panels_return_data", 0, "no dashboard", []),
            ctx.result(ITEM, "answers_stakeholders", 0, "no dashboard", []),
        ]
    measured = _measured(found)
    panel_signals = _panel_signals(ctx)
    read = set().union(*(s.reads for s in panel_signals)) if panel_signals else set()
    covered = sorted(cat for cat, names in measured.items() if names & read)
    covers = ctx.result(
        ITEM,
        "covers_categories",
        len(covered) / len(measured) if measured else 0,
        f"panels cover {', '.join(covered) or 'nothing'} of what is measured "
        f"({', '.join(sorted(measured)) or 'nothing'})",
        [Evidence("categories measured / with a panel", {"measured": sorted(measured), "panels": covered})],
    )
    empty = []
    for sig in panel_signals:
        if not sig.series:
            where = next(o.where for o in sig.origins if o.source == Source.PANEL)
            empty.append((where, sig.expr, sig.error or "no data"))
    n_panel_queries = len(panel_signals)
    data = ctx.result(
        ITEM,
        "panels_return_data",
        1 - len(empty) / n_panel_queries if n_panel_queries else 0,
        f"{n_panel_queries - len(empty)} of {n_panel_queries} panel queries return data over the session",
        [Evidence(expr, why, where) for where, expr, why in empty[:10]],
    )
    return [has, covers, data, answers_stakeholders(ctx, found, read)]
