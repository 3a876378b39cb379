"""How long a grade takes: the reference solution, `smoke` and then `interview` (compressed by --speed).

    .venv/bin/python bench/grading_time.py [--interview-speed 6] [--only-smoke]

Plays each scenario on a fresh native sandbox, grades it three times, prints the median wall time of a
grade and how many seconds of Prometheus data it read.
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--only-smoke", action="store_true", help="Skip the interview (10 minutes at 6x).")
    args = parser.parse_args()
    rows = []
    plays = [("smoke", 1.0)] + ([] if args.only_smoke else [("interview", args.interview_speed)])
    for scenario, speed in plays:
        with run_dir() as (path, env):
            with sandbox(env, REPO / "reference_solution"):
                print(f"playing {scenario} at {speed:g}x ...", flush=True)
                cli(env, "scenario", "play", scenario, "--speed", str(speed))
                timeline = read_timeline(path)
                span = timeline.phases[-1].end - timeline.phases[0].start
                times, inside, score = [], [], None
                for _ in range(3):
                    t0 = time.monotonic()
                    subprocess.run(
                        [sys.executable, "-m", "mlsandbox.cli", "grade", "--out", str(path / "report")],
                        env=env,
                        cwd=REPO,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    times.append(time.monotonic() - t0)
                    report = json.loads((path / "report" / "report.json").read_text())
                    inside.append(report["grading_seconds"])
                    score = report["score"]
                rows.append((scenario, speed, span, statistics.median(times), statistics.median(inside), score))
    print(f"\n{'scenario':<10} {'speed':>5} {'session s':>9} {'command s':>9} {'grader s':>8}  score %")
    for scenario, speed, span, took, graded, score in rows:
        print(f"{scenario:<10} {speed:>5g} {span:>9.0f} {took:>9.1f} {graded:>8.2f}  {score}")


if __name__ == "__main__":
    main()
