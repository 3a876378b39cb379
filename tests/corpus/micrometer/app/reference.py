"""Training-time baselines the drift rules compare against, exported as gauges.

Built-in values are the reference data set of the seed-42 training run (the 5,000 holdout rows logged as
`reference/reference.csv`). At start-up `load_from_mlflow` tries to recompute them from the serving model's
own training run, so a retrained model brings its own baseline; when MLflow is unreachable the built-in
values stay in force (fail soft: monitoring must never stop the server from starting).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger("app.monitoring.reference")

REFERENCE_ARTIFACT = "reference/reference.csv"


@dataclass
class Reference:
    source: str
    # numeric feature -> (mean, standard deviation)
    numeric: dict[str, tuple[float, float]]
    # categorical feature -> {level: share among rows}
    categorical: dict[str, dict[str, float]]
    score_mean: float
    flagged_share: float
    # accuracy, precision, recall, churn_rate at the model's threshold
    performance: dict[str, float] = field(default_factory=dict)


BUILTIN = Reference(
    source="builtin-seed42",
    numeric={
        "tenure_months": (36.438, 20.508),
        "monthly_charges": (65.207, 24.093),
        "total_charges": (2384.163, 1692.108),
        "support_calls_90d": (1.500, 1.227),
        "data_usage_gb": (27.567, 27.198),
        "num_products": (2.183, 1.089),
        "late_payments_12m": (0.586, 0.768),
        "age_years": (45.045, 13.451),
    },
    categorical={
        "contract_type": {"month-to-month": 0.503, "one-year": 0.3016, "two-year": 0.1954},
        "payment_method": {"electronic-check": 0.347, "mailed-check": 0.207, "bank-transfer": 0.2432,
                           "credit-card": 0.2028},
        "internet_service": {"fiber": 0.4562, "dsl": 0.3514, "none": 0.1924},
        "region": {"north": 0.2506, "south": 0.242, "east": 0.308, "west": 0.1994},
    },
    score_mean=0.2914,
    flagged_share=0.2372,
    performance={"accuracy": 0.8078, "precision": 0.7201, "recall": 0.5759, "churn_rate": 0.2966},
)


def from_frame(df, threshold: float, source: str) -> Reference:
    """Baselines from a reference frame (12 features, `churned`, `score`)."""
    import numpy as np

    numeric = {name: (float(df[name].mean()), float(df[name].std())) for name in BUILTIN.numeric}
    categorical = {
        name: {lv: float(share) for lv, share in df[name].value_counts(normalize=True).items()}
        for name in BUILTIN.categorical
    }
    y = df["churned"].to_numpy().astype(int)
    p = (df["score"].to_numpy() >= threshold).astype(int)
    tp = int(((p == 1) & (y == 1)).sum())
    performance = {
        "accuracy": float((p == y).mean()),
        "precision": tp / max(int(p.sum()), 1),
        "recall": tp / max(int(y.sum()), 1),
        "churn_rate": float(y.mean()),
    }
    return Reference(source, numeric, categorical, float(np.mean(df["score"])), float(p.mean()), performance)


def load_from_mlflow(run_id: str | None, threshold: float) -> Reference | None:
    """The serving model's reference data set from its MLflow training run, or None (logged) on any failure."""
    if not run_id:
        return None
    try:
        import os
        import tempfile

        import mlflow
        import pandas as pd

        # Decide within seconds rather than MLflow's minutes of retries (the model loader sets the same).
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT,
                                                       dst_path=tmp)
            df = pd.read_csv(path)
        return from_frame(df, threshold, f"mlflow-run-{run_id}")
    except Exception as exc:  # noqa: BLE001 - any failure keeps the built-in baseline
        log.warning("reference data set not loaded from MLflow (%s); using built-in baselines", exc)
        return None
