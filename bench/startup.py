"""`mlsandbox up` to every component healthy, the model already registered (a warm start), natively.

    .venv/bin/python bench/startup.py [--runs 3] [--against DIR]

Times `mlsandbox up --no-load` on the reference solution, then `down`, `--runs` times after one start that
trains the model (not counted). With `--against DIR` (another checkout of this repository, e.g. a `git worktree`
of an older commit) it alternates the two, each on a run directory of its own, and prints the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox import PORTS, REPO


def up_seconds(tree: Path, run_dir: Path) -> float:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLSANDBOX_")},
        **PORTS.environment(),
        "MLSANDBOX_RUN_DIR": str(run_dir),
    }
    cli = [sys.executable, "-m", "mlsandbox.cli"]
    t0 = time.monotonic()
    up = subprocess.run(
        [*cli, "up", "--no-load", "--candidate", str(tree / "reference_solution")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.monotonic() - t0
    subprocess.run([*cli, "down"], cwd=tree, env=env, capture_output=True, text=True)
    if up.returncode != 0:
        sys.exit(f"up failed in {tree}:\n{up.stdout[-2000:]}\n{up.stderr[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--against", type=Path, help="Another checkout to compare with.")
    args = parser.parse_args()
    trees = {"this tree": REPO, **({"against": args.against.resolve()} if args.against else {})}
    times: dict[str, list[float]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="mlsandbox-startup-") as tmp:
        runs = {name: Path(tmp) / name.replace(" ", "-") / "run" for name in trees}
        for name, tree in trees.items():
            print(f"{name}: first start (trains the model) {up_seconds(tree, runs[name]):.1f} s", flush=True)
        for k in range(args.runs):
            for name, tree in trees.items():
                times[name].append(up_seconds(tree, runs[name]))
                print(f"run {k + 1} {name:<10} {times[name][-1]:5.1f} s", flush=True)
    medians = {name: statistics.median(v) for name, v in times.items()}
    for name, m in medians.items():
        print(f"{name:<10} median {m:5.1f} s  (runs: {', '.join(f'{t:.1f}' for t in times[name])})")
    if args.against:
        print(f"this tree / against: {medians['this tree'] / medians['against']:.2f}x")


if __name__ == "__main__":
    main()
