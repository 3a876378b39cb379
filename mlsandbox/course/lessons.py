"""The onboarding course: its file (course/onboarding.yaml), read and validated here and only here; the rubric a
lesson grades with (the interviewer's, restricted with `only:`); the verdict on a lesson's check; the trainee's
progress on disk.

The course adds no way of checking of its own: a lesson's check is the grader's report on the lesson's checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from grading.rubric import KNOWN_CHECKS, ItemSpec, Rubric
from load.scenario import Scenario, ScenarioError, load_scenario
from load.truth import atomic_write
from mlsandbox.data_files import read_yaml_model
from mlsandbox.errors import InvalidInput, MlsandboxError
from mlsandbox.layout import REFERENCE, REPO_ROOT, STARTER

COURSE_FILE = REPO_ROOT / "course" / "onboarding.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReferencePart(_Strict):
    # Files or folders of reference_solution/ that answer the lesson, copied over the starter by the tests.
    part: list[str] = Field(min_length=1)
    read: str  # the file a trainee opens first

    @field_validator("part", "read")
    @classmethod
    def _in_reference(cls, value: list[str] | str, info: ValidationInfo) -> list[str] | str:
        """Every path is one of reference_solution/: `part` files or folders, `read` a file."""
        wanted = Path.is_file if info.field_name == "read" else Path.exists
        missing = [p for p in ([value] if isinstance(value, str) else value) if not wanted(REFERENCE / p)]
        if missing:
            raise ValueError(f"not {'a file' if info.field_name == 'read' else 'in'} reference_solution/: {missing}")
        return value


class Lesson(_Strict):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str
    scenario: str
    brief: str
    build: str
    checks: dict[str, list[str]] = Field(min_length=1)
    hints: list[str] = Field(min_length=1)
    reference: ReferencePart

    @field_validator("checks")
    @classmethod
    def _known(cls, checks: dict[str, list[str]]) -> dict[str, list[str]]:
        for item, names in checks.items():
            if item not in KNOWN_CHECKS:
                raise ValueError(f"no rubric item {item!r} (known: {', '.join(KNOWN_CHECKS)})")
            if not names:
                raise ValueError(f"{item}: name at least one check")
            unknown = [c for c in names if c not in KNOWN_CHECKS[item]]
            if unknown:
                raise ValueError(f"{item}: no such check {unknown} (known: {', '.join(KNOWN_CHECKS[item])})")
        return checks

    @field_validator("scenario")
    @classmethod
    def _playable(cls, scenario: str) -> str:
        try:
            load_scenario(scenario)
        except ScenarioError as exc:
            raise ValueError(str(exc)) from None
        return scenario

    @property
    def check_keys(self) -> list[tuple[str, str]]:
        """(item, check) in the order the lesson reports them."""
        return [(item, c) for item, names in self.checks.items() for c in names]

    def play(self) -> Scenario:
        return load_scenario(self.scenario)

    def incidents(self) -> list[tuple[str, float, float]]:
        """(what, start, end) in seconds from the play's start, one per injection however many phases it spans
        (a drift that holds through the next phases is one incident): what the trainee's windows and `for`
        durations must fit in."""
        spans: dict[str, list[float]] = {}
        t = 0.0
        for phase in self.play().phases:
            for inj in phase.injections:
                target = getattr(inj, "feature", None) or ",".join(getattr(inj, "features", []) or [])
                what = f"{inj.kind}({target})" if target else inj.kind
                span = spans.setdefault(what, [t, t + phase.duration_seconds])
                span[1] = t + phase.duration_seconds
            t += phase.duration_seconds
        return [(what, start, end) for what, (start, end) in spans.items()]

    @property
    def checks_alerts(self) -> bool:
        return "alerting" in self.checks


class Course(_Strict):
    title: str
    lessons: list[Lesson] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "Course":
        ids = [lesson.id for lesson in self.lessons]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"lesson ids named twice: {', '.join(twice)}")
        return self

    def lesson(self, number: int) -> Lesson:
        """Lesson `number`, counted from 1."""
        if not 1 <= number <= len(self.lessons):
            raise MlsandboxError(f"no lesson {number}: the course has lessons 1 to {len(self.lessons)}")
        return self.lessons[number - 1]


def load_course(path: Path | str = COURSE_FILE) -> Course:
    return read_yaml_model(path, Course, InvalidInput, "course")


def lesson_rubric(rubric: Rubric, lesson: Lesson) -> Rubric:
    """The interviewer's rubric, its items restricted to the lesson's checks (weights, tolerances and advice
    unchanged)."""
    missing = [f"{i}.{c}" for i, names in lesson.checks.items() for c in names if c not in _checks(rubric, i)]
    if missing:
        raise MlsandboxError(f"lesson {lesson.id!r} grades {', '.join(missing)}, which the rubric leaves out")
    items = {
        item: ItemSpec(
            title=rubric.items[item].title,
            only=list(names),
            checks={c: rubric.items[item].checks[c] for c in names},
        )
        for item, names in lesson.checks.items()
    }
    try:
        return Rubric(
            items=items,
            improvement_priority=[i for i in rubric.improvement_priority if i in items],
            tolerances=rubric.tolerances,
        )
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise MlsandboxError(f"lesson {lesson.id!r}: the rubric cannot grade it ({reason})") from None


def _checks(rubric: Rubric, item: str) -> dict:
    spec = rubric.items.get(item)
    return spec.checks if spec is not None else {}


# --- the verdict on a check --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    passed: bool
    failed_check: str | None = None  # "item.check", the first that failed
    saw: str = ""  # what the grader saw, from the report
    advice: str = ""
    hint: str | None = None
    hint_number: int = 0  # 1-based; 0 when no hint is given
    score: float = 0.0

    def lines(self, lesson: Lesson) -> list[str]:
        if self.passed:
            return [f"PASSED: {lesson.title} ({self.score:g}% of the lesson's checks)"]
        out = [f"NOT YET: {self.failed_check} failed", f"  what the grader saw: {self.saw}"]
        if self.advice:
            out.append(f"  what it wants: {self.advice}")
        if self.hint:
            out.append(f"  hint {self.hint_number}/{len(lesson.hints)}: {self.hint}")
        out.append(f"  the reference's answer: reference_solution/{lesson.reference.read}")
        return out


def _evidence_text(check: dict) -> str:
    parts = [check.get("summary") or ""]
    for e in check.get("evidence", [])[:2]:
        seen = e.get("seen")
        text = f"{e.get('what')}: {seen}" if seen not in (None, "", [], {}) else str(e.get("what"))
        parts.append(text[:200] + (f" ({e['note']})" if e.get("note") else ""))
    return "; ".join(p for p in parts if p)


def judge(lesson: Lesson, report: dict, failures_before: int) -> Verdict:
    """Passed when every check of the lesson passed; else the first failing check in the lesson's order, with
    hint number `failures_before + 1` (the last hint once all were given). A check the play could not judge
    (not applicable) fails: the lesson's scenario is built so that each of its checks applies."""
    checks = {(i["key"], c["name"]): c for i in report["items"] for c in i["checks"]}
    not_applicable = {(n["item"], n["check"]): n["why"] for n in report.get("not_applicable", [])}
    for item, name in lesson.check_keys:
        check = checks.get((item, name))
        if check is not None and check["passed"]:
            continue
        k = min(failures_before, len(lesson.hints) - 1)
        saw = (
            _evidence_text(check)
            if check is not None
            else f"not judged on this play: {not_applicable.get((item, name), 'not in the report')}"
        )
        return Verdict(
            passed=False,
            failed_check=f"{item}.{name}",
            saw=saw,
            advice=(check or {}).get("advice", ""),
            hint=lesson.hints[k],
            hint_number=k + 1,
            score=report["score"],
        )
    return Verdict(passed=True, score=report["score"])


