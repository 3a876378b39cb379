"""Making an incident pack: `mlsandbox incident make --minutes M` from the command to the pack written, wall time.

    .venv/bin/python bench/incident_pack.py [--minutes 60] [--cause latency] [--seed 5]

Everything counts: the throwaway stack's start (MLflow, training the model, the reference solution's server, its
Prometheus), the play, the export, the notebook, the stop. Prints the seconds and the pack's size.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox import REPO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--cause", default="latency")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pack"
        t0 = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "mlsandbox.cli", "incident", "make", "--out", str(out)]
            + ["--minutes", f"{args.minutes:g}", "--cause", args.cause, "--seed", str(args.seed)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        took = time.monotonic() - t0
        rows = sum(1 for _ in (out / "candidate" / "predictions.csv").open()) - 1
        minutes = sum(1 for _ in (out / "candidate" / "metrics.csv").open()) - 1
    print(f"a {args.minutes:g}-minute pack ({args.cause}): {took:.0f} s of wall time")
    print(f"  {rows} predictions logged, {minutes} minutes of metrics")


if __name__ == "__main__":
    main()
