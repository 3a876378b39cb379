"""Scenario plays shared by the grader's tests: one `smoke` play reaches many candidate servers at once
(`mlsandbox calibrate`), each graded on its own, so that the grader's stack tests cost a few plays in all.

- the main play (seed 7): the reference, the bare starter, the mutants of tests/candidates.py and the corpus,
  with the extra grades that need a live Prometheus (other dashboards, the server stopped, mid-session);
- the surprise play (`--surprise`, another seed), through the `mlsandbox calibrate` command itself;
- the repeat play (seed 7 again, without the traps), to check that a grade does not move with timing noise;
- a level's play (levels/): its compressed scenario, to the reference, the level's untouched starting point and
  the corpus's junior solution, graded with the level's rubric (the mid level's is the main play's rubric, and
  the dashboard-design level, which plays smoke too, grades the main play again).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import candidates
from conftest import port
from driver import run_command

from mlsandbox.layout import REPO_ROOT as REPO
from mlsandbox.stack.processes import stop

CORPUS = REPO / "tests" / "corpus"
# Off every other test's ports; shared services at BASE+0-3, rooms from BASE+10, two ports each. A block per play, so
# that the main, surprise and repeat plays can run in parallel workers.
MAIN_BASE_PORT, SURPRISE_BASE_PORT, REPEAT_BASE_PORT = port(31000), port(31100), port(31200)
# The levels' plays, a block each (their modules run in parallel workers).
LEVEL_BASE_PORTS = {"junior": port(32500), "senior": port(32600)}
LEVEL_SEEDS = {"junior": 7, "senior": 11}  # the senior level plays a surprise: seed 11 draws tenure and 503s
JUNIOR_SOLUTION = "junior-checklist"  # the corpus's junior-level solution, written from the junior brief
SCRAPE = "1s"  # smoke's phases last 8-25 s
SURPRISE_SEED = 11


def corpus() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if (p / "BAND.yaml").exists())


@dataclass
class Play:
    out: Path
    candidates: dict[str, Path]
    reports: dict[str, dict] = field(default_factory=dict)
    extra: dict[str, dict] = field(default_factory=dict)  # further grades of the main play, by name
    timings: dict[str, float] = field(default_factory=dict)

    def report(self, name: str) -> dict:
        return self.reports[name]


def read_report(path: Path) -> dict:
    report = json.loads((path / "report.json").read_text())
    report["_out"] = path
    return report


TRAPS = "trap-"  # corpus solutions whose bands test which signal fills a role, not how steady a grade is


def build_candidates(base: Path, with_mutants: bool, with_traps: bool = True) -> dict[str, Path]:
    """Room name -> candidate folder (copies, so that a test can edit one); `with_traps`: the corpus's traps too."""
    folders = {"reference": candidates.copy_reference(base / "reference")}
    if with_mutants:
        folders["starter"] = shutil.copytree(
            REPO / "starter_repo", base / "starter", ignore=shutil.ignore_patterns("__pycache__")
        )
        folders["mutant-a"] = candidates.unreachable_threshold_and_ms_latency(base / "mutant-a")
        folders["mutant-b"] = candidates.no_drift_and_always_firing(base / "mutant-b")
        folders["renamed"] = candidates.renamed(base / "renamed")
        folders["dashboard-design-start"] = starting_point("dashboard-design", base / "dashboard-design-start")
    for path in corpus():
        if not with_traps and path.name.startswith(TRAPS):
            continue
        folders[path.name] = shutil.copytree(path, base / path.name, ignore=shutil.ignore_patterns("__pycache__"))
    return folders


def starting_point(level: str, dest: Path) -> Path:
    """A level's starting point, untouched (what a candidate at that level begins with)."""
    from mlsandbox.levels.level import load_level
    from mlsandbox.levels.starting_point import build

    return build(load_level(level), dest)


def play_in_process(
    base: Path, seed: int, with_mutants: bool, extras=None, base_port: int = MAIN_BASE_PORT, with_traps: bool = True
) -> Play:
    """Play smoke to every candidate through the Python API; `extras(cal, play)` runs while the rooms are up."""
    import time

    from grading.rubric import load_rubric
    from mlsandbox.stack.fanout import Fanout
    from mlsandbox.stack.state import ScenarioPlay

    folders = build_candidates(base / "candidates", with_mutants, with_traps)
    play = Play(base / "calibration", folders)
    rubric = load_rubric()
    cal = Fanout(list(folders.values()), play.out, base_port, SCRAPE, say=lambda _: None, names=list(folders))
    t0 = time.monotonic()
    with cal:
        play.timings["up"] = time.monotonic() - t0
        cal.play(ScenarioPlay(scenario="smoke", seed=seed))
        play.timings["played"] = time.monotonic() - t0
        cal.wait_after_play(rubric.tolerances.resolve_grace_seconds)
        cal.save_metrics()
        cal.grade(rubric)
        play.timings["graded"] = time.monotonic() - t0
        for name in folders:
            play.reports[name] = read_report(play.out / name / "report")
        if extras:
            extras(cal, play)
    return play


