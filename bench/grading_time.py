"""How long a grade takes: the reference solution, `smoke` and then `interview` (compressed by --speed).

    .venv/bin/python bench/grading_time.py [--interview-speed 6]

Plays each scenario on a fresh native sandbox, grades it three times, prints the median wall time of a
grade and how many seconds of Prometheus data it read.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from sandbox import REPO, cli, run_dir, sandbox

sys.path.insert(0, str(REPO))

from load.truth import read_timeline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interview-speed", type=float, default=6)
    args = parser.parse_args()
    rows = []
    for scenario, speed in (("smoke", 1.0), ("interview", args.interview_speed)):
        with run_dir() as (path, env):
            with sandbox(env, REPO / "reference_solution"):
                print(f"playing {scenario} at {speed:g}x ...", flush=True)
                cli(env, "scenario", "play", scenario, "--speed", str(speed))
                timeline = read_timeline(path)
                span = timeline["phases"][-1]["end"] - timeline["phases"][0]["start"]
                times, score = [], None
                for _ in range(3):
                    t0 = time.monotonic()
                    out = subprocess.run([sys.executable, "-m", "mlsandbox.cli", "grade", "--out", str(path / "report")],
                                         env=env, cwd=REPO, capture_output=True, text=True, check=True).stdout
                    times.append(time.monotonic() - t0)
                    score = out.split()[1]
                rows.append((scenario, speed, span, statistics.median(times), score))
    print(f"\n{'scenario':<10} {'speed':>5} {'session s':>9} {'grade s':>8}  score")
    for scenario, speed, span, took, score in rows:
        print(f"{scenario:<10} {speed:>5g} {span:>9.0f} {took:>8.1f}  {score}")


if __name__ == "__main__":
    main()
