"""A day of interviews on one sandbox, on the real stack: two sessions at once playing `smoke` (the reference
solution in one, the bare starter in the other), each graded on its own data; the starter's improvement round,
in which the candidate adds the reference's monitoring and an incident gets detected; a production-sized
solution's round that only changes an alert rule, judged by replaying the rules over its main play; the archive, a
re-grade after the next candidate ran, the work history, an interrupted session, and the refusals.

The fixture plays the day once and records what it saw; the tests check the records, in any order.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import time
from pathlib import Path

import candidates
import httpx
import pytest
from conftest import port
from driver import Driver, wait_for

from load.truth import read_timeline
from mlsandbox.layout import REPO_ROOT, Ports
from mlsandbox.sessions.store import SessionLayout, SessionRecord
from mlsandbox.stack.processes import port_is_free
from mlsandbox.stack.state import SandboxState

pytestmark = [pytest.mark.stack, pytest.mark.timeout(1200)]

HOME_PORTS = Ports.block(port(16000))  # the home run directory's (the shared MLflow's) ports
REF_PORTS, STARTER_PORTS, THIRD_PORTS, PROD_PORTS = port(16100), port(16200), port(16300), port(16400)
SNAPSHOT_SECONDS = 2
ROUND_MINUTES = 1.0
PROD_ROUND_MINUTES = 0.25  # the production-sized solution's round: its 80-s scenario in 15 s
GRACE_SECONDS = 32  # the rubric's resolve grace (30 s) and a scrape


class Day:
    def __init__(self, base):
        self.base = base
        self.sessions = base / "sessions"
        self.home = Driver(
            base / "run",
            HOME_PORTS,
            extra_env={
                "MLSANDBOX_SESSIONS_DIR": str(self.sessions),
                "MLSANDBOX_SNAPSHOT_SECONDS": str(SNAPSHOT_SECONDS),
            },
        )
        self.cli = self.home.cli
        self.seen: dict = {}

    def layout(self, name: str) -> SessionLayout:
        return SessionLayout(self.sessions / name)

    def record(self, name: str) -> SessionRecord:
        return SessionRecord.model_validate_json(self.layout(name).record.read_text())

    def url(self, base_port: int, component: str) -> str:
        return f"http://127.0.0.1:{getattr(Ports.block(base_port), component)}"

    def wait_played(self, name: str, extra: float = GRACE_SECONDS) -> None:
        run = self.layout(name).run.root
        wait_for(
            lambda: (t := read_timeline(run)) is not None and t.status == "finished",
            400,
            2,
            f"{name}'s scenario to finish",
        )
        time.sleep(max(0.0, read_timeline(run).phases[-1].end + extra - time.time()))

    def stop_everything(self) -> None:
        for name in ("ref", "starter", "prod", "third"):
            if self.layout(name).record.exists() and self.record(name).ended_at is None:
                self.cli("session", "end", "--session", name, check=False, timeout=600)
        self.cli("down", check=False)


def _tree(folder) -> dict[str, bytes]:
    """Every file of a folder (caches aside) and its content."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _kill_stack(layout: SessionLayout) -> None:
    """As a reboot would: every process of the session's sandbox gone, nothing cleaned up."""
    state = SandboxState.load(layout.run)
    for comp in state.components:
        try:
            os.killpg(comp.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    d = Day(tmp_path_factory.mktemp("day"))
    seen = d.seen
    seen["starter_repo before"] = _tree(REPO_ROOT / "starter_repo")
    try:
        seen["start ref"] = d.cli(
            "session",
            "start",
            "ref",
            "--candidate",
            str(REPO_ROOT / "reference_solution"),
            "--scenario",
            "smoke",
            "--seed",
            "7",
            "--ports",
            str(REF_PORTS),
        )
        seen["start starter"] = d.cli(
            "session", "start", "starter", "--scenario", "smoke", "--seed", "7", "--ports", str(STARTER_PORTS)
        )
        # A production-sized solution (a 20-s average of accuracy held for 20 s) on a scenario written here, whose
        # 30-s concept drift its alert could see, had its threshold been reachable.
        scenario = d.base / "long-phases.yaml"
        scenario.write_text(candidates.LONG_PHASES_SCENARIO)
        prod = candidates.production_sized(d.base / "production-sized")
        seen["start prod"] = d.cli(
            "session",
            "start",
            "prod",
            "--candidate",
            str(prod),
            "--scenario",
            str(scenario),
            "--ports",
            str(PROD_PORTS),
        )
        # Right after start, Prometheus has already scraped each server once it was up: the reference's target is
        # up, the bare starter's down (no /metrics yet), as the brief says.
        for name, ports in (("ref", REF_PORTS), ("starter", STARTER_PORTS)):
            targets = httpx.get(f"{d.url(ports, 'prometheus')}/api/v1/targets", timeout=5).json()
            seen[f"{name} target right after start"] = next(
                t["health"] for t in targets["data"]["activeTargets"] if t["labels"]["job"] == "model-server"
            )
        seen["status, two running"] = d.cli("status", check=False)
        # `down` (make down) on the home run directory stops nothing of a session, and names those still running.
        seen["down, two running"] = d.cli("down", check=False)
        # Locust plays without its web UI in an interview: nothing answers on the session's Locust port.
        seen["locust port answers"] = port_is_free("127.0.0.1", Ports.block(REF_PORTS).locust) is False
        seen["ref status"] = json.loads(d.cli("status", "--session", "ref", "--json").stdout)
        seen["second start"] = d.cli("session", "start", "ref", "--scenario", "smoke", check=False)
        # The candidate saves a helper script outside app/: a snapshot, and no reload of the server.
        scratch = d.layout("starter").candidate / "scratch.py"
        scratch.write_text("# trying things out\n")
        seen["scratch saved at"] = time.time()

        # Its improvement round, asked for as soon as the main play ends (graded once the resolve grace passed); the
        # candidate only fixes the alert's threshold.
        d.wait_played("prod", extra=0)
        seen["improve prod"] = d.cli("session", "improve", "--session", "prod", "--minutes", str(PROD_ROUND_MINUTES))
        candidates.production_rules(d.layout("prod").candidate, 0.7)
        d.cli("reload", "--session", "prod")

        d.wait_played("ref")
        d.wait_played("starter", extra=0)
        seen["starter graded live"] = json.loads(d.cli("grade", "--session", "starter", "--json").stdout)
        seen["starter log before the round"] = (d.layout("starter").run.log("model-server")).read_text()
        seen["end ref"] = d.cli("session", "end", "--session", "ref", timeout=600)

        # The improvement round: the candidate adds the reference's monitoring while the incidents replay.
        seen["end prod"] = d.cli("session", "end", "--session", "prod", timeout=600)
        seen["improve"] = d.cli("session", "improve", "--session", "starter", "--minutes", str(ROUND_MINUTES))
        workspace = d.layout("starter").candidate
        for folder in ("app", "alerts", "dashboards"):
            shutil.copytree(REPO_ROOT / "reference_solution" / folder, workspace / folder, dirs_exist_ok=True)
        wait_for(
            lambda: "churn" in httpx.get(f"{d.url(STARTER_PORTS, 'model_server')}/metrics", timeout=5).text,
            60,
            1,
            "the server to reload the reference app",
        )
        d.cli("reload", "--session", "starter")
        d.wait_played("starter")
        seen["end starter"] = d.cli("session", "end", "--session", "starter", timeout=600)

        # The next candidate, after both: a workspace from the untouched starter; then the machine "reboots".
        seen["start third"] = d.cli("session", "start", "third", "--no-load", "--ports", str(THIRD_PORTS))
        seen["third workspace"] = filecmp.dircmp(
            REPO_ROOT / "starter_repo", d.layout("third").candidate, ignore=["__pycache__"]
        )
        seen["starter_repo after"] = _tree(REPO_ROOT / "starter_repo")
        _kill_stack(d.layout("third"))
        seen["list with interrupted"] = json.loads(d.cli("session", "list", "--json").stdout)
        seen["end interrupted"] = d.cli("session", "end", "--session", "third", check=False)
        seen["end again"] = d.cli("session", "end", "--session", "third", check=False)

        seen["regrade ref"] = d.cli("grade", "--session", "ref", "--json")
        seen["compare csv"] = d.cli("session", "compare", "ref", "starter", "--csv").stdout
        seen["bad name"] = d.cli("session", "start", "../escape", check=False)
        seen["unknown"] = d.cli("grade", "--session", "nobody", check=False)
        yield d
    finally:
        d.stop_everything()


def _one_line_refusal(result, *words):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_an_interview_plays_its_traffic_without_locusts_web_ui(day):
    load = next(c for c in day.seen["ref status"] if c["name"] == "load")
    assert load["state"] == "healthy" and load["url"] == "", load
    assert day.seen["locust port answers"] is False
    assert "headless, no web UI" in day.seen["start ref"].stdout


def test_two_sessions_at_once_are_each_graded_on_their_own_data(day):
    ref = day.record("ref").final
    assert ref.score >= 95, ref
    assert day.seen["starter graded live"]["score"] <= 10, day.seen["starter graded live"]["items"]
    # Each on its own ports, as printed at start.
    assert f"127.0.0.1:{Ports.block(REF_PORTS).prometheus}" in day.seen["start ref"].stdout
    assert f"127.0.0.1:{Ports.block(STARTER_PORTS).model_server}" in day.seen["start starter"].stdout


def test_the_improvement_round_detects_an_incident_the_first_play_missed(day):
    record = day.record("starter")
    before = next(g for g in record.grades if g.label == "before the round")
    final = record.final
    assert record.round is not None and record.round.improvement["text"]
    caught_before = [k for k, v in before.detections.items() if v is not None]
    caught_after = [k for k, v in final.detections.items() if v is not None]
    assert len(caught_after) > len(caught_before), (before.detections, final.detections)
    assert final.items["alerting"] > before.items["alerting"]
    summary = day.layout("starter").summary.read_text()
    assert "The improvement round" in summary and "app/main.py" in summary
    assert "alerts/churn-model.yml" in day.layout("starter").round_diff.read_text()
    # The main play's truth was kept aside, the round's is the session's.
    assert (day.layout("starter").plays / "main" / "scenario" / "timeline.json").exists()
    # The new alerts read metrics first exposed in the round, and react within the round's compression: judged on
    # the round's own play.
    report = json.loads((Path(final.report) / "report.json").read_text())
    assert report["round"]["judgement"] == "the round's play", report["round"]
    assert "first exposed during the round" in report["round"]["why"]


def _check(report: dict, item: str, name: str) -> dict:
    return next(c for i in report["items"] if i["key"] == item for c in i["checks"] if c["name"] == name)


def test_a_round_that_only_changed_an_alert_rule_is_credited_on_the_main_plays_incidents(day):
    record = day.record("prod")
    before = next(g for g in record.grades if g.label == "before the round")
    final = record.final
    # Before the round the threshold could not be reached; with the rules as they are at the end of the round,
    # replayed over the main play, the concept drift is caught, and the alerting item rises.
    assert before.detections["concept_drift"] is None
    assert final.detections["concept_drift"] is not None, final.detections
    assert final.items["alerting"] > before.items["alerting"], (before.items, final.items)
    report = json.loads((Path(final.report) / "report.json").read_text())
    assert report["round"]["judgement"] == "replay over the main play", report["round"]
    [concept] = [i for i in report["round"]["incidents"] if i["incident"] == "concept_drift"]
    assert concept["before"] is None and concept["after"] == "ChurnAccuracyLow", concept
    assert _check(report, "alerting", "incidents_detected")["summary"].startswith("replay over the main play: ")
    # The round's own 15-s replay could not show it (a 20-s average held 20 s): judged on it, the item would fall.
    assert report["round"]["round_play_points"]["incidents_detected"] == 0, report["round"]
    # The main play was graded once the resolve grace had passed, not while its alerts could still resolve.
    assert "waiting" in day.seen["improve prod"].stdout
    before_report = json.loads((Path(before.report) / "report.json").read_text())
    assert _check(before_report, "alerting", "resolved_after_recovery")["applicable"], before_report["not_applicable"]


def test_the_archive_holds_what_a_reviewer_needs(day):
    layout = day.layout("ref")
    run = layout.run
    for path in (
        layout.candidate / "app" / "main.py",
        layout.history / "HEAD",
        run.timeline,
        run.ledger,
        run.predictions,
        run.notifications,
        layout.metrics_body,
        layout.rule_files / "churn-model.yml",
        layout.rules / "rules.json",
        layout.report("final") / "report.html",
        layout.summary,
    ):
        assert path.exists() and path.stat().st_size > 0, path
    assert any(run.prometheus_data.glob("*")), "no Prometheus data"
    assert "# HELP" in layout.metrics_body.read_text()
    assert read_timeline(run.root).status == "finished"


def test_regrading_an_archived_session_after_the_next_one_gives_its_score(day):
    regraded = json.loads(day.seen["regrade ref"].stdout)
    assert regraded["score"] == day.record("ref").final.score


def test_a_file_saved_during_the_session_is_a_snapshot_with_its_time(day):
    from mlsandbox.sessions.history import History

    layout = day.layout("starter")
    snaps = History(layout.candidate, layout.history).log()
    saved = day.seen["scratch saved at"]
    with_scratch = [s for s in snaps if "scratch.py" in s.files]
    assert with_scratch, [(s.message, s.files) for s in snaps]
    assert saved - 1 <= with_scratch[0].time <= saved + SNAPSHOT_SECONDS + 5
    assert not (layout.candidate / ".git").exists()


def test_a_file_saved_outside_app_does_not_restart_the_server(day):
    assert "Reloading" not in day.seen["starter log before the round"]


def test_prometheus_has_scraped_the_server_when_start_returns(day):
    assert day.seen["ref target right after start"] == "up"
    assert day.seen["starter target right after start"] == "down"


def test_the_next_candidate_starts_from_the_untouched_starter(day):
    cmp = day.seen["third workspace"]
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files, cmp.report()
    assert not [s for s in cmp.subdirs.values() if s.diff_files or s.left_only or s.right_only]
    assert day.seen["starter_repo after"] == day.seen["starter_repo before"]


def test_an_interrupted_session_is_listed_so_and_can_still_be_ended(day):
    states = {row["name"]: row["state"] for row in day.seen["list with interrupted"]}
    assert states == {"ref": "ended", "starter": "ended", "prod": "ended", "third": "interrupted"}
    assert day.seen["end interrupted"].returncode == 0, day.seen["end interrupted"].stderr
    assert day.record("third").ended_at is not None
    assert day.layout("third").summary.exists()
    _one_line_refusal(day.seen["end again"], "already ended")


def test_refusals_are_one_line_and_change_nothing(day):
    _one_line_refusal(day.seen["status, two running"], "ref", "starter", "--session")
    _one_line_refusal(day.seen["second start"], "already exists")
    _one_line_refusal(day.seen["bad name"], "path separator")
    _one_line_refusal(day.seen["unknown"], "no session 'nobody'")
    assert sorted(p.name for p in day.sessions.iterdir()) == ["prod", "ref", "starter", "third"]


def test_compare_puts_sessions_side_by_side_as_csv(day):
    rows = [line.split(",") for line in day.seen["compare csv"].strip().splitlines()]
    assert rows[0] == ["item", "out of", "ref", "starter"]
    score = next(r for r in rows if r[0] == "score %")
    assert float(score[2]) == day.record("ref").final.score
    assert any(r[0].startswith("detection seconds:") for r in rows)


def test_down_names_the_sessions_still_running_and_how_to_end_each(day):
    down = day.seen["down, two running"]
    assert down.returncode == 0, down.stderr
    for name in ("ref", "starter"):
        assert f"session {name}: `mlsandbox session end --session {name}`" in down.stdout, down.stdout
    server = next(c for c in day.seen["ref status"] if c["name"] == "model-server")
    assert server["state"] == "healthy", "a session stopped with `down`"
