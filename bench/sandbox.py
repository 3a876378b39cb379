"""A sandbox for benchmarks: the tests' driver (tests/driver.py) on the benchmarks' own block of ports and a
temporary run directory."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlsandbox.layout import Ports  # noqa: E402
from tests.driver import Driver  # noqa: E402

PORTS = Ports.block(28000)  # off the defaults, the tests' and the Docker tests' ports


@contextmanager
def driver(candidate: Path | None = None, scrape_interval: str = "5s", **extra_env: str) -> Iterator[Driver]:
    """A Driver on a fresh temporary run directory (deleted afterwards); `with d.running("--no-load"):` starts it."""
    with tempfile.TemporaryDirectory(prefix="mlsandbox-bench-") as tmp:
        yield Driver(Path(tmp) / "run", PORTS, candidate, extra_env=dict(extra_env), scrape_interval=scrape_interval)
