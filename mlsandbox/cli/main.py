"""mlsandbox: run the ML monitoring sandbox, natively or on Docker, and grade what the candidate built.

One command set for both backends: `up` starts one (`--docker` for compose), and `status`, `reload`, `restart`,
`grade`, `scenario ...` and `down` find whichever runs in the run directory.
"""

from __future__ import annotations

import signal
import sys

import typer

from grading.errors import GradingFailed
from load.scenario import ScenarioError
from load.truth import TruthError
from mlsandbox.errors import MlsandboxError

from . import grade, levels, sandbox
from .course import course_app
from .dashboards import dashboards_app
from .incident import incident_app
from .kube import kube_app
from .scenario import scenario_app
from .session import session_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
sandbox.register(app)
app.add_typer(scenario_app, name="scenario")
app.add_typer(dashboards_app, name="dashboards")
grade.register(app)
app.add_typer(session_app, name="session")
levels.register(app)
app.add_typer(course_app, name="course")
app.add_typer(incident_app, name="incident")
app.add_typer(kube_app, name="kube")

# Errors of the packages below the sandbox, as one line and an exit status: what the grader cannot grade (a rubric,
# Prometheus unreachable, no timeline) exits 2; a scenario file or truth that cannot be read exits 1.
LOWER_ERRORS: dict[type[Exception], int] = {GradingFailed: 2, ScenarioError: 1, TruthError: 1}


def _as_ctrl_c(signum, frame) -> None:
    """SIGTERM handled as Ctrl-C is: by SIGINT's handler of the moment (held inside `interrupts_held`), or as a
    KeyboardInterrupt where SIGINT is ignored (a background job of a shell without job control)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def main() -> None:
    """The command line, and its one error handler: whatever the sandbox refuses is one line on stderr and an
    exit status, never a traceback. A SIGTERM (a timeout, `kill`) is taken as Ctrl-C, so that a command stops
    what it started for itself (calibrate's rooms, a failed start's components) instead of leaving it running."""
    signal.signal(signal.SIGTERM, _as_ctrl_c)
    try:
        app()
    except MlsandboxError as exc:
        _exit(str(exc), exc.exit_code)
    except tuple(LOWER_ERRORS) as exc:
        _exit(str(exc), next(code for kind, code in LOWER_ERRORS.items() if isinstance(exc, kind)))


def _exit(message: str, code: int) -> None:
    typer.echo(f"mlsandbox: {message}", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
