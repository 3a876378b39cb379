"""A native sandbox for benchmarks: its own ports and a temporary run directory, stopped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PORTS = {
    "MLSANDBOX_MODEL_SERVER_PORT": "28000",
    "MLSANDBOX_PROMETHEUS_PORT": "29090",
    "MLSANDBOX_ALERTMANAGER_PORT": "29093",
    "MLSANDBOX_MLFLOW_PORT": "25000",
    "MLSANDBOX_LOCUST_PORT": "28089",
    "MLSANDBOX_ALERT_RECEIVER_PORT": "29095",
}


def url(component: str) -> str:
    return f"http://127.0.0.1:{PORTS[f'MLSANDBOX_{component.upper()}_PORT']}"


def cli(env: dict, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "mlsandbox.cli", *args], env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL
    )


@contextmanager
def run_dir(**extra_env: str):
    """(run directory, environment) for `mlsandbox` commands on the benchmark ports."""
    with tempfile.TemporaryDirectory(prefix="mlsandbox-bench-") as tmp:
        path = Path(tmp) / "run"
        yield path, {**os.environ, **PORTS, "MLSANDBOX_RUN_DIR": str(path), **extra_env}


@contextmanager
def sandbox(env: dict, candidate: Path):
    """The stack up (no load) on `candidate`, and down again whatever happens."""
    cli(env, "up", "--no-load", "--candidate", str(candidate))
    try:
        yield
    finally:
        cli(env, "down")
