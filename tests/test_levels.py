"""Levels without a stack: the shipped levels and what `mlsandbox levels` says of them; each level's starting point
and brief; a bad level file is one line naming the file, the line and the field (exit 2); a rubric overlay's
points, extra checks and plus (never counted); the extra checks' readings of PromQL and NOTES.md; a session at a
level (its copy of the level, its rubric, its brief, its round) and `session compare` across levels. The levels
played on the real stack: test_level_junior_play.py, test_level_senior_play.py, test_levels_main_play.py."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from level_checks import junior_band

from grading import promql
from grading.checks.alert_practice import argued, names_next_step, passages
from grading.context import CheckResult, ItemResult
from grading.rubric import DEFAULT_RUBRIC, OverlayError, RubricOverlay, load_rubric, overlaid
from mlsandbox.layout import REPO_ROOT, STARTER
from mlsandbox.levels.brief import laid_over, level_brief
from mlsandbox.levels.level import LEVELS_DIR, LevelError, all_levels, load_level
from mlsandbox.levels.starting_point import build

SHIPPED = ["junior", "mid", "senior", "dashboard-design"]


def cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlsandbox.cli", *args], capture_output=True, text=True, cwd=cwd)


# --- the shipped levels ------------------------------------------------------------------------------------------


def test_the_shipped_levels_load_in_their_order_and_say_what_they_give_and_expect():
    assert [lv.name for lv in all_levels()] == SHIPPED
    result = cli("levels", "--json")
    assert result.returncode == 0, result.stderr
    shown = {o["name"]: o for o in json.loads(result.stdout)}
    assert list(shown) == SHIPPED
    assert shown["junior"]["starting_point"] == "starter_repo/ with levels/scaffolds/junior/ laid over it"
    assert shown["senior"]["scenario"] == "senior (surprise)" and shown["senior"]["compressed"] == "senior-smoke"
    assert shown["dashboard-design"]["points"] == {"alerting": 50, "visualization": 50}
    assert "drift.right_feature" in shown["junior"]["plus"]
    text = cli("levels").stdout
    for name in SHIPPED:
        assert f"{name}: " in text
    assert "expects:" in text and "plus (reported beside the score, never counted in it)" in text


def test_mid_is_the_exercise_unchanged():
    mid = load_level("mid")
    assert mid.rubric().model_copy(update={"level": None}) == load_rubric()
    assert level_brief(mid) == (STARTER / "CANDIDATE.md").read_text()
    assert (mid.spec.scenario.name, mid.spec.scenario.surprise, mid.spec.round_minutes) == ("interview", False, 15)


def _same_tree(a: Path, b: Path) -> list[str]:
    """Files that differ or exist on one side only (recursively)."""
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    out = [str(a / n) for n in cmp.diff_files + cmp.left_only + cmp.right_only]
    for sub in cmp.common_dirs:
        out += _same_tree(a / sub, b / sub)
    return out


def test_each_starting_point_is_the_starter_with_the_levels_folders_laid_over_it(tmp_path):
    built = {name: build(load_level(name), tmp_path / name) for name in SHIPPED}
    assert _same_tree(STARTER, built["mid"]) == []
    assert _same_tree(STARTER, built["senior"]) == [str(STARTER / "CANDIDATE.md")]
    # The junior scaffold differs from the starter by monitoring code only (and its brief).
    assert sorted(Path(p).relative_to(STARTER).as_posix() for p in _same_tree(STARTER, built["junior"])) == [
        "CANDIDATE.md",
        "app/main.py",
        "app/monitoring.py",
    ]
    design = built["dashboard-design"]
    assert _same_tree(REPO_ROOT / "reference_solution" / "app", design / "app") == []
    assert not [*(design / "alerts").glob("*.y*ml"), *(design / "dashboards").glob("*.json")]
    assert not (design / "NOTES.md").exists()
    assert (built["junior"] / "CANDIDATE.md").read_text() == level_brief(load_level("junior"))


def test_the_junior_scaffold_serves_metrics_with_one_example_metric_and_marks_the_four_areas(tmp_path, loaded_model):
    from conftest import import_candidate_app, valid_customer
    from fastapi.testclient import TestClient

    from model_service.faults import FaultSwitch
    from model_service.prediction_log import PredictionLog
    from model_service.service import ChurnService

    folder = build(load_level("junior"), tmp_path / "junior")
    monitoring = (folder / "app" / "monitoring.py").read_text()
    assert [f"STEP {k}" in monitoring for k in (1, 2, 3, 4)] == [True] * 4
    main = import_candidate_app(folder)
    svc = ChurnService(loaded_model, PredictionLog(tmp_path / "p.sqlite"), FaultSwitch(tmp_path / "f.json"))
    main.app.state.service = svc
    client = TestClient(main.app)
    answer = client.post("/predict", json=valid_customer(1)).json()
    assert client.post("/feedback", json={"request_id": answer["request_id"], "churned": True}).status_code == 200
    body = client.get("/metrics").text
    families = {line.split()[2] for line in body.splitlines() if line.startswith("# TYPE")}
    ours = {
        f.removesuffix("_total").removesuffix("_created") for f in families if not f.startswith(("python_", "process_"))
    }
    assert ours == {"churn_labels_received"}, ours
    assert 'churn_labels_received_total{churned="true"} 1.0' in body
    svc.prediction_log.close()


def test_each_levels_brief_renders_for_a_room_with_its_time_box_and_nothing_of_the_machine(tmp_path):
    from mlsandbox.config import StackConfig
    from mlsandbox.sessions.brief import render

    for name in SHIPPED:
        level = load_level(name)
        path = tmp_path / f"{name}.md"
        path.write_text(level_brief(level))
        room = render(StackConfig(), path)
        assert f"**{level.time_box}** for the task" in room
        assert f"**{level.spec.round_minutes:g} minutes** to refine" in room
        for wrong in ("../", "make up", ".venv/bin/mlsandbox"):
            assert wrong not in room, (name, wrong)
        assert "reload-rules" in room and "## Start here" in room
    junior = render(StackConfig(), tmp_path / "junior.md")
    assert "already serves `/metrics`" in junior
    assert junior.index("## Your task") < junior.index("## Pointers") < junior.index("## Time")


def test_a_variants_sections_replace_the_starters_and_new_ones_follow_the_section_before_them():
    base = "# T\n\nintro\n\n## A\n\na\n\n## B\n\nb\n\n## C\n\nc\n"
    variant = "## B\n\nnew b\n\n## B2\n\nadded\n"
    assert laid_over(base, variant) == "# T\n\nintro\n\n## A\n\na\n\n## B\n\nnew b\n\n## B2\n\nadded\n\n## C\n\nc\n"
    assert laid_over(base, "# Other\n\nhello\n").startswith("# Other\n\nhello\n\n## A")


# --- a bad level file ----------------------------------------------------------------------------------------------


def _broken(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load((LEVELS_DIR / "senior.yaml").read_text())
    data["brief"] = str(LEVELS_DIR / "briefs" / "senior.md")
    edit(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize(
    "edit, where, says",
    [
        (lambda d: d.update(minutes=[90, 60]), "minutes", "0 < shortest <= longest"),
        (lambda d: d.update(colour="blue"), "colour", "Extra inputs are not permitted"),
        (lambda d: d["scenario"].update(name="nowhere"), "scenario.name", "no scenario 'nowhere'"),
        (
            lambda d: d.update(starting_point={"overlays": [{"path": "nothing-here"}]}),
            "starting_point.overlays.0.path",
            "no folder",
        ),
        (
            lambda d: d["rubric"]["items"]["alerting"]["checks"].update(typo_check={"points": 1}),
            "rubric.items.alerting.checks.typo_check",
            "no such check",
        ),
        (
            lambda d: d["rubric"]["items"]["alerting"]["checks"]["objective_alert"].pop("advice"),
            "rubric.items.alerting.checks.objective_alert",
            "needs advice",
        ),
        (
            lambda d: d["rubric"].update(tolerances={"role_fitness": 0.5}),
            "rubric.tolerances.role_fitness",
            "no such tolerance",
        ),
        (lambda d: d["rubric"].update(drop=["alerting"]), "rubric.drop.0", "both dropped and changed"),
    ],
    ids=["minutes", "unknown-field", "scenario", "overlay", "check", "advice", "tolerance", "drop"],
)
def test_a_bad_level_file_is_one_line_with_its_file_line_and_field_and_exit_2(tmp_path, edit, where, says):
    path = _broken(tmp_path, edit)
    with pytest.raises(LevelError) as err:
        load_level(path)
    message = str(err.value)
    assert message.startswith(f"{path}:") and f": {where}: " in message and says in message, message
    assert "\n" not in message
    line = int(message.split(":")[1])
    key = next(k for k in reversed(where.split(".")) if not k.isdigit())
    assert key in "".join(path.read_text().splitlines()[max(0, line - 2) : line]), (line, key)
    for argv in (["levels", "--levels-dir", str(tmp_path)], ["session", "start", "x", "--level", str(path)]):
        result = cli(*argv)
        assert result.returncode == 2, (argv, result.stdout, result.stderr)
        assert result.stderr.strip().count("\n") == 0 and where in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_level_names_the_levels_there_are(tmp_path):
    result = cli("session", "start", "x", "--level", "principal")
    assert result.returncode == 2 and "no level 'principal' (levels: " in result.stderr and "junior" in result.stderr


def test_a_teams_own_level_sits_beside_the_shipped_ones(tmp_path):
    own = yaml.safe_load((LEVELS_DIR / "mid.yaml").read_text())
    own.update(order=5, title="Staff", summary="Mid, with dashboards weighing more.")
    own["rubric"] = {"items": {"visualization": {"points": 20}}}
    (tmp_path / "staff.yaml").write_text(yaml.safe_dump(own))
    found = [lv.name for lv in all_levels(tmp_path)]
    assert found == [*SHIPPED, "staff"]
    assert load_level("staff", tmp_path).rubric().items["visualization"].expected_points == 20


# --- rubric overlays and plus -------------------------------------------------------------------------------------


def test_an_overlay_sets_points_per_item_and_per_check_adds_extra_checks_drops_items_and_keeps_the_total_exact():
    base = load_rubric()
    rubric = overlaid(
        base,
        RubricOverlay.model_validate(
            {
                "items": {
                    "system": {"points": 20},
                    "alerting": {
                        "checks": {"no_false_alarms": {"points": 8}, "objective_alert": {"points": 3, "advice": "x"}}
                    },
                    "drift": {"checks": {"right_feature": {"plus": True}}},
                },
                "drop": ["hygiene"],
                "tolerances": {"detection_grace_seconds": 40},
            }
        ),
        level="test",
    )
    assert rubric.items["system"].expected_points == 20 and "hygiene" not in rubric.items
    assert rubric.items["alerting"].checks["no_false_alarms"].points == 8
    assert "objective_alert" in rubric.items["alerting"].checks
    assert rubric.items["drift"].expected_points == 11, "a plus leaves the item's points"
    assert rubric.tolerances.detection_grace_seconds == 40 and rubric.level == "test"
    assert "hygiene" not in rubric.improvement_priority
    assert rubric.total == base.total - 15 + 20 + 5 + 3 - 4 - 10
    with pytest.raises(
        OverlayError,
        match=r"items\.alerting\.checks\.objective_alert: a check the rubric does not have needs points and advice",
    ):
        overlaid(
            base, RubricOverlay.model_validate({"items": {"alerting": {"checks": {"objective_alert": {"plus": True}}}}})
        )


def test_a_rubric_may_name_an_extra_check_but_not_invent_one(tmp_path):
    text = DEFAULT_RUBRIC.read_text().replace(
        "      severity_and_summary:\n",
        "      objective_alert:\n        points: 2\n        advice: an objective\n      severity_and_summary:\n",
    )
    path = tmp_path / "rubric.yaml"
    path.write_text(text)
    assert "objective_alert" in load_rubric(path).items["alerting"].checks
    path.write_text(text.replace("objective_alert:", "objective_alarm:"))
    with pytest.raises(ValueError, match="no such check"):
        load_rubric(path)


def test_a_plus_is_reported_beside_the_score_and_never_counted():
    def item(plus_passed: bool) -> ItemResult:
        return ItemResult(
            "drift",
            "Data drift",
            [
                CheckResult("moves_after_drift", 7, 7, True, ""),
                CheckResult("right_feature", 4 if plus_passed else 0, 4, plus_passed, "", plus=True),
            ],
        )

    assert item(True).points == item(False).points == 7 and item(True).max_points == 7
    assert [c.name for c in item(True).plus] == ["right_feature"]


def test_the_junior_solution_scores_higher_at_the_junior_level_than_at_the_senior_level_as_its_band_says():
    """Its band's score (the middle of each item's band, over the points that apply) is higher at the junior level
    than at the senior level, by a clear margin; each level's play checks that the grade lands in the band."""

    def share(level: str) -> float:
        rubric = load_level(level).rubric()
        # junior-smoke plays no error: errors_counted leaves the total there
        not_played = rubric.items["system"].checks["errors_counted"].points if level == "junior" else 0.0
        return 100 * sum((low + high) / 2 for low, high in junior_band(level).values()) / (rubric.total - not_played)

    assert share("junior") > share("senior") + 10, (share("junior"), share("senior"))