# --- progress ---------------------------------------------------------------------------------------------


class LessonProgress(BaseModel):
    checks: int = 0
    failures: int = 0
    passed_at: float | None = None
    last: str | None = None  # the last verdict's first line


class Progress(BaseModel):
    """The trainee's place in the course, kept in the session's folder (course.json)."""

    course: str
    current: int = 1  # the lesson `course lesson` shows; moves on when its check passes
    lessons: dict[str, LessonProgress] = {}

    @classmethod
    def load(cls, path: Path, course: Course) -> "Progress":
        if not path.exists():
            return cls(course=course.title)
        try:
            return cls.model_validate_json(path.read_text())
        except (OSError, ValidationError) as exc:
            raise MlsandboxError(f"{path}: unreadable course progress ({exc.__class__.__name__})") from None

    def save(self, path: Path) -> None:
        atomic_write(path, self.model_dump_json(indent=2))

    def of(self, lesson: Lesson) -> LessonProgress:
        return self.lessons.setdefault(lesson.id, LessonProgress())

    def record(self, course: Course, number: int, verdict: Verdict) -> None:
        """A check of lesson `number`: counted; a pass marks it and moves the course to the next lesson not yet
        passed."""
        lesson = course.lesson(number)
        entry = self.of(lesson)
        entry.checks += 1
        entry.last = verdict.lines(lesson)[0]
        if not verdict.passed:
            entry.failures += 1
            return
        entry.passed_at = entry.passed_at or time.time()
        if number == self.current:
            later = [k for k in range(number + 1, len(course.lessons) + 1) if not self.passed(course.lesson(k))]
            self.current = later[0] if later else number

    def passed(self, lesson: Lesson) -> bool:
        entry = self.lessons.get(lesson.id)
        return entry is not None and entry.passed_at is not None

    def done(self, course: Course) -> bool:
        return all(self.passed(lesson) for lesson in course.lessons)


def reference_workspace(lesson: Lesson, dest: Path) -> Path:
    """The starter with the lesson's part of the reference solution copied over it: what passes the lesson."""
    import shutil

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(STARTER, dest, ignore=ignore)
    for part in lesson.reference.part:
        source, target = REFERENCE / part, dest / part
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest
