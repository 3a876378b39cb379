"""The rubric: items, checks, points, what each check needs to be judged, tolerances and advice, read from YAML
and validated in one place. A bad rubric raises RubricError with one line naming the file and the field.

A rubric overlay (a level's `rubric:`, see levels/) changes a rubric without copying it: points per item and per
check, extra checks, items left out, tolerances, and which checks are a *plus* (graded and reported beside the
score, never counted in it). `overlaid()` composes the two into a Rubric validated like any other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
# Checks the grader implements that the shipped rubric leaves out: a rubric (or a level's overlay) adds them by
# naming them; they are computed only when named. The practices of production alerting a senior is asked for, a
# junior's first alert, and the dashboard-design exercise's questions (grading/checks/alert_practice.py,
# alerting.py, visualization.py).
EXTRA_CHECKS: dict[str, tuple[str, ...]] = {
    "alerting": (
        "an_incident_caught",
        "routed_by_severity",
        "performance_alerts_guarded",
        "per_feature_drift_alerts",
        "objective_alert",
        "thresholds_argued",
    ),
    "visualization": ("answers_stakeholders",),
}


def checks_of(item: str) -> tuple[str, ...]:
    """Every check the grader implements for an item: the standard ones, then the extra ones."""
    return KNOWN_CHECKS.get(item, ()) + EXTRA_CHECKS.get(item, ())


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
    # A plus: graded and reported beside the score, never counted in it (what a level does not expect but credits).
    plus: bool = False


class ItemSpec(_Strict):
    title: str
    # Without `only`, an item names every standard check of its kind (and any extra check it adds); with it,
    # exactly the checks listed.
    only: list[str] | None = None
    checks: dict[str, CheckSpec]

    @property
    def expected_points(self) -> float:
        """What the item's checks that count (all but the plus ones) are worth."""
        return sum(c.points for c in self.checks.values() if not c.plus)


class Tolerances(_Strict):
    count_relative: float = Field(gt=0, lt=1)
    count_absolute: float = Field(ge=0)
    role_fit: float = Field(gt=0, le=1)
    role_margin: float = Field(ge=0, lt=1)
    accuracy_window_labels: int = Field(ge=10)
    # The grader's drift of a feature: over the last this many predictions (one of expected.COUNT_WINDOWS).
    drift_window_predictions: int = Field(200, ge=10)
    performance_drop_relative: float = Field(gt=0, lt=1)
    latency_ratio: tuple[float, float]
    latency_fault_share: tuple[float, float]
    detection_grace_seconds: float = Field(ge=0)
    resolve_grace_seconds: float = Field(ge=0)
    # A /predict answer this slow, as the client saw it, is slow whatever the scenario injected; when this share of
    # the answers in a latency alert's last minute were, the alert is right to fire (a loaded machine).
    slow_answer_seconds: float = Field(0.25, gt=0)
    slow_answer_share: float = Field(0.05, gt=0, le=1)
    max_series_per_family: int = Field(ge=1)
    # The severities Alertmanager routes (alertmanager/alertmanager.yml): an alert routed by severity has one.
    routed_severities: list[str] = Field(["critical", "warning"], min_length=1)


class Rubric(_Strict):
    items: dict[str, ItemSpec]
    improvement_priority: list[str]
    tolerances: Tolerances
    # The level the rubric was composed for (levels/), shown in the report's header; None: the rubric as given.
    level: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> "Rubric":
        for item, spec in self.items.items():
            if item not in KNOWN_CHECKS:
                raise ValueError(f"items.{item}: no such item (known: {', '.join(KNOWN_CHECKS)})")
            known = checks_of(item)
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
            standard = [*KNOWN_CHECKS[item], *(c for c in spec.checks if c in EXTRA_CHECKS.get(item, ()))]
            wanted = spec.only if spec.only is not None else standard
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
            raise ValueError("items: the checks are worth no points in all (a plus counts for nothing)")
        return self

    @property
    def total(self) -> float:
        """What the checks that count are worth (a plus is beside the score, not in it)."""
        return sum(i.expected_points for i in self.items.values())


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


# --- overlays: a rubric changed by a level ----------------------------------------------------------------


class CheckOverlay(_Strict):
    """A check's changes; a check the rubric does not have yet (an extra one) must give points and advice."""

    points: float | None = Field(None, ge=0)
    advice: str | None = None
    needs: Needs | None = None
    plus: bool | None = None


class ItemOverlay(_Strict):
    title: str | None = None
    # The item's checks that count, scaled so that they are worth this much in all (after the checks' own changes).
    points: float | None = Field(None, gt=0)
    checks: dict[str, CheckOverlay] = {}


class RubricOverlay(_Strict):
    """What a level changes in a rubric: items, checks and their points, items left out (`drop`), tolerances
    (any of the rubric's, by name), the order improvements are suggested in."""

    items: dict[str, ItemOverlay] = {}
    drop: list[str] = []
    tolerances: dict[str, Any] = {}
    improvement_priority: list[str] | None = None


class OverlayError(ValueError):
    """An overlay that does not fit the rubric it is laid over: `loc`, the field within the overlay (the caller
    names the file), and why; str() is `field: why`."""

    def __init__(self, loc: tuple, msg: str):
        self.loc, self.msg = tuple(loc), msg
        super().__init__(f"{'.'.join(map(str, loc))}: {msg}" if loc else msg)


def overlaid(rubric: Rubric, overlay: RubricOverlay, level: str | None = None) -> Rubric:
    """`rubric` changed by `overlay`, validated as a whole; OverlayError names the overlay's field at fault."""
    for k, item in enumerate(overlay.drop):
        if item not in rubric.items:
            raise OverlayError(("drop", k), f"{item!r} is not an item of the rubric ({', '.join(rubric.items)})")
        if item in overlay.items:
            raise OverlayError(("drop", k), f"{item!r} is both dropped and changed")
    items = {key: spec for key, spec in rubric.items.items() if key not in overlay.drop}
    for key, change in overlay.items.items():
        if key not in items:
            raise OverlayError(("items", key), f"not an item of the rubric ({', '.join(items)})")
        items[key] = _item_overlaid(key, items[key], change)
    tolerances = {**rubric.tolerances.model_dump(), **overlay.tolerances}
    unknown = sorted(set(overlay.tolerances) - set(Tolerances.model_fields))
    if unknown:
        raise OverlayError(
            ("tolerances", unknown[0]), f"no such tolerance (known: {', '.join(Tolerances.model_fields)})"
        )
    priority = overlay.improvement_priority or rubric.improvement_priority
    try:
        tolerances_model = Tolerances.model_validate(tolerances)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise OverlayError(("tolerances", *err["loc"]), err["msg"]) from None
    try:
        return Rubric(
            items=items,
            improvement_priority=[i for i in priority if i in items],
            tolerances=tolerances_model,
            level=level,
        )
    except ValidationError as exc:
        raise OverlayError((), exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


def _item_overlaid(key: str, spec: ItemSpec, change: ItemOverlay) -> ItemSpec:
    checks = dict(spec.checks)
    only = list(spec.only) if spec.only is not None else None
    for name, edit in change.checks.items():
        where = ("items", key, "checks", name)
        if name not in checks_of(key):
            raise OverlayError(where, f"no such check (known: {', '.join(checks_of(key))})")
        given = edit.model_dump(exclude_none=True)
        if name in checks:
            checks[name] = CheckSpec.model_validate({**checks[name].model_dump(), **given})
            continue
        missing = [f for f in ("points", "advice") if f not in given]
        if missing:
            raise OverlayError(where, f"a check the rubric does not have needs {' and '.join(missing)}")
        checks[name] = CheckSpec.model_validate(given)
        if only is not None:
            only.append(name)
    if change.points is not None:
        counted = sum(c.points for c in checks.values() if not c.plus)
        if not counted:
            raise OverlayError(("items", key, "points"), "the item has no check that counts to scale")
        scale = change.points / counted
        scaled = {n: round(c.points * scale, 2) for n, c in checks.items() if not c.plus}
        # Rounded to hundredths, the checks still add up to the item's points: the largest takes the remainder.
        largest = max(scaled, key=lambda n: scaled[n])
        scaled[largest] = round(change.points - sum(v for n, v in scaled.items() if n != largest), 2)
        checks = {n: c.model_copy(update={"points": scaled[n]}) if n in scaled else c for n, c in checks.items()}
    return ItemSpec(title=change.title or spec.title, only=only, checks=checks)


def rubric_or_fail(path: Path | None) -> Rubric:
    """The rubric at `path` (default: the shipped one); GradingFailed with RubricError's line when it is invalid."""
    try:
        return load_rubric(path or DEFAULT_RUBRIC)
    except RubricError as exc:
        raise GradingFailed(str(exc)) from None
