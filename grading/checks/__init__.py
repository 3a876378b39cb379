"""One module per rubric item; each exposes `check(ctx) -> list[CheckResult]`."""
