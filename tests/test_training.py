"""Training: a scikit-learn pipeline that separates churners from stayers on the default seed."""

from model_service.spec import default_spec
from model_service.train import train


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


def test_the_challenger_is_worse_on_the_same_holdout(trained):
    challenger = train(seed=42, challenger=True)
    ours, theirs = trained.metrics, challenger.metrics
    assert theirs["holdout_auc"] < ours["holdout_auc"] - 0.05
    assert theirs["holdout_accuracy"] < ours["holdout_accuracy"] - 0.05
    # It calls churn far more often: what a careful analyst sees at once in the scores.
    ref, chal = trained.reference, challenger.reference
    assert (chal["score"] >= 0.5).mean() > (ref["score"] >= 0.5).mean() + 0.1