# --- what the extra checks read -------------------------------------------------------------------------------------


def test_a_next_step_is_a_runbook_or_an_instruction_in_the_description():
    assert names_next_step({"runbook_url": "https://wiki/churn"})
    assert names_next_step({"description": "Check the upstream feed, then roll back the release."})
    assert not names_next_step({"summary": "Accuracy is below 0.7", "description": "The model is worse."})


def test_promql_readings_for_the_practice_checks():
    guarded = "churn_model_accuracy < 0.7 and churn_window_labels >= 50 unless on() maintenance == 1"
    assert promql.thresholds(guarded) == [0.7]
    assert [op for _, op in promql.filters(guarded)] == ["and", "unless"]
    assert promql.selected(promql.filters(guarded)[0][0]) == {"churn_window_labels"}
    assert promql.ratio_over_window(
        'sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 14.4 * 0.001'
    )
    assert promql.ratio_over_window("avg_over_time(up[10m]) < 0.99")
    assert promql.ratio_over_window("avg_over_time((latency_p95 < bool 0.3)[10m:1m]) < 0.95")
    assert not promql.ratio_over_window("histogram_quantile(0.95, sum by (le) (rate(latency_bucket[5m]))) > 0.25")
    assert not promql.ratio_over_window("avg_over_time(latency_p95[5m]) > 0.3")
    assert promql.matcher_values('drift_score{feature="tenure_months"} > 0.2') == {"tenure_months"}
    assert promql.thresholds("x > 14.4 * 0.001") == [pytest.approx(0.0144)]


