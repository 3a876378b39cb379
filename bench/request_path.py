"""Where a /predict's time goes inside the process (no HTTP): the request's validation, scoring one customer by
the fast path and by the DataFrame path, and the prediction log's commit (synchronous, before the answer). The
request whole, over HTTP, is `bench/instrumentation_overhead.py`'s.

    .venv/bin/python bench/request_path.py [--n 3000]

Each figure is the median of five rounds of `--n` calls, in microseconds per call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sandbox import REPO

sys.path.insert(0, str(REPO))


def per_call(fn, n: int) -> float:
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    from model_service.churn_data import generate_features
    from model_service.model_store import LoadedModel
    from model_service.prediction_log import PredictionLog, PredictionRecord
    from model_service.schemas import CustomerFeatures
    from model_service.train import train

    model = LoadedModel(train(seed=42).pipeline, "churn-classifier", "champion", "1", None, 0.5, "mlflow")
    customer = {k: (v.item() if hasattr(v, "item") else v) for k, v in generate_features(1, 0).iloc[0].items()}
    row = CustomerFeatures(**customer).model_dump()
    with tempfile.TemporaryDirectory() as tmp:
        log = PredictionLog(Path(tmp) / "bench.sqlite")

        def commit():
            log.record_predictions([PredictionRecord(uuid.uuid4().hex, time.time(), "1", row, 0.3, 0)])

        parts = {
            "validate the request (pydantic)": (lambda: CustomerFeatures(**customer), args.n),
            "score one customer, fast path": (lambda: model.score_records([row], "fast"), args.n),
            "score one customer, DataFrame path": (lambda: model.score_records([row], "dataframe"), args.n // 10),
            "commit its prediction to the log": (commit, args.n),
        }
        print(f"{'part':<48}{'us per call':>12}")
        for name, (fn, n) in parts.items():
            print(f"{name:<48}{per_call(fn, n):>12.0f}", flush=True)


if __name__ == "__main__":
    main()
