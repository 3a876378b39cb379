"""Item 6, visualization: dashboards (from Grafana's API when it answers, else the candidate's JSON files),
panels covering what the candidate measures, and panels whose queries return data over the session."""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..context import CheckResult, Evidence, GradingContext, families_in

ITEM = "visualization"
CATEGORIES = {
    "predictions": {"prediction_counter", "score_histogram", "class_counter"},
    "performance": {"performance_gauge"},
    "system": {"latency_histogram", "request_counter", "error_counter"},
    "drift": {"drift_indicator"},
}
# Grafana's own variables, replaced by what they would be on a dashboard showing this session.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m", "interval": "1m"}


def panels(node: dict):
    """Every panel, rows' nested panels included."""
    for panel in node.get("panels", []) or []:
        yield panel
        yield from panels(panel)


def queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every visible target."""
    out = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []) or []:
            if target.get("expr") and not target.get("hide"):
                out.append((panel.get("title", ""), target["expr"]))
    return out


def resolve_variables(expr: str) -> str:
    for name, value in BUILTINS.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    # Dashboard variables: match anything (a label matcher "=" becomes "=~").
    expr = re.sub(r'(\w+)\s*=\s*"\$\{?\w+\}?"', r'\1=~".*"', expr)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def from_grafana(url: str) -> tuple[list[dict], str] | None:
    """Dashboards from Grafana's API (credentials may be in the URL); None when Grafana does not answer."""
    parts = urlsplit(url)
    auth = (parts.username, parts.password or "") if parts.username else None
    base = urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))
    try:
        with httpx.Client(base_url=base.rstrip("/"), auth=auth, timeout=10) as client:
            found = client.get("/api/search", params={"type": "dash-db"})
            if found.status_code != 200:
                return None
            boards = [client.get(f"/api/dashboards/uid/{d['uid']}").json()["dashboard"] for d in found.json()]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    return boards, f"Grafana at {base}"


def from_files(ctx: GradingContext) -> tuple[list[dict], str]:
    if ctx.candidate_dir is None:
        return [], "no candidate folder given"
    boards = []
    for path in sorted((ctx.candidate_dir / "dashboards").glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            continue
        boards.append(doc.get("dashboard", doc))  # an export may wrap the dashboard
    return boards, f"{ctx.candidate_dir / 'dashboards'}"


def check(ctx: GradingContext) -> list[CheckResult]:
    source = from_grafana(ctx.grafana_url) if ctx.grafana_url else None
    boards, where = source if source else from_files(ctx)
    all_queries = [(b.get("title", "?"), title, expr) for b in boards for title, expr in queries(b)]
    ctx.artifacts["dashboards"] = [b.get("title", "?") for b in boards]
    has = ctx.result(ITEM, "has_dashboard", 1 if all_queries else 0,
                     f"{len(boards)} dashboards with {len(all_queries)} queries, from {where}" if all_queries
                     else f"no dashboard with a query, from {where}",
                     [Evidence("dashboards", [b.get("title", "?") for b in boards])])
    if not all_queries:
        return [has, ctx.result(ITEM, "covers_categories", 0, "no dashboard", []),
                ctx.result(ITEM, "panels_return_data", 0, "no dashboard", [])]
    roles = ctx.roles()
    present = {cat for cat, rs in CATEGORIES.items() if any(roles.get(r) for r in rs)}
    read = set().union(*(families_in(e, ctx.families) for _, _, e in all_queries))
    covered = {cat for cat in present if any(roles.get(r, set()) & read for r in CATEGORIES[cat])}
    covers = ctx.result(ITEM, "covers_categories", len(covered) / len(present) if present else 0,
                        f"panels cover {', '.join(sorted(covered)) or 'nothing'} of what is measured "
                        f"({', '.join(sorted(present)) or 'nothing'})",
                        [Evidence("categories measured / with a panel", {"measured": sorted(present), "panels": sorted(covered)})])
    empty = []
    for board, title, expr in all_queries:
        try:
            result = ctx.prom.series_values(resolve_variables(expr), ctx.session.start, ctx.session.end + 10, 5)
        except ValueError:
            result = []
        if not any(points for _, points in result):
            empty.append(f"{board} / {title}: {expr}")
    data = ctx.result(ITEM, "panels_return_data", 1 - len(empty) / len(all_queries),
                      f"{len(all_queries) - len(empty)} of {len(all_queries)} panel queries return data over the session",
                      [Evidence(e.split(": ", 1)[1], "no data", e.split(": ", 1)[0]) for e in empty[:10]])
    return [has, covers, data]
