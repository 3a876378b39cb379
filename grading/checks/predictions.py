"""Item 1, prediction statistics: a counter that tracks the predictions served, and the distribution of what the
model says (a score histogram or a count per predicted class)."""

from __future__ import annotations

from ..context import CheckResult, Context, Evidence
from ..counting import evidence, served
from ..findings import Findings
from ..roles import Role

ITEM = "predictions"


def check(ctx: Context, found: Findings) -> list[CheckResult]:
    counters = found.counted(Role.PREDICTION_COUNTER)
    if counters:
        counter = ctx.result(
            ITEM,
            "counter_tracks_predictions",
            1,
            f"{counters[0].group.selector(counters[0].series)} counts the predictions served",
            [evidence(f, ctx) for f in counters[:3]],
        )
    else:
        counter = ctx.result(
            ITEM,
            "counter_tracks_predictions",
            0,
            "no counter grew by as many as the predictions served",
            [
                Evidence(
                    f"sum(increase(<each counter and histogram _count>[{ctx.window}]))",
                    "no match",
                    ", ".join(f"{k} {v}" for k, v in served(ctx).items()),
                )
            ],
        )
    shown = found.counted(Role.SCORE_HISTOGRAM) or found.counted(Role.CLASS_COUNTER)
    if shown:
        f = shown[0]
        what = (
            "a histogram of scores in [0, 1]"
            if f.role == Role.SCORE_HISTOGRAM
            else f"counts predictions by {f.group.label}"
        )
        distribution = ctx.result(ITEM, "distribution_exposed", 1, f"{f.family} {what}", [Evidence(f.series, f.target)])
    else:
        distribution = ctx.result(
            ITEM,
            "distribution_exposed",
            0,
            "no score histogram and no count by predicted class",
            [Evidence("histograms with bounds in [0, 1]; counters by a class label", "none found")],
        )
    return [counter, distribution]
