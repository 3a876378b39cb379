"""The grader's errors: one readable line and exit 2 when Prometheus cannot be reached, the run directory
has no timeline, or the rubric is invalid."""

from __future__ import annotations

import subprocess
import sys

import pytest

from grading.rubric import RubricError, load_rubric
from load.scenario import load_scenario
from load.traffic import plan_phase
from load.truth import Timeline
from mlsandbox.layout import REPO_ROOT as REPO


def grade(*args):
    return subprocess.run(
        [sys.executable, "-m", "mlsandbox.cli", "grade", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )


@pytest.fixture
def run_with_timeline(tmp_path):
    smoke = load_scenario("smoke")
    timeline = Timeline(tmp_path, smoke, 7, 1.0, False)
    timeline.phase_started(plan_phase(smoke, 0, 7), 1_000_000.0)
    timeline.phase_ended(1_000_025.0)
    return tmp_path


def test_unreachable_prometheus_exits_2_with_one_line(run_with_timeline):
    result = grade("--prometheus", "http://127.0.0.1:1", "--run-dir", str(run_with_timeline))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "cannot be reached" in result.stderr


def test_run_dir_without_timeline_exits_2(tmp_path):
    result = grade("--prometheus", "http://127.0.0.1:1", "--run-dir", str(tmp_path))
    assert result.returncode == 2 and "no scenario timeline" in result.stderr
    assert result.stderr.strip().count("\n") == 0


@pytest.mark.parametrize(
    "change, where",
    [
        (lambda t: t.replace("points: 10", "points: lots", 1), "points"),
        (
            lambda t: t.replace("  counter_tracks_predictions:", "  counter_tracks_everything:", 1),
            "counter_tracks_everything",
        ),
        (lambda t: t.replace("improvement_priority: [alerting", "improvement_priority: [vibes", 1), "vibes"),
        (lambda t: t + "\n  - [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_rubric_exits_2_naming_the_fault(tmp_path, run_with_timeline, change, where):
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(change((REPO / "grading" / "rubric.yaml").read_text()))
    with pytest.raises(RubricError, match=where):
        load_rubric(rubric)
    result = grade("--rubric", str(rubric), "--run-dir", str(run_with_timeline))
    assert result.returncode == 2 and where in result.stderr and result.stderr.strip().count("\n") == 0


def test_default_rubric_is_valid_and_worth_100():
    assert load_rubric().total == 100
