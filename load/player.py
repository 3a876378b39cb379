"""Plays a scenario in wall-clock time: hands out the next request or label when it is due, switches
phases (and with them the service faults, an outage among them: the model server applies them to itself), and
writes the hidden timeline and ledger.

Free of Locust so that it can be tested alone; load/locustfile.py drives it.
"""

from __future__ import annotations

import heapq
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from model_service.faults import FaultState, write_fault_state

from .scenario import Scenario
from .surprise import apply_surprise
from .targets import Target
from .traffic import PlannedPhase, PlannedRequest, plan_phase
from .truth import Ledger, Timeline, atomic_write, control_path, read_timeline

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
        from_phase: str | int | None = None,
    ):
        if speed <= 0:
            raise ValueError("speed must be positive")
        if targets is None:
            if run_dir is None:
                raise ValueError("give a run directory or targets")
            targets = [Target(name="model-server", url="http://unused", run_dir=Path(run_dir), faults_path=faults_path)]
        if from_phase is not None:
            # Resuming: the same draw as the interrupted play (its seed and surprise), whatever was given now.
            earlier = read_timeline(targets[0].run_dir)
            if earlier is not None and earlier.scenario == scenario.name:
                seed, surprise = earlier.seed, earlier.surprise
        self.scenario = apply_surprise(scenario, seed) if surprise else scenario
        self.seed, self.speed, self.targets = seed, speed, targets
        self.run_dir = targets[0].run_dir  # where `mlsandbox scenario next` asks for skips
        self.clock = clock
        # `scenario play --from PHASE`: start there, going on with the timeline of the play that was interrupted.
        self.first_phase = phase_index(self.scenario, from_phase) if from_phase is not None else 0
        self.timeline = Timeline(
            [t.run_dir for t in targets],
            self.scenario,
            seed,
            speed,
            surprise,
            resume=from_phase is not None,
            now=clock(),
        )
        self.ledgers = {t.name: Ledger(t.run_dir) for t in targets}
        self.current: PlannedPhase | None = None
        self.phase_start = 0.0
        self._cursor = 0
        self._feedback: list[tuple[float, int, str, bool]] = []
        self._seq = 0
        self._skips_seen = int(self._read_control().get("skips", 0))
        self._skips_checked = 0.0
        self._paused_since: float | None = None
        self._in_flight = 0
        self._users = 2
        self.finished = False

    @property
    def ledger(self) -> Ledger:
        """The ledger of the first (usually the only) target."""
        return self.ledgers[self.targets[0].name]

    # --- phases ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self._enter(self.first_phase, self.clock())

    def _enter(self, index: int, now: float) -> None:
        planned = plan_phase(self.scenario, index, self.seed, self.speed)
        self.current, self.phase_start, self._cursor = planned, now, 0
        self._write_faults(planned.faults)
        self.timeline.phase_started(planned, now)
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
        if not self.finished:
            self.timeline.beat(now)
        if now - self._skips_checked >= SKIP_POLL_SECONDS:
            self._skips_checked = now
            control = self._read_control()
            skips = int(control.get("skips", 0))
            while skips > self._skips_seen and self.current is not None:
                self._skips_seen += 1
                self._leave(now, skipped=True)
                if self._paused_since is not None:
                    self._paused_since = now  # the new phase starts counting when the traffic resumes
            self._skips_seen = skips
            self._pause(bool(control.get("paused")), now)
        if self._paused_since is not None:
            for ledger in self.ledgers.values():
                ledger.flush(now)
            return  # the scenario's clock stands still
        while self.current is not None and now >= self.phase_start + self.current.wall_seconds:
            self._leave(self.phase_start + self.current.wall_seconds, skipped=False)
        if self.current is None and not self._feedback and not self._in_flight and not self.finished:
            self.finished = True
            self.timeline.finish(now, "finished")
        for ledger in self.ledgers.values():
            ledger.flush(now)

    def _read_control(self) -> dict:
        try:
            return json.loads(control_path(self.run_dir).read_text())
        except (OSError, ValueError):
            return {}

    def _pause(self, paused: bool, now: float) -> None:
        """`mlsandbox scenario pause|resume`: no request or label is sent while paused; on resume the phase, and
        every label still due, moves later by the pause."""
        if paused and self._paused_since is None and self.current is not None:
            self._paused_since = now
            self.timeline.paused(now)
            log.info("traffic paused")
        elif not paused and self._paused_since is not None:
            delta = now - self._paused_since
            self._paused_since = None
            self.phase_start += delta
            self._feedback = [(due + delta, seq, ids, churned) for due, seq, ids, churned in self._feedback]
            heapq.heapify(self._feedback)
            self.timeline.resumed(now, delta)
            log.info("traffic resumed after %.0f s", delta)

    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    @property
    def phase_name(self) -> str:
        return self.current.phase.name if self.current else "after-scenario"

    def users_needed(self) -> int:
        """Enough concurrent users to hold the phase's rate through its latency (and outage time-outs).

        Never fewer than before: Locust stops surplus users mid-task, which would drop the requests they hold.
        """
        if self.current is not None:
            p = self.current
            per_request = 0.1 + p.faults.delay_seconds + (REQUEST_TIMEOUT_SECONDS if p.outage else 0)
            self._users = max(self._users, min(200, int(p.phase.rate * per_request * 2) + 2))
        return self._users

    # --- what the users do ----------------------------------------------------------------------------
    def next_action(self) -> Action | None:
        """The next thing to send, with when it is due; None once the scenario and its labels are done."""
        now = self.clock()
        self.advance(now)
        if self.finished:
            return None
        if self._paused_since is not None:
            return Action("wait", now + SKIP_POLL_SECONDS, self.phase_name)
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

    def stop(self, status: str = "stopped") -> None:
        """End the play: faults off (an outage with them), timeline and ledger closed."""
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


class PhaseError(ValueError):
    pass


def phase_index(scenario: Scenario, phase: str | int) -> int:
    """A phase given by name or by its number (from 1) -> its index; PhaseError naming the phases otherwise."""
    names = [p.name for p in scenario.phases]
    text = str(phase).strip()
    if text in names:
        return names.index(text)
    if text.isdigit() and 1 <= int(text) <= len(names):
        return int(text) - 1
    raise PhaseError(
        f"no phase {text!r} in {scenario.name} (its phases: {', '.join(names)}; or a number 1-{len(names)})"
    )


def _control(run_dir: Path) -> dict:
    try:
        return json.loads(control_path(run_dir).read_text())
    except (OSError, ValueError):
        return {}


def request_skip(run_dir: Path) -> int:
    """Ask the running player to end the current phase now (what `mlsandbox scenario next` does)."""
    control = _control(run_dir)
    control["skips"] = int(control.get("skips", 0)) + 1
    atomic_write(control_path(run_dir), json.dumps(control))
    return control["skips"]


def request_pause(run_dir: Path, paused: bool) -> None:
    """Ask the running player to pause the traffic, or to resume it (`mlsandbox scenario pause|resume`)."""
    control = _control(run_dir)
    control["paused"] = paused
    atomic_write(control_path(run_dir), json.dumps(control))
