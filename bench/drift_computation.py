"""Drift computation per window: the reference solution's live path vs a full evidently report.

    .venv/bin/python bench/drift_computation.py [--window 400] [--repeats 20]

Both compare the same window of recent customers with the same 5,000-row training reference. The live
path (reference_solution/app/drift.py: normed Wasserstein and Jensen-Shannon with scipy) is what feeds the
Prometheus gauges every few seconds; evidently's DataDriftPreset report is what goes to MLflow. Prints
the median time of each and their ratio, interleaved in one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "reference_solution")]

from app.drift import Reference, drift_scores, evidently_report  # noqa: E402

from model_service.churn_data import generate_features  # noqa: E402
from model_service.train import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    reference = Reference(train(seed=42).reference)
    window = generate_features(args.window, seed=3)
    window["monthly_charges"] += 40  # a drifted window, as in the smoke scenario
    t0 = time.perf_counter()
    evidently_report(reference, window)  # the first call pays evidently's import
    first = time.perf_counter() - t0
    live, full = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        drift_scores(reference, window)
        live.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        evidently_report(reference, window)
        full.append(time.perf_counter() - t0)
    lm, fm = statistics.median(live), statistics.median(full)
    print(f"window {args.window} rows x 12 features vs reference {len(reference.frame)} rows, {args.repeats} repeats")
    print(f"  live path (scipy)        median {lm * 1000:8.1f} ms")
    print(f"  evidently DataDriftPreset median {fm * 1000:8.1f} ms   (first call, with import: {first:.1f} s)")
    print(f"  evidently / live         {fm / lm:8.0f}x")


if __name__ == "__main__":
    main()