def test_a_threshold_is_argued_when_notes_name_the_alert_with_a_number_or_state_the_threshold():
    notes = passages(
        "# Notes\n\n| alert | why |\n|---|---|\n| AccuracyLow | under 0.7: holdout is 0.81 |\n\n"
        "Latency: I page when p95 is over 250 ms, the CRM's timeout.\n\n- DriftHigh exists too.\n"
    )
    assert argued(notes, "AccuracyLow", [0.7])
    assert argued(notes, "LatencyHigh", [0.25]), "250 ms is 0.25 s"
    assert not argued(notes, "DriftHigh", [0.2]), "named without a threshold"


# --- sessions at a level ----------------------------------------------------------------------------------------------


@pytest.fixture
def sessions_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MLSANDBOX_SESSIONS_DIR", str(tmp_path / "sessions"))
    return tmp_path / "sessions"


def _stored(name: str, level: str | None):
    from mlsandbox.layout import Ports
    from mlsandbox.sessions.lifecycle import prepare_workspace
    from mlsandbox.sessions.store import SessionRecord, StoredSession, session_layout

    layout = session_layout(name)
    layout.root.mkdir(parents=True)
    origin = prepare_workspace(layout, None, load_level(level) if level else None)
    record = SessionRecord(name=name, backend="native", play=None, ports=Ports.block(20000), source=origin, level=level)
    record.save(layout)
    return StoredSession(layout, record)


