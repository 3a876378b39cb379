"""Detection latency of the reference solution's alerts in `smoke`: from each incident's onset to its alert
firing, against the floor the pipeline allows (`for` + scrape + evaluation, plus up to one drift pass).

    .venv/bin/python bench/detection_latency.py [--scrape-interval 1s]

Runs the native sandbox on the reference solution, plays smoke, and reads Prometheus's ALERTS series.
"""

from __future__ import annotations

import argparse
import math
import sys

import httpx
import yaml
from sandbox import REPO, driver

sys.path.insert(0, str(REPO))

from load.truth import read_timeline  # noqa: E402

# incident phase -> the alert that should catch it (and its labels)
INCIDENTS = {
    "feature-drift": ("FeatureDrift", {"feature": "monthly_charges"}),
    "upstream-bug": ("InputOutOfRange", {"feature": "total_charges"}),
    "concept-drift": ("ModelPerformanceDrop", {}),
    "latency-fault": ("PredictLatencyHigh", {}),
}


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60}
    for unit in ("ms", "s", "m"):
        if duration.endswith(unit):
            return float(duration[: -len(unit)]) * units[unit]
    raise ValueError(duration)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrape-interval", default="1s")
    args = parser.parse_args()
    rules = {
        r["alert"]: r
        for path in (REPO / "reference_solution" / "alerts").glob("*.yml")
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
    }
    drift_interval = 5.0  # reference_solution/app/monitoring_config.py's default
    with driver(REPO / "reference_solution", scrape_interval=args.scrape_interval) as d, d.running("--no-load"):
        d.cli("scenario", "play", "smoke")
        timeline = read_timeline(d.run_dir)
        start, end = timeline.phases[0].start, timeline.phases[-1].end
        print(f"smoke, scrape and evaluation every {args.scrape_interval}")
        print(f"{'incident':<15} {'alert':<22} {'detected after':>14} {'floor':>10}")
        for phase in timeline.phases:
            if phase.name not in INCIDENTS:
                continue
            alert, labels = INCIDENTS[phase.name]
            selector = ",".join(
                [f'alertname="{alert}"', 'alertstate="firing"', *[f'{k}="{v}"' for k, v in labels.items()]]
            )
            result = httpx.get(
                f"{d.url('prometheus')}/api/v1/query_range",
                params={"query": f"ALERTS{{{selector}}}", "start": start, "end": end + 30, "step": 0.5},
            ).json()
            times = [float(t) for s in result["data"]["result"] for t, _ in s["values"]]
            first = min((t for t in times if t >= phase.start), default=math.nan)
            floor = 2 * seconds(args.scrape_interval) + seconds(rules[alert]["for"])
            # A drift alert waits for the next drift pass too: from no time to a whole interval.
            upper = floor + (drift_interval if alert == "FeatureDrift" else 0)
            print(f"{phase.name:<15} {alert:<22} {first - phase.start:>13.1f}s {floor:>4.0f}-{upper:.0f}s")


if __name__ == "__main__":
    main()
