"""The churn world's specification (features and churn dependence), read and validated in one place."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

SPEC_PATH = Path(__file__).with_name("churn_spec.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bounds(_Strict):
    min: float
    max: float


class UniformDraw(_Strict):
    dist: Literal["uniform"]
    low: float
    high: float


class NormalDraw(_Strict):
    dist: Literal["normal"]
    mean: float
    std: float
    clip: tuple[float, float] | None = None


class LognormalDraw(_Strict):
    dist: Literal["lognormal"]
    mean: float
    sigma: float
    clip: tuple[float, float] | None = None


class PoissonDraw(_Strict):
    dist: Literal["poisson"]
    lam: float
    offset: float = 0
    clip: tuple[float, float] | None = None


class ProductDraw(_Strict):
    """The product of two other numeric features, times log-normal noise (total = tenure x monthly)."""

    dist: Literal["product"]
    of: tuple[str, str]
    noise_std: float = 0.0


class CategoricalDraw(_Strict):
    dist: Literal["categorical"]
    probs: dict[str, float]


NumericDraw = Annotated[
    Union[UniformDraw, NormalDraw, LognormalDraw, PoissonDraw, ProductDraw], Field(discriminator="dist")
]


class NumericFeature(_Strict):
    kind: Literal["numeric"]
    description: str
    unit: str
    dtype: Literal["int", "float"]
    draw: NumericDraw
    valid: Bounds
    expected: Bounds


class CategoricalFeature(_Strict):
    kind: Literal["categorical"]
    description: str
    draw: CategoricalDraw

    @property
    def levels(self) -> list[str]:
        return list(self.draw.probs)


Feature = Annotated[Union[NumericFeature, CategoricalFeature], Field(discriminator="kind")]


class NumericEffect(_Strict):
    center: float
    scale: float = Field(gt=0)
    weight: float


class Dependence(_Strict):
    """P(churn) = sigmoid(intercept + sum of numeric and categorical effects)."""

    intercept: float
    numeric: dict[str, NumericEffect] = {}
    categorical: dict[str, dict[str, float]] = {}


class ChurnSpec(_Strict):
    features: dict[str, Feature]
    dependence: Dependence

    @model_validator(mode="after")
    def _references_exist(self) -> "ChurnSpec":
        check_dependence(self, self.dependence)
        for name, feat in self.features.items():
            if isinstance(feat, NumericFeature) and isinstance(feat.draw, ProductDraw):
                for other in feat.draw.of:
                    if not isinstance(self.features.get(other), NumericFeature):
                        raise ValueError(f"features.{name}.draw.of: {other!r} is not a numeric feature")
        return self

    @property
    def numeric(self) -> dict[str, NumericFeature]:
        return {n: f for n, f in self.features.items() if isinstance(f, NumericFeature)}

    @property
    def categorical(self) -> dict[str, CategoricalFeature]:
        return {n: f for n, f in self.features.items() if isinstance(f, CategoricalFeature)}


def check_dependence(spec: ChurnSpec, dependence: Dependence) -> None:
    """Raise ValueError when a dependence names a feature or category the spec does not have."""
    for name in dependence.numeric:
        if name not in spec.numeric:
            raise ValueError(f"dependence.numeric.{name}: not a numeric feature")
    for name, levels in dependence.categorical.items():
        if name not in spec.categorical:
            raise ValueError(f"dependence.categorical.{name}: not a categorical feature")
        unknown = set(levels) - set(spec.categorical[name].levels)
        if unknown:
            raise ValueError(f"dependence.categorical.{name}: unknown levels {sorted(unknown)}")


def load_spec(path: Path | str = SPEC_PATH) -> ChurnSpec:
    """Read and validate a churn spec file."""
    with open(path, encoding="utf-8") as fh:
        return ChurnSpec.model_validate(yaml.safe_load(fh))


@lru_cache(maxsize=1)
def default_spec() -> ChurnSpec:
    return load_spec(SPEC_PATH)
