"""How long a grade takes: the reference solution, `smoke` and then `interview` (compressed by --speed).

    .venv/bin/python bench/grading_time.py [--interview-speed 6] [--only-smoke]

Plays each scenario on a fresh native sandbox, grades it three times, prints the median wall time of a
grade and how many seconds of Prometheus data it read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from sandbox import REPO, driver

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
        with driver(REPO / "reference_solution") as d, d.running("--no-load"):
            print(f"playing {scenario} at {speed:g}x ...", flush=True)
            d.cli("scenario", "play", scenario, "--speed", str(speed), timeout=7200)
            timeline = read_timeline(d.run_dir)
            span = timeline.phases[-1].end - timeline.phases[0].start
            times, inside, score = [], [], None
            for _ in range(3):
                t0 = time.monotonic()
                d.cli("grade", "--out", str(d.layout.report))
                times.append(time.monotonic() - t0)
                report = json.loads((d.layout.report / "report.json").read_text())
                inside.append(report["grading_seconds"])
                score = report["score"]
            rows.append((scenario, speed, span, statistics.median(times), statistics.median(inside), score))
    print(f"\n{'scenario':<10} {'speed':>5} {'session s':>9} {'command s':>9} {'grader s':>8}  score %")
    for scenario, speed, span, took, graded, score in rows:
        print(f"{scenario:<10} {speed:>5g} {span:>9.0f} {took:>9.1f} {graded:>8.2f}  {score}")


if __name__ == "__main__":
    main()
