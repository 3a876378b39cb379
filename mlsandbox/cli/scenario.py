"""`mlsandbox scenario ...`: list, check and play scenarios; the interviewer's view and controls of a play."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from load.scenario import load_scenario, shipped_scenarios
from load.truth import TimelineRecord, read_timeline
from mlsandbox.console.scenario_text import describe
from mlsandbox.errors import MlsandboxError
from mlsandbox.sessions.store import resolve
from mlsandbox.stack.state import ScenarioPlay

from .common import RunDir, SeedOpt, SessionOpt, SpeedOpt, SurpriseOpt, running_sandbox, say

scenario_app = typer.Typer(no_args_is_help=True, help="Scenarios: list, check, play, and the interviewer's view.")


@scenario_app.command("list")
def scenario_list() -> None:
    """The shipped scenarios, their length and what they do."""
    for name in shipped_scenarios():
        s = load_scenario(name)
        typer.echo(f"{name:<26} {s.duration_seconds / 60:6.1f} min  {s.description.strip()}")


@scenario_app.command("check")
def scenario_check(scenario: str = typer.Argument(..., help="A scenario name or file.")) -> None:
    """Validate a scenario file: one line naming the file, line and field at fault, exit 1."""
    s = load_scenario(scenario)
    typer.echo(f"{s.name}: {len(s.phases)} phases, {s.duration_seconds:g} s")


@scenario_app.command("play")
def scenario_play(
    scenario: str = typer.Argument(..., help="A scenario name or file."),
    seed: Optional[int] = SeedOpt,
    speed: float = SpeedOpt,
    surprise: bool = SurpriseOpt,
    run_dir: Optional[Path] = RunDir,
    session: Optional[str] = SessionOpt,
    from_phase: Optional[str] = typer.Option(
        None,
        "--from",
        help="Start at this phase (name or number), going on with the timeline of a play that was interrupted "
        "(`scenario status` says which); its seed and surprise are kept.",
    ),
) -> None:
    """Play a scenario headless, in the foreground, on the running sandbox (started with --no-load)."""
    play = ScenarioPlay(scenario=scenario, seed=seed, speed=speed, surprise=surprise, from_phase=from_phase)
    running_sandbox(run_dir, session).play(play)
    typer.echo("scenario played; its timeline and ledger are with the sandbox's hidden truth")


def _timeline(run_dir: Optional[Path], session: Optional[str]) -> TimelineRecord | None:
    target = resolve(run_dir, session)
    sandbox = target.sandbox(say)
    # Nothing runs: the timeline a native sandbox left in its run directory.
    return sandbox.timeline() if sandbox else read_timeline(target.cfg.run_dir)


def _playing(run_dir: Optional[Path], session: Optional[str]) -> TimelineRecord:
    timeline = _timeline(run_dir, session)
    if timeline is None or timeline.current is None:
        raise MlsandboxError("no scenario is playing")
    return timeline


@scenario_app.command("status")
def scenario_status(
    as_json: bool = typer.Option(False, "--json"), run_dir: Optional[Path] = RunDir, session: Optional[str] = SessionOpt
) -> None:
    """For the interviewer: the phase playing now, what is injected, what comes next, what was played when."""
    timeline = _timeline(run_dir, session)
    if timeline is None:
        raise MlsandboxError("no scenario has played in this run directory")
    typer.echo(timeline.model_dump_json(indent=2) if as_json else describe(timeline))


@scenario_app.command("next")
def scenario_next(run_dir: Optional[Path] = RunDir, session: Optional[str] = SessionOpt) -> None:
    """End the current phase now and go on to the next."""
    timeline = _playing(run_dir, session)
    running_sandbox(run_dir, session).request_skip()
    typer.echo(f"asked the player to end phase {timeline.current.name!r} (within a second)")


def _pause(paused: bool, run_dir: Optional[Path], session: Optional[str]) -> None:
    timeline = _playing(run_dir, session)
    if (timeline.paused_at is not None) == paused:
        raise MlsandboxError(f"the traffic is already {'paused' if paused else 'playing'}")
    running_sandbox(run_dir, session).request_pause(paused)
    typer.echo(f"asked the player to {'pause' if paused else 'resume'} the traffic (within a second)")


@scenario_app.command("pause")
def scenario_pause(run_dir: Optional[Path] = RunDir, session: Optional[str] = SessionOpt) -> None:
    """Pause the traffic: no request or label is sent, and the phase's clock stands still until `resume`."""
    _pause(True, run_dir, session)


@scenario_app.command("resume")
def scenario_resume(run_dir: Optional[Path] = RunDir, session: Optional[str] = SessionOpt) -> None:
    """Resume the traffic; the phase playing is longer by the pause."""
    _pause(False, run_dir, session)
