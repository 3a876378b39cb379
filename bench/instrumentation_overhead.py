"""/predict throughput and p99 latency: the reference solution's instrumentation vs the bare starter.

    .venv/bin/python bench/instrumentation_overhead.py [--seconds 15] [--rounds 2] [--connections 16]

Needs wrk (`apt-get install wrk`). Runs the native sandbox (no load generator, Prometheus scraping every
5 s) on its own ports, once per candidate and round, alternating bare and reference (ABAB) so that drift
in the machine's speed hits both alike; wrk posts the same customer for `--seconds` after a short warm-up.
Prints each run, then the medians and the reference/bare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from sandbox import REPO, driver

sys.path.insert(0, str(REPO))
CANDIDATES = {"bare": REPO / "starter_repo", "reference": REPO / "reference_solution"}


def wrk(url: str, seconds: float, connections: int, script: Path) -> tuple[float, float]:
    """(requests per second, p99 latency in seconds) of one wrk run."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    return rps, float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    from model_service.churn_data import generate_features

    customer = {k: (v.item() if hasattr(v, "item") else v) for k, v in generate_features(1, 0).iloc[0].items()}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in CANDIDATES}
    with driver() as d:
        script = d.run_dir.parent / "post.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(customer))}\n"
        )
        predict = f"{d.url('model_server')}/predict"
        for rnd in range(args.rounds):
            for name, folder in CANDIDATES.items():
                d.candidate = folder
                with d.running("--no-load"):
                    wrk(predict, 3, args.connections, script)  # warm-up
                    rps, p99 = wrk(predict, args.seconds, args.connections, script)
                results[name].append((rps, p99))
                print(f"round {rnd + 1} {name:<9} {rps:8.0f} req/s   p99 {p99 * 1000:7.1f} ms", flush=True)
    rps = {n: statistics.median(r for r, _ in v) for n, v in results.items()}
    p99 = {n: statistics.median(p for _, p in v) for n, v in results.items()}
    print(
        f"\n/predict, {args.connections} connections, {args.seconds:g} s x {args.rounds} rounds, {os.cpu_count()} cores"
    )
    for n in CANDIDATES:
        print(f"  {n:<9} {rps[n]:8.0f} req/s   p99 {p99[n] * 1000:7.1f} ms")
    print(
        f"  reference / bare: throughput {rps['reference'] / rps['bare']:.2f}x, p99 {p99['reference'] / p99['bare']:.2f}x"
    )


if __name__ == "__main__":
    main()
