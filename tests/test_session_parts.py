"""The parts of interview sessions that need no stack: names, the work history, rules written back from
Prometheus's API, the comparison table, and the candidate's side (their logging, the packages their brief lists)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

import pytest
import yaml

from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import REPO_ROOT, Ports
from mlsandbox.sessions.archive import rule_files_from_api
from mlsandbox.sessions.history import History
from mlsandbox.sessions.store import GradeRecord, check_name
from mlsandbox.sessions.summary import compare_rows

# Monitoring packages a candidate might reach for; every one installed here must be named in the brief.
MONITORING_PACKAGES = [
    "prometheus-client",
    "prometheus-fastapi-instrumentator",
    "starlette-exporter",
    "evidently",
    "scipy",
    "psutil",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-exporter-prometheus",
    "statsd",
    "datadog",
    "sentry-sdk",
    "whylogs",
    "nannyml",
    "alibi-detect",
    "deepchecks",
    "great-expectations",
    "pandera",
]


@pytest.mark.parametrize("name", ["alice", "Bob_2", "c.d-e"])
def test_plain_names_are_accepted(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["a/b", "../x", ".hidden", "", "x" * 65, "a b"])
def test_names_with_a_path_separator_or_odd_characters_are_refused(name):
    with pytest.raises(MlsandboxError):
        check_name(name)


def test_history_commits_only_when_something_changed_and_stays_outside_the_workspace(tmp_path):
    workspace = tmp_path / "candidate"
    (workspace / "app").mkdir(parents=True)
    (workspace / "app" / "main.py").write_text("print('v1')\n")
    history = History(workspace, tmp_path / "history.git")
    history.init()
    first = history.snapshot("start")
    assert first and history.snapshot("nothing new") is None
    (workspace / "app" / "main.py").write_text("print('v2')\n")
    (workspace / "app" / "__pycache__").mkdir()
    (workspace / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    second = history.snapshot("edit")
    log = history.log()
    assert [s.message for s in log] == ["start", "edit"] and log[1].files == ["app/main.py"]
    assert "+print('v2')" in history.diff(first, second)
    assert sorted(p.name for p in workspace.iterdir()) == ["app"]


def test_rules_are_written_back_from_prometheus_api_as_loadable_files(tmp_path):
    api = {
        "status": "success",
        "data": {
            "groups": [
                {
                    "name": "churn",
                    "file": "/x/alerts/churn.yml",
                    "interval": 5,
                    "rules": [
                        {
                            "type": "alerting",
                            "name": "Drift",
                            "query": "drift_score > 0.2",
                            "duration": 30,
                            "keepFiringFor": 0,
                            "labels": {"severity": "warning"},
                            "annotations": {"summary": "drift"},
                        },
                        {"type": "recording", "name": "job:acc:avg", "query": "avg(acc)"},
                    ],
                }
            ]
        },
    }
    files = rule_files_from_api(api)
    assert list(files) == ["churn.yml"]
    group = yaml.safe_load(files["churn.yml"])["groups"][0]
    assert group["interval"] == "5s"
    assert group["rules"][0] == {
        "alert": "Drift",
        "expr": "drift_score > 0.2",
        "for": "30s",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "drift"},
    }
    assert group["rules"][1] == {"record": "job:acc:avg", "expr": "avg(acc)"}
    (tmp_path / "churn.yml").write_text(files["churn.yml"])
    check = subprocess.run(["promtool", "check", "rules", str(tmp_path / "churn.yml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def _grade(label, items, detections):
    return GradeRecord(
        label=label,
        score=sum(items.values()),
        points=sum(items.values()),
        max_points=30,
        items=items,
        max_items={k: 15 for k in items},
        detections=detections,
        improvement={},
        report="/r",
    )


def test_compare_shows_points_scores_and_latencies_side_by_side():
    rows = compare_rows(
        {
            "a": _grade("final", {"drift": 15, "system": 5}, {"latency": 8.4, "concept_drift": None}),
            "b": _grade("final", {"drift": 0, "system": 15}, {"latency": 12.0}),
        }
    )
    assert rows[0] == ["item", "out of", "a", "b"]
    assert ["drift", "15", "15", "0"] in rows
    assert ["detection seconds: latency", "", "8", "12"] in rows
    assert ["detection seconds: concept_drift", "", "missed", ""] in rows


def test_the_candidates_own_logging_reaches_the_server_log():
    code = "import logging, model_service.asgi; logging.getLogger('app.mine').info('candidate says hello')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT / "starter_repo",
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{REPO_ROOT / 'starter_repo'}:{REPO_ROOT}", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "INFO app.mine: candidate says hello" in result.stderr


@pytest.mark.parametrize("where", ["shipped", "room"])
def test_the_brief_names_every_monitoring_package_installed(where):
    from mlsandbox.config import StackConfig
    from mlsandbox.sessions.brief import render

    shipped = (REPO_ROOT / "starter_repo" / "CANDIDATE.md").read_text()
    brief = (shipped if where == "shipped" else render(StackConfig())).lower()
    installed = []
    for package in MONITORING_PACKAGES:
        try:
            version(package)
        except PackageNotFoundError:
            continue
        installed.append(package)
    assert "prometheus-fastapi-instrumentator" in installed
    missing = [p for p in installed if p.replace("_", "-") not in brief]
    assert not missing, f"installed but not in CANDIDATE.md: {missing}"


def test_the_rooms_brief_speaks_of_the_room_and_its_links_not_of_the_machine():
    from mlsandbox.config import StackConfig
    from mlsandbox.layout import Ports
    from mlsandbox.sessions.brief import render

    brief = render(StackConfig(ports=Ports.block(16100)))
    wrongs = (
        "../",
        "make up",
        ".venv/bin/mlsandbox",
        "127.0.0.1:8000",
        "127.0.0.1:9090",
        "docker compose",
        "compose mode",
    )
    for wrong in wrongs:
        assert wrong not in brief, wrong
    for right in (
        "reload-rules",
        "http://127.0.0.1:16101/prometheus",
        "/prometheus/",
        "docs/model_card.md",
        "/dashboards/",
        "This room has no Grafana",
    ):
        assert right in brief, right
    assert "build it in Grafana's UI" in render(StackConfig(ports=Ports.block(16100)), grafana=True)
    headed = render(
        StackConfig(), round_={"point": "Alert on accuracy.", "how_long": "15 minutes", "deadline": "14:05"}
    )
    assert headed.index("improvement round: until 14:05") < headed.index("## Your task")
    assert "> Alert on accuracy." in headed
    assert "You have 15 minutes, until **14:05**" in headed


def test_the_improvement_round_grades_a_just_finished_play_after_the_resolve_grace(monkeypatch):
    """Graded sooner, `resolved_after_recovery` would be "not yet" on a play that is over."""
    import time as clock
    from types import SimpleNamespace

    from grading.rubric import load_rubric
    from load.truth import PlayedGroundTruth, TimelineRecord
    from mlsandbox.sessions import lifecycle
    from model_service.faults import FaultState

    now = clock.time()
    phase = {
        "index": 0,
        "name": "recovery",
        "start": now - 40,
        "end": now - 10,
        "planned_end": now - 10,
        "rate": 5,
        "requests_planned": 150,
        "ground_truth": PlayedGroundTruth(fraction=0.5, delay_seconds=2, wall_delay_seconds=2),
        "faults": FaultState(),
    }

    def timeline(status):
        return TimelineRecord(
            scenario="smoke",
            seed=7,
            speed=1,
            surprise=False,
            status=status,
            planned_phases=["recovery"],
            phases=[phase],
        )

    slept, said = [], []
    monkeypatch.setattr(lifecycle.time, "sleep", slept.append)
    monkeypatch.setattr(lifecycle, "session_rubric", lambda session, rubric: load_rubric())
    grace = load_rubric().tolerances.resolve_grace_seconds
    finished = SimpleNamespace(timeline=lambda: timeline("finished"))
    lifecycle._wait_for_resolve_grace(None, finished, None, said.append)
    assert len(slept) == 1 and grace - 10 - 2 < slept[0] <= grace - 10
    assert "waiting" in said[0]
    # A play still running is cut by the round, not waited for; one over for longer than the grace is graded now.
    lifecycle._wait_for_resolve_grace(None, SimpleNamespace(timeline=lambda: timeline("running")), None, said.append)
    phase.update(end=now - grace - 5, planned_end=now - grace - 5)
    lifecycle._wait_for_resolve_grace(None, finished, None, said.append)
    assert len(slept) == 1


@pytest.mark.parametrize("from_disk", [True, False], ids=["graded-from-disk", "not-graded"])
def test_a_session_whose_live_grade_fails_still_ends_archived_with_its_stack_stopped(tmp_path, monkeypatch, from_disk):
    """A grader that raises (a bug, Prometheus gone) must not leave the session's stack running: the session is
    archived and stopped, graded from what is on disk, and says how to grade it again when that fails too."""
    from types import SimpleNamespace

    from mlsandbox.sessions import lifecycle
    from mlsandbox.sessions import store as session_store
    from mlsandbox.sessions.store import GradeRecord, SessionLayout, SessionRecord, StoredSession

    monkeypatch.setenv("MLSANDBOX_SESSIONS_DIR", str(tmp_path))
    layout = SessionLayout(tmp_path / "ana")
    (layout.candidate / "app").mkdir(parents=True)
    record = SessionRecord(name="ana", backend="native", play=None, ports=Ports.block(20000), source="x")
    record.save(layout)
    done = []
    sandbox = SimpleNamespace(
        timeline=lambda: object(),
        archive_data=lambda root: done.append("archived"),
        down=lambda volumes: done.append("down"),
    )
    monkeypatch.setattr(session_store, "stack_running", lambda run: "down" not in done)
    monkeypatch.setattr(lifecycle, "open_sandbox", lambda config, say: sandbox)

    def grade_live(*args, **kwargs):
        raise KeyError("ALERTS")

    final = GradeRecord(
        label="final",
        score=81.5,
        points=81.5,
        max_points=100.0,
        items={},
        max_items={},
        detections={},
        improvement={},
        report=str(tmp_path / "report"),
    )
    monkeypatch.setattr(lifecycle, "grade_live", grade_live)
    monkeypatch.setattr(
        lifecycle,
        "grade_from_disk",
        lambda session, rubric, say: (done.append("from disk"), final if from_disk else None)[1],
    )
    said = []
    session = StoredSession(layout, record)
    if from_disk:
        assert lifecycle.end(session, say=said.append) == final
    else:
        with pytest.raises(MlsandboxError, match=r"ended and archived, but grading failed \(KeyError: 'ALERTS'\).*"
                           r"mlsandbox grade --session ana"):  # fmt: skip
            lifecycle.end(session, say=said.append)
    assert done == ["archived", "down", "from disk"]
    saved = session_store.load("ana")
    assert saved.state == "ended"
    assert "the live grade failed: KeyError: 'ALERTS'" in saved.record.notes
    assert [g.label for g in saved.record.grades] == (["final"] if from_disk else [])
    assert any("grading the running session failed" in line for line in said)
