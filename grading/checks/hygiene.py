"""Item 7, hygiene: `promtool check metrics` on the server's /metrics (scraped now, or as archived at the end of
the session), HELP text on every family, and label cardinality."""

from __future__ import annotations

import subprocess

from ..context import CheckResult, Context, Evidence
from ..families import JOB
from ..findings import Findings

ITEM = "hygiene"


def check(ctx: Context, found: Findings) -> list[CheckResult]:
    if not ctx.families:
        broken = ctx.exposition is not None and ctx.exposition.error
        return [
            _lint(ctx)
            if name == "promtool_lint" and broken
            else ctx.result(ITEM, name, 0, "the candidate exposes no metrics", [])
            for name in ("promtool_lint", "help_text", "label_cardinality")
        ]
    return [_lint(ctx), _help(ctx), _cardinality(ctx)]


def _lint(ctx: Context) -> CheckResult:
    exp = ctx.exposition
    if exp is None:
        return ctx.result(ITEM, "promtool_lint", 0, "no /metrics body to check (the server could not be scraped)", [])
    where = ctx.scrape_url or "the archived /metrics body"
    if exp.error:
        return ctx.result(
            ITEM,
            "promtool_lint",
            0,
            f"/metrics is not valid exposition text ({exp.error})",
            [Evidence(f"GET {where}", "unparsable", exp.error)],
        )
    res = subprocess.run(["promtool", "check", "metrics"], input=exp.text, capture_output=True, text=True)
    problems = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
    return ctx.result(
        ITEM,
        "promtool_lint",
        1 if not problems else (0.5 if len(problems) <= 2 else 0),
        "promtool check metrics: clean" if not problems else f"promtool check metrics: {len(problems)} problems",
        [Evidence(f"promtool check metrics < {where}", problems[:10] or "clean")],
    )


def _help(ctx: Context) -> CheckResult:
    missing = sorted(f.name for f in ctx.families.values() if not f.help.strip())
    return ctx.result(
        ITEM,
        "help_text",
        1 - len(missing) / len(ctx.families),
        "every metric has HELP text" if not missing else f"no HELP on {', '.join(missing[:5])}",
        [Evidence("HELP lines", f"{len(ctx.families) - len(missing)} of {len(ctx.families)} families")],
    )


def _cardinality(ctx: Context) -> CheckResult:
    counts = {
        s["metric"]["__name__"]: int(float(s["value"][1]))
        for s in ctx.prom.query(f'count by (__name__) ({{job="{JOB}"}})', ctx.eval_at)
    }
    worst = max(counts.items(), key=lambda kv: kv[1], default=("", 0))
    ok = worst[1] <= ctx.tol.max_series_per_family
    return ctx.result(
        ITEM,
        "label_cardinality",
        1 if ok else 0,
        f"at most {worst[1]} series per metric ({worst[0]})",
        [Evidence(f'count by (__name__) ({{job="{JOB}"}})', dict(sorted(counts.items(), key=lambda kv: -kv[1])[:5]))],
    )
