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
    LABEL_COUNTER = "label_counter"  # a counter of the labels posted to /feedback (by outcome, or right and wrong)
    # Judged by shape: a signal that follows what the grader computes from the hidden truth.
    PERFORMANCE = "performance"
    DRIFT = "drift"
    DATA_QUALITY = "data_quality"
    LATENCY = "latency"
    ERRORS = "errors"
    TRAFFIC = "traffic"
    AVAILABILITY = "availability"
    # What the model outputs and what the labels say: roles of their own, rivals of performance and drift. A
    # predicted-churn rate is not input drift, and an observed churn rate is not performance.
    OUTPUTS = "outputs"
    LABELS = "labels"

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
    Role.LABEL_COUNTER: "label counter",
    Role.PERFORMANCE: "performance (accuracy-like)",
    Role.DRIFT: "data drift",
    Role.DATA_QUALITY: "data quality",
    Role.LATENCY: "latency",
    Role.ERRORS: "error rate",
    Role.TRAFFIC: "traffic",
    Role.AVAILABILITY: "availability",
    Role.OUTPUTS: "output distribution (share predicted to churn, scores)",
    Role.LABELS: "label distribution (share of positive labels)",
}

# Roles judged by the shape of a signal over the session (the others by counting).
SHAPE_ROLES = (
    Role.PERFORMANCE,
    Role.DRIFT,
    Role.DATA_QUALITY,
    Role.LATENCY,
    Role.ERRORS,
    Role.TRAFFIC,
    Role.OUTPUTS,
    Role.LABELS,
)
# Properties of the model's outputs and of the world's labels: a signal that one of them explains better than
# accuracy, or than an input's distance, is no performance or drift signal.
RIVALS_OF = {Role.PERFORMANCE: (Role.LABELS, Role.OUTPUTS), Role.DRIFT: (Role.OUTPUTS, Role.LABELS)}

# What a counting role amounts to when an alert or a panel reads it.
COUNTING_AS_SHAPE = {
    Role.PREDICTION_COUNTER: Role.TRAFFIC,
    Role.REQUEST_COUNTER: Role.TRAFFIC,
    Role.ERROR_COUNTER: Role.ERRORS,
    Role.LATENCY_HISTOGRAM: Role.LATENCY,
    Role.SCORE_HISTOGRAM: Role.OUTPUTS,
    Role.CLASS_COUNTER: Role.OUTPUTS,
    Role.LABEL_COUNTER: Role.TRAFFIC,
}

# Which roles can see which kind of incident: an alert is credited for an incident only when what it
# watches could have seen it.
SEES: dict[str, frozenset[Role]] = {
    # A shift pushes values out of range; the model's outputs move with its inputs (a shift in predictions is
    # visible without labels).
    "covariate_drift": frozenset({Role.DRIFT, Role.DATA_QUALITY, Role.OUTPUTS}),
    "category_mix": frozenset({Role.DRIFT, Role.OUTPUTS}),
    "unit_change": frozenset({Role.DRIFT, Role.DATA_QUALITY, Role.OUTPUTS}),
    "stuck_value": frozenset({Role.DRIFT, Role.DATA_QUALITY, Role.OUTPUTS}),
    "renamed_category": frozenset({Role.ERRORS, Role.DRIFT, Role.DATA_QUALITY, Role.TRAFFIC, Role.OUTPUTS}),
    "missing_values": frozenset({Role.DATA_QUALITY, Role.DRIFT, Role.OUTPUTS}),
    "out_of_range": frozenset({Role.DATA_QUALITY, Role.DRIFT, Role.OUTPUTS}),
    "concept_drift": frozenset({Role.PERFORMANCE}),
    # A worse model released: accuracy falls and the scores move (the inputs do not, and input drift signals are not
    # asked to move: the grader's own curve for a feature stays flat).
    "model_release": frozenset({Role.PERFORMANCE, Role.DRIFT, Role.OUTPUTS}),
    "latency": frozenset({Role.LATENCY}),
    "errors": frozenset({Role.ERRORS, Role.TRAFFIC}),
    "outage": frozenset({Role.AVAILABILITY, Role.TRAFFIC, Role.ERRORS, Role.LATENCY}),
}
# What else a role's curve moves at, for the role tests only: the labels' share moves in concept drift, but an alert
# on it is credited for nothing (a property of the world, not of the model).
MOVES_AT: dict[str, frozenset[Role]] = {"concept_drift": frozenset({Role.LABELS})}

# Roles worth alerting on ("alert on a critical metric"): anything but bare availability and the labels' share.
CRITICAL = frozenset(
    {Role.PERFORMANCE, Role.DRIFT, Role.DATA_QUALITY, Role.LATENCY, Role.ERRORS, Role.TRAFFIC, Role.OUTPUTS}
)

# What a signal computed only from metrics with these counting roles can be about: a quantile of the latency
# histogram is a latency signal, whatever else it happens to correlate with.
COUNTED_CAN_BE: dict[Role, frozenset[Role]] = {
    Role.LATENCY_HISTOGRAM: frozenset({Role.LATENCY, Role.TRAFFIC, Role.ERRORS}),
    Role.REQUEST_COUNTER: frozenset({Role.TRAFFIC, Role.ERRORS}),
    Role.ERROR_COUNTER: frozenset({Role.TRAFFIC, Role.ERRORS}),
    # A histogram of an input's values counts the predictions too: its mean is about that input.
    Role.PREDICTION_COUNTER: frozenset({Role.TRAFFIC, Role.DRIFT, Role.OUTPUTS, Role.ERRORS}),
    Role.CLASS_COUNTER: frozenset({Role.TRAFFIC, Role.OUTPUTS}),
    Role.SCORE_HISTOGRAM: frozenset({Role.TRAFFIC, Role.OUTPUTS}),
    # Whatever is read from a count of labels (a rate of wrong ones, a share of churners) is about the labels and
    # the model's performance, never about the inputs.
    Role.LABEL_COUNTER: frozenset({Role.TRAFFIC, Role.PERFORMANCE, Role.LABELS}),
}
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
    "predictions": frozenset({Role.PREDICTION_COUNTER, Role.SCORE_HISTOGRAM, Role.CLASS_COUNTER, Role.OUTPUTS}),
    "performance": frozenset({Role.PERFORMANCE}),
    "system": frozenset(
        {Role.LATENCY_HISTOGRAM, Role.REQUEST_COUNTER, Role.ERROR_COUNTER, Role.LATENCY, Role.ERRORS, Role.TRAFFIC}
    ),
    "drift": frozenset({Role.DRIFT}),
}
