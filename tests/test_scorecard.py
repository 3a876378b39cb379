"""The interviewers' scorecards, the debrief and deleting a session, without a stack: the scorecard file's
validation, the independence rule, the calibration flag, the columns of `session compare`, two interviewers saving
at once, what is refused (one line, exit 2, nothing saved), the debrief's page asking nothing of another host, and
a session deleted with everything it kept.

The same on the real stack (two interviewers, one in the console in Chromium, one on the command line; the
debrief in Chromium and as a PDF) is in test_sessions.py."""

from __future__ import annotations

import html
import multiprocessing
import os
import re
import sys
import time
from pathlib import Path

import pytest

from mlsandbox.errors import InvalidInput
from mlsandbox.layout import Ports
from mlsandbox.sessions import debrief, scorecard
from mlsandbox.sessions.history import History
from mlsandbox.sessions.scorecard import (
    DEFAULT_SCORECARD,
    Card,
    SessionScorecards,
    calibration,
    check_entry,
    fold,
    load_scorecard,
    view_for,
)
from mlsandbox.sessions.store import SessionLayout, SessionRecord, load
from mlsandbox.sessions.summary import compare_rows

IDS = ["implementation", "code_quality", "explanation", "production", "feedback"]
FULL = {"implementation": 3, "code_quality": 2, "explanation": 3, "production": 2, "feedback": 4}


# --- the scorecard file ------------------------------------------------------------------------------------------


def test_the_shipped_scorecard_rates_five_competencies_on_an_anchored_scale_of_four():
    card = load_scorecard()
    assert card.ids == IDS
    for c in card.competencies:
        assert sorted(c.anchors) == [1, 2, 3, 4] and all(c.anchors.values()), c.id
    assert [r.id for r in card.recommendations] == ["strong_no", "no", "yes", "strong_yes"]


VALID = DEFAULT_SCORECARD.read_text()


@pytest.mark.parametrize(
    "edit, words",
    [
        (
            lambda t: t.replace("      3: Justifies windows", "      5: Justifies windows"),
            ["competencies.2", "explanation", "outside"],
        ),
        (
            lambda t: t.replace("      2: Explains what was built", "      # 2"),
            ["competencies.2", "explanation", "no anchor for rating 2"],
        ),
        (lambda t: t.replace("id: production", "id: code_quality"), ["competencies", "'code_quality' named twice"]),
        (lambda t: t.replace("id: feedback", "id: Feedback!"), ["competencies.4.id", "lowercase"]),
        (lambda t: t.replace('{id: "no", title: "No"}', "{id: no, title: No}"), ["recommendations.1.id"]),
        (lambda t: t.replace("competencies:", "competences:", 1), ["competencies", "Field required"]),
        (lambda t: t + "\n  - id: [unclosed\n", ["not valid YAML"]),
        (lambda t: t.replace("    title: Production thinking", "    title: ''"), ["competencies.3.title", "empty"]),
    ],
)
def test_a_broken_scorecard_is_one_line_naming_the_file_and_the_field(tmp_path, edit, words):
    path = tmp_path / "mine.yaml"
    path.write_text(edit(VALID))
    with pytest.raises(InvalidInput) as err:
        load_scorecard(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)), message
    for w in words:
        assert w in message, message
    assert InvalidInput.exit_code == 2


# --- entries, cards, who sees what -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ratings, words",
    [
        ({"charisma": 4}, ["no competency 'charisma'", "implementation, code_quality"]),
        ({"code_quality": 5}, ["code_quality=5", "1, 2, 3, 4"]),
        ({"code_quality": 0}, ["code_quality=0"]),
        ({"code_quality": "3.5"}, ["code_quality=3.5"]),
        ({"code_quality": True}, ["code_quality=True"]),
    ],
)
def test_an_unknown_competency_or_a_rating_off_the_scale_is_refused(ratings, words):
    with pytest.raises(InvalidInput) as err:
        check_entry(load_scorecard(), "ana", ratings)
    for w in words:
        assert w in str(err.value)


