"""Item 6, visualization: dashboards (from Grafana's API when it answers, else the candidate's JSON files),
panels covering what the candidate measures, and panel queries that return data over the session."""

from __future__ import annotations

from ..context import CheckResult, Context, Evidence
from ..findings import Findings
from ..roles import CATEGORIES, CATEGORY_ORDER, Role
from ..signals import Source

ITEM = "visualization"


def _panel_signals(ctx: Context):
    return ctx.signals.by_origin(Source.PANEL)


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
    return [has, covers, data]