def test_a_session_keeps_its_level_and_is_graded_briefed_and_timed_by_it(sessions_dir):
    from mlsandbox.sessions.grading import session_rubric
    from mlsandbox.sessions.lifecycle import brief_template, round_minutes
    from mlsandbox.sessions.store import load

    junior = _stored("ana", "junior")
    assert (junior.layout.candidate / "app" / "monitoring.py").read_text() == (
        LEVELS_DIR / "scaffolds" / "junior" / "app" / "monitoring.py"
    ).read_text()
    assert json.loads(junior.layout.record.read_text())["level"] == "junior"
    assert brief_template(junior.layout).read_text() == level_brief(load_level("junior"))
    assert round_minutes(junior) == 10
    rubric = session_rubric(load("ana"), None)
    assert rubric.level == "junior" and rubric.items["predictions"].expected_points == 20
    # Its own copy of the level: an edit of levels/ afterwards changes none of its grades.
    copy = junior.layout.level
    copy.write_text(copy.read_text().replace("predictions: {points: 20}", "predictions: {points: 30}"))
    assert session_rubric(load("ana"), None).items["predictions"].expected_points == 30
    plain = _stored("old", None)
    assert session_rubric(plain, None) == load_rubric() and round_minutes(plain) == 15
    assert brief_template(plain.layout) == STARTER / "CANDIDATE.md"


