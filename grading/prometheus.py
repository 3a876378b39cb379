"""A small client for the Prometheus HTTP API, with one readable error when Prometheus cannot be reached."""

from __future__ import annotations

import math
import re
from datetime import datetime

import httpx


def prometheus_time(stamp: str) -> float:
    """Seconds since the epoch of a timestamp in Prometheus's API (RFC 3339, nanoseconds)."""
    # Prometheus gives nanoseconds, which fromisoformat (3.11) does not take: cut to microseconds.
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", stamp).replace("Z", "+00:00")).timestamp()


class PrometheusUnreachable(RuntimeError):
    pass


class PrometheusClient:
    def __init__(self, url: str, timeout: float = 30.0, rule_groups: list[dict] | None = None):
        """`rule_groups`: the rule groups as a Prometheus reported them earlier (/api/v1/rules), answered instead of
        asking this one (a re-grade on archived data: the rules' health as it was during the session)."""
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)
        self._rule_groups = rule_groups

    def _get(self, path: str, **params) -> object:
        try:
            response = self._http.get(f"{self.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise PrometheusUnreachable(f"Prometheus at {self.url} cannot be reached ({type(exc).__name__})") from None
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200 or body.get("status") != "success":
            raise ValueError(body.get("error") or f"HTTP {response.status_code} for {path}")
        return body["data"]

    def close(self) -> None:
        """Its connections closed (a console that grades every 30 s makes many clients)."""
        self._http.close()

    def __enter__(self) -> "PrometheusClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def check(self) -> None:
        """Raise PrometheusUnreachable unless Prometheus answers."""
        self._get("/api/v1/status/buildinfo")

    def query(self, expr: str, at: float) -> list[dict]:
        return self._get("/api/v1/query", query=expr, time=at)["result"]

    def scalar(self, expr: str, at: float) -> float:
        """The single value of an instant query; NaN when it returns nothing."""
        result = self.query(expr, at)
        return float(result[0]["value"][1]) if result else math.nan

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self._get("/api/v1/query_range", query=expr, start=start, end=end, step=step)["result"]

    def series_values(
        self, expr: str, start: float, end: float, step: float
    ) -> list[tuple[dict, list[tuple[float, float]]]]:
        """Each series as (labels, [(time, value)...]) with NaN values left out."""
        out = []
        for s in self.query_range(expr, start, end, step):
            points = [(float(t), float(v)) for t, v in s["values"] if not math.isnan(float(v))]
            out.append((s["metric"], points))
        return out

    def targets(self) -> list[dict]:
        return self._get("/api/v1/targets")["activeTargets"]

    def target_metadata(self, job: str) -> list[dict]:
        return self._get("/api/v1/targets/metadata", match_target=f'{{job="{job}"}}')

    def rules(self) -> list[dict]:
        if self._rule_groups is not None:
            return self._rule_groups
        return self._get("/api/v1/rules")["groups"]

    def alerts(self) -> list[dict]:
        """The alerts pending or firing now."""
        return self._get("/api/v1/alerts")["alerts"]

    def label_values(self, label: str, match: str, start: float | None = None, end: float | None = None) -> list[str]:
        """The values a label takes in the series `match` selects (between `start` and `end`, when given)."""
        span = {"start": start, "end": end} if start is not None and end is not None else {}
        return self._get(f"/api/v1/label/{label}/values", **{"match[]": match}, **span)

    def evaluation_interval(self) -> float:
        """How often Prometheus evaluates its rules (its global evaluation_interval), in seconds; 1 when unknown."""
        import yaml

        from .replay import seconds

        try:
            config = yaml.safe_load(self._get("/api/v1/status/config")["yaml"]) or {}
            return seconds((config.get("global") or {}).get("evaluation_interval") or "1s") or 1.0
        except (ValueError, KeyError, TypeError, yaml.YAMLError):
            return 1.0