def test_the_interviewer_the_recommendation_and_an_empty_change_are_checked():
    card = load_scorecard()
    for name in ("", "a:b", "x" * 65, "two\nlines"):
        with pytest.raises(InvalidInput):
            check_entry(card, name, {"code_quality": 3})
    with pytest.raises(InvalidInput, match="one of strong-no, no, yes, strong-yes"):
        check_entry(card, "ana", recommendation="maybe")
    with pytest.raises(InvalidInput, match="nothing to save"):
        check_entry(card, "ana")
    for given in ("strong yes", "Strong-Yes", "strong_yes"):
        assert check_entry(card, "Ana Pérez", recommendation=given).recommendation == "strong_yes"
    assert check_entry(card, " ana ", {"code_quality": "3"}).ratings == {"code_quality": 3}


def test_a_card_is_its_entries_folded_later_changes_winning():
    card = load_scorecard()
    entries = [
        check_entry(card, "ana", {"code_quality": 2}, {"code_quality": "tangled"}, at=1.0),
        check_entry(card, "ben", {"code_quality": 4}, at=2.0),
        check_entry(card, "ana", {"code_quality": 3, "feedback": 4}, {"code_quality": ""}, "yes", at=3.0),
    ]
    cards = fold(entries)
    assert cards["ana"].ratings == {"code_quality": 3, "feedback": 4}
    assert cards["ana"].notes == {} and cards["ana"].recommendation == "yes"
    assert (cards["ana"].changes, cards["ana"].first_at, cards["ana"].updated_at) == (2, 1.0, 3.0)
    assert cards["ana"].missing(card) == ["implementation", "explanation", "production"]


def test_an_interviewer_sees_the_others_ratings_only_once_their_own_card_is_complete():
    card = load_scorecard()
    ben = Card("ben", dict(FULL), {}, "yes")
    ana = Card("ana", {"code_quality": 4})
    locked = view_for({"ana": ana, "ben": ben}, card, "ana")
    assert not locked.unlocked and locked.others == {} and locked.waiting == ["ben"] and locked.mine is ana
    nobody = view_for({"ben": ben}, card, "carl")
    assert not nobody.unlocked and nobody.mine is None and nobody.waiting == ["ben"]
    ana.ratings = {**FULL, "code_quality": 4}
    assert not view_for({"ana": ana, "ben": ben}, card, "ana").unlocked  # no recommendation yet
    ana.recommendation = "strong_yes"
    opened = view_for({"ana": ana, "ben": ben}, card, "ana")
    assert opened.unlocked and opened.others == {"ben": ben} and opened.waiting == []
    assert view_for({"ana": ana, "ben": ben}, card, None).others.keys() == {"ana", "ben"}  # the committee's view


def test_calibration_flags_two_ratings_or_more_apart_only():
    card = load_scorecard()
    cards = {
        "ana": Card("ana", {"code_quality": 4, "explanation": 3, "production": 1}),
        "ben": Card("ben", {"code_quality": 2, "explanation": 2}),
        "cem": Card("cem", {"code_quality": 3, "production": 3}),
    }
    flags = calibration(cards, card)
    assert [(d.competency, d.ratings, d.gap) for d in flags] == [
        ("code_quality", {"ana": 4, "ben": 2, "cem": 3}, 2),
        ("production", {"ana": 1, "cem": 3}, 2),
    ]
    assert calibration({"ana": cards["ana"]}, card) == []


def test_compare_puts_each_interviewers_ratings_and_the_calibration_next_to_the_items():
    from test_session_parts import _grade

    card = load_scorecard()
    graded = {"alice": _grade("final", {"drift": 15}, {}), "bob": _grade("final", {"drift": 5}, {})}
    scored = {
        "alice": (
            card,
            {"ana": Card("ana", {"code_quality": 4}, recommendation="yes"), "ben": Card("ben", {"code_quality": 2})},
        ),
        "bob": (card, {"ana": Card("ana", {"code_quality": 3, "feedback": 1}, recommendation="strong_no")}),
    }
    rows = compare_rows(graded, scored)
    keys = [r[0] for r in rows]
    assert keys.index("score %") < keys.index("scorecard:ana:implementation")
    assert ["scorecard:ana:code_quality", "4", "4", "3"] in rows
    assert ["scorecard:ana:feedback", "4", "", "1"] in rows
    assert ["scorecard:ana:recommendation", "", "yes", "strong_no"] in rows
    assert ["scorecard:ben:code_quality", "4", "2", ""] in rows
    assert ["calibration:code_quality", "", "ana 4, ben 2", ""] in rows
    assert not any(k.startswith("calibration:feedback") for k in keys)
    assert compare_rows(graded) == compare_rows(graded, {n: (card, {}) for n in graded})


