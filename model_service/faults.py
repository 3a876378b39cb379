"""A control file, written from outside the candidate's code, that tells the server what to do to requests: wait
a while before each prediction, fail a share of them, hold every request unanswered, or serve another alias of the
registered model. Nothing here says when, or why.

The model service reads the file (at most every `poll_seconds`); the candidate's app never touches it. The wait
and the failures act inside the prediction, so the candidate's own metrics see them; a hold acts in front of the
whole app (model_service.asgi), as a frozen process would: nothing answers, /metrics and /health included.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger("model_service.faults")


# A registered model's alias, as the control file names the one to serve.
MODEL_ALIAS_PATTERN = r"^[a-z][a-z0-9-]*$"


class FaultState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_seconds: float = Field(0.0, ge=0, le=60)
    error_share: float = Field(0.0, ge=0, le=1)
    # The server answers nothing, as if frozen: every request waits until the hold is lifted (clients give up).
    hold: bool = False
    # Seeds the failure draws, so that the same seed fails the same requests.
    seed: int = 0
    # Serve this alias of the registered model instead of the one loaded at start; None: the one loaded at start.
    model_alias: str | None = Field(None, pattern=MODEL_ALIAS_PATTERN)


class ServiceFault(RuntimeError):
    """An injected failure: the model could not answer this request."""


class FaultSwitch:
    """Applies the fault state in `path` to the requests that pass through `apply`."""

    def __init__(self, path: Path, poll_seconds: float = 0.2):
        self.path = Path(path)
        self.poll_seconds = poll_seconds
        self._state = FaultState()
        self._mtime_ns: int | None = None
        self._checked = 0.0
        self._rng = random.Random(0)
        self._lock = threading.Lock()

    @property
    def state(self) -> FaultState:
        now = time.monotonic()
        if now - self._checked >= self.poll_seconds:
            self._checked = now
            self._reload()
        return self._state

    def _reload(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            if self._mtime_ns is not None:
                self._set(FaultState(), None)
            return
        if mtime == self._mtime_ns:
            return
        try:
            state = FaultState.model_validate(json.loads(self.path.read_text()))
        except (ValueError, ValidationError) as exc:
            # A half-written or bad file leaves the last good state in force.
            log.warning("ignoring fault file %s: %s", self.path, exc)
            return
        self._set(state, mtime)

    def _set(self, state: FaultState, mtime: int | None) -> None:
        with self._lock:
            self._state, self._mtime_ns = state, mtime
            self._rng = random.Random(state.seed)

    def apply(self) -> None:
        """Wait for the delay, then raise ServiceFault for the configured share of requests."""
        state = self.state
        if state.delay_seconds:
            time.sleep(state.delay_seconds)
        if state.error_share:
            with self._lock:
                fail = self._rng.random() < state.error_share
            if fail:
                raise ServiceFault("the model backend did not answer")


def write_fault_state(path: Path, state: FaultState) -> None:
    """Atomically replace the control file (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json())
    os.replace(tmp, path)
