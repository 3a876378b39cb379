"""The grader's one error: grading could not start (a rubric that cannot be used, Prometheus unreachable, a run
directory without a timeline). Light to import: the command line catches it before it loads the grader."""


class GradingFailed(RuntimeError):
    """Grading could not start; str() is one readable line (the command line exits 2)."""
