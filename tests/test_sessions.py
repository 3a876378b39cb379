"""A day of interviews on one sandbox, on the real stack: two sessions at once playing `smoke` (the reference
solution in one, the bare starter in the other), each graded on its own data; the starter's improvement round,
in which the candidate adds the reference's monitoring and an incident gets detected; a production-sized
solution's round that only changes an alert rule, judged by replaying the rules over its main play; the archive, a re-grade
after the next candidate ran, the work history, an interrupted session, and the refusals. Two interviewers score
the reference's session while it plays (one on the command line, one in the console, in Chromium), and its
debrief is written after its end, opened in Chromium and printed to PDF.

The fixture plays the day once and records what it saw; the tests check the records, in any order.
"""

from __future__ import annotations

import csv
import filecmp
import io
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
ROUND_MINUTES = 1.5  # long enough that the round's incidents come after the browser's save on a loaded machine
PROD_ROUND_MINUTES = 0.25  # the production-sized solution's round: its 80-s scenario in 15 s
GRACE_SECONDS = 32  # the rubric's resolve grace (30 s) and a scrape
# What a page in Chromium may take to show what it is waited for: the console answers late while four plays run.
BROWSER_SECONDS = 120


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
        # A session's Prometheus and Alertmanager answer under a path of their own (its room proxies them there).
        path = {"prometheus": "/prometheus", "alertmanager": "/alertmanager"}.get(component, "")
        return f"http://127.0.0.1:{getattr(Ports.block(base_port), component)}{path}"

    def shell(self, name: str, *command: str):
        return self.cli("session", "shell", "--session", name, "--", *command, check=False, timeout=120)

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
        # On a loaded machine ref's 90-s play may be over by now, and its Locust with it.
        seen["ref play at status"] = (timeline := read_timeline(d.layout("ref").run.root)) and timeline.status
        seen["second start"] = d.cli("session", "start", "ref", "--scenario", "smoke", check=False)
        seen["shell"] = _shell_checks(d)
        seen["room refusals"] = _room_refusals(d, "ref")
        seen["room after jupyterlab killed"] = _kill_and_restart_the_room(d, "ref")
        # The candidate saves a helper script outside app/: a snapshot, and no reload of the server.
        scratch = d.layout("starter").candidate / "scratch.py"
        scratch.write_text("# trying things out\n")
        seen["scratch saved at"] = time.time()
        # While the plays go on: two interviewers score ref, ben on the command line, ana in the console.
        timings, t0 = {}, time.monotonic()
        seen["scores"] = _score(d, "ref")
        seen["delete running"] = d.cli("session", "delete", "--session", "starter", "--yes", check=False)
        timings["scoring"] = time.monotonic() - t0

        # Its improvement round, asked for as soon as the main play ends (graded once the resolve grace passed); the
        # candidate only fixes the alert's threshold.
        d.wait_played("prod", extra=0)
        seen["improve prod"] = d.cli("session", "improve", "--session", "prod", "--minutes", str(PROD_ROUND_MINUTES))
        candidates.production_rules(d.layout("prod").candidate, 0.7)
        d.cli("reload", "--session", "prod")

        t0 = time.monotonic()
        d.wait_played("ref")
        timings["then waiting for ref's play"] = time.monotonic() - t0
        d.wait_played("starter", extra=0)
        seen["starter graded live"] = json.loads(d.cli("grade", "--session", "starter", "--json").stdout)
        seen["starter log before the round"] = _server_log(d.layout("starter")).read_text()
        seen["end ref"] = d.cli("session", "end", "--session", "ref", timeout=600)

        seen["end prod"] = d.cli("session", "end", "--session", "prod", timeout=600)
        # The improvement round: the candidate adds the reference's monitoring while the incidents replay, and
        # loads its rules at once, so that they watch the round from its start whatever the browser below takes
        # on a loaded machine.
        seen["improve"] = d.cli("session", "improve", "--session", "starter", "--minutes", str(ROUND_MINUTES))
        workspace = d.layout("starter").candidate
        for folder in ("app", "alerts", "dashboards"):
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(
                REPO_ROOT / "reference_solution" / folder, workspace / folder, dirs_exist_ok=True, ignore=ignore
            )
        seen["reload-rules"] = d.shell("starter", "reload-rules")
        starter_server = d.url(STARTER_PORTS, "model_server")
        wait_for(lambda: "churn" in _body(f"{starter_server}/metrics"), 120, 1, "the server to reload on the copy")
        # Then a file is saved again through the candidate's room, in a browser: the server reloads on it.
        seen["room in a browser"] = _in_the_room(d, "starter")
        # The committee's page for ref, ended a minute ago, while the starter's round plays.
        t0 = time.monotonic()
        seen["debrief"] = _debrief(d, "ref")
        timings["debrief"] = time.monotonic() - t0
        timings["debrief command, with the PDF"] = seen["debrief"]["seconds"]
        t0 = time.monotonic()
        d.wait_played("starter")
        timings["then waiting for the round's play"] = time.monotonic() - t0
        # What the scorecards and the debrief cost the day: nothing while the plays still had to be waited for.
        SCORE_SHOTS.mkdir(parents=True, exist_ok=True)
        (SCORE_SHOTS / "timings.json").write_text(json.dumps(timings, indent=2))
        seen["end starter"] = d.cli("session", "end", "--session", "starter", timeout=600)

        # The next candidate, after both: a workspace from the untouched starter; then the machine "reboots".
        seen["start third"] = d.cli("session", "start", "third", "--no-load", "--ports", str(THIRD_PORTS))
        # The starter's files, plus what the room adds: the brief rendered for it, and docs/.
        seen["third workspace"] = filecmp.dircmp(
            REPO_ROOT / "starter_repo", d.layout("third").candidate, ignore=["__pycache__", "CANDIDATE.md", "docs"]
        )
        seen["third room files"] = sorted(p.name for p in d.layout("third").candidate.iterdir())
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


