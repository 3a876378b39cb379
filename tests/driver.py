"""Drive a sandbox from outside, as a user would: the `mlsandbox` command on a run directory and a block of
ports of its own, and what its Prometheus recorded. The one driver of the tests and the benchmarks
(bench/sandbox.py imports it from here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mlsandbox.errors import StartError
from mlsandbox.layout import REPO_ROOT, Ports, RunLayout
from mlsandbox.stack.processes import wait_until

MLSANDBOX = [sys.executable, "-m", "mlsandbox.cli"]
# How long a command that ran out of time has to stop what it started, after its SIGTERM.
STOP_GRACE_SECONDS = 120


def run_command(argv: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run with output captured, but a command out of time gets SIGTERM first (mlsandbox takes it as
    Ctrl-C and stops its components, which live in process groups of their own), SIGKILL only after a grace."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                out, err = process.communicate(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
            raise subprocess.TimeoutExpired(argv, timeout, output=out, stderr=err) from None
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


@dataclass
class Driver:
    run_dir: Path
    ports: Ports
    candidate: Path | None = None
    docker: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    # smoke's phases last 8-25 s: natively the tests scrape every second (compose keeps its own 5 s).
    scrape_interval: str = "1s"

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_dir)

    @property
    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MLSANDBOX_", "COMPOSE_PROJECT_NAME"))}
        return {
            **base,
            **self.ports.environment(),
            "MLSANDBOX_RUN_DIR": str(self.run_dir),
            "MLSANDBOX_SCRAPE_INTERVAL": self.scrape_interval,
            **self.extra_env,
        }

    def url(self, component: str) -> str:
        return f"http://127.0.0.1:{getattr(self.ports, component)}"

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        result = run_command([*MLSANDBOX, *args], env=self.env, cwd=REPO_ROOT, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"mlsandbox {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def up(self, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
        backend = ["--docker", "--local-images"] if self.docker else []
        return self.cli("up", "--candidate", str(self.candidate), *backend, *extra, timeout=timeout)

    def down(self, *extra: str) -> subprocess.CompletedProcess:
        return self.cli("down", *extra, timeout=600)

    @contextmanager
    def running(self, *up_args: str):
        """The sandbox up for the block, and down again whatever happens."""
        self.up(*up_args)
        try:
            yield self
        finally:
            self.cli("down", check=False, timeout=600)

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
        return next((t["health"] for t in r["data"]["activeTargets"] if t["labels"]["job"] == job), None)


def copy_candidate(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    """Poll `predicate` until it returns something true (which is returned); AssertionError after `timeout`."""
    last: list = [None]

    def ready() -> bool:
        last[0] = predicate()
        return bool(last[0])

    try:
        wait_until(ready, timeout, what, interval=interval)
    except StartError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last[0]!r})") from None
    return last[0]
