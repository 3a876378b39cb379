"""/predict throughput and p99 latency: the bare starter (its /health beside it, and its /predict through the
DataFrame path), the starter instrumented by prometheus-fastapi-instrumentator, and the reference solution.

    .venv/bin/python bench/instrumentation_overhead.py [--seconds 8] [--rounds 2] [--connections 16]

Needs wrk (`apt-get install wrk`). Runs the native sandbox (no load generator, Prometheus scraping every
5 s) on its own ports, once per configuration and round, alternating them (ABCD ABCD) so that drift in the
machine's speed hits all alike; wrk posts the same customer for `--seconds` after a short warm-up. Prints each
run, then the medians and the ratios: /predict against /health on the same bare server, the fast scoring path
against the DataFrame one, and each instrumentation against bare.
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


INSTRUMENTATOR = """from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator


def setup(app: FastAPI) -> None:
    Instrumentator().instrument(app).expose(app)


def on_startup(app: FastAPI) -> None:
    pass


def on_shutdown(app: FastAPI) -> None:
    pass
"""


def instrumentator_candidate(dest: Path) -> Path:
    """The starter with prometheus-fastapi-instrumentator's defaults: what a candidate gets in one line."""
    shutil.copytree(REPO / "starter_repo", dest, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "app" / "monitoring.py").write_text(INSTRUMENTATOR)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    from model_service.churn_data import generate_features

    customer = {k: (v.item() if hasattr(v, "item") else v) for k, v in generate_features(1, 0).iloc[0].items()}
    results: dict[str, list[tuple[float, float]]] = {}
    with driver() as d:
        script = d.run_dir.parent / "post.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(customer))}\n"
        )
        get = d.run_dir.parent / "get.lua"
        get.write_text('wrk.method = "GET"\n')
        # name -> (candidate, scoring path, [(what, path, wrk script)])
        configs = {
            "bare": (REPO / "starter_repo", "fast", [("health", "/health", get), ("bare", "/predict", script)]),
            "bare-dataframe": (REPO / "starter_repo", "dataframe", [("bare-dataframe", "/predict", script)]),
            "instrumentator": (
                instrumentator_candidate(d.run_dir.parent / "instrumentator"),
                "fast",
                [("instrumentator", "/predict", script)],
            ),
            "reference": (REPO / "reference_solution", "fast", [("reference", "/predict", script)]),
        }
        for rnd in range(args.rounds):
            for folder, scoring, runs in configs.values():
                d.candidate, d.extra_env["MLSANDBOX_SCORING"] = folder, scoring
                with d.running("--no-load"):
                    for what, path, lua in runs:
                        url = f"{d.url('model_server')}{path}"
                        wrk(url, 3, args.connections, lua)  # warm-up
                        rps, p99 = wrk(url, args.seconds, args.connections, lua)
                        results.setdefault(what, []).append((rps, p99))
                        print(f"round {rnd + 1} {what:<15} {rps:8.0f} req/s   p99 {p99 * 1000:7.1f} ms", flush=True)
    rps = {n: statistics.median(r for r, _ in v) for n, v in results.items()}
    p99 = {n: statistics.median(p for _, p in v) for n, v in results.items()}
    print(f"\n{args.connections} connections, {args.seconds:g} s x {args.rounds} rounds, {os.cpu_count()} cores")
    for n in results:
        print(f"  {n:<15} {rps[n]:8.0f} req/s   p99 {p99[n] * 1000:7.1f} ms")

    def ratio(a: str, b: str) -> str:
        return f"throughput {rps[a] / rps[b]:.2f}x, p99 {p99[a] / p99[b]:.2f}x"

    print(f"  bare /predict vs /health:       {ratio('bare', 'health')}")
    print(f"  fast vs DataFrame scoring:      {ratio('bare', 'bare-dataframe')}")
    print(f"  instrumentator vs bare:         {ratio('instrumentator', 'bare')}")
    print(f"  reference vs bare:              {ratio('reference', 'bare')}")


if __name__ == "__main__":
    main()