# --- the candidate's room -------------------------------------------------------------------------------------
ROOM_SHOTS = REPO_ROOT / "run" / "test-output" / "room"


def _shell_checks(d: Day) -> dict:
    """`session shell` in the ref session's room: what the candidate can and cannot reach."""
    ref, starter = Ports.block(REF_PORTS), Ports.block(STARTER_PORTS)

    def fetch(url: str) -> tuple[str, ...]:
        return (
            "python",
            "-c",
            f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())",
        )

    return {
        "ls": d.shell("ref", "ls"),
        "the answer key": d.shell("ref", "cat", str(REPO_ROOT / "reference_solution" / "app" / "main.py")),
        "the truth": d.shell("ref", "cat", str(d.layout("ref").run.timeline)),
        "another workspace": d.shell("ref", "ls", str(d.layout("starter").candidate)),
        "another prometheus": d.shell("ref", *fetch(f"http://127.0.0.1:{starter.prometheus}/prometheus/-/ready")),
        "the console": d.shell("ref", *fetch(f"http://127.0.0.1:{HOME_PORTS.console}/health")),
        "its own server": d.shell("ref", *fetch(f"http://127.0.0.1:{ref.model_server}/health")),
        "its own prometheus": d.shell("ref", *fetch(f"http://127.0.0.1:{ref.prometheus}/prometheus/-/ready")),
        "tmp filled": d.shell("ref", "dd", "if=/dev/zero", "of=/tmp/fill", "bs=1M", "count=400"),
    }


def _room_refusals(d: Day, name: str) -> dict:
    """What the room's door answers without its token, with another, and for a path outside the workspace."""
    door, token = f"http://127.0.0.1:{Ports.block(REF_PORTS).room}", d.record(name).room.token
    get = lambda path: httpx.get(f"{door}{path}", timeout=10, follow_redirects=False)  # noqa: E731
    return {
        "no token": [get(p).status_code for p in ("/lab", "/api/contents", "/prometheus/-/ready", "/dashboards/")],
        "wrong token": get("/api/contents?token=not-the-token").status_code,
        "with token": get(f"/api/contents?token={token}").json()["content"],
        "escape": [
            get(f"/api/contents/{p}?token={token}").status_code
            for p in ("..%2F..%2Frun%2Fscenario", "%2Fetc%2Fpasswd", "..%2Fhistory.git")
        ],
    }


def _kill_and_restart_the_room(d: Day, name: str) -> dict:
    """The candidate kills their JupyterLab: the session goes on, the shell still works, `restart workspace`
    brings the room back."""
    import psutil

    state = SandboxState.load(d.layout(name).run)
    supervisor = next(c for c in state.components if c.name == "workspace")
    lab = next(p for p in psutil.Process(supervisor.pid).children(recursive=True) if "jupyter" in " ".join(p.cmdline()))
    lab.kill()
    seen = {
        "room stopped": wait_for(
            lambda: any(c["name"] == "workspace" and c["state"] == "stopped" for c in _status(d, name)) and True,
            BROWSER_SECONDS,
            0.5,
            "the room to stop",
        )
    }
    seen["status"] = {c["name"]: c["state"] for c in _status(d, name)}
    seen["shell"] = d.shell(name, "ls")
    seen["restart"] = d.cli("restart", "workspace", "--session", name, check=False)
    token = d.record(name).room.token
    seen["back"] = httpx.get(f"http://127.0.0.1:{Ports.block(REF_PORTS).room}/api/status?token={token}", timeout=10)
    return seen


