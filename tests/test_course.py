"""The onboarding course: its file, the rubric a lesson grades with, the verdict and the progress; every lesson
checked on the real stack with the bare starter (fails, with the lesson's first hint) and with the lesson's part
of the reference solution (passes); and a trainee's course through the command line.

The lessons' scenarios are played once each to every workspace at the same time (`mlsandbox calibrate`'s rooms):
four plays of about a minute on one stack.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import port
from driver import Driver

from grading.api import run_grading
from grading.rubric import load_rubric
from mlsandbox.course.lessons import (
    COURSE_FILE,
    STARTER,
    Progress,
    Verdict,
    judge,
    lesson_rubric,
    load_course,
    reference_workspace,
)
from mlsandbox.course.runner import QUIET_TIMEOUT_SECONDS, RULES_SETTLE_SECONDS
from mlsandbox.errors import InvalidInput, MlsandboxError
from mlsandbox.layout import REPO_ROOT, Ports
from mlsandbox.stack.fanout import Fanout
from mlsandbox.stack.state import ScenarioPlay

COURSE = load_course()
CALIBRATION_PORT = port(32000)  # off every other test's ports: shared services 32000-32003, rooms from 32010
HOME_PORTS = Ports.block(port(32100))
TRAINEE_PORTS = port(32200)
SCRAPE = "1s"


# --- the course file --------------------------------------------------------------------------------------


def test_shipped_course_covers_the_topics_in_order():
    assert [lesson.id for lesson in COURSE.lessons] == [
        "first-metrics",
        "latency-errors",
        "prediction-distribution",
        "data-quality",
        "covariate-drift",
        "concept-drift",
        "alerting",
        "dashboards",
    ]


@pytest.mark.parametrize("lesson", COURSE.lessons, ids=lambda lesson: lesson.id)
def test_each_lesson_plays_under_a_minute_with_an_incident_and_graded_hints(lesson):
    assert lesson.play().duration_seconds <= 60
    assert lesson.incidents(), "a lesson plays an incident"
    assert len(lesson.hints) >= 3 and len(set(lesson.hints)) == len(lesson.hints)
    assert (REPO_ROOT / "reference_solution" / lesson.reference.read).is_file()


def test_a_lesson_shows_when_its_incidents_play(tmp_path):
    from mlsandbox.cli.course import show_lesson

    shown = show_lesson(COURSE, 1, Progress.load(tmp_path / "course.json", COURSE))
    assert "Lesson 1 of 8: First metrics and /metrics" in shown
    assert re.search(r"errors +from  20 s to  30 s \(10 s\)", shown), shown


def _broken(tmp_path, edit) -> Path:
    data = yaml.safe_load(COURSE_FILE.read_text())
    edit(data)
    path = tmp_path / "course.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "edit, where, says",
    [
        (lambda d: d["lessons"][1]["checks"].update(system=["latency_in_ms"]), "lessons.1.checks", "latency_in_ms"),
        (lambda d: d["lessons"][0].update(scenario="no-such-play"), "lessons.0.scenario", "no scenario"),
        (lambda d: d["lessons"][2]["reference"].update(read="app/nothing.py"), "lessons.2.reference.read", "nothing"),
        (lambda d: d["lessons"][3].update(hints=[]), "lessons.3.hints", "at least 1"),
        (lambda d: d["lessons"][4].update(id=d["lessons"][0]["id"]), "lesson ids named twice", "first-metrics"),
    ],
    ids=["unknown-check", "unknown-scenario", "missing-reference", "no-hints", "duplicate-id"],
)
def test_broken_course_file_is_one_readable_line(tmp_path, edit, where, says):
    path = _broken(tmp_path, edit)
    with pytest.raises(InvalidInput) as err:
        load_course(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {where}") and says in message and "\n" not in message
    result = subprocess.run(
        [sys.executable, "-m", "mlsandbox.cli", "course", "lesson", "--course", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 2 and where in result.stderr and "Traceback" not in result.stderr


def test_lesson_rubric_grades_only_the_lessons_checks_at_the_rubrics_weights():
    rubric = load_rubric()
    lesson = COURSE.lesson(2)
    restricted = lesson_rubric(rubric, lesson)
    assert {item: list(spec.checks) for item, spec in restricted.items.items()} == lesson.checks
    assert restricted.items["system"].only == ["latency_histogram_seconds", "errors_counted"]
    assert restricted.items["system"].checks["errors_counted"] == rubric.items["system"].checks["errors_counted"]
    assert restricted.improvement_priority == ["system"] and restricted.tolerances == rubric.tolerances


# --- the verdict and the progress -------------------------------------------------------------------------


def _report(results: dict[str, bool], not_applicable: tuple[str, ...] = ()) -> dict:
    items: dict[str, list] = {}
    for key, passed in results.items():
        item, name = key.split(".")
        items.setdefault(item, []).append(
            {"name": name, "passed": passed, "summary": f"{name} saw this", "advice": f"do {name}", "evidence": []}
        )
    return {
        "score": 50.0,
        "items": [{"key": k, "checks": v} for k, v in items.items()],
        "not_applicable": [
            {"item": k.split(".")[0], "check": k.split(".")[1], "why": "no errors"} for k in not_applicable
        ],
    }


def test_verdict_names_the_first_failing_check_in_the_lessons_order_with_the_next_hint():
    lesson = COURSE.lesson(1)  # predictions.counter_tracks_predictions, system.throughput_counter, hygiene...
    report = _report(
        {
            "predictions.counter_tracks_predictions": True,
            "system.throughput_counter": False,
            "hygiene.help_text": False,
            "hygiene.promtool_lint": True,
        }
    )
    first = judge(lesson, report, failures_before=0)
    assert not first.passed and first.failed_check == "system.throughput_counter"
    assert first.hint == lesson.hints[0] and first.hint_number == 1
    assert "throughput_counter saw this" in first.saw and first.advice == "do throughput_counter"
    assert judge(lesson, report, failures_before=1).hint == lesson.hints[1]
    assert judge(lesson, report, failures_before=99).hint == lesson.hints[-1]
    text = "\n".join(first.lines(lesson))
    assert "hint 1/3" in text and "reference_solution/app/monitoring.py" in text


def test_a_check_the_play_could_not_judge_does_not_pass():
    lesson = COURSE.lesson(2)
    verdict = judge(
        lesson, _report({"system.latency_histogram_seconds": True}, not_applicable=("system.errors_counted",)), 0
    )
    assert not verdict.passed and verdict.failed_check == "system.errors_counted" and "no errors" in verdict.saw


def test_progress_moves_on_when_the_current_lesson_passes_and_is_kept_on_disk(tmp_path):
    path = tmp_path / "course.json"
    progress = Progress.load(path, COURSE)
    assert progress.current == 1
    progress.record(COURSE, 1, Verdict(passed=False, failed_check="x.y", hint="h", hint_number=1))
    assert progress.current == 1 and progress.of(COURSE.lesson(1)).failures == 1
    progress.record(COURSE, 1, Verdict(passed=True, score=100))
    progress.record(COURSE, 3, Verdict(passed=True, score=100))  # ahead of the course: 2 stays current
    progress.save(path)
    again = Progress.load(path, COURSE)
    assert again.current == 2 and again.passed(COURSE.lesson(1)) and again.passed(COURSE.lesson(3))
    again.record(COURSE, 2, Verdict(passed=True, score=100))
    assert again.current == 4, "a lesson already passed is skipped"
    path.write_text("{not json")
    with pytest.raises(MlsandboxError, match="unreadable course progress"):
        Progress.load(path, COURSE)


def test_interview_commands_do_not_take_a_course_for_the_interview(tmp_path, monkeypatch):
    from mlsandbox.sessions import store as session_store
    from mlsandbox.sessions.store import SessionLayout, SessionRecord

    monkeypatch.setenv("MLSANDBOX_SESSIONS_DIR", str(tmp_path))
    for name, kind in (("ana", "course"), ("bob", "interview")):
        layout = SessionLayout(tmp_path / name)
        layout.root.mkdir()
        SessionRecord(name=name, backend="native", play=None, ports=Ports.block(20000), source="x", kind=kind).save(
            layout
        )
    # Neither has a stack: both are interrupted.
    assert session_store.pick(None, ("interrupted",)).name == "bob"
    assert session_store.pick(None, ("interrupted",), kind="course").name == "ana"
    assert session_store.pick("ana").record.kind == "course", "named, any kind"


def test_a_lesson_the_rubric_cannot_grade_is_refused_before_any_play(tmp_path):
    rubric = load_rubric()
    without = rubric.model_copy(update={"items": {k: v for k, v in rubric.items.items() if k != "drift"}})
    with pytest.raises(MlsandboxError, match="grades drift.moves_after_drift, drift.right_feature"):
        lesson_rubric(without, COURSE.lesson(5))


# --- every lesson on the real stack -----------------------------------------------------------------------


def _part_name(lesson) -> str:
    return "ref-" + "-".join(Path(p).parts[0] for p in lesson.reference.part)


@pytest.fixture(scope="module")
def lessons_played(tmp_path_factory):
    """Each lesson's verdict for the starter and for its reference part, and each play's wall time."""
    base = tmp_path_factory.mktemp("course")
    folders = {"starter": shutil.copytree(STARTER, base / "starter", ignore=shutil.ignore_patterns("__pycache__"))}
    for lesson in COURSE.lessons:
        name = _part_name(lesson)
        if name not in folders:
            folders[name] = reference_workspace(lesson, base / name)
    rubric = load_rubric()
    cal = Fanout(
        list(folders.values()), base / "rooms", CALIBRATION_PORT, SCRAPE, say=lambda _: None, names=list(folders)
    )
    verdicts: dict[tuple[str, str], Verdict] = {}
    seconds: dict[str, float] = {}
    scenarios = list(dict.fromkeys(lesson.scenario for lesson in COURSE.lessons))
    with cal:
        for k, scenario in enumerate(scenarios):
            t0 = time.monotonic()
            if k:  # as `course check` does before each play: a fresh server, the last play's alerts resolved
                cal.set_aside(f"before-{scenario}")
                cal.restart_servers(RULES_SETTLE_SECONDS, QUIET_TIMEOUT_SECONDS)
            cal.play(ScenarioPlay(scenario=scenario, web_ui=False))
            for lesson in (x for x in COURSE.lessons if x.scenario == scenario):
                for room in ("starter", _part_name(lesson)):
                    _, data, _ = run_grading(
                        base / "rooms" / room,
                        next(r.prometheus_url for r in cal.stacks if r.name == room),
                        candidate=folders[room],
                        rubric=lesson_rubric(rubric, lesson),
                        out=base / "reports" / lesson.id / room,
                        say=lambda _: None,
                    )
                    verdicts[(lesson.id, room)] = judge(lesson, data, failures_before=0)
            seconds[scenario] = time.monotonic() - t0
    print("course plays (play + grading, s):", {k: round(v) for k, v in seconds.items()})
    return verdicts


@pytest.mark.stack
@pytest.mark.timeout(900)
@pytest.mark.parametrize("lesson", COURSE.lessons, ids=lambda lesson: lesson.id)
def test_lesson_fails_on_the_starter_with_its_first_hint_and_passes_with_its_reference_part(lessons_played, lesson):
    starter = lessons_played[(lesson.id, "starter")]
    assert not starter.passed and starter.hint == lesson.hints[0] and starter.hint_number == 1
    reference = lessons_played[(lesson.id, _part_name(lesson))]
    assert reference.passed, "\n".join(reference.lines(lesson))


# --- a trainee's course through the command line ----------------------------------------------------------


# The command-line test's course: the shipped first two lessons, the first on a 14 s play (the shipped lesson's
# own play is graded in lessons_played above): what is tested here is the trainee's path, not the lesson.
CLI_SCENARIO = """name: course-cli-test
description: a short play with an error burst, for the course's command-line test
ground_truth: {fraction: 0.5, delay_seconds: 2}
phases:
  - {name: normal, duration_seconds: 8, rate: 20}
  - {name: errors, duration_seconds: 6, rate: 20, injections: [{kind: errors, rate: 0.3}]}
