"""The rubric: items, checks, points, tolerances and advice, read from YAML and validated in one place."""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_RUBRIC = Path(__file__).with_name("rubric.yaml")

# The checks the grader implements, by item: a rubric may weigh them, not invent new ones.
KNOWN_CHECKS = {
    "predictions": {"counter_tracks_predictions", "distribution_exposed"},
    "performance": {"tracks_accuracy", "falls_in_concept_drift"},
    "system": {"latency_histogram_seconds", "throughput_counter", "errors_counted"},
    "drift": {"moves_after_drift", "right_feature", "flat_in_baseline"},
    "alerting": {"rules_valid", "alert_on_critical_metric", "incidents_detected", "no_false_alarms",
                 "resolved_after_recovery", "severity_and_summary"},
    "visualization": {"has_dashboard", "covers_categories", "panels_return_data"},
    "hygiene": {"promtool_lint", "help_text", "label_cardinality"},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckSpec(_Strict):
    points: float = Field(ge=0)
    advice: str


class ItemSpec(_Strict):
    title: str
    checks: dict[str, CheckSpec]


class Tolerances(_Strict):
    count_relative: float = Field(gt=0, lt=1)
    count_absolute: float = Field(ge=0)
    accuracy_correlation: float = Field(gt=0, le=1)
    accuracy_window_labels: int = Field(ge=10)
    performance_drop_relative: float = Field(gt=0, lt=1)
    latency_ratio: tuple[float, float]
    latency_fault_share: tuple[float, float]
    drift_move_sigmas: float = Field(gt=0)
    detection_grace_seconds: float = Field(ge=0)
    resolve_grace_seconds: float = Field(ge=0)
    max_series_per_family: int = Field(ge=1)


class Rubric(_Strict):
    items: dict[str, ItemSpec]
    improvement_priority: list[str]
    tolerances: Tolerances

    @model_validator(mode="after")
    def _known(self) -> "Rubric":
        for item, spec in self.items.items():
            if item not in KNOWN_CHECKS:
                raise ValueError(f"items.{item}: no such item (known: {', '.join(KNOWN_CHECKS)})")
            unknown = set(spec.checks) - KNOWN_CHECKS[item]
            if unknown:
                raise ValueError(f"items.{item}.checks: no such check {sorted(unknown)} "
                                 f"(known: {', '.join(sorted(KNOWN_CHECKS[item]))})")
        for item in self.improvement_priority:
            if item not in self.items:
                raise ValueError(f"improvement_priority: {item!r} is not an item")
        if not sum(c.points for i in self.items.values() for c in i.checks.values()):
            raise ValueError("items: the checks are worth no points in all")
        return self

    @property
    def total(self) -> float:
        return sum(c.points for i in self.items.values() for c in i.checks.values())


class RubricError(ValueError):
    """A rubric that cannot be used; str() is one readable line."""


def load_rubric(path: Path | str = DEFAULT_RUBRIC) -> Rubric:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RubricError(f"{path}: cannot read the rubric ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RubricError(f"{path}{f':{mark.line + 1}' if mark else ''}: not valid YAML") from None
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(k) for k in err["loc"]) or "(top level)"
        raise RubricError(f"{path}: {where}: {err['msg'].removeprefix('Value error, ')}") from None