def _status(d: Day, name: str) -> list[dict]:
    return json.loads(d.cli("status", "--session", name, "--json").stdout)


def _server_log(layout: SessionLayout):
    """The candidate's model server's own output: in its sandbox's log (the one named after the server is the
    door's that forwards to it), else the server's."""
    sandboxed = layout.run.log("model-server-sandbox")
    return sandboxed if sandboxed.exists() else layout.run.log("model-server")


def _body(url: str) -> str:
    """What `url` answers, or "" while it does not answer (a server reloading under a loaded machine)."""
    try:
        return httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return ""


def _in_the_room(d: Day, name: str) -> dict:
    """The candidate's link in Chromium: JupyterLab on the workspace; a file of the reference's monitoring saved
    again through it (the server reloads); the proxied Prometheus's targets; the live dashboards."""
    from browser import chromium

    link, seen = d.record(name).link, {}
    door = link.split("/lab")[0]
    server = d.url(STARTER_PORTS, "model_server")
    with chromium(1400, 900) as browser:
        browser.get(link)
        seen["files"] = wait_for(
            lambda: browser.execute_script(
                "return [...document.querySelectorAll('.jp-DirListing-itemName')].map(e => e.innerText)"
            ),
            60,
            1,
            "JupyterLab's file browser",
        )
        ROOM_SHOTS.mkdir(parents=True, exist_ok=True)
        time.sleep(2)
        browser.save_screenshot(str(ROOM_SHOTS / "room.png"))
        code = (REPO_ROOT / "reference_solution" / "app" / "monitoring.py").read_text() + "\n# saved in the room\n"
        log = _server_log(d.layout(name))
        reloads = log.read_text().count("Reloading")
        seen["saved"] = browser.execute_async_script(
            """const [path, text, done] = arguments;
            const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || "";
            fetch("/api/contents/" + path, {method: "PUT",
              headers: {"Content-Type": "application/json", "X-XSRFToken": decodeURIComponent(xsrf)},
              body: JSON.stringify({type: "file", format: "text", content: text})})
              .then((answer) => done(answer.status), (error) => done(String(error)));""",
            "app/monitoring.py",
            code,
        )
        seen["reloaded"] = wait_for(
            lambda: log.read_text().count("Reloading") > reloads and "churn" in _body(f"{server}/metrics"),
            60,
            1,
            "the server to reload on the save",
        )

        def targets_page() -> str | bool:
            # The classic targets page is drawn once per load: loaded again until the server, just reloaded on the
            # save, has been scraped up.
            browser.get(f"{door}/prometheus/classic/targets")
            body = browser.find_element("tag name", "body").text
            return "model-server (1/1 up)" in body and body

        seen["targets"] = wait_for(targets_page, 90, 2, "the proxied Prometheus to show the model server up")
        browser.get(f"{door}/dashboards/")
        seen["dashboards"] = wait_for(
            lambda: browser.execute_script(
                "return [...document.querySelectorAll('.panel')].filter(p => p.querySelector('canvas')).length"
            ),
            60,
            1,
            "the live dashboards to draw a panel",
        )
        browser.save_screenshot(str(ROOM_SHOTS / "dashboards.png"))
    return seen


# --- scorecards and the debrief --------------------------------------------------------------------------------
SCORE_SHOTS = REPO_ROOT / "run" / "test-output" / "scorecard"
BEN = {"implementation": 4, "code_quality": 2, "explanation": 3, "production": 3, "feedback": 3}
ANA = {"implementation": 4, "code_quality": 4, "explanation": 3, "production": 4, "feedback": 3}