"""


def _cli_course(folder: Path) -> Path:
    (folder / "course-cli-test.yaml").write_text(CLI_SCENARIO)
    data = yaml.safe_load(COURSE_FILE.read_text())
    data["lessons"] = data["lessons"][:2]
    data["lessons"][0]["scenario"] = str(folder / "course-cli-test.yaml")
    path = folder / "course.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.stack
@pytest.mark.timeout(900)
def test_a_trainee_starts_checks_stops_and_resumes_a_course(tmp_path):
    home = Driver(tmp_path / "run", HOME_PORTS, extra_env={"MLSANDBOX_SESSIONS_DIR": str(tmp_path / "sessions")})
    progress_file = tmp_path / "sessions" / "ana" / "course.json"
    course_file = _cli_course(tmp_path)
    course = load_course(course_file)
    opt = ("--course", str(course_file))
    try:
        started = home.cli("course", "start", "--session", "ana", "--ports", str(TRAINEE_PORTS), *opt, timeout=400)
        assert "Lesson 1 of 2: First metrics and /metrics" in started.stdout
        assert re.search(r"errors +from +8 s to +14 s \(6 s\)", started.stdout), started.stdout
        workspace = tmp_path / "sessions" / "ana" / "candidate"
        assert (workspace / "app" / "monitoring.py").read_text() == (STARTER / "app" / "monitoring.py").read_text()

        t0 = time.monotonic()
        checked = home.cli("course", "check", *opt, check=False, timeout=400)
        print(f"a trainee's `course check` of a 14 s lesson: {time.monotonic() - t0:.0f} s")
        assert checked.returncode == 1, checked.stdout + checked.stderr
        lesson = course.lesson(1)
        assert "NOT YET: predictions.counter_tracks_predictions failed" in checked.stdout
        assert f"hint 1/{len(lesson.hints)}: {' '.join(lesson.hints[0].split())[:40]}" in " ".join(
            checked.stdout.split()
        )
        assert "what the grader saw:" in checked.stdout

        status = home.cli("course", "status", *opt).stdout
        assert "0 of 2 lessons passed" in status and "1 check" in status
        # `make down` stops nothing of a course, and says how to stop it (its stack holds ports, and so do the
        # machine's MLflow and console it uses).
        down = home.cli("down").stdout
        assert "course ana: `mlsandbox course stop --session ana`" in down, down
        assert Progress.load(progress_file, course).of(lesson).failures == 1

        home.cli("course", "stop")
        assert "interrupted" in home.cli("course", "status", *opt).stdout.splitlines()[0]
        resumed = home.cli("course", "start", "--session", "ana", *opt, timeout=400)
        assert "running again" in resumed.stdout and "Lesson 1 of 2" in resumed.stdout
        assert Progress.load(progress_file, course).of(lesson).checks == 1, "progress survives a stop"
    finally:
        home.cli("course", "stop", check=False)
        home.cli("down", check=False)
