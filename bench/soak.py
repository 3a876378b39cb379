"""Endurance: the 60-minute `interview` at speed 1 on the reference solution, natively.

    .venv/bin/python bench/soak.py [--speed 1] [--every 60]

Every `--every` seconds it samples each component's memory (PSS, summed over its process group) and CPU
(share of one core since the last sample); at the end it prints them per minute, each component's growth over the
second half of the play (MB per hour, from a straight line fitted to its PSS), the Prometheus TSDB and prediction
log sizes on disk, and grades the session three times (the grade, and the grader's median time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from sandbox import REPO, driver

sys.path.insert(0, str(REPO))

from load.truth import read_timeline  # noqa: E402
from mlsandbox.stack.processes import group_members  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User and system time of the process and of its children that have exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / TICKS


def sample(groups: dict[str, int]) -> dict[str, tuple[float, float]]:
    """Component -> (PSS MB, CPU seconds so far) over its process group."""
    out = {}
    for name, pgid in groups.items():
        members = group_members(pgid) or [pgid]
        out[name] = (sum(pss_mb(p) for p in members), sum(cpu_seconds(p) for p in members))
    return out


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else list(path.rglob("*")) if path.exists() else []
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--every", type=float, default=60.0, help="Seconds between samples.")
    args = parser.parse_args()
    with driver(REPO / "reference_solution") as d, d.running("--scenario", "interview", "--speed", str(args.speed)):
        groups = {c["name"]: c["pid"] for c in d.status() if c.get("pid")}
        print(f"playing interview at {args.speed:g}x; sampling {', '.join(groups)} every {args.every:g} s", flush=True)
        samples: list[tuple[float, dict]] = [(time.time(), sample(groups))]
        while True:
            time.sleep(args.every)
            samples.append((time.time(), sample(groups)))
            timeline = read_timeline(d.run_dir)
            minute = (samples[-1][0] - samples[0][0]) / 60
            print(f"  {minute:5.1f} min: " + "  ".join(f"{n} {v[0]:.0f} MB" for n, v in samples[-1][1].items()))
            if timeline is not None and timeline.status != "running":
                break
        names = list(groups)
        print(f"\n{'minute':>6} " + "".join(f"{n[:14]:>16}" for n in names) + "   (PSS MB / CPU % of one core)")
        for (t_prev, prev), (t, now) in zip(samples, samples[1:]):
            cells = []
            for n in names:
                cpu = 100 * (now[n][1] - prev[n][1]) / (t - t_prev)
                cells.append(f"{now[n][0]:>9.0f} {cpu:>5.1f}%")
            print(f"{(t - samples[0][0]) / 60:>6.1f} " + "".join(f"{c:>16}" for c in cells))
        print(f"\n{'component':<16}{'first MB':>9}{'last MB':>9}{'max MB':>9}{'MB/h, 2nd half':>16}{'mean CPU %':>12}")
        half = samples[len(samples) // 2 :]
        span = samples[-1][0] - samples[0][0]
        for n in names:
            hours = np.array([(t - half[0][0]) / 3600 for t, _ in half])
            pss = np.array([s[n][0] for _, s in half])
            slope = float(np.polyfit(hours, pss, 1)[0]) if len(half) >= 3 else float("nan")
            series = [s[n][0] for _, s in samples]
            cpu = 100 * (samples[-1][1][n][1] - samples[0][1][n][1]) / span
            print(f"{n:<16}{series[0]:>9.0f}{series[-1]:>9.0f}{max(series):>9.0f}{slope:>16.1f}{cpu:>12.1f}")
        print(
            f"\non disk: Prometheus TSDB {size_mb(d.layout.prometheus_data):.1f} MB, prediction log "
            f"{size_mb(d.layout.predictions):.1f} MB (+ WAL {size_mb(Path(str(d.layout.predictions) + '-wal')):.1f} MB)"
        )
        took, inside, score = [], [], None
        for _ in range(3):
            t0 = time.monotonic()
            d.cli("grade", "--out", str(d.layout.report), timeout=600)
            took.append(time.monotonic() - t0)
            report = json.loads((d.layout.report / "report.json").read_text())
            inside.append(report["grading_seconds"])
            score = report["score"]
        print(
            f"grade: {score}% ; `mlsandbox grade` {statistics.median(took):.1f} s, inside the grader "
            f"{statistics.median(inside):.2f} s (median of 3), session {span / 60:.0f} min"
        )


if __name__ == "__main__":
    main()
