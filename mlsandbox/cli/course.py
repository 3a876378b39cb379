"""`mlsandbox course ...`: the self-paced onboarding course (course.py, course_session.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Optional

import typer

from grading.rubric import load_rubric, rubric_or_fail
from mlsandbox.course.lessons import COURSE_FILE, Course, Lesson, Progress, lesson_rubric, load_course
from mlsandbox.course.runner import DEFAULT_NAME, begin, check, find, pause
from mlsandbox.stack.state import HEADLESS

course_app = typer.Typer(
    no_args_is_help=True,
    help="The onboarding course: one incident per lesson, played on your own stack, your monitoring checked on "
    "the spot.",
)

SessionOpt = typer.Option(None, "--session", help="The course's session (default: the only course).")
CourseOpt = typer.Option(COURSE_FILE, "--course", help="The course file.", hidden=True)


def _para(text: str, indent: str = "  ") -> str:
    return textwrap.fill(" ".join(text.split()), width=100, initial_indent=indent, subsequent_indent=indent)


def show_lesson(course: Course, number: int, progress: Progress) -> str:
    lesson: Lesson = course.lesson(number)
    state = "passed" if progress.passed(lesson) else "to do"
    lines = [f"Lesson {number} of {len(course.lessons)}: {lesson.title} ({state})", "", _para(lesson.brief), ""]
    scenario = lesson.play()
    lines.append(f"  The play lasts {scenario.duration_seconds:.0f} s ({lesson.scenario}); what it injects:")
    width = max(len(what) for what, _, _ in lesson.incidents())
    for what, start, end in lesson.incidents():
        lines.append(f"    {what:<{width}}  from {start:>3.0f} s to {end:>3.0f} s ({end - start:.0f} s)")
    if lesson.checks_alerts:
        grace = load_rubric().tolerances.detection_grace_seconds
        lines.append(
            f"  An alert counts for an incident when it fires before the incident ends or within {grace:g} s after:"
            " size windows and `for` durations to fit."
        )
    lines += ["", "  Build:", _para(lesson.build, "    "), "", "  Checked:"]
    lines += [f"    {item}.{name}" for item, name in lesson.check_keys]
    lines += ["", "  `mlsandbox course check` plays the incident on your server and grades these checks."]
    return "\n".join(lines)


@course_app.command("start")
def course_start(
    candidate: Optional[Path] = typer.Option(
        None, "--candidate", help="Start from a copy of this folder instead of the starter."
    ),
    session: Optional[str] = typer.Option(
        None, "--session", help=f"The course's name, one per trainee (default: the only course, or {DEFAULT_NAME!r})."
    ),
    ports: Optional[int] = typer.Option(None, "--ports", help="First of eight consecutive ports."),
    course_file: Path = CourseOpt,
) -> None:
    """Start the course: a workspace (a copy of the starter, kept across lessons) and the stack. Run it again
    after `course stop` (or a reboot) to resume where you were."""
    course = load_course(course_file)
    found, urls, resumed = begin(session, candidate, ports, typer.echo)
    progress = Progress.load(found.layout.course_progress, course)
    progress.save(found.layout.course_progress)
    lesson = show_lesson(course, progress.current, progress)
    typer.echo(f"\nCourse {found.name} is {'running again' if resumed else 'running'}:")
    for component, url in urls.items():
        typer.echo(f"  {component:<15} {url or HEADLESS}")
    typer.echo(f"\nYour workspace: {found.layout.candidate} (the server reloads when you save)\n")
    typer.echo(lesson)


@course_app.command("lesson")
def course_lesson(
    number: Optional[int] = typer.Argument(None, min=1, help="The lesson (default: the current one)."),
    session: Optional[str] = SessionOpt,
    course_file: Path = CourseOpt,
) -> None:
    """The lesson's brief: what goes wrong, how long the incident lasts, what to build, what is checked."""
    course = load_course(course_file)
    found = find(session)
    progress = Progress.load(found.layout.course_progress, course)
    typer.echo(show_lesson(course, number or progress.current, progress))


@course_app.command("check")
def course_check(
    number: Optional[int] = typer.Argument(None, min=1, help="The lesson (default: the current one)."),
    session: Optional[str] = SessionOpt,
    rubric: Optional[Path] = typer.Option(None, "--rubric", help="Another rubric (the lesson restricts it)."),
    course_file: Path = CourseOpt,
) -> None:
    """Play the lesson's incident on your server (about a minute), grade the lesson's checks: passed, or the
    first failing check with what the grader saw and the next hint. Exits 1 when not passed yet."""
    course = load_course(course_file)
    base = rubric_or_fail(rubric)
    found = find(session)
    progress = Progress.load(found.layout.course_progress, course)
    number = number or progress.current
    lesson = course.lesson(number)
    restricted = lesson_rubric(base, lesson)  # a rubric that cannot grade the lesson fails before the play
    typer.echo(f"Lesson {number}: {lesson.title}")
    verdict = check(found, course, number, restricted, typer.echo)
    progress = Progress.load(found.layout.course_progress, course)
    typer.echo("\n".join(verdict.lines(lesson)))
    if not verdict.passed:
        raise typer.Exit(1)
    if progress.done(course):
        typer.echo("Every lesson passed: the course is done.")
    elif progress.current != number:
        typer.echo(f"Next: lesson {progress.current} (`mlsandbox course lesson`).")


@course_app.command("status")
def course_status(session: Optional[str] = SessionOpt, course_file: Path = CourseOpt) -> None:
    """Progress through the course: each lesson, passed or not, checks run."""
    course = load_course(course_file)
    found = find(session)
    progress = Progress.load(found.layout.course_progress, course)
    passed = sum(progress.passed(lesson) for lesson in course.lessons)
    typer.echo(f"{course.title}: {passed} of {len(course.lessons)} lessons passed (course {found.name}, {found.state})")
    for k, lesson in enumerate(course.lessons, 1):
        entry = progress.lessons.get(lesson.id)
        mark = "passed" if progress.passed(lesson) else ("current" if k == progress.current else "")
        checks = f"{entry.checks} check{'s' * (entry.checks != 1)}" if entry else ""
        typer.echo(f"  {'>' if k == progress.current else ' '} {k}. {lesson.title:<42} {mark:<8} {checks}")


@course_app.command("stop")
def course_stop(session: Optional[str] = SessionOpt) -> None:
    """Stop the course's stack; the workspace and progress stay (`course start --session NAME` resumes)."""
    found = find(session)
    pause(found, typer.echo)
    typer.echo(f"course {found.name} stopped; `mlsandbox course start --session {found.name}` resumes it")
