"""The roles a candidate's signals can fill, and which roles can see which kind of incident."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    # Judged by counting: a counter (or a histogram's _count) that grew by as many as the ledger says.
    PREDICTION_COUNTER = "prediction_counter"
    SCORE_HISTOGRAM = "score_histogram"
    CLASS_COUNTER = "class_counter"
    REQUEST_COUNTER = "request_counter"
    ERROR_COUNTER = "error_counter"
    LATENCY_HISTOGRAM = "latency_histogram"
    LABEL_COUNTER = "label_counter"  # labels posted back (by outcome, say): about the labels, never the inputs
    # Judged by shape: a signal that follows what the grader computes from the hidden truth.
    PERFORMANCE = "performance"
    DRIFT = "drift"
    DATA_QUALITY = "data_quality"
    LATENCY = "latency"
    ERRORS = "errors"
    TRAFFIC = "traffic"
    AVAILABILITY = "availability"

    @property
    def title(self) -> str:
        return TITLES[self]


TITLES = {
    Role.PREDICTION_COUNTER: "prediction counter",
    Role.SCORE_HISTOGRAM: "score histogram",
    Role.CLASS_COUNTER: "predictions by class",
    Role.REQUEST_COUNTER: "request counter",
    Role.ERROR_COUNTER: "error counter",
    Role.LATENCY_HISTOGRAM: "latency histogram",
    Role.LABEL_COUNTER: "labels counter",
    Role.PERFORMANCE: "performance (accuracy-like)",
    Role.DRIFT: "data drift",
    Role.DATA_QUALITY: "data quality",
    Role.LATENCY: "latency",
    Role.ERRORS: "error rate",
    Role.TRAFFIC: "traffic",
    Role.AVAILABILITY: "availability",
}

# Roles judged by the shape of a signal over the session (the others by counting).
SHAPE_ROLES = (Role.PERFORMANCE, Role.DRIFT, Role.DATA_QUALITY, Role.LATENCY, Role.ERRORS, Role.TRAFFIC)

# What a counting role amounts to when an alert or a panel reads it.
COUNTING_AS_SHAPE = {
    Role.PREDICTION_COUNTER: Role.TRAFFIC,
    Role.REQUEST_COUNTER: Role.TRAFFIC,
    Role.ERROR_COUNTER: Role.ERRORS,
    Role.LATENCY_HISTOGRAM: Role.LATENCY,
    Role.SCORE_HISTOGRAM: Role.DRIFT,
    Role.CLASS_COUNTER: Role.DRIFT,
    Role.LABEL_COUNTER: Role.TRAFFIC,  # read without a judged condition: the labels' volume
}

# Which roles can see which kind of incident: an alert is credited for an incident only when what it
# watches could have seen it.
SEES: dict[str, frozenset[Role]] = {
    "covariate_drift": frozenset({Role.DRIFT, Role.DATA_QUALITY}),  # a shift pushes values out of range
    "category_mix": frozenset({Role.DRIFT}),
    "unit_change": frozenset({Role.DRIFT, Role.DATA_QUALITY}),
    "stuck_value": frozenset({Role.DRIFT, Role.DATA_QUALITY}),
    "renamed_category": frozenset({Role.ERRORS, Role.DRIFT, Role.DATA_QUALITY, Role.TRAFFIC}),
    "missing_values": frozenset({Role.DATA_QUALITY, Role.DRIFT}),
    "out_of_range": frozenset({Role.DATA_QUALITY, Role.DRIFT}),
    "concept_drift": frozenset({Role.PERFORMANCE}),
    # A worse model released: accuracy falls and the scores move (the inputs do not, and input drift signals are
    # not asked to move: the grader's own curve for a feature stays flat).
    "model_release": frozenset({Role.PERFORMANCE, Role.DRIFT}),
    "latency": frozenset({Role.LATENCY}),
    "errors": frozenset({Role.ERRORS, Role.TRAFFIC}),
    "outage": frozenset({Role.AVAILABILITY, Role.TRAFFIC, Role.ERRORS, Role.LATENCY}),
}

# Roles worth alerting on ("alert on a critical metric"): anything but bare availability.
CRITICAL = frozenset({Role.PERFORMANCE, Role.DRIFT, Role.DATA_QUALITY, Role.LATENCY, Role.ERRORS, Role.TRAFFIC})

# What a signal computed only from metrics with these counting roles can be about: a quantile of the latency
# histogram is a latency signal, whatever else it happens to correlate with.
COUNTED_CAN_BE: dict[Role, frozenset[Role]] = {
    Role.LATENCY_HISTOGRAM: frozenset({Role.LATENCY, Role.TRAFFIC, Role.ERRORS}),
    Role.REQUEST_COUNTER: frozenset({Role.TRAFFIC, Role.ERRORS}),
    Role.ERROR_COUNTER: frozenset({Role.TRAFFIC, Role.ERRORS}),
    Role.PREDICTION_COUNTER: frozenset({Role.TRAFFIC, Role.DRIFT, Role.ERRORS}),
    Role.CLASS_COUNTER: frozenset({Role.TRAFFIC, Role.DRIFT}),
    Role.SCORE_HISTOGRAM: frozenset({Role.TRAFFIC, Role.DRIFT}),
    Role.LABEL_COUNTER: frozenset({Role.TRAFFIC, Role.PERFORMANCE}),
}
# The counting roles about what the model answered: a signal read from these alone can be about the scores' drift,
# never about an input's.
OUTPUTS = frozenset({Role.SCORE_HISTOGRAM, Role.CLASS_COUNTER})
# When a family fills several counting roles (a latency histogram's _count also counts the predictions), the
# category a panel on it covers is that of the first of its roles in this order.
CATEGORY_ORDER = (
    Role.LATENCY_HISTOGRAM,
    Role.SCORE_HISTOGRAM,
    Role.CLASS_COUNTER,
    Role.PREDICTION_COUNTER,
    Role.REQUEST_COUNTER,
    Role.ERROR_COUNTER,
)

# What a dashboard should have a panel for, by category of what the candidate measures.
CATEGORIES: dict[str, frozenset[Role]] = {
    "predictions": frozenset({Role.PREDICTION_COUNTER, Role.SCORE_HISTOGRAM, Role.CLASS_COUNTER}),
    "performance": frozenset({Role.PERFORMANCE}),
    "system": frozenset(
        {Role.LATENCY_HISTOGRAM, Role.REQUEST_COUNTER, Role.ERROR_COUNTER, Role.LATENCY, Role.ERRORS, Role.TRAFFIC}
    ),
    "drift": frozenset({Role.DRIFT}),
}
