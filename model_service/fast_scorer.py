"""The model's scores without a DataFrame per request: the fitted pipeline (imputers, scaler, one-hot encoder,
logistic regression) folded at load time into one weight per numeric feature and one per category level.

A /predict of one customer through the pipeline builds a pandas frame and runs the ColumnTransformer, a few
milliseconds that would dominate the server's latency (and a candidate's latency histogram). This scorer does the
same arithmetic with numpy on a handful of numbers. The MLflow model stays the artifact of record: the scorer is
made from it and refuses (returns None) any pipeline it does not recognise step for step, so that a different model
falls back to the DataFrame path rather than to wrong scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit


@dataclass(frozen=True)
class LinearScorer:
    numeric: tuple[str, ...]
    fill: np.ndarray  # the imputer's value per numeric feature (the training median)
    mean: np.ndarray  # the scaler's
    scale: np.ndarray
    numeric_weights: np.ndarray
    categorical: tuple[str, ...]
    level_weights: tuple[dict[str, float], ...]  # per categorical feature: level -> weight (unknown: 0)
    missing_level: tuple[str, ...]  # the imputer's level for a null (the training mode)
    intercept: float

    @classmethod
    def from_pipeline(cls, pipeline) -> "LinearScorer | None":
        """The scorer for a pipeline built by model_service.train, or None for anything else."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        try:
            pre, clf = pipeline.named_steps["preprocess"], pipeline.named_steps["classifier"]
            if not (
                isinstance(pre, ColumnTransformer)
                and isinstance(clf, LogisticRegression)
                and list(clf.classes_) == [0, 1]
                and clf.coef_.shape[0] == 1
            ):
                return None
            if pre.remainder != "drop" and pre.output_indices_.get("remainder", slice(0, 0)) != slice(0, 0):
                return None
            num, cat = pre.named_transformers_["numeric"], pre.named_transformers_["categorical"]
            num_cols = list(pre.transformers_[0][2])
            cat_cols = list(pre.transformers_[1][2])
            if not (
                isinstance(num, Pipeline) and isinstance(cat, Pipeline) and len(num.steps) == 2 and len(cat.steps) == 2
            ):
                return None
            imp_n, scaler = num.steps[0][1], num.steps[1][1]
            imp_c, onehot = cat.steps[0][1], cat.steps[1][1]
            if not (
                isinstance(imp_n, SimpleImputer)
                and isinstance(scaler, StandardScaler)
                and isinstance(imp_c, SimpleImputer)
                and isinstance(onehot, OneHotEncoder)
                and onehot.handle_unknown == "ignore"
                and onehot.drop is None
                and scaler.with_mean
                and scaler.with_std
                and not imp_n.add_indicator
                and not imp_c.add_indicator
            ):
                return None
            coef = clf.coef_[0]
            n_slice, c_slice = pre.output_indices_["numeric"], pre.output_indices_["categorical"]
            weights, start = [], c_slice.start
            for levels in onehot.categories_:
                weights.append({str(lv): float(w) for lv, w in zip(levels, coef[start : start + len(levels)])})
                start += len(levels)
            if start != c_slice.stop or n_slice.stop - n_slice.start != len(num_cols):
                return None
            return cls(
                tuple(num_cols),
                np.asarray(imp_n.statistics_, dtype=float),
                np.asarray(scaler.mean_, dtype=float),
                np.asarray(scaler.scale_, dtype=float),
                np.asarray(coef[n_slice], dtype=float),
                tuple(cat_cols),
                tuple(weights),
                tuple(str(v) for v in imp_c.statistics_),
                float(clf.intercept_[0]),
            )
        except (AttributeError, KeyError, IndexError, TypeError, ValueError):
            return None

    def score(self, records: list[dict]) -> np.ndarray:
        """Churn probability for each customer dict (None for a missing value)."""
        x = np.array([[r[f] if r[f] is not None else math.nan for f in self.numeric] for r in records], dtype=float)
        x = np.where(np.isnan(x), self.fill, x)
        logit = ((x - self.mean) / self.scale) @ self.numeric_weights + self.intercept
        for j, f in enumerate(self.categorical):
            weights, missing = self.level_weights[j], self.missing_level[j]
            logit = logit + np.array([weights.get(missing if r[f] is None else str(r[f]), 0.0) for r in records])
        return expit(logit)  # as LogisticRegression's own, and without overflow on absurd inputs
