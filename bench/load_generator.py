"""How well Locust holds a scenario's rate on this machine, with the model server beside it, and how its
memory behaves over a long run.

    .venv/bin/python bench/load_generator.py [--rates 50,100,200] [--seconds 60]

Starts its own native sandbox (bare starter, no load, ports 25000/28000/29090/29093) in a temporary run
directory, plays one constant-rate phase per rate with Locust headless, samples Locust's memory (RSS, all
its processes) every second, reads what was really sent from the ledger, and prints a table. Stops
everything at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
from sandbox import REPO, driver

sys.path.insert(0, str(REPO))

from load.truth import read_ledger  # noqa: E402


def rss_mb(proc: psutil.Process) -> float:
    try:
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 2**20
    except psutil.NoSuchProcess:
        return float("nan")


def play(run_dir: Path, env: dict, host: str, rate: float, seconds: float) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    scenario = run_dir / f"bench-{rate:g}.yaml"
    scenario.write_text(
        f"name: bench-{rate:g}\ndescription: constant rate\nground_truth: {{fraction: 0.3, delay_seconds: 5}}\n"
        f"phases:\n  - {{name: r{rate:g}, duration_seconds: {seconds}, rate: {rate}}}\n"
    )
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(REPO / "load" / "locustfile.py"),
        "--headless",
        "--only-summary",
        "--host",
        host,
        "--scenario",
        str(scenario),
        "--exit-code-on-error",
        "0",
    ]
    started = time.time()
    with open(run_dir / f"locust-{rate:g}.log", "wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        ps = psutil.Process(proc.pid)
        samples = []
        while proc.poll() is None:
            samples.append(rss_mb(ps))
            time.sleep(1)
    rows = [r for r in read_ledger(run_dir) if r.phase == f"r{rate:g}" and r.second >= int(started)]
    full = [r.requests for r in rows][1:-1]  # first and last seconds are partial
    samples = [s for s in samples if s == s]
    sent = sum(r.requests for r in rows)
    return {
        "rate": rate,
        "sent": sent,
        "planned": int(rate * seconds),
        "held_median": statistics.median(full) if full else 0.0,
        "held_min": min(full) if full else 0,
        "ok_share": sum(r.ok for r in rows) / max(1, sent),
        "p50_latency_ms": 1000
        * statistics.median(r.latency_mean_seconds for r in rows if r.latency_mean_seconds is not None),
        "rss_first_mb": samples[2] if len(samples) > 2 else float("nan"),
        "rss_last_mb": samples[-1] if samples else float("nan"),
        "rss_max_mb": max(samples) if samples else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,100,200")
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    print("starting a sandbox for the benchmark ...", flush=True)
    with driver(REPO / "starter_repo") as d, d.running("--no-load"):
        results = []
        for rate in [float(r) for r in args.rates.split(",")]:
            print(f"playing {rate:g} req/s for {args.seconds:g} s ...", flush=True)
            results.append(play(d.run_dir, d.env, d.url("model_server"), rate, args.seconds))
    print(f"\nLocust holding a constant rate for {args.seconds:g} s against the bare server, on {os.cpu_count()} cores")
    print(
        f"{'target/s':>9} {'sent':>7} {'planned':>8} {'held/s med':>10} {'held/s min':>10} {'ok':>6} "
        f"{'p50 ms':>7} {'RSS MB start':>12} {'end':>6} {'max':>6}"
    )
    for r in results:
        print(
            f"{r['rate']:>9g} {r['sent']:>7} {r['planned']:>8} {r['held_median']:>10g} {r['held_min']:>10} "
            f"{r['ok_share']:>6.1%} {r['p50_latency_ms']:>7.1f} {r['rss_first_mb']:>12.0f} "
            f"{r['rss_last_mb']:>6.0f} {r['rss_max_mb']:>6.0f}"
        )


if __name__ == "__main__":
    main()
