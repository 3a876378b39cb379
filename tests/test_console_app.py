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
    assert client.get("/api/rooms").json() == [
        {"name": "alice", "kind": "session", "state": "ended", "level": None, "report": True}
    ]


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


# --- the candidate's work and the scorecards, on an ended session's folder ----------------------------------------


@pytest.fixture
def session_client(tmp_path, monkeypatch):
    """An ended session `bob` with a work history, a link to a secret outside the workspace, and no card yet."""
    from mlsandbox.layout import Ports
    from mlsandbox.sessions.history import History
    from mlsandbox.sessions.store import SessionLayout, SessionRecord

    monkeypatch.setenv("MLSANDBOX_SESSIONS_DIR", str(tmp_path / "sessions"))
    layout = SessionLayout(tmp_path / "sessions" / "bob")
    (layout.candidate / "app").mkdir(parents=True)
    (layout.candidate / "app" / "main.py").write_text("v1\n")
    (tmp_path / "secret.txt").write_text("THE ANSWER\n")
    (layout.candidate / "answer.py").symlink_to(tmp_path / "secret.txt")
    history = History(layout.candidate, layout.history)
    history.init()
    history.snapshot("session start")
    (layout.candidate / "app" / "main.py").write_text("v2\n")
    (layout.candidate / "NOTES.md").write_text("# Why\n\n<img src=x onerror=alert(1)>\n")
    history.snapshot("saved during the session")
    SessionRecord(
        name="bob", backend="native", play=None, ports=Ports.block(16100), source="starter", ended_at=1.0
    ).save(layout)
    room = Room("bob", "session", "ended", layout.run.root, None, layout.candidate, None, layout=layout)
    client = TestClient(create_app(TOKEN, StubRooms([room]), NoGrader()))
    client.get(f"/?token={TOKEN}")
    return client, layout


def test_the_room_page_allows_no_script_or_image_from_elsewhere(session_client):
    client, _ = session_client
    page = client.get("/room/bob")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "img-src 'self' data:" in csp and "default-src 'self'" in csp
    assert 'id="scorecard-body"' in page.text and 'id="tree-body"' in page.text


def test_the_workspace_now_and_at_each_snapshot_with_links_shown_never_followed(session_client):
    client, _ = session_client
    history = client.get("/api/room/bob/history").json()
    assert [s["message"] for s in history["snapshots"]] == ["session start", "saved during the session"]
    first = history["snapshots"][0]["commit"]
    now = {e["path"]: e for e in client.get("/api/room/bob/workspace").json()["entries"]}
    assert now["answer.py"]["kind"] == "link" and now["NOTES.md"]["kind"] == "file"
    then = {e["path"] for e in client.get(f"/api/room/bob/workspace?at={first}").json()["entries"]}
    assert "NOTES.md" not in then and "app/main.py" in then
    assert client.get("/api/room/bob/workspace/file?path=app/main.py").json()["text"] == "v2\n"
    assert client.get(f"/api/room/bob/workspace/file?path=app/main.py&at={first}").json()["text"] == "v1\n"
    link = client.get("/api/room/bob/workspace/file?path=answer.py").json()
    assert link["kind"] == "link" and link["text"] is None and "ANSWER" not in json.dumps(link)
    notes = client.get("/api/room/bob/workspace/file?path=NOTES.md").json()
    assert "<h1>Why</h1>" in notes["html"] and "<img" not in notes["html"]
    for bad in ("../bob/session.json", "/etc/passwd"):
        answer = client.get("/api/room/bob/workspace/file", params={"path": bad})
        assert answer.status_code == 422 and "workspace" in answer.json()["detail"]
    assert client.get("/api/room/bob/workspace?at=--output=x").status_code == 404
    assert client.get("/api/room/bob/workspace?at=deadbeef").status_code == 404


def test_scorecards_through_the_console_independent_first_and_refused_whole(session_client):
    client, layout = session_client
    full = {"implementation": 3, "code_quality": 2, "explanation": 3, "production": 2, "feedback": 4}
    saved = client.post(
        "/api/room/bob/scorecard", json={"interviewer": "ben", "ratings": full, "recommendation": "yes"}
    )
    assert saved.status_code == 200 and saved.json()["mine"]["complete"] is True
    anonymous = client.get("/api/room/bob/scorecard").json()
    assert anonymous["waiting"] == ["ben"] and anonymous["others"] == [] and anonymous["changes"] == []
    ana = client.get("/api/room/bob/scorecard?interviewer=ana").json()
    assert ana["unlocked"] is False and ana["waiting"] == ["ben"] and "ratings" not in json.dumps(ana["others"])
    assert [c["id"] for c in ana["scorecard"]["competencies"]][:2] == ["implementation", "code_quality"]
    for bad in ({"code_quality": 5}, {"charisma": 3}):
        refused = client.post("/api/room/bob/scorecard", json={"interviewer": "ana", "ratings": bad})
        assert refused.status_code == 422 and "\n" not in refused.json()["detail"]
    assert len(list((layout.scorecards / "entries").glob("*.json"))) == 1
    partial = client.post("/api/room/bob/scorecard", json={"interviewer": "ana", "ratings": {"code_quality": 4}})
    assert partial.json()["unlocked"] is False and partial.json()["others"] == []
    done = client.post(
        "/api/room/bob/scorecard",
        json={"interviewer": "ana", "ratings": {**full, "code_quality": 4}, "recommendation": "strong_yes"},
    ).json()
    assert done["unlocked"] is True and [c["interviewer"] for c in done["others"]] == ["ben"]
    assert done["calibration"] == [{"competency": "code_quality", "ratings": {"ana": 4, "ben": 2}, "gap": 2}]
    assert {e["via"] for e in done["changes"]} == {"console"} and len(done["changes"]) == 3