def _score(d: Day, name: str) -> dict:
    """ben's card on the command line (and what it refuses), then ana's in the console's room page in Chromium:
    locked until her card is complete, then both cards and the calibration flag."""
    from browser import chromium

    seen: dict = {}
    score = ("session", "score", "--session", name)
    sets = [f"--set={k}={v}" for k, v in BEN.items()]
    seen["ben"] = d.cli(
        *score,
        "--interviewer",
        "ben",
        *sets,
        "--note",
        "code_quality=monitoring inside the handlers",
        "--recommend",
        "yes",
    )
    entries = d.layout(name).scorecards / "entries"
    before = len(list(entries.glob("*.json")))
    seen["refused"] = {
        "unknown competency": d.cli(*score, "--interviewer", "ana", "--set", "charisma=4", check=False),
        "off the scale": d.cli(*score, "--interviewer", "ana", "--set", "code_quality=5", check=False),
        "no such session": d.cli(
            "session", "score", "--session", "nobody", "--interviewer", "ana", "--set", "code_quality=3", check=False
        ),
    }
    seen["saved by the refused"] = len(list(entries.glob("*.json"))) - before
    token = (d.base / "run" / "console.token").read_text().strip()
    page = f"http://127.0.0.1:{HOME_PORTS.console}/room/{name}?token={token}"
    with chromium(1400, 2000) as browser:
        browser.get(page)
        wait_for(lambda: browser.find_elements("id", "interviewer"), BROWSER_SECONDS, 0.5, "the scorecard form")
        browser.execute_script("localStorage.clear()")
        browser.find_element("id", "interviewer").send_keys("ana")
        browser.find_element("id", "interviewer-open").click()
        wait_for(lambda: browser.find_elements("id", "scorecard-form"), BROWSER_SECONDS, 0.5, "ana's card")
        seen["locked"] = browser.execute_script(
            "return {waiting: document.getElementById('scorecard-waiting').dataset.waiting,"
            " cards: document.querySelectorAll('[data-card]').length}"
        )
        for cid, rating in ANA.items():
            browser.find_element("css selector", f'input[name="rating-{cid}"][value="{rating}"]').click()
        browser.find_element("css selector", 'textarea[name="note-explanation"]').send_keys(
            "drift threshold argued from data"
        )
        browser.find_element("css selector", 'input[name="recommendation"][value="strong_yes"]').click()
        browser.find_element("id", "scorecard-save").click()
        wait_for(
            lambda: browser.find_elements("id", "scorecard-all"),
            BROWSER_SECONDS,
            0.5,
            "every card, once ana's is complete",
        )
        seen["unlocked"] = browser.execute_script(
            "return {ratings: [...document.querySelectorAll('td[data-rating]')].map(e => [e.dataset.card,"
            " e.closest('tr').dataset.competency, e.dataset.rating]),"
            " recommendations: [...document.querySelectorAll('td[data-recommendation]')].map(e => [e.dataset.card,"
            " e.dataset.recommendation]),"
            " flags: [...document.querySelectorAll('[data-calibration]')].map(e => e.dataset.calibration)}"
        )
        SCORE_SHOTS.mkdir(parents=True, exist_ok=True)
        browser.execute_script("document.getElementById('scorecard').scrollIntoView()")
        browser.save_screenshot(str(SCORE_SHOTS / "console-scorecard.png"))
        # The candidate's work: NOTES.md rendered, and the workspace at the first snapshot through the slider.
        seen["notes"] = wait_for(
            lambda: browser.execute_script(
                "const h = document.querySelector('#file-body .markdown h1'); return h && h.innerText"
            ),
            BROWSER_SECONDS,
            0.5,
            "NOTES.md rendered",
        )
        browser.execute_script(
            "const s = document.getElementById('history-slider'); s.value = 0; s.dispatchEvent(new Event('input'))"
        )
        seen["first snapshot"] = wait_for(
            lambda: browser.execute_script(
                "const at = document.getElementById('history-label').dataset.at;"
                " const f = document.getElementById('file-body');"
                " return at && f.innerText.includes(at.slice(0, 8)) && {at: at, text: f.innerText,"
                " files: [...document.querySelectorAll('#tree-body .entry')].map(e => e.dataset.path)}"
            ),
            BROWSER_SECONDS,
            0.5,
            "the workspace at the first snapshot",
        )
        browser.execute_script("document.getElementById('work').scrollIntoView()")
        browser.save_screenshot(str(SCORE_SHOTS / "console-work.png"))
    seen["ben shows"] = d.cli(*score, "--interviewer", "ben", "--show").stdout
    return seen


