"""What the stacks ask a running Prometheus, on the grader's client: has it scraped the model server yet, which
rules fail at evaluation, which alerts fire, and loading edited rules (its lifecycle API)."""

from __future__ import annotations

import time

import httpx

from grading.prometheus import PrometheusClient, PrometheusUnreachable, prometheus_time
from mlsandbox.errors import MlsandboxError
from mlsandbox.stack.processes import wait_until

# What a poll of Prometheus may meet while it starts or stops: no answer, or an answer without the data yet.
NOT_YET = (PrometheusUnreachable, ValueError, KeyError)


def wait_first_scrape(prometheus_url: str, timeout: float, since: float | None = None) -> None:
    """Until Prometheus has scraped the model server once after `since` (default: now), when the server was
    healthy: before that its target page shows no target, or a scrape taken while the server was starting, and
    the candidate's brief (the target down until they expose /metrics, then up) would not match what they see."""
    since = time.time() if since is None else since

    def scraped() -> bool:
        with PrometheusClient(prometheus_url, timeout=5) as prom:
            try:
                targets = prom.targets()
            except NOT_YET:
                return False
        return any(
            t["labels"].get("job") == "model-server"
            and t.get("health") != "unknown"
            and prometheus_time(t["lastScrape"]) >= since
            for t in targets
        )

    wait_until(scraped, timeout, "Prometheus has not scraped the model server")


def reload(prometheus_url: str) -> None:
    """Have Prometheus load its configuration and rule files again (started with --web.enable-lifecycle)."""
    try:
        response = httpx.post(f"{prometheus_url}/-/reload", timeout=10)
    except httpx.HTTPError as exc:
        raise MlsandboxError(f"Prometheus at {prometheus_url} cannot be reached ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise MlsandboxError(f"Prometheus refused the reload: {response.text.strip()}")


def rules_answer(prometheus_url: str) -> dict:
    """Prometheus's /api/v1/rules answer as it gives it (archived as the rules the session was graded on)."""
    return httpx.get(f"{prometheus_url}/api/v1/rules", timeout=10).json()


def evaluation_errors(prometheus_url: str, since: float, timeout: float = 35.0) -> list[str]:
    """Once every rule group has been evaluated after `since` (or `timeout` passed): 'group/rule: error' for each
    rule whose last evaluation failed."""
    deadline = time.time() + timeout
    with PrometheusClient(prometheus_url, timeout=5) as prom:
        while True:
            try:
                groups = prom.rules()
            except NOT_YET:
                return []
            evaluated = all(
                g.get("lastEvaluation", "").startswith("2") and prometheus_time(g["lastEvaluation"]) > since
                for g in groups
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
    with PrometheusClient(prometheus_url, timeout=5) as prom:
        try:
            alerts = prom.alerts()
        except NOT_YET:
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
