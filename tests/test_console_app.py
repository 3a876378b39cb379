"""The console's web app without a stack: its token, and a room that no longer runs (its last report stands for
the grade so far). The live views are tested in a browser on the real stack (test_reference_stack.py)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from load.scenario import load_scenario
from load.traffic import plan_phase
from load.truth import Timeline
from mlsandbox.console.app import create_app
from mlsandbox.console.rooms import Room

TOKEN = "s3cret-token"


class StubRooms:
    def __init__(self, rooms):
        self.rooms = {r.name: r for r in rooms}

    def all(self):
        return self.rooms

    def get(self, name):
        return self.rooms.get(name)


class NoGrader:
    def get(self, name):
        raise AssertionError("a room that does not run is never graded live")

    def ask(self, name):
        raise AssertionError("not asked")


@pytest.fixture
def archived(tmp_path):
    """An ended session: a played timeline (two phases of smoke) and its final report."""
    run = tmp_path / "run"
    scenario = load_scenario("smoke")
    timeline = Timeline(run, scenario, 7, 1.0, False)
    t0 = 1_800_000_000.0
    timeline.phase_started(plan_phase(scenario, 0, 7, 1.0), t0)
    timeline.phase_ended(t0 + 25)
    timeline.phase_started(plan_phase(scenario, 1, 7, 1.0), t0 + 25)
    timeline.phase_ended(t0 + 37)
    timeline.finish(t0 + 37, "finished")
    report = tmp_path / "archive" / "reports" / "final"
    report.mkdir(parents=True)
    (report / "report.html").write_text("<html>the report</html>")
    data = {
        "score": 88.0,
        "points": 88,
        "max_points": 100,
        "items": [],
        "graded_at": t0 + 80,
        "detections": [
            {"incident": "covariate_drift(monthly_charges)", "alert": "DriftHigh", "detection_seconds": 9.5}
        ],
        "improvement": {"text": "add an alert on accuracy"},
    }
    (report / "report.json").write_text(json.dumps(data))
    return Room("alice", "session", "ended", run, None, tmp_path / "candidate", report / "report.html")


@pytest.fixture
def client(archived):
    return TestClient(create_app(TOKEN, StubRooms([archived]), NoGrader()))


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/room/alice",
        "/api/rooms",
        "/api/room/alice/scenario",
        "/api/room/alice/grade",
        "/room/alice/report",
        "/static/console.js",
    ],
)
def test_without_the_token_everything_is_401(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert "alice" not in response.text and "covariate" not in response.text


def test_a_wrong_token_is_401_and_the_health_check_says_only_ok(client):
    assert client.get("/api/rooms?token=guess").status_code == 401
    health = client.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_the_token_once_then_a_cookie(client):
    first = client.get(f"/?token={TOKEN}")
    assert first.status_code == 200 and "alice" in first.text
    assert client.get("/api/rooms").json() == [{"name": "alice", "kind": "session", "state": "ended", "report": True}]


def test_an_ended_session_shows_its_timeline_its_last_grade_and_its_report(client):
    client.get(f"/?token={TOKEN}")
    scenario = client.get("/api/room/alice/scenario").json()
    assert [p["name"] for p in scenario["phases"]] == ["baseline", "feature-drift"]
    assert scenario["status"] == "finished" and scenario["current"] is None
    grade = client.get("/api/room/alice/grade").json()
    assert grade["score"] == 88.0 and grade["in_flight"] is False
    lanes = client.get("/api/room/alice/lanes").json()
    assert lanes["incidents"][0]["label"] == "covariate_drift(monthly_charges)"
    assert lanes["incidents"][0]["detected_by"] == "DriftHigh" and lanes["incidents"][0]["source"] == "grader"
    assert client.get("/room/alice/report").text == "<html>the report</html>"
    assert client.post("/api/room/alice/scenario/next").status_code == 409
    assert client.get("/api/room/nobody/scenario").status_code == 404
