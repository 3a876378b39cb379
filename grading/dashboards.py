"""The candidate's dashboards: from Grafana's API when it answers, else their JSON files; each panel (rows'
nested panels included) with its type, unit and PromQL queries, Grafana's variables resolved the way a
dashboard showing this session would resolve them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

# Grafana's own variables, replaced by what they would be on a dashboard showing this session.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m", "interval": "1m"}


@dataclass(frozen=True)
class Panel:
    title: str
    type: str
    unit: str
    queries: tuple[str, ...]  # as written
    id: int | None = None

    def resolved(self) -> list[str]:
        return [resolve_variables(q) for q in self.queries]


@dataclass
class Dashboard:
    title: str
    source: str  # a file name, or "Grafana"
    panels: list[Panel] = field(default_factory=list)
    uid: str | None = None
    error: str | None = None  # why it could not be read

    def queries(self) -> list[tuple[str, str]]:
        """(panel title, resolved PromQL) of every visible query."""
        return [(p.title, q) for p in self.panels for q in p.resolved()]


def resolve_variables(expr: str) -> str:
    for name, value in BUILTINS.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    # Dashboard variables: match anything (a label matcher "=" becomes "=~").
    expr = re.sub(r'(\w+)\s*=\s*"\$\{?\w+(?::\w+)?\}?"', r'\1=~".*"', expr)
    return re.sub(r"\$\{?\w+(?::\w+)?\}?", ".*", expr)


def _panels(node: dict):
    for panel in node.get("panels", []) or []:
        if isinstance(panel, dict):
            yield panel
            yield from _panels(panel)


def from_document(doc: object, source: str) -> Dashboard:
    if isinstance(doc, dict) and isinstance(doc.get("dashboard"), dict):
        doc = doc["dashboard"]  # an export may wrap the dashboard
    if not isinstance(doc, dict):
        return Dashboard("?", source, error="not a Grafana dashboard (a JSON object with panels)")
    board = Dashboard(str(doc.get("title") or Path(source).stem), source, uid=doc.get("uid"))
    for p in _panels(doc):
        targets = [t for t in p.get("targets", []) or [] if isinstance(t, dict)]
        queries = tuple(str(t["expr"]) for t in targets if t.get("expr") and not t.get("hide"))
        unit = ((p.get("fieldConfig") or {}).get("defaults") or {}).get("unit") or ""
        if p.get("type") == "row" and not queries:
            continue
        board.panels.append(
            Panel(
                str(p.get("title") or ""),
                str(p.get("type") or "?"),
                str(unit),
                queries,
                p.get("id") if isinstance(p.get("id"), int) else None,
            )
        )
    return board


def from_files(folder: Path) -> list[Dashboard]:
    """The dashboards of a candidate's folder. A link is not followed: a dashboard is a file the candidate wrote,
    and what a link points at may be a file the candidate must not see (read by a process outside their room)."""
    boards = []
    folder = Path(folder)
    if folder.is_symlink():
        return [Dashboard(folder.name, folder.name, error="the dashboards folder is a link: not read")]
    for path in sorted(folder.glob("*.json")):
        if path.is_symlink() or not path.is_file():
            boards.append(Dashboard(path.stem, path.name, error="a link or not a plain file: not read"))
            continue
        try:
            boards.append(from_document(json.loads(path.read_text()), path.name))
        except (OSError, ValueError) as exc:
            boards.append(Dashboard(path.stem, path.name, error=f"not valid JSON ({str(exc)[:120]})"))
    return boards


def from_grafana(url: str) -> list[Dashboard] | None:
    """Dashboards from Grafana's API (credentials may be in the URL); None when Grafana does not answer."""
    parts = urlsplit(url)
    auth = (parts.username, parts.password or "") if parts.username else None
    base = urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))
    try:
        with httpx.Client(base_url=base.rstrip("/"), auth=auth, timeout=10) as client:
            found = client.get("/api/search", params={"type": "dash-db"})
            if found.status_code != 200:
                return None
            return [
                from_document(client.get(f"/api/dashboards/uid/{d['uid']}").json(), "Grafana") for d in found.json()
            ]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def load(candidate_dir: Path | None, grafana_url: str | None) -> tuple[list[Dashboard], str]:
    """The dashboards and where they came from."""
    if grafana_url:
        boards = from_grafana(grafana_url)
        if boards is not None:
            return boards, f"Grafana at {grafana_url.split('@')[-1]}"
    if candidate_dir is None:
        return [], "no candidate folder given"
    return from_files(candidate_dir / "dashboards"), str(candidate_dir / "dashboards")
