"""Plays a scenario in wall-clock time: hands out the next request or label when it is due, switches
phases (and with them the service faults), and writes the hidden timeline and ledger.

Free of Locust so that it can be tested alone; load/locustfile.py drives it.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from model_service.faults import FaultState, write_fault_state

from .scenario import Scenario
from .surprise import apply_surprise
from .targets import Target
from .traffic import PlannedPhase, PlannedRequest, plan_phase
from .truth import Ledger, Timeline, control_path

log = logging.getLogger("load.player")


@dataclass(frozen=True)
class Action:
    kind: Literal["predict", "feedback", "wait"]
    due: float
    phase: str
    request: PlannedRequest | None = None
    request_ids: dict[str, str] | None = None  # feedback: each target's id for the prediction
    churned: bool | None = None


class ScenarioPlayer:
    """Plays to one model server (`run_dir`) or to several at once (`targets`): every target gets the same
    requests at the same time, its own fault switch, its own ledger and a copy of the timeline."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        speed: float,
        run_dir: Path | None = None,
        *,
        targets: list[Target] | None = None,
        surprise: bool = False,
        faults_path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ):
        if speed <= 0:
            raise ValueError("speed must be positive")
        if targets is None:
            if run_dir is None:
                raise ValueError("give a run directory or targets")
            targets = [Target(name="model-server", url="http://unused", run_dir=Path(run_dir), faults_path=faults_path)]
        self.scenario = apply_surprise(scenario, seed) if surprise else scenario
        self.seed, self.speed, self.targets = seed, speed, targets
        self.run_dir = targets[0].run_dir  # where `mlsandbox scenario next` asks for skips
        self.clock = clock
        self.timeline = Timeline([t.run_dir for t in targets], self.scenario, seed, speed, surprise)
        self.ledgers = {t.name: Ledger(t.run_dir) for t in targets}
        self.current: PlannedPhase | None = None
        self.phase_start = 0.0
        self._cursor = 0
        self._feedback: list[tuple[float, int, str, bool]] = []
        self._seq = 0
        self._frozen_pgid: int | None = None
        self._skips_seen = self._read_skips()
        self._skips_checked = 0.0
        self._in_flight = 0
        self._users = 2
        self.finished = False

    @property
    def ledger(self) -> Ledger:
        """The ledger of the first (usually the only) target."""
        return self.ledgers[self.targets[0].name]

    # --- phases ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self._enter(0, self.clock())

    def _enter(self, index: int, now: float) -> None:
        planned = plan_phase(self.scenario, index, self.seed, self.speed)
        self.current, self.phase_start, self._cursor = planned, now, 0
        self._write_faults(planned.faults)
        notes = self._set_outage(planned.outage)
        self.timeline.phase_started(planned, now, notes)
        log.info("phase %d/%d started", index + 1, len(self.scenario.phases))

    def _leave(self, now: float, skipped: bool) -> None:
        self.timeline.phase_ended(now, skipped)
        nxt = self.current.index + 1
        if nxt < len(self.scenario.phases):
            self._enter(nxt, now)
        else:
            self.current = None
            self._clear_faults()

    def advance(self, now: float | None = None) -> None:
        """Move on to the phases whose time has come, and honour `mlsandbox scenario next`."""
        now = self.clock() if now is None else now
        if now - self._skips_checked >= SKIP_POLL_SECONDS:
            self._skips_checked = now
            skips = self._read_skips()
            while skips > self._skips_seen and self.current is not None:
                self._skips_seen += 1
                self._leave(now, skipped=True)
            self._skips_seen = skips
        while self.current is not None and now >= self.phase_start + self.current.wall_seconds:
            self._leave(self.phase_start + self.current.wall_seconds, skipped=False)
        if self.current is None and not self._feedback and not self._in_flight and not self.finished:
            self.finished = True
            self.timeline.finish(now, "finished")
        for ledger in self.ledgers.values():
            ledger.flush(now)

    def _read_skips(self) -> int:
        try:
            return int(json.loads(control_path(self.run_dir).read_text()).get("skips", 0))
        except (OSError, ValueError):
            return 0

    @property
    def phase_name(self) -> str:
        return self.current.phase.name if self.current else "after-scenario"

    def users_needed(self) -> int:
        """Enough concurrent users to hold the phase's rate through its latency (and outage time-outs).

        Never fewer than before: Locust stops surplus users mid-task, which would drop the requests they hold.
        """
        if self.current is not None:
            p = self.current
            per_request = 0.1 + p.faults.added_latency_seconds + (REQUEST_TIMEOUT_SECONDS if p.outage else 0)
            self._users = max(self._users, min(200, int(p.phase.rate * per_request * 2) + 2))
        return self._users

    # --- what the users do ----------------------------------------------------------------------------
    def next_action(self) -> Action | None:
        """The next thing to send, with when it is due; None once the scenario and its labels are done."""
        now = self.clock()
        self.advance(now)
        if self.finished:
            return None
        next_request = None
        if self.current is not None and self._cursor < len(self.current.requests):
            req = self.current.requests[self._cursor]
            next_request = (self.phase_start + req.offset_seconds, req)
        if self._feedback and (next_request is None or self._feedback[0][0] <= next_request[0]):
            due, _, ids, churned = heapq.heappop(self._feedback)
            self._in_flight += 1
            return Action("feedback", due, self.phase_name, request_ids=ids, churned=churned)
        if next_request is not None:
            self._cursor += 1
            self._in_flight += 1
            return Action("predict", next_request[0], self.phase_name, request=next_request[1])
        # Nothing left in this phase: wait for the next phase or the next label, whichever comes first.
        wake = [self._feedback[0][0]] if self._feedback else []
        if self.current is not None:
            wake.append(self.phase_start + self.current.wall_seconds)
        return Action("wait", min(wake) if wake else now + 0.2, self.phase_name)

    def done(self, action: Action) -> None:
        """A predict or feedback action handed out by next_action has been sent and answered (or failed)."""
        if action.kind != "wait":
            self._in_flight -= 1

    def schedule_feedback(self, request_ids: dict[str, str] | str, churned: bool, due: float) -> None:
        """Post the true label at `due` to every target that answered the prediction (target -> its id;
        a plain id when there is one target)."""
        if isinstance(request_ids, str):
            request_ids = {self.targets[0].name: request_ids}
        if not request_ids:
            return
        self._seq += 1
        heapq.heappush(self._feedback, (due, self._seq, request_ids, churned))

    # --- faults ---------------------------------------------------------------------------------------
    def _write_faults(self, state: FaultState) -> None:
        for target in self.targets:
            write_fault_state(target.fault_switch, state)

    def _clear_faults(self) -> None:
        self._write_faults(FaultState())
        self._set_outage(False)

    def _set_outage(self, on: bool) -> list[str]:
        """Freeze (SIGSTOP) or thaw (SIGCONT) the model server's process group, natively."""
        if not on:
            if self._frozen_pgid is not None:
                try:
                    os.killpg(self._frozen_pgid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                self._frozen_pgid = None
            return []
        pgid = _model_server_pgid(self.run_dir)
        if pgid is None:
            return ["outage not applied: no natively started model server in the run directory"]
        os.killpg(pgid, signal.SIGSTOP)
        self._frozen_pgid = pgid
        return []

    def stop(self, status: str = "stopped") -> None:
        """End the play: faults off, server thawed, timeline and ledger closed."""
        now = self.clock()
        if self.current is not None:
            self.timeline.phase_ended(now, skipped=True)
            self.current = None
        self._clear_faults()
        if not self.finished:
            self.finished = True
            self.timeline.finish(now, status)
        for ledger in self.ledgers.values():
            ledger.close()


# A client gives up after this long; the fastest requests take milliseconds, a latency fault adds under a second.
REQUEST_TIMEOUT_SECONDS = 2.0
SKIP_POLL_SECONDS = 0.5


def _model_server_pgid(run_dir: Path) -> int | None:
    try:
        state = json.loads((Path(run_dir) / "stack.json").read_text())
    except (OSError, ValueError):
        return None
    for comp in state.get("components", []):
        if comp["name"] == "model-server":
            return int(comp["pid"])
    return None


def request_skip(run_dir: Path) -> int:
    """Ask the running player to end the current phase now (what `mlsandbox scenario next` does)."""
    path = control_path(run_dir)
    try:
        skips = int(json.loads(path.read_text()).get("skips", 0))
    except (OSError, ValueError):
        skips = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"skips": skips + 1}))
    os.replace(tmp, path)
    return skips + 1
