"""Scenario files: phases of traffic with injected incidents. Read and validated here, and only here.

A bad file raises ScenarioError with one line naming the file, the line and the field at fault.
Durations and label delays are scenario seconds (divided by --speed when played); rates are requests per
wall-clock second, so a compressed scenario loads the server as much as the full one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from model_service.faults import MODEL_ALIAS_PATTERN
from model_service.spec import ChurnSpec, Dependence, NumericEffect, check_dependence, default_spec

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- injections: what happens to the traffic during a phase ---------------------------------------


class CovariateDrift(_Strict):
    """The customer population moves: a numeric feature shifts and/or scales around its mean.

    gradual: ramps from nothing at the phase start to the full amount at its end; sudden: full at once.
    Labels follow the drifted customers (they are real customers).
    """

    kind: Literal["covariate_drift"]
    feature: str
    shift: float = 0.0
    scale: float = Field(1.0, gt=0)
    onset: Literal["sudden", "gradual"] = "sudden"


class CategoryMix(_Strict):
    """The population's mix of a categorical feature changes to `probs`."""

    kind: Literal["category_mix"]
    feature: str
    probs: dict[str, float]
    onset: Literal["sudden", "gradual"] = "sudden"


class UnitChange(_Strict):
    """Upstream bug: a feature arrives multiplied by `factor` (charges in cents: 100). Labels are unaffected."""

    kind: Literal["unit_change"]
    feature: str
    factor: float


class StuckValue(_Strict):
    """Upstream bug: a feature arrives as the same constant for every customer."""

    kind: Literal["stuck_value"]
    feature: str
    value: float | str | None


class RenamedCategory(_Strict):
    """Upstream bug: a category arrives under another name (the server rejects it: a 422)."""

    kind: Literal["renamed_category"]
    feature: str
    old: str
    new: str


class MissingValues(_Strict):
    """Data quality: a share of values arrive as null (unknown)."""

    kind: Literal["missing_values"]
    features: list[str] = Field(min_length=1)
    rate: float = Field(gt=0, le=1)


class OutOfRange(_Strict):
    """Data quality: a share of values arrive outside the expected range (but within the hard bounds)."""

    kind: Literal["out_of_range"]
    features: list[str] = Field(min_length=1)
    rate: float = Field(gt=0, le=1)


class ConceptDrift(_Strict):
    """The true churn dependence changes; inputs look the same. `weights` override numeric effects'
    weights, `levels` override categorical effects, `intercept` replaces the intercept."""

    kind: Literal["concept_drift"]
    intercept: float | None = None
    weights: dict[str, float] = {}
    levels: dict[str, dict[str, float]] = {}


class Latency(_Strict):
    """Service fault: every prediction takes `seconds` longer."""

    kind: Literal["latency"]
    seconds: float = Field(gt=0, le=30)


class Errors(_Strict):
    """Service fault: a share of predictions fail with a 503."""

    kind: Literal["errors"]
    rate: float = Field(gt=0, le=1)


class Outage(_Strict):
    """Service fault: the model server stops answering anything (it is frozen) for the phase."""

    kind: Literal["outage"]


class ModelRelease(_Strict):
    """A new model version released for the phase: the server serves the registered version under `alias`
    (train.py registers a worse one as @challenger) instead of the champion it loaded at start."""

    kind: Literal["model_release"]
    alias: str = Field("challenger", pattern=MODEL_ALIAS_PATTERN)


Injection = Annotated[
    Union[
        CovariateDrift,
        CategoryMix,
        UnitChange,
        StuckValue,
        RenamedCategory,
        MissingValues,
        OutOfRange,
        ConceptDrift,
        Latency,
        Errors,
        Outage,
        ModelRelease,
    ],
    Field(discriminator="kind"),
]
DATA_KINDS = (
    "covariate_drift",
    "category_mix",
    "unit_change",
    "stuck_value",
    "renamed_category",
    "missing_values",
    "out_of_range",
)
FAULT_KINDS = ("latency", "errors", "outage")


class GroundTruth(_Strict):
    """The share of predictions whose true label is posted to /feedback, and how long after."""

    fraction: float = Field(0.0, ge=0, le=1)
    delay_seconds: float = Field(0.0, ge=0)