def test_compare_across_levels_says_so_and_compares_points_per_item_as_percentages():
    from test_session_parts import _grade

    from mlsandbox.sessions.summary import compare_note, compare_rows

    junior = _grade("final", {"drift": 5, "system": 10}, {})
    junior = junior.model_copy(update={"max_items": {"drift": 10, "system": 20}, "plus_points": 4, "plus_max": 8})
    senior = _grade("final", {"drift": 12, "system": 15}, {})
    rows = compare_rows({"ana": junior, "ben": senior}, None, {"ana": "junior", "ben": "senior"})
    assert ["level", "", "junior", "senior"] in rows
    assert ["drift", "%", "50%", "80%"] in rows and ["system", "%", "50%", "100%"] in rows
    assert ["plus (beside the score)", "", "4/8", ""] in rows
    note = compare_note({"ana": "junior", "ben": "senior"})
    assert "different levels (ana junior, ben senior)" in note and "percentages" in note
    same = compare_rows({"ana": senior, "ben": senior}, None, {"ana": "senior", "ben": "senior"})
    assert ["drift", "15", "12", "12"] in same and compare_note({"ana": "senior", "ben": "senior"}) is None


def test_the_console_shows_a_rooms_level_and_grades_it_with_the_levels_rubric(tmp_path):
    from fastapi.testclient import TestClient
    from test_console_app import TOKEN, NoGrader, StubRooms

    from mlsandbox.console.app import create_app
    from mlsandbox.console.rooms import Room
    from mlsandbox.console.views import Grader

    room = Room("ana", "session", "ended", tmp_path / "run", None, tmp_path, None, level=load_level("senior"))
    client = TestClient(create_app(TOKEN, StubRooms([room]), NoGrader()))
    page = client.get(f"/room/ana?token={TOKEN}").text
    assert 'data-level="senior"' in page and "60–90 minutes" in page
    assert client.get("/api/rooms").json()[0]["level"] == "senior"
    assert Grader(StubRooms([room])).rubric_for(room).level == "senior"
    plain = Room("bob", "session", "ended", tmp_path / "run", None, tmp_path, None)
    assert Grader(StubRooms([plain])).rubric_for(plain).level is None