# --- sessions on disk ----------------------------------------------------------------------------------------------


@pytest.fixture
def sessions(tmp_path, monkeypatch):
    """make(name, ended=True): a session folder as `session start` and `session end` leave it, no stack."""
    monkeypatch.setenv("MLSANDBOX_SESSIONS_DIR", str(tmp_path / "sessions"))
    monkeypatch.setenv("MLSANDBOX_RUN_DIR", str(tmp_path / "run"))

    def make(
        name: str, ended: bool = True, notes: str | None = "# Notes\n\nDrift threshold **0.2**.\n"
    ) -> SessionLayout:
        layout = SessionLayout(tmp_path / "sessions" / name)
        (layout.candidate / "app").mkdir(parents=True)
        (layout.candidate / "app" / "main.py").write_text("app = None\n")
        history = History(layout.candidate, layout.history)
        history.init()
        history.snapshot("session start")
        if notes is not None:
            (layout.candidate / "NOTES.md").write_text(notes)
            history.snapshot("saved during the session")
        started = time.time() - 600
        SessionRecord(
            name=name,
            backend="native",
            play=None,
            ports=Ports.block(16100),
            source="starter_repo",
            started_at=started,
            ended_at=time.time() if ended else None,
        ).save(layout)
        return layout

    return make


def run_cli(monkeypatch, capsys, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """The command line in-process, its one error handler included: (exit status, stdout, stderr)."""
    import io

    from mlsandbox.cli.main import main

    monkeypatch.setattr(sys, "argv", ["mlsandbox", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def _entries(layout: SessionLayout) -> list[Path]:
    return sorted(SessionScorecards(layout).entries_dir.glob("*.json")) if layout.scorecards.exists() else []


def test_scoring_on_the_command_line_keeps_every_change_and_refuses_bad_input_with_one_line(
    sessions, monkeypatch, capsys
):
    layout = sessions("alice")
    sets = [f"--set={k}={v}" for k, v in FULL.items()]
    code, out, _ = run_cli(
        monkeypatch,
        capsys,
        "session",
        "score",
        "--session",
        "alice",
        "--interviewer",
        "ben",
        *sets,
        "--recommend",
        "yes",
    )
    assert code == 0 and "ben: 5 of 5 rated" in out, out
    refused = [
        (["--set", "charisma=4"], "no competency 'charisma'"),
        (["--set", "code_quality=5"], "a rating is one of 1, 2, 3, 4"),
        (["--set", "code_quality"], "write ID=RATING"),
        (["--note", "nope=hello"], "no competency 'nope'"),
        (["--recommend", "maybe"], "one of strong-no"),
    ]
    for extra, words in refused:
        code, _, err = run_cli(
            monkeypatch,
            capsys,
            "session",
            "score",
            "--session",
            "alice",
            "--interviewer",
            "ana",
            "--set",
            "feedback=3",
            *extra,
        )
        assert code == 2 and len(err.strip().splitlines()) == 1 and words in err, (extra, code, err)
    assert len(_entries(layout)) == 1, "a refused change saved something"
    code, _, err = run_cli(
        monkeypatch, capsys, "session", "score", "--session", "nobody", "--interviewer", "ana", "--set", "feedback=3"
    )
    assert code == 2 and "no session 'nobody'" in err and len(err.strip().splitlines()) == 1
    assert not (layout.root.parent / "nobody").exists()

    # Independent first, on the command line too.
    run_cli(
        monkeypatch, capsys, "session", "score", "--session", "alice", "--interviewer", "ana", "--set", "code_quality=4"
    )
    _, shown, _ = run_cli(
        monkeypatch, capsys, "session", "score", "--session", "alice", "--interviewer", "ana", "--show"
    )
    assert "ben" in shown and "their ratings show once your card is complete" in shown
    assert re.search(r"Code quality and documentation\s+4\s*$", shown, re.M), shown
    sets = [f"--set={k}={v}" for k, v in {**FULL, "code_quality": 4}.items()]
    run_cli(
        monkeypatch,
        capsys,
        "session",
        "score",
        "--session",
        "alice",
        "--interviewer",
        "ana",
        *sets,
        "--recommend",
        "strong-yes",
    )
    _, shown, _ = run_cli(
        monkeypatch, capsys, "session", "score", "--session", "alice", "--interviewer", "ana", "--show"
    )
    assert re.search(r"Code quality and documentation\s+4\s+2\s*$", shown, re.M), shown
    assert "calibration: code_quality: ana 4, ben 2" in shown
    assert len(_entries(layout)) == 3
    # The session keeps the scorecard it was scored on; another one is refused once it has ratings.
    assert (layout.scorecards / "scorecard.yaml").read_text() == VALID
    other = layout.root.parent.parent / "other.yaml"
    other.write_text(VALID.replace("Technical implementation", "Implementation"))
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "session",
        "score",
        "--session",
        "alice",
        "--interviewer",
        "ana",
        "--set",
        "feedback=2",
        "--scorecard",
        str(other),
    )
    assert code == 2 and "already scored on another scorecard" in err


def _save_many(sessions_dir: str, who: str, barrier, count: int) -> None:
    os.environ["MLSANDBOX_SESSIONS_DIR"] = sessions_dir
    session = load("alice")
    barrier.wait()
    for k in range(count):
        scorecard.score(session, who, {"code_quality": 1 + k % 4}, via="console")


def test_two_interviewers_saving_at_once_are_both_kept(sessions, tmp_path):
    layout = sessions("alice")
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    workers = [
        ctx.Process(target=_save_many, args=(str(tmp_path / "sessions"), who, barrier, 25)) for who in ("ana", "ben")
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    book = SessionScorecards(layout)
    assert len(book.entries()) == 50
    cards = book.cards()
    assert {who: c.changes for who, c in cards.items()} == {"ana": 25, "ben": 25}
    assert cards["ana"].ratings == {"code_quality": 1 + 24 % 4}
    assert book.copy.read_text() == VALID


def test_delete_removes_an_ended_session_whole_and_refuses_one_that_did_not_end(sessions, monkeypatch, capsys):
    alice, bob = sessions("alice"), sessions("bob", ended=False)
    scorecard.score(load("alice"), "ana", {"code_quality": 3})
    failed = Path(os.environ["MLSANDBOX_RUN_DIR"]) / "logs" / "session-alice-failed-start"
    failed.mkdir(parents=True)
    code, _, err = run_cli(monkeypatch, capsys, "session", "delete", "--session", "alice", stdin="n\n")
    assert code == 1 and alice.root.exists()
    code, _, err = run_cli(monkeypatch, capsys, "session", "delete", "--session", "bob", "--yes")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "session end --session bob" in err, err
    assert bob.root.exists()
    code, out, err = run_cli(monkeypatch, capsys, "session", "delete", "--session", "alice", "--yes")
    assert code == 0, err
    assert not alice.root.exists() and not failed.exists() and f"deleted {alice.root}" in out
    _, listed, _ = run_cli(monkeypatch, capsys, "session", "list", "--json")
    assert '"alice"' not in listed and '"bob"' in listed


# --- the debrief -------------------------------------------------------------------------------------------------


def test_the_debrief_is_one_page_that_asks_nothing_of_another_host(sessions, tmp_path):
    sessions("alice", notes="# Notes\n\n![chart](https://example.com/c.png) and [the docs](https://prometheus.io)\n")
    session = load("alice")
    scorecard.score(session, "ana", FULL, {"code_quality": "clear <b>module</b>"}, "yes")
    scorecard.score(session, "ben", {**FULL, "code_quality": 4}, recommendation="strong yes")
    page = debrief.write(load("alice"), tmp_path / "out" / "debrief.html").read_text()
    assert f'content="{debrief.CSP}"' in html.unescape(page) and "default-src 'none'" in debrief.CSP
    # Nothing that loads: no script, stylesheet, frame or remote image; the candidate's image is a link.
    assert not re.search(r"<(script|link|iframe|object|embed)\b", page)
    assert not re.search(r"""\bsrc=["'](?!data:)""", page)
    assert 'href="https://prometheus.io"' in page and "[image: chart]" in page
    assert "&lt;b&gt;module&lt;/b&gt;" in page  # an interviewer's note is text
    for words in ("Debrief: alice", "Strong yes", 'data-calibration="code_quality"', "No grade yet", "2 snapshots"):
        assert words in page, words