def _debrief(d: Day, name: str) -> dict:
    """`session debrief --pdf`; the page opened in Chromium (every request it made), screenshotted; the PDF's pages
    rendered with pdftoppm and its text read with pdftotext."""
    import subprocess

    from browser import chromium, requests

    out = d.base / "debrief" / f"{name}.html"
    t0 = time.monotonic()
    seen = {"cli": d.cli("session", "debrief", "--session", name, "--out", str(out), "--pdf")}
    seen["seconds"] = time.monotonic() - t0
    seen["html"] = out.read_text()
    with chromium(1280, 2200, network_log=True) as browser:
        browser.get(out.as_uri())
        time.sleep(1)
        seen["requests"] = requests(browser)
        seen["console"] = [m["message"] for m in browser.get_log("browser")]
        seen["title"] = browser.title
        SCORE_SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCORE_SHOTS / "debrief.png"))
    pages = d.base / "debrief" / "page"
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(out.with_suffix(".pdf")), str(pages)], check=True)
    seen["pages"] = sorted(pages.parent.glob("page-*.png"))
    seen["pdf text"] = subprocess.run(
        ["pdftotext", str(out.with_suffix(".pdf")), "-"], capture_output=True, text=True, check=True
    ).stdout
    return seen


def _one_line_refusal(result, *words):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_an_interview_plays_its_traffic_without_locusts_web_ui(day):
    load = next(c for c in day.seen["ref status"] if c["name"] == "load")
    played = day.seen["ref play at status"] == "finished"
    assert (load["state"] == "healthy" or (played and load["state"] == "stopped")) and load["url"] == "", load
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
    # Nor does any other item fall for the compression: its accuracy, fine on the main play, is judged there.
    assert all(final.items[k] >= before.items[k] for k in before.items), (before.items, final.items)
    for key in (k for k in report["round"]["round_play_points"] if "." in k):  # a check the main play judged
        item, name = key.split(".")
        assert _check(report, item, name)["summary"].startswith("the main play: "), key
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
    assert day.seen["third room files"] == ["CANDIDATE.md", "alerts", "app", "dashboards", "docs"]


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


def test_the_candidates_link_opens_jupyterlab_on_the_workspace_and_a_save_reloads_the_server(day):
    seen = day.seen["room in a browser"]
    assert {"app", "alerts", "dashboards", "docs", "CANDIDATE.md"} <= set(seen["files"]), seen["files"]
    assert seen["saved"] in (200, 201) and seen["reloaded"]
    assert "model-server (1/1 up)" in seen["targets"]
    assert seen["dashboards"] >= 1
    assert f"candidate: http://127.0.0.1:{Ports.block(REF_PORTS).room}/lab/" in day.seen["start ref"].stdout


def test_the_room_shows_the_workspace_and_nothing_else_of_the_machine(day):
    shell = day.seen["shell"]
    assert shell["ls"].returncode == 0 and {"app", "alerts", "dashboards", "docs"} <= set(shell["ls"].stdout.split())
    for what in ("the answer key", "the truth", "another workspace"):
        assert shell[what].returncode != 0 and "No such file" in shell[what].stderr, (what, shell[what].stderr)
    for what in ("another prometheus", "the console"):
        assert shell[what].returncode != 0 and "Connection refused" in shell[what].stderr, (what, shell[what].stderr)
    assert '"status":"ok"' in shell["its own server"].stdout
    assert "Ready" in shell["its own prometheus"].stdout
    assert shell["tmp filled"].returncode != 0 and "No space left" in shell["tmp filled"].stderr


def test_the_room_answers_nothing_without_its_token_and_nothing_outside_the_workspace(day):
    refusals = day.seen["room refusals"]
    assert all(code in (302, 403) for code in refusals["no token"]), refusals
    assert refusals["wrong token"] == 403
    assert {"app", "alerts"} <= {entry["name"] for entry in refusals["with token"]}
    assert all(code in (400, 404) for code in refusals["escape"]), refusals["escape"]
    # Once the session ended, the link opens nothing.
    with pytest.raises(httpx.ConnectError):
        httpx.get(day.record("ref").link, timeout=5)


def test_a_room_whose_jupyterlab_was_killed_leaves_the_session_going_and_comes_back(day):
    seen = day.seen["room after jupyterlab killed"]
    assert seen["status"]["workspace"] == "stopped" and seen["status"]["model-server"] == "healthy"
    assert seen["shell"].returncode == 0 and "app" in seen["shell"].stdout
    assert seen["restart"].returncode == 0, seen["restart"].stderr
    assert seen["back"].status_code == 200
    assert day.record("ref").final.score >= 95


def test_reload_rules_in_the_room_loads_the_candidates_rules(day):
    reload = day.seen["reload-rules"]
    assert reload.returncode == 0 and "every rule evaluates" in reload.stdout, reload.stdout + reload.stderr


