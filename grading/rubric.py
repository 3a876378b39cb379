"""The rubric: items, checks, points, what each check needs to be judged, tolerances and advice, read from YAML
and validated in one place. A bad rubric raises RubricError with one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from load.scenario import DATA_KINDS, FAULT_KINDS

from .errors import GradingFailed

DEFAULT_RUBRIC = Path(__file__).with_name("rubric.yaml")

# The checks the grader implements, by item: a rubric may weigh them (or leave some out with `only:`), not
# invent new ones.
KNOWN_CHECKS: dict[str, tuple[str, ...]] = {
    "predictions": ("counter_tracks_predictions", "distribution_exposed"),
    "performance": ("tracks_accuracy", "falls_in_concept_drift"),
    "system": ("latency_histogram_seconds", "throughput_counter", "errors_counted"),
    "drift": ("moves_after_drift", "right_feature", "flat_in_baseline"),
    "alerting": (
        "rules_valid",
        "alert_on_critical_metric",
        "incidents_detected",
        "no_false_alarms",
        "resolved_after_recovery",
        "severity_and_summary",
    ),
    "visualization": ("has_dashboard", "covers_categories", "panels_return_data"),
    "hygiene": ("promtool_lint", "help_text", "label_cardinality"),
}

# What a check may need before it can be judged: an incident of one of these kinds played, or one of these
# facts of the session. A check whose needs are not met is "not applicable": it leaves the total.
CONDITIONS = {
    "baseline": "a phase with nothing injected was played",
    "labels": "true labels arrived",
    "errors": "clients saw errors (4xx or 5xx)",
    "incident": "an incident was played",
    "finished": "the scenario is over (not graded mid-play)",
}
INCIDENT_KINDS = (*DATA_KINDS, "concept_drift", "model_release", *FAULT_KINDS)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Needs(_Strict):
    """Every condition listed, and (when `any_of` is not empty) an incident of one of those kinds."""

    any_of: list[str] = []
    conditions: list[str] = []

    @model_validator(mode="after")
    def _known(self) -> "Needs":
        unknown = [k for k in self.any_of if k not in INCIDENT_KINDS]
        if unknown:
            raise ValueError(f"no such incident kind {unknown} (known: {', '.join(INCIDENT_KINDS)})")
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown:
            raise ValueError(f"no such condition {unknown} (known: {', '.join(CONDITIONS)})")
        return self


class CheckSpec(_Strict):
    points: float = Field(ge=0)
    advice: str
    needs: Needs = Needs()


class ItemSpec(_Strict):
    title: str
    # Without `only`, an item names every check of its kind; with it, exactly the checks listed.
    only: list[str] | None = None
    checks: dict[str, CheckSpec]


class Tolerances(_Strict):
    count_relative: float = Field(gt=0, lt=1)
    count_absolute: float = Field(ge=0)
    role_fit: float = Field(gt=0, le=1)
    role_margin: float = Field(ge=0, lt=1)
    accuracy_window_labels: int = Field(ge=10)
    performance_drop_relative: float = Field(gt=0, lt=1)
    latency_ratio: tuple[float, float]
    latency_fault_share: tuple[float, float]
    detection_grace_seconds: float = Field(ge=0)
    resolve_grace_seconds: float = Field(ge=0)
    max_series_per_family: int = Field(ge=1)


class Rubric(_Strict):
    items: dict[str, ItemSpec]
    improvement_priority: list[str]
    tolerances: Tolerances

    @model_validator(mode="after")
    def _complete(self) -> "Rubric":
        for item, spec in self.items.items():
            if item not in KNOWN_CHECKS:
                raise ValueError(f"items.{item}: no such item (known: {', '.join(KNOWN_CHECKS)})")
            known = KNOWN_CHECKS[item]
            unknown = [c for c in spec.checks if c not in known]
            if unknown:
                raise ValueError(f"items.{item}.checks: no such check {unknown} (known: {', '.join(known)})")
            if spec.only is not None:
                twice = sorted({c for c in spec.only if spec.only.count(c) > 1})
                if twice:
                    raise ValueError(f"items.{item}.only: {twice} named twice")
                unknown = [c for c in spec.only if c not in known]
                if unknown:
                    raise ValueError(f"items.{item}.only: no such check {unknown} (known: {', '.join(known)})")
                if not spec.only:
                    raise ValueError(f"items.{item}.only: empty (leave the item out instead)")
            wanted = spec.only if spec.only is not None else list(known)
            missing = [c for c in wanted if c not in spec.checks]
            if missing:
                how = (
                    "listed in `only`"
                    if spec.only is not None
                    else "not listed (name every check, or restrict them with `only:`)"
                )
                raise ValueError(f"items.{item}.checks: {missing} {how}")
            extra = [c for c in spec.checks if c not in wanted]
            if extra:
                raise ValueError(f"items.{item}.checks: {extra} not in `only`")
        for item in self.improvement_priority:
            if item not in self.items:
                raise ValueError(f"improvement_priority: {item!r} is not an item")
        if not self.total:
            raise ValueError("items: the checks are worth no points in all")
        return self

    @property
    def total(self) -> float:
        return sum(c.points for i in self.items.values() for c in i.checks.values())


class RubricError(ValueError):
    """A rubric that cannot be used; str() is one readable line."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (plain YAML keeps the last, silently)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"{key!r} named twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_rubric(path: Path | str = DEFAULT_RUBRIC) -> Rubric:
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as exc:
        raise RubricError(f"{path}: cannot read the rubric ({exc.strerror})") from None
    except yaml.constructor.ConstructorError as exc:
        raise RubricError(f"{path}:{exc.problem_mark.line + 1}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RubricError(f"{path}{f':{mark.line + 1}' if mark else ''}: not valid YAML") from None
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(k) for k in err["loc"]) or "(top level)"
        raise RubricError(f"{path}: {where}: {err['msg'].removeprefix('Value error, ')}") from None


def rubric_or_fail(path: Path | None) -> Rubric:
    """The rubric at `path` (default: the shipped one); GradingFailed with RubricError's line when it is invalid."""
    try:
        return load_rubric(path or DEFAULT_RUBRIC)
    except RubricError as exc:
        raise GradingFailed(str(exc)) from None
