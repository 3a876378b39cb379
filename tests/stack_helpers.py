"""Drive the real native stack from tests: the `mlsandbox` CLI on test ports and a throwaway run directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
MLSANDBOX = [sys.executable, "-m", "mlsandbox.cli"]

# Off the default ports, so that tests never collide with a sandbox someone is using.
TEST_PORTS = {
    "MLSANDBOX_MODEL_SERVER_PORT": "18000",
    "MLSANDBOX_PROMETHEUS_PORT": "19090",
    "MLSANDBOX_ALERTMANAGER_PORT": "19093",
    "MLSANDBOX_MLFLOW_PORT": "15000",
    "MLSANDBOX_LOCUST_PORT": "18089",
    "MLSANDBOX_ALERT_RECEIVER_PORT": "19095",
}


@dataclass
class SandboxUnderTest:
    run_dir: Path
    candidate: Path
    extra_env: dict = field(default_factory=dict)

    @property
    def env(self) -> dict:
        return {
            **os.environ,
            **TEST_PORTS,
            "MLSANDBOX_RUN_DIR": str(self.run_dir),
            "MLSANDBOX_SCRAPE_INTERVAL": "1s",
            **self.extra_env,
        }

    def url(self, component: str) -> str:
        return f"http://127.0.0.1:{TEST_PORTS[f'MLSANDBOX_{component.upper()}_PORT']}"

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [*MLSANDBOX, *args], env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"mlsandbox {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def up(self, *extra: str) -> subprocess.CompletedProcess:
        return self.cli("up", "--candidate", str(self.candidate), *extra)

    def down(self) -> subprocess.CompletedProcess:
        return self.cli("down")

    def status(self) -> list[dict]:
        return json.loads(self.cli("status", "--json").stdout)

    def prom_query(self, expr: str) -> list:
        r = httpx.get(f"{self.url('prometheus')}/api/v1/query", params={"query": expr}, timeout=10)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def prom_range(self, expr: str, start: float, end: float, step: str = "1s") -> list:
        r = httpx.get(
            f"{self.url('prometheus')}/api/v1/query_range",
            params={"query": expr, "start": start, "end": end, "step": step},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()["data"]["result"]

    def target_health(self, job: str) -> str | None:
        r = httpx.get(f"{self.url('prometheus')}/api/v1/targets", timeout=10).json()
        for t in r["data"]["activeTargets"]:
            if t["labels"]["job"] == job:
                return t["health"]
        return None


def copy_candidate(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def pids_in_groups(pgids: set[int]) -> list[int]:
    """Live processes (not zombies) whose process group is one of `pgids`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found
