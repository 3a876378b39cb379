"""Train the churn classifier, log the run to MLflow and register it as churn-classifier@champion; then a worse
version as churn-classifier@challenger.

python -m model_service.train --tracking-uri http://127.0.0.1:5000 [--seed 42] [--rows 20000] [--if-missing]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .churn_data import LABEL, generate_dataset
from .settings import CHALLENGER_ALIAS, MODEL_ALIAS, MODEL_NAME
from .spec import SPEC_PATH, ChurnSpec, default_spec

log = logging.getLogger("model_service.train")

THRESHOLD = 0.5
EXPERIMENT = "churn-training"
REFERENCE_ARTIFACT = "reference/reference.csv"
# The holdout rows kept as the reference data set: what "normal" inputs and scores look like.
REFERENCE_ROWS = 5000
# The challenger: the same model retrained on a sample whose contract type and support calls were joined to the
# wrong customers (an upstream pipeline bug), with balanced class weights. Measured on 5,000 fresh rows: accuracy
# 0.80 -> 0.70, AUC 0.86 -> 0.77, predicted churn 26% -> 42% of customers, mean score 0.30 -> 0.45.
CHALLENGER_SCRAMBLED = ("contract_type", "support_calls_90d")
CHALLENGER_ROWS = 4000


def build_pipeline(spec: ChurnSpec, seed: int) -> Pipeline:
    numeric, categorical = list(spec.numeric), list(spec.categorical)
    pre = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(
                        categories=[spec.categorical[c].levels for c in categorical], handle_unknown="ignore"
                    ),
                ),
                categorical,
            ),
        ]
    )
    return Pipeline([("preprocess", pre), ("classifier", LogisticRegression(max_iter=1000, random_state=seed))])


@dataclass(frozen=True)
class TrainingResult:
    pipeline: Pipeline
    metrics: dict[str, float]
    reference: pd.DataFrame  # holdout features, label and the model's score


def train(
    seed: int = 42, rows: int = 20_000, spec: ChurnSpec | None = None, challenger: bool = False
) -> TrainingResult:
    """The champion, or (`challenger`) the worse version; both judged on the same clean holdout."""
    spec = spec or default_spec()
    data = generate_dataset(rows, seed, spec)
    features = list(spec.features)
    train_df, test_df = train_test_split(data, test_size=0.25, random_state=seed, stratify=data[LABEL])
    pipeline = build_pipeline(spec, seed)
    if challenger:
        train_df = train_df.sample(min(CHALLENGER_ROWS, len(train_df)), random_state=seed).copy()
        rng = np.random.default_rng(seed)
        for feature in CHALLENGER_SCRAMBLED:
            train_df[feature] = rng.permutation(train_df[feature].to_numpy())
        pipeline.set_params(classifier__class_weight="balanced")
    pipeline.fit(train_df[features], train_df[LABEL])
    score = pipeline.predict_proba(test_df[features])[:, 1]
    predicted = (score >= THRESHOLD).astype(int)
    y = test_df[LABEL].to_numpy()
    metrics = {
        "holdout_auc": float(roc_auc_score(y, score)),
        "holdout_accuracy": float(accuracy_score(y, predicted)),
        "holdout_precision": float(precision_score(y, predicted, zero_division=0)),
        "holdout_recall": float(recall_score(y, predicted, zero_division=0)),
        "holdout_log_loss": float(log_loss(y, score)),
        "holdout_churn_rate": float(y.mean()),
    }
    reference = test_df.head(REFERENCE_ROWS).copy()
    reference["score"] = score[: len(reference)]
    return TrainingResult(pipeline, metrics, reference.reset_index(drop=True))


def register(result: TrainingResult, tracking_uri: str, seed: int, rows: int, alias: str = MODEL_ALIAS) -> str:
    """Log the run to MLflow, register the model and point `alias` at it. Returns the version."""
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    features = list(default_spec().features)
    sample = result.reference[features].head(20)
    signature = infer_signature(sample, result.pipeline.predict_proba(sample)[:, 1])
    with mlflow.start_run(run_name=f"churn-logreg-seed{seed}" + ("" if alias == MODEL_ALIAS else f"-{alias}")) as run:
        mlflow.log_params(
            {
                "seed": seed,
                "rows": rows,
                "classifier": "LogisticRegression",
                "threshold": THRESHOLD,
                "features": len(features),
            }
        )
        mlflow.log_metrics(result.metrics)
        with tempfile.TemporaryDirectory() as tmp:
            ref = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            result.reference.to_csv(ref, index=False)
            mlflow.log_artifact(str(ref), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
        mlflow.log_artifact(str(SPEC_PATH), artifact_path="spec")
        info = mlflow.sklearn.log_model(
            result.pipeline,
            name="model",
            signature=signature,
            input_example=sample.head(3),
            registered_model_name=MODEL_NAME,
            # skops (MLflow's safe format) refuses types it does not know; OneHotEncoder stores a dtype.
            skops_trusted_types=["numpy.dtype"],
        )
        version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_alias(MODEL_NAME, alias, version)
    client.set_model_version_tag(MODEL_NAME, version, "threshold", str(THRESHOLD))
    log.info("registered %s version %s as @%s (run %s)", MODEL_NAME, version, alias, run.info.run_id)
    return version


def alias_version(tracking_uri: str, alias: str = MODEL_ALIAS) -> str | None:
    """The version churn-classifier@alias points at, or None when the server has no such model or alias.

    An unreachable server raises: that is an error to report, not a reason to train.
    """
    from mlflow.exceptions import RestException
    from mlflow.tracking import MlflowClient

    try:
        mv = MlflowClient(tracking_uri=tracking_uri).get_model_version_by_alias(MODEL_NAME, alias)
    except RestException as exc:
        # The server's answers for "no such registered model" and "no such alias".
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    return str(mv.version)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help=f"train only the versions whose alias (@{MODEL_ALIAS}, @{CHALLENGER_ALIAS}) does not exist yet",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # The champion first: on a new server it is version 1, the challenger version 2.
    for alias in (MODEL_ALIAS, CHALLENGER_ALIAS):
        if args.if_missing:
            existing = alias_version(args.tracking_uri, alias)
            if existing is not None:
                print(f"{MODEL_NAME}@{alias} exists (version {existing}); nothing to train", flush=True)
                continue
        result = train(args.seed, args.rows, challenger=alias == CHALLENGER_ALIAS)
        print(
            f"@{alias}: holdout AUC {result.metrics['holdout_auc']:.3f} "
            f"(accuracy {result.metrics['holdout_accuracy']:.3f}, churn rate {result.metrics['holdout_churn_rate']:.3f})",
            flush=True,
        )
        version = register(result, args.tracking_uri, args.seed, args.rows, alias)
        print(f"registered {MODEL_NAME} version {version} as @{alias}", flush=True)


if __name__ == "__main__":
    main()
