"""Training: a scikit-learn pipeline that separates churners from stayers on the default seed."""

from model_service.spec import default_spec


def test_holdout_auc_at_least_0_80_on_default_seed(trained):
    assert trained.metrics["holdout_auc"] >= 0.80


def test_reference_set_has_every_feature_label_and_score(trained):
    cols = set(trained.reference.columns)
    assert set(default_spec().features) <= cols and {"churned", "score"} <= cols
    assert len(trained.reference) == 5000


def test_pipeline_scores_rows_with_missing_values(trained, customer):
    import pandas as pd

    from model_service.churn_data import records_to_frame

    customer = {**customer, "tenure_months": None, "contract_type": None}
    p = trained.pipeline.predict_proba(records_to_frame([customer]))[0, 1]
    assert 0 <= p <= 1 and not pd.isna(p)