# --- scorecards, the debrief, deleting ---------------------------------------------------------------------------


def test_two_interviewers_score_one_in_the_console_one_on_the_command_line_independently(day):
    scores = day.seen["scores"]
    assert "ben: 5 of 5 rated" in scores["ben"].stdout
    # ana, in the console, saw that ben had scored, not what he gave, until her own card was complete.
    assert scores["locked"] == {"waiting": "ben", "cards": 0}
    got = {(who, cid): int(r) for who, cid, r in scores["unlocked"]["ratings"]}
    assert got == {**{("ana", k): v for k, v in ANA.items()}, **{("ben", k): v for k, v in BEN.items()}}
    assert sorted(scores["unlocked"]["recommendations"]) == [["ana", "strong_yes"], ["ben", "yes"]]
    assert scores["unlocked"]["flags"] == ["code_quality"]  # 4 against 2
    assert "ana" in scores["ben shows"] and "calibration: code_quality: ana 4, ben 2" in scores["ben shows"]


def test_a_scorecard_that_cannot_be_used_is_one_line_exit_2_and_saves_nothing(day):
    refused = day.seen["scores"]["refused"]
    _one_line_refusal(refused["unknown competency"], "no competency 'charisma'")
    _one_line_refusal(refused["off the scale"], "code_quality=5")
    _one_line_refusal(refused["no such session"], "no session 'nobody'")
    assert {k: r.returncode for k, r in refused.items()} == dict.fromkeys(refused, 2)
    assert day.seen["scores"]["saved by the refused"] == 0


def test_the_console_shows_the_workspace_notes_rendered_and_each_snapshot(day):
    scores = day.seen["scores"]
    assert scores["notes"] == "Notes: monitoring the churn model"
    first = scores["first snapshot"]
    assert "app/main.py" in first["files"] and "NOTES.md" in first["files"]
    from mlsandbox.sessions.history import History

    layout = day.layout("ref")
    assert first["at"] == History(layout.candidate, layout.history).log()[0].commit
    assert "Notes: monitoring the churn model" in first["text"]


def test_compare_shows_both_interviewers_next_to_the_automatic_items(day):
    rows = {r[0]: r for r in csv.reader(io.StringIO(day.seen["compare csv"]))}
    for who, card in (("ana", ANA), ("ben", BEN)):
        for cid, rating in card.items():
            assert rows[f"scorecard:{who}:{cid}"] == [f"scorecard:{who}:{cid}", "4", str(rating), ""]
    assert rows["scorecard:ana:recommendation"][2:] == ["strong_yes", ""]
    assert rows["scorecard:ben:recommendation"][2:] == ["yes", ""]
    assert rows["calibration:code_quality"][2:] == ["ana 4, ben 2", ""]


def test_the_debrief_holds_the_grade_the_scorecards_and_the_notes_and_asks_nothing_of_another_host(day):
    seen = day.seen["debrief"]
    assert seen["title"] == "Debrief: ref"
    # Opening it: the file itself, and the grader's picture inlined; nothing else, and nothing refused.
    assert seen["requests"] and all(u.startswith(("file://", "data:")) for u in seen["requests"]), seen["requests"]
    assert not [m for m in seen["console"] if "Content Security Policy" in m or "Refused" in m], seen["console"]
    html = seen["html"]
    score = day.record("ref").final.score
    for words in (
        f"{score:g}%",
        'data-recommendation="ana"',
        'data-recommendation="ben"',
        "Strong yes",
        "monitoring inside the handlers",
        "Notes: monitoring the churn model",
        "data:image/png;base64,",
    ):
        assert words in html, words
    # The PDF: pages drawn, each with something on it; its text has both interviewers and the calibration.
    from PIL import Image

    assert len(seen["pages"]) >= 2, seen["pages"]
    drawn = [sum(Image.open(page).convert("L").histogram()[:250]) for page in seen["pages"]]
    assert drawn[0] > 20000 and min(drawn) > 5000, dict(zip(seen["pages"], drawn))  # no blank page
    # The footer (grey, two lines) never fills a last page alone: it keeps the scorecard's anchors with it.
    assert drawn[-1] > 10000, dict(zip(seen["pages"], drawn))
    text = seen["pdf text"]
    for words in ("Debrief: ref", "ana", "ben", "Strong yes", "Calibration", "Incidents against the candidate"):
        assert words in text, words


def test_a_running_session_is_not_deleted(day):
    _one_line_refusal(day.seen["delete running"], "running", "session end --session starter")
    assert day.layout("starter").candidate.exists()