class Phase(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    duration_seconds: float = Field(gt=0)
    rate: float = Field(gt=0, le=1000, description="Requests per wall-clock second.")
    ground_truth: GroundTruth | None = None
    injections: list[Injection] = []

    @model_validator(mode="after")
    def _one_of_each_fault(self) -> "Phase":
        kinds = [i.kind for i in self.injections]
        for kind in ("concept_drift", *FAULT_KINDS, "model_release"):
            if kinds.count(kind) > 1:
                raise ValueError(f"at most one {kind} injection per phase")
        return self


class Surprise(_Strict):
    """What `--surprise` may redraw from the seed, within these bounds."""

    drift_features: list[str] = []
    duration_jitter: float = Field(0.25, ge=0, lt=1)
    faults: list[Literal["latency", "errors"]] = ["latency", "errors"]


class Scenario(_Strict):
    name: str
    description: str
    seed: int = 0
    ground_truth: GroundTruth = GroundTruth()
    surprise: Surprise = Surprise()
    phases: list[Phase] = Field(min_length=1)

    def truth_for(self, phase: Phase) -> GroundTruth:
        return phase.ground_truth or self.ground_truth

    @property
    def duration_seconds(self) -> float:
        return sum(p.duration_seconds for p in self.phases)


class SpecReference(ValueError):
    """A scenario names a feature, category or effect the churn spec does not have."""

    def __init__(self, loc: tuple, msg: str):
        super().__init__(msg)
        self.loc, self.msg = loc, msg


def check_against_spec(scenario: Scenario, spec: ChurnSpec) -> None:
    """Every feature, category and effect a scenario names must exist in the churn spec."""
    numeric, categorical = spec.numeric, spec.categorical
    for k, f in enumerate(scenario.surprise.drift_features):
        if f not in numeric:
            raise SpecReference(("surprise", "drift_features", k), f"{f!r} is not a numeric feature")
    for pi, phase in enumerate(scenario.phases):
        for ii, inj in enumerate(phase.injections):
            at = ("phases", pi, "injections", ii)
            if isinstance(inj, (CovariateDrift, UnitChange)) and inj.feature not in numeric:
                raise SpecReference((*at, "feature"), f"{inj.feature!r} is not a numeric feature")
            if isinstance(inj, (CategoryMix, RenamedCategory)) and inj.feature not in categorical:
                raise SpecReference((*at, "feature"), f"{inj.feature!r} is not a categorical feature")
            if isinstance(inj, CategoryMix) and set(inj.probs) - set(categorical[inj.feature].levels):
                unknown = sorted(set(inj.probs) - set(categorical[inj.feature].levels))
                raise SpecReference((*at, "probs"), f"unknown levels {unknown} of {inj.feature}")
            if isinstance(inj, RenamedCategory) and inj.old not in categorical[inj.feature].levels:
                raise SpecReference((*at, "old"), f"{inj.old!r} is not a level of {inj.feature}")
            if isinstance(inj, StuckValue) and inj.feature not in spec.features:
                raise SpecReference((*at, "feature"), f"{inj.feature!r} is not a feature")
            if isinstance(inj, (MissingValues, OutOfRange)):
                pool = spec.features if isinstance(inj, MissingValues) else numeric
                for k, f in enumerate(inj.features):
                    if f not in pool:
                        kind = "feature" if pool is spec.features else "numeric feature"
                        raise SpecReference((*at, "features", k), f"{f!r} is not a {kind}")
            if isinstance(inj, ConceptDrift):
                try:
                    check_dependence(spec, concept_dependence(spec.dependence, inj))
                except ValueError as exc:
                    raise SpecReference(at, str(exc)) from None


def concept_dependence(base: Dependence, drift: ConceptDrift) -> Dependence:
    """The churn dependence during a concept drift: the base with the drift's overrides."""
    numeric = dict(base.numeric)
    for name, weight in drift.weights.items():
        eff = numeric.get(name) or NumericEffect(center=0.0, scale=1.0, weight=0.0)
        numeric[name] = eff.model_copy(update={"weight": weight})
    categorical = {**base.categorical, **drift.levels}
    intercept = base.intercept if drift.intercept is None else drift.intercept
    return Dependence(intercept=intercept, numeric=numeric, categorical=categorical)


class ScenarioError(ValueError):
    """A scenario that cannot be played; str() is one readable line."""


def line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """The 1-based line of the YAML node at path `loc` (or of its closest existing parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return SCENARIO_DIR / f"{name_or_path}.yaml"


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A shipped scenario by name (`smoke`) or any scenario file by path."""
    path = _path(name_or_path)
    if not path.exists():
        shipped = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
        raise ScenarioError(f"no scenario {str(name_or_path)!r}; shipped scenarios: {shipped}")
    text = path.read_text()
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ScenarioError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}:1: a scenario is a mapping with name, description and phases")
    try:
        scenario = Scenario.model_validate(data)
        check_against_spec(scenario, default_spec())
    except ValidationError as exc:
        err = exc.errors()[0]
        # Union members appear in the path as their discriminator value; drop them for the YAML lookup.
        loc = tuple(k for k in err["loc"] if not (isinstance(k, str) and k in _INJECTION_KINDS))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ScenarioError(_located(path, node, loc, err["msg"].removeprefix("Value error, ") + more)) from None
    except SpecReference as exc:
        raise ScenarioError(_located(path, node, exc.loc, exc.msg)) from None
    return scenario


def _located(path: Path, node: yaml.Node, loc: tuple, msg: str) -> str:
    field = ".".join(str(k) for k in loc) or "(top level)"
    return f"{path}:{line_of(node, loc)}: {field}: {msg}"


_INJECTION_KINDS = {*DATA_KINDS, *FAULT_KINDS, "concept_drift", "model_release"}


def shipped_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
