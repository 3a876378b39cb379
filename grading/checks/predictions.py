"""Item 1, prediction statistics: a counter that tracks the predictions served, and the distribution of
what the model says (a score histogram or a count per predicted class)."""
from __future__ import annotations

from ..context import CheckResult, Evidence, GradingContext
from .counting import evidence_for, find_tracking, increases, matches

ITEM = "predictions"


def check(ctx: GradingContext) -> list[CheckResult]:
    s = ctx.session
    served = {"predictions served (2xx)": s.in_session("ok"),
              "prediction requests answered": s.in_session("requests") - s.in_session("failures")}
    counters = [f.sample() for f in ctx.of_type("counter")]
    hits = find_tracking(ctx, counters, list(served.values()))
    if hits:
        series, group, value = hits[0]
        ctx.found.setdefault("prediction_counter", []).extend(h[0] for h in hits)
        counter = ctx.result(ITEM, "counter_tracks_predictions", 1,
                             f"{series} grew by {value:.0f}, as many as the predictions served",
                             [evidence_for(ctx, series, group, value, served)])
    else:
        counter = ctx.result(ITEM, "counter_tracks_predictions", 0,
                             "no counter grew by as many as the predictions served",
                             [Evidence(f"sum(increase(<each counter>[{ctx.window}]))", "no match", str(served))])
    return [counter, _distribution(ctx, served)]


def _distribution(ctx: GradingContext, served: dict[str, int]) -> CheckResult:
    targets = list(served.values())
    # A histogram (or summary) of scores: its bounds lie within [0, 1] and it counts every prediction.
    for fam in ctx.of_type("histogram"):
        les = [s["metric"].get("le") for s in ctx.prom.query(fam.sample("_bucket"), ctx.eval_at)]
        bounds = [float(le) for le in les if le and le != "+Inf"]
        count = increases(ctx, fam.sample("_count")).get(("", ""), 0)
        if bounds and 0 <= min(bounds) and max(bounds) <= 1 and matches(count, targets, ctx):
            ctx.found.setdefault("score_histogram", []).append(fam.name)
            return ctx.result(ITEM, "distribution_exposed", 1, f"{fam.name} is a histogram of scores in [0, 1]",
                              [Evidence(f"{fam.sample('_bucket')}", f"buckets {sorted(set(bounds))}", f"count {count:.0f}")])
    # Or a counter split by predicted class: a label with 2 to 5 values that together count every prediction.
    for fam in ctx.of_type("counter"):
        by_group = increases(ctx, fam.sample())
        for label in {g[0] for g in by_group if g[0]}:
            groups = {v: n for (lab, v), n in by_group.items() if lab == label}
            if 2 <= len(groups) <= 5 and matches(sum(groups.values()), targets, ctx) \
                    and sum(1 for n in groups.values() if n > 0) >= 2:
                ctx.found.setdefault("class_counter", []).append(fam.name)
                return ctx.result(ITEM, "distribution_exposed", 1, f"{fam.name} counts predictions by {label}",
                                  [Evidence(f"sum by ({label}) (increase({fam.sample()}[{ctx.window}]))",
                                            {k: round(v) for k, v in groups.items()})])
    return ctx.result(ITEM, "distribution_exposed", 0, "no score histogram and no count by predicted class",
                      [Evidence("histograms with bounds in [0,1]; counters by a class label", "none found")])
