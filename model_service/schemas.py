"""Request and response models. The customer schema is built from the churn spec, so the two cannot disagree.

Every feature is required (a missing key is a 422 naming it) but may be null: null is a missing value that
the model imputes, the way an upstream system reports "unknown". Numbers must be finite and within the
feature's hard bounds; categories must be known levels; unknown fields are rejected.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from .settings import get_settings
from .spec import CategoricalFeature, NumericFeature, default_spec


def _feature_field(feat: NumericFeature | CategoricalFeature):
    if isinstance(feat, NumericFeature):
        base = int if feat.dtype == "int" else float
        constrained = Annotated[
            base,
            Field(ge=feat.valid.min, le=feat.valid.max, allow_inf_nan=False),
        ]
        return (
            Optional[constrained],
            Field(
                ...,
                description=f"{feat.description} Unit: {feat.unit}. Typical range "
                f"{feat.expected.min:g}-{feat.expected.max:g}. Null when unknown.",
            ),
        )
    levels = Literal[tuple(feat.levels)]  # type: ignore[valid-type]
    return (Optional[levels], Field(..., description=f"{feat.description} One of {feat.levels}. Null when unknown."))


def _customer_model() -> type[BaseModel]:
    spec = default_spec()
    fields = {name: _feature_field(feat) for name, feat in spec.features.items()}
    example = {
        "tenure_months": 12,
        "monthly_charges": 79.5,
        "total_charges": 954.0,
        "support_calls_90d": 2,
        "data_usage_gb": 21.3,
        "num_products": 2,
        "late_payments_12m": 0,
        "age_years": 37,
        "contract_type": "month-to-month",
        "payment_method": "electronic-check",
        "internet_service": "fiber",
        "region": "east",
    }
    return create_model(
        "CustomerFeatures",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [example]}),
        __doc__="One customer's features, as the CRM sends them.",
        **fields,
    )


CustomerFeatures = _customer_model()
FEATURE_NAMES: tuple[str, ...] = tuple(default_spec().features)


class PredictionResponse(BaseModel):
    request_id: str = Field(description="Quote this id when the true outcome is posted to /feedback.")
    churn_probability: float = Field(ge=0, le=1)
    churned: bool = Field(description="Predicted label: churn_probability >= the model's threshold.")
    model_version: str


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customers: list[CustomerFeatures] = Field(  # type: ignore[valid-type]
        min_length=1, max_length=get_settings().max_batch_size
    )


class BatchResponse(BaseModel):
    predictions: list[PredictionResponse]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1, max_length=64)
    churned: bool = Field(description="What really happened: did this customer churn?")


class FeedbackResponse(BaseModel):
    request_id: str
    churned: bool
    predicted_churned: bool
    churn_probability: float
    model_version: str
    label_delay_seconds: float = Field(description="Seconds between the prediction and this feedback.")


class ModelInfo(BaseModel):
    name: str
    alias: str
    version: str
    source: Literal["mlflow", "local-copy"]
    run_id: str | None
    threshold: float
    features: list[str]


class Health(BaseModel):
    status: Literal["ok"]
    model_version: str
