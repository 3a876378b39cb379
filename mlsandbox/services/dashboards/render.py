"""A dashboard's panels as the pages draw them: for time series and last-value panels each query's series over a
window, read from Prometheus; for any other type its queries and links to Prometheus's graph page."""

from __future__ import annotations

import math
from urllib.parse import quote

from grading.dashboards import Dashboard, Panel
from grading.prometheus import PrometheusClient, PrometheusUnreachable

MAX_POINTS_PER_SERIES = 400
MAX_SERIES_PER_QUERY = 12
TIME_SERIES_PANELS = {"timeseries", "graph"}
LAST_VALUE_PANELS = {"stat", "gauge", "bargauge", "singlestat"}


def _float(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def graph_link(prometheus: str, expr: str, seconds: float) -> str:
    return f"{prometheus}/graph?g0.expr={quote(expr)}&g0.tab=0&g0.range_input={max(60, int(seconds))}s"


def step(start: float, end: float) -> float:
    return max(1.0, (end - start) / MAX_POINTS_PER_SERIES)


def panel(prom: PrometheusClient | None, prometheus: str | None, p: Panel, start: float, end: float) -> dict:
    """A panel as the page draws it: for time series and last-value panels each query's series over the window
    (its count, and the first series' last value); for any other type its queries and links to Prometheus."""
    out = {"title": p.title, "type": p.type, "unit": p.unit, "queries": []}
    drawn = p.type in TIME_SERIES_PANELS or p.type in LAST_VALUE_PANELS
    out["drawn"] = drawn
    if not p.queries:
        out["problem"] = "no PromQL query in this panel"
    for written, expr in zip(p.queries, p.resolved()):
        q = {"expr": written, "link": graph_link(prometheus, expr, end - start) if prometheus else None}
        if drawn and prom is not None:
            try:
                series = prom.query_range(expr, start, end, step(start, end))
            except (PrometheusUnreachable, ValueError) as exc:
                q["error"] = str(exc)
                series = []
            q["series_count"] = len(series)
            q["series"] = []
            for s in series[:MAX_SERIES_PER_QUERY]:
                label = ", ".join(f"{k}={v}" for k, v in s["metric"].items() if k != "__name__") or s["metric"].get(
                    "__name__", expr
                )
                q["series"].append({"label": label, "points": [[float(t), _float(v)] for t, v in s["values"]]})
            lasts = [s["points"][-1][1] for s in q["series"] if s["points"]]
            q["last"] = lasts[0] if lasts else None
            if "error" not in q and not series:
                q["empty"] = True
        out["queries"].append(q)
    return out


def boards(
    found: list[Dashboard],
    prometheus: str | None,
    start: float,
    end: float,
    grafana: str | None = None,
    link_prometheus: str | None = None,
) -> dict:
    """Every dashboard, panel by panel, over [start, end]; `link_prometheus`: the Prometheus address its links
    open (default: the one queried)."""
    prom = PrometheusClient(prometheus, timeout=10) if prometheus else None
    try:
        out = []
        for b in found:
            entry = {"title": b.title, "source": b.source, "error": b.error, "panels": []}
            if grafana and b.uid:
                entry["grafana"] = f"{grafana}/d/{b.uid}"
            for p in b.panels:
                entry["panels"].append(panel(prom, link_prometheus or prometheus, p, start, end))
            out.append(entry)
    finally:
        if prom is not None:
            prom.close()
    return {"dashboards": out, "start": start, "end": end, "step": step(start, end), "prometheus": prometheus}
