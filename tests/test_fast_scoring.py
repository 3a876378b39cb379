"""The fast scoring path (model_service/fast_scorer.py: the fitted pipeline folded into weights) gives the scores
of the DataFrame path through the pipeline itself, on the rows that exercise every branch of the pipeline: missing
values (the imputers), values out of the training range and 100x too large (the scaler), and categories the
encoder never saw (`handle_unknown="ignore"`)."""

from __future__ import annotations

import numpy as np
import pytest

from model_service.churn_data import generate_features
from model_service.spec import default_spec

ROWS = 10_000


def _hostile_rows(seed: int = 3) -> list[dict]:
    """10,000 customers; about one in five values missing, out of range, 100x or an unknown level."""
    spec = default_spec()
    rng = np.random.default_rng(seed)
    frame = generate_features(ROWS, seed)
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in frame.to_dict("records")]
    for row in rows:
        for name in spec.numeric:
            u = rng.random()
            if u < 0.05:
                row[name] = None
            elif u < 0.10:
                row[name] = row[name] * 100
            elif u < 0.15:
                row[name] = -abs(row[name]) - 1000.0  # far below any training value
            elif u < 0.20:
                row[name] = 1e9
        for name, feature in spec.categorical.items():
            u = rng.random()
            if u < 0.05:
                row[name] = None
            elif u < 0.15:
                row[name] = f"never-seen-{int(rng.integers(5))}"
            elif u < 0.20:
                row[name] = feature.levels[0].upper()  # renamed: another string to the encoder
    return rows


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return _hostile_rows()


def test_the_fast_path_is_the_pipeline_folded_not_a_fallback(loaded_model):
    assert loaded_model.scorer is not None


def test_fast_and_dataframe_paths_give_the_same_probabilities_and_classes(loaded_model, rows):
    fast = loaded_model.score_records(rows, "fast")
    slow = loaded_model.score_records(rows, "dataframe")
    assert fast.shape == slow.shape == (ROWS,)
    worst = int(np.argmax(np.abs(fast - slow)))
    assert np.max(np.abs(fast - slow)) <= 1e-9, (rows[worst], fast[worst], slow[worst])
    threshold = loaded_model.threshold
    decided = np.abs(slow - threshold) > 1e-9  # a class is only defined away from the threshold itself
    assert np.array_equal((fast >= threshold)[decided], (slow >= threshold)[decided])
    # The rows did exercise each branch: every kind of value is in them, and scores span both classes.
    assert any(r["tenure_months"] is None for r in rows) and any(r["contract_type"] is None for r in rows)
    assert any(str(r["payment_method"]).startswith("never-seen") for r in rows)
    assert 0.05 < np.mean(slow >= threshold) < 0.95


def test_each_kind_of_odd_value_alone_scores_the_same_both_ways(loaded_model, customer):
    spec = default_spec()
    cases = []
    for name in spec.numeric:
        for value in (None, customer[name] * 100, -1e6, 1e12):
            cases.append({**customer, name: value})
    for name, feature in spec.categorical.items():
        for value in (None, "never-seen", feature.levels[-1]):
            cases.append({**customer, name: value})
    fast = loaded_model.score_records(cases, "fast")
    slow = loaded_model.score_records(cases, "dataframe")
    assert np.max(np.abs(fast - slow)) <= 1e-9