def play_with_cli(base: Path, seed: int, surprise: bool) -> Play:
    """Play smoke to the reference and the corpus with the `mlsandbox calibrate` command."""
    folders = build_candidates(base / "candidates", with_mutants=False)
    out = base / "calibration"
    argv = [
        sys.executable,
        "-m",
        "mlsandbox.cli",
        "calibrate",
        *map(str, folders.values()),
        "--scenario",
        "smoke",
        "--seed",
        str(seed),
        "--out",
        str(out),
        "--base-port",
        str(SURPRISE_BASE_PORT),
        "--scrape-interval",
        SCRAPE,
    ]
    if surprise:
        argv.append("--surprise")
    result = run_command(argv, cwd=REPO, env=dict(os.environ), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    play = Play(out, folders)
    play.extra["cli"] = {"stdout": result.stdout, "summary": json.loads((out / "calibration.json").read_text())}
    for name in folders:
        play.reports[name] = read_report(out / name / "report")
    return play


def _grade_cli(cal, room, candidate, out, *extra) -> dict:
    result = run_command(
        [
            sys.executable,
            "-m",
            "mlsandbox.cli",
            "grade",
            "--prometheus",
            room.prometheus_url,
            "--run-dir",
            str(room.run_dir),
            "--candidate",
            str(candidate),
            "--out",
            str(out),
            *extra,
        ],
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return read_report(out)


def _mid_session(room, dest):
    """A copy of a room's run directory as it stood at the end of the upstream bug, while it was still playing."""
    from load.truth import TimelineRecord, timeline_path

    shutil.copytree(room.run_dir, dest, ignore=shutil.ignore_patterns("prometheus", "report"))
    timeline = TimelineRecord.model_validate_json(timeline_path(dest).read_text())
    kept = [p for p in timeline.phases if p.name in ("baseline", "feature-drift", "upstream-bug")]
    kept[-1].end = None
    timeline.phases, timeline.status, timeline.finished_at = kept, "running", None
    timeline_path(dest).write_text(timeline.model_dump_json())
    return kept[-1].planned_end


def main_play_extras(cal, play):
    """Grades that need the rooms still up: other dashboards, mid-session, and the server stopped."""
    from grading.grade import grade
    from grading.prometheus import PrometheusClient
    from grading.report import to_dict
    from grading.rubric import load_rubric

    room = next(r for r in cal.stacks if r.name == "reference")
    base = play.out.parent
    other = shutil.copytree(room.candidate_dir, base / "other-dashboards", ignore=shutil.ignore_patterns("dashboards"))
    candidates.empty_panel_dashboards(other / "dashboards")
    play.extra["empty-panel"] = _grade_cli(cal, room, other, base / "report-empty-panel")
    until = _mid_session(room, base / "mid-session")
    mid = grade(
        PrometheusClient(room.prometheus_url), base / "mid-session", load_rubric(), room.candidate_dir, now=until
    )
    play.extra["mid-session"] = to_dict(mid)
    _grade_at_level(cal, play, "dashboard-design", ["reference", "dashboard-design-start", "starter", JUNIOR_SOLUTION])
    _replayed(cal, play, REPLAYED)
    server = next(c for c in room.components if c.name == "model-server")
    stop(server.pid)  # the candidate's server dies after the session
    play.extra["server-down"] = _grade_cli(cal, room, room.candidate_dir, base / "report-server-down")


# Rooms whose rules are replayed over their own play and compared with what Prometheus recorded: the reference, and
# rules on recorded series (inlined), OpenTelemetry names, and an alert left firing after recovery.
REPLAYED = ["reference", "recording-rules", "otel-sdk", "all-time-accuracy"]


def _replayed(cal, play: Play, names: list[str]) -> None:
    """Each room's play graded again with its alerts replayed from its rules (grading/replay.py) instead of read
    from ALERTS: extra["replayed"][NAME] = (incident, alert, seconds) as recorded and as replayed, every replayed
    firing (alert, seconds after the session's start) and each incident's onset, and the alerting checks' points of
    both."""
    from grading.context import Replayed
    from grading.grade import grade_play
    from grading.play import Play as Session
    from grading.prometheus import PrometheusClient
    from grading.replay import rule_set
    from grading.rubric import load_rubric

    out = {}
    for room in (r for r in cal.stacks if r.name in names):
        session = Session.load(room.run_dir)
        session.now = session.end + load_rubric().tolerances.resolve_grace_seconds
        with PrometheusClient(room.prometheus_url) as prom:
            step = prom.evaluation_interval()
            rules = rule_set(prom.rules())  # the rules it was played with: their recorded series read as recorded
            replayed = Replayed(rules.reading_recorded(rules), step)
            g = grade_play(prom, session, load_rubric(), room.candidate_dir, replayed=replayed)
        caught = lambda ds: [(d.incident.label, d.firing and d.firing.key, d.latency) for d in ds]  # noqa: E731
        alerting = next(i for i in g.items if i.key == "alerting")
        out[room.name] = {
            "step": step,
            "recorded": caught(g.alerts.recorded),
            "replayed": caught(g.alerts.detections),
            "replayed firings": [(f.key, f.start - session.start) for f in g.alerts.firings],
            "onsets": {i.label: i.start - session.start for i in session.incidents()},
            "replayed points": {c.name: c.points for c in alerting.checks},
        }
    play.extra["replayed"] = out
    (play.out.parent / "replayed.json").write_text(json.dumps(out, indent=1))  # kept for a look after the run


def _grade_at_level(cal, play: Play, level: str, names: list[str]) -> None:
    """Some rooms of a play graded again at a level (its rubric overlay on the shipped rubric): extra[level:NAME]."""
    from grading.api import run_grading
    from mlsandbox.levels.level import load_level

    rubric = load_level(level).rubric()
    graded = {}
    for room in (r for r in cal.stacks if r.name in names):
        out = play.out.parent / f"level-{level}" / room.name
        run_grading(
            room.run_dir, room.prometheus_url, candidate=room.candidate_dir, out=out, rubric=rubric, say=lambda _: None
        )
        graded[room.name] = read_report(out)
    play.extra[f"level:{level}"] = graded


def level_play(base: Path, level: str) -> Play:
    """The level's compressed scenario (with the level's surprise, on LEVEL_SEEDS' seed) played once to the
    reference, the level's untouched starting point and the corpus's junior solution; each graded with the level's
    rubric, as `mlsandbox calibrate --level` grades."""
    import time

    from mlsandbox.levels.level import load_level
    from mlsandbox.stack.fanout import Fanout
    from mlsandbox.stack.state import ScenarioPlay

    spec = load_level(level)
    folders = {
        "reference": candidates.copy_reference(base / "candidates" / "reference"),
        "starting-point": starting_point(level, base / "candidates" / "starting-point"),
        JUNIOR_SOLUTION: shutil.copytree(
            CORPUS / JUNIOR_SOLUTION,
            base / "candidates" / JUNIOR_SOLUTION,
            ignore=shutil.ignore_patterns("__pycache__"),
        ),
    }
    play = Play(base / "calibration", folders)
    rubric = spec.rubric()
    cal = Fanout(
        list(folders.values()), play.out, LEVEL_BASE_PORTS[level], SCRAPE, say=lambda _: None, names=list(folders)
    )
    scenario = spec.spec.scenario
    t0 = time.monotonic()
    with cal:
        play.timings["up"] = time.monotonic() - t0
        cal.play(ScenarioPlay(scenario=scenario.compressed, seed=LEVEL_SEEDS[level], surprise=scenario.surprise))
        play.timings["played"] = time.monotonic() - t0
        cal.wait_after_play(rubric.tolerances.resolve_grace_seconds)
        cal.save_metrics()
        cal.grade(rubric)
        play.timings["graded"] = time.monotonic() - t0
        for name in folders:
            play.reports[name] = read_report(play.out / name / "report")
    return play


def points(report: dict) -> dict[str, float]:
    return {i["key"]: i["points"] for i in report["items"]}


def check(report: dict, item: str, name: str) -> dict:
    it = next(i for i in report["items"] if i["key"] == item)
    return next(c for c in it["checks"] if c["name"] == name)


# --- the hardening play: components killed mid-play, hostile candidates ---------------------------------------
HARDENING_BASE_PORT = port(31500)
# Seconds into smoke (90 s): the server dies in the baseline and is started again at once; Prometheus dies in the
# recovery and is started again 8 s later; another server dies as the concept drift begins, for good.
SERVER_KILLED_AT, PROMETHEUS_KILLED_AT, PROMETHEUS_DOWN_FOR, KILLED_FOR_GOOD_AT = 8.0, 72.0, 8.0, 45.0


def _faults(cal, seen: dict) -> None:
    """Kill (SIGKILL, whole process groups) and restart components of the `gaps` and `killed` rooms mid-play."""
    import signal
    import time
    from concurrent.futures import ThreadPoolExecutor

    from load.truth import read_timeline
    from mlsandbox.stack import components
    from mlsandbox.stack.native import prometheus_config
    from mlsandbox.stack.processes import port_is_free, start, wait_healthy, wait_until

    rooms = {r.name: r for r in cal.stacks}
    deadline = time.time() + 120
    timeline = None
    while time.time() < deadline and not (timeline and timeline.phases):
        time.sleep(0.2)
        timeline = read_timeline(rooms["gaps"].run_dir) if (rooms["gaps"].run_dir / "scenario").exists() else None
    t0 = timeline.phases[0].start

    def at(seconds: float) -> None:
        time.sleep(max(0.0, t0 + seconds - time.time()))

    def kill(room, name: str):
        comp = next(c for c in room.components if c.name == name)
        os.killpg(comp.pid, signal.SIGKILL)
        room.components.remove(comp)
        seen.setdefault(room.name, []).append((f"{name} killed", time.time() - t0))

    def restart(room, spec):
        wait_until(lambda: port_is_free("127.0.0.1", spec.port), 20, f"port {spec.port} free again")
        comp = start(spec, room.cfg.layout.logs)
        room.components.append(comp)
        wait_healthy(comp, 60)
        seen[room.name].append((f"{spec.name} back", time.time() - t0))

    gaps, killed = rooms["gaps"], rooms["killed"]

    def server_restarted() -> None:
        at(SERVER_KILLED_AT)
        kill(gaps, "model-server")
        restart(gaps, components.model_server(gaps.cfg, gaps.candidate_dir))

    def server_killed_for_good() -> None:
        at(KILLED_FOR_GOOD_AT)
        kill(killed, "model-server")

    def prometheus_restarted() -> None:
        at(PROMETHEUS_KILLED_AT)
        kill(gaps, "prometheus")
        time.sleep(PROMETHEUS_DOWN_FOR)
        restart(gaps, components.prometheus(gaps.cfg, prometheus_config(gaps.cfg, gaps.candidate_dir)))

    # Each fault on its own clock: a restart slowed by a loaded machine delays no other fault.
    with ThreadPoolExecutor(3) as pool:
        for done in [pool.submit(f) for f in (server_restarted, server_killed_for_good, prometheus_restarted)]:
            done.result()


def hardening_play(base: Path) -> Play:
    """One smoke play (seed 7) to the reference, two copies of it whose components die mid-play (`gaps`, `killed`)
    and the hostile candidates of tests/hostile.py; every room graded as `mlsandbox calibrate` grades it."""
    import threading
    import time

    import hostile

    from grading.rubric import load_rubric
    from mlsandbox.stack.fanout import Fanout
    from mlsandbox.stack.processes import is_healthy
    from mlsandbox.stack.state import ScenarioPlay

    folders = {name: candidates.copy_reference(base / "candidates" / name) for name in ("reference", "gaps", "killed")}
    for kind in hostile.BODIES:
        folders[kind] = hostile.hostile(base / "candidates" / kind, kind)
    play = Play(base / "calibration", folders)
    rubric = load_rubric()
    cal = Fanout(list(folders.values()), play.out, HARDENING_BASE_PORT, SCRAPE, say=lambda _: None, names=list(folders))
    faults: dict = {}
    t0 = time.monotonic()
    with cal:
        thread = threading.Thread(target=_faults, args=(cal, faults), daemon=True)
        thread.start()
        cal.play(ScenarioPlay(scenario="smoke", seed=7))
        thread.join(60)
        cal.wait_after_play(rubric.tolerances.resolve_grace_seconds)
        cal.save_metrics()
        grades = cal.grade(rubric)
        play.timings["graded"] = time.monotonic() - t0
        play.extra["faults"] = faults
        play.extra["prometheus ready"] = {r.name: is_healthy(f"{r.prometheus_url}/-/ready") for r in cal.stacks}
        play.extra["grading seconds"] = {name: g.duration_seconds for name, g in grades.items()}
        for name in folders:
            play.reports[name] = read_report(play.out / name / "report")
    return play
