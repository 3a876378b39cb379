"""The synthetic churn world: seeded, and churn follows the documented dependence."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from model_service.churn_data import LABEL, churn_logit, generate_dataset, generate_features
from model_service.spec import SPEC_PATH, Dependence, default_spec, load_spec


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = generate_dataset(2000, 7), generate_dataset(2000, 7), generate_dataset(2000, 8)
    assert a.equals(b)
    assert not a.equals(c)


def test_about_twelve_features_numeric_and_categorical():
    spec = default_spec()
    assert len(spec.features) == 12
    assert {"tenure_months", "monthly_charges", "total_charges", "support_calls_90d"} <= set(spec.numeric)
    assert {"contract_type", "payment_method", "internet_service", "region"} <= set(spec.categorical)


def test_draws_stay_within_expected_ranges():
    spec = default_spec()
    df = generate_features(20_000, 3)
    for name, feat in spec.numeric.items():
        assert df[name].min() >= feat.expected.min and df[name].max() <= feat.expected.max, name
    for name, feat in spec.categorical.items():
        assert set(df[name]) <= set(feat.levels), name


def test_churn_rate_follows_the_documented_probability():
    """Observed churn per decile of the documented probability matches that probability."""
    spec = default_spec()
    df = generate_dataset(60_000, 11)
    p = 1 / (1 + np.exp(-churn_logit(df, spec.dependence)))
    deciles = np.quantile(p, np.linspace(0, 1, 11))
    bucket = np.clip(np.searchsorted(deciles, p, side="right") - 1, 0, 9)
    for b in range(10):
        mask = bucket == b
        assert abs(df[LABEL][mask].mean() - p[mask].mean()) < 0.025, b


def test_a_model_recovers_the_sign_of_every_documented_numeric_effect():
    spec = default_spec()
    df = generate_dataset(40_000, 5)
    names = list(spec.dependence.numeric)
    z = np.column_stack([(df[n] - e.center) / e.scale for n, e in spec.dependence.numeric.items()])
    coef = LogisticRegression(max_iter=1000).fit(z, df[LABEL]).coef_[0]
    for name, c in zip(names, coef):
        assert np.sign(c) == np.sign(spec.dependence.numeric[name].weight), name


def test_replacing_the_dependence_changes_labels_not_inputs():
    """Concept drift is data: another dependence gives other labels for the very same customers."""
    spec = default_spec()
    flipped = Dependence(
        intercept=spec.dependence.intercept,
        numeric={k: v.model_copy(update={"weight": -v.weight}) for k, v in spec.dependence.numeric.items()},
    )
    df = generate_features(5000, 1)
    assert np.corrcoef(churn_logit(df, spec.dependence), churn_logit(df, flipped))[0, 1] < 0


def test_a_spec_naming_an_unknown_feature_is_rejected(tmp_path):
    bad = tmp_path / "spec.yaml"
    bad.write_text(SPEC_PATH.read_text().replace("    tenure_months: {center", "    tenure_weeks: {center"))
    with pytest.raises(ValueError, match="tenure_weeks"):
        load_spec(bad)
