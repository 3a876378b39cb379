"""One error for everything the sandbox refuses or cannot do: a readable line (or a line and a log's tail) and
the exit status the command line turns it into (cli/main.py, the only place that does)."""

from __future__ import annotations


class MlsandboxError(Exception):
    """What went wrong, for a person; `exit_code` 1: the sandbox could not do what was asked."""

    exit_code = 1


class InvalidInput(MlsandboxError):
    """A file or a request that cannot be used as given (a course, the incident causes, a pack's cause): exit 2,
    nothing started."""

    exit_code = 2


class Busy(MlsandboxError):
    """Another command is starting or stopping a sandbox in this run directory."""


class StartError(MlsandboxError):
    """A component did not start or did not become healthy (its log's tail in the message)."""
