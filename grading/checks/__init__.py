"""One module per rubric item; each exposes `check(ctx, found) -> list[CheckResult]` (alerting and
visualization also return what the report shows of them)."""
