"""After `mlsandbox reload`: the candidate's rules that promtool accepted but that fail when Prometheus evaluates
them (a many-to-many match, a function applied to the wrong type), named with Prometheus's own error."""

from __future__ import annotations

import re
import time
from datetime import datetime

import httpx


def prometheus_time(stamp: str) -> float:
    """Seconds since the epoch of a timestamp in Prometheus's API (RFC 3339, nanoseconds)."""
    # Prometheus gives nanoseconds, which fromisoformat (3.11) does not take: cut to microseconds.
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", stamp).replace("Z", "+00:00")).timestamp()


def evaluation_errors(prometheus_url: str, since: float, timeout: float = 35.0) -> list[str]:
    """Once every rule group has been evaluated after `since` (or `timeout` passed): 'group/rule: error' for each
    rule whose last evaluation failed."""
    deadline = time.time() + timeout
    while True:
        try:
            groups = httpx.get(f"{prometheus_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        except (httpx.HTTPError, ValueError, KeyError):
            return []
        evaluated = all(
            g.get("lastEvaluation", "").startswith("2") and prometheus_time(g["lastEvaluation"]) > since for g in groups
        )
        if evaluated or time.time() > deadline:
            return [
                f"{g['name']}/{r['name']}: {r.get('lastError') or 'error'}"
                for g in groups
                for r in g["rules"]
                if r.get("health") == "err"
            ]
        time.sleep(0.5)


def firing_alerts(prometheus_url: str) -> list[str]:
    """The alerts firing now (or pending: about to), by name; [] when Prometheus does not answer."""
    try:
        alerts = httpx.get(f"{prometheus_url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    except (httpx.HTTPError, ValueError, KeyError):
        return []
    return sorted({a["labels"].get("alertname", "?") for a in alerts})


def wait_quiet(prometheus_url: str, timeout: float) -> list[str]:
    """Until no alert fires or is pending, or `timeout` passed: the alerts still active then ([] once quiet)."""
    deadline = time.time() + timeout
    while True:
        active = firing_alerts(prometheus_url)
        if not active or time.time() >= deadline:
            return active
        time.sleep(1.0)
