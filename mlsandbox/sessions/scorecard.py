"""The interviewers' scorecards: what a person judges that no query can, rated on a structured scorecard so that
two interviewers, and two candidates, can be compared.

The scorecard is data (grading/scorecard.yaml, or a team's own file), read and validated here: competencies,
each with an anchor for every rating of the scale 1-4, and the overall recommendations. A session's scorecards:

    sessions/NAME/scorecards/
      scorecard.yaml   the scorecard this session is scored on (copied at start with --scorecard, or at the
                       first entry): later edits of the shipped file do not change what its ratings meant
      entries/*.json   one file per change an interviewer saved: who, when, through what, what they set; written
                       once under a name of its own and never rewritten, so that two interviewers saving at once
                       are both kept and every change stays

An interviewer's card is their entries folded in time order (a later rating of a competency replaces an earlier
one). Independent first: an interviewer sees the others' ratings only once their own card is complete (every
competency rated, a recommendation given), so that nobody anchors on a colleague's numbers. It is a rule of the
page, not a lock: names are not authenticated (the console's token is).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlsandbox.data_files import read_yaml_model
from mlsandbox.errors import InvalidInput, MlsandboxError
from mlsandbox.layout import REPO_ROOT
from mlsandbox.sessions.store import SessionLayout, StoredSession, load, pick, session_layout

DEFAULT_SCORECARD = REPO_ROOT / "grading" / "scorecard.yaml"
RATINGS = (1, 2, 3, 4)
# Two interviewers this far apart on a competency have not judged the same thing: say so.
CALIBRATION_GAP = 2
MAX_NOTE_CHARS = 4000
# An interviewer names a column of `session compare` (scorecard:<interviewer>:<id>): no ':' and one line.
INTERVIEWER = re.compile(r"^\w[\w.@' -]{0,63}$")
ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _one_line(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError("empty")
    if "\n" in text:
        raise ValueError("one line only")
    return text


def _an_id(text: str) -> str:
    if not ID.match(text):
        raise ValueError(f"{text!r}: an id is lowercase letters, digits and _ (it names a column of `session compare`)")
    return text


OneLine = Annotated[str, AfterValidator(_one_line)]
Id = Annotated[str, AfterValidator(_an_id)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Competency(_Strict):
    id: Id
    title: OneLine
    anchors: dict[int, OneLine]  # rating -> what that rating looks like

    @model_validator(mode="after")
    def _every_rating(self) -> "Competency":
        outside = sorted(r for r in self.anchors if r not in RATINGS)
        if outside:
            raise ValueError(f"{self.id}: rating {outside[0]} is outside the scale 1-4")
        missing = [str(r) for r in RATINGS if r not in self.anchors]
        if missing:
            raise ValueError(f"{self.id}: no anchor for rating {', '.join(missing)} (every rating of 1-4 needs one)")
        return self


class Recommendation(_Strict):
    id: Id
    title: OneLine


class Scorecard(_Strict):
    competencies: list[Competency] = Field(min_length=1)
    # The overall verdicts, from the worst to the best.
    recommendations: list[Recommendation] = Field(min_length=2)

    @model_validator(mode="after")
    def _unique(self) -> "Scorecard":
        for what, ids in (
            ("competencies", [c.id for c in self.competencies]),
            ("recommendations", [r.id for r in self.recommendations]),
        ):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"{what}: {twice[0]!r} named twice")
        return self

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.competencies]

    def competency(self, cid: str) -> Competency | None:
        return next((c for c in self.competencies if c.id == cid), None)

    def recommendation(self, given: str) -> Recommendation:
        """The recommendation meant by `given`: its id or its title, any case, '-' or ' ' for '_'."""
        key = re.sub(r"[\s-]+", "_", given.strip().lower())
        for r in self.recommendations:
            if key in (r.id, re.sub(r"[\s-]+", "_", r.title.lower())):
                return r
        known = ", ".join(r.id.replace("_", "-") for r in self.recommendations)
        raise InvalidInput(f"recommendation {given!r}: one of {known}")


def load_scorecard(path: Path | str | None = None) -> Scorecard:
    """The scorecard at `path` (default: the shipped one); InvalidInput naming the file and the field otherwise."""
    return read_yaml_model(path or DEFAULT_SCORECARD, Scorecard, InvalidInput, "scorecard")


# --- entries and cards -----------------------------------------------------------------------------------------


class Entry(BaseModel):
    """One change an interviewer saved: only what they set then."""

    model_config = ConfigDict(extra="forbid")

    interviewer: str
    at: float
    via: Literal["cli", "console"]
    ratings: dict[str, int] = {}
    notes: dict[str, str] = {}  # an empty note removes the one before
    recommendation: str | None = None


@dataclass
class Card:
    """An interviewer's scorecard as it stands: their entries folded in time order."""

    interviewer: str
    ratings: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    recommendation: str | None = None
    first_at: float = 0.0
    updated_at: float = 0.0
    changes: int = 0

    def missing(self, scorecard: Scorecard) -> list[str]:
        """What is still to give before the card is complete: competency ids, and "recommendation"."""
        left = [cid for cid in scorecard.ids if cid not in self.ratings]
        return left + ([] if self.recommendation else ["recommendation"])

    def complete(self, scorecard: Scorecard) -> bool:
        return not self.missing(scorecard)

    def as_dict(self, scorecard: Scorecard) -> dict:
        return {
            "interviewer": self.interviewer,
            "ratings": self.ratings,
            "notes": self.notes,
            "recommendation": self.recommendation,
            "first_at": self.first_at,
            "updated_at": self.updated_at,
            "changes": self.changes,
            "complete": self.complete(scorecard),
            "missing": self.missing(scorecard),
        }


def fold(entries: list[Entry]) -> dict[str, Card]:
    """Each interviewer's card from their entries (in the order given: oldest first)."""
    cards: dict[str, Card] = {}
    for e in entries:
        card = cards.setdefault(e.interviewer, Card(e.interviewer, first_at=e.at))
        card.ratings.update(e.ratings)
        for cid, note in e.notes.items():
            if note:
                card.notes[cid] = note
            else:
                card.notes.pop(cid, None)
        card.recommendation = e.recommendation or card.recommendation
        card.updated_at = e.at
        card.changes += 1
    return cards


def check_entry(
    scorecard: Scorecard,
    interviewer: str,
    ratings: Mapping[str, object] | None = None,
    notes: Mapping[str, str] | None = None,
    recommendation: str | None = None,
    via: Literal["cli", "console"] = "cli",
    at: float | None = None,
) -> Entry:
    """An entry from what an interviewer gave, every part checked against the scorecard; InvalidInput (one line)
    at the first thing wrong, before anything is saved."""
    name = (interviewer or "").strip()
    if not INTERVIEWER.match(name):
        raise InvalidInput(
            f"interviewer {interviewer!r}: a name or an id of letters, digits, spaces and . _ @ ' - "
            "(at most 64 characters, no ':')"
        )
    known = ", ".join(scorecard.ids)
    checked: dict[str, int] = {}
    for cid, value in (ratings or {}).items():
        if scorecard.competency(cid) is None:
            raise InvalidInput(f"no competency {cid!r} on this scorecard (its competencies: {known})")
        rating = _rating(value)
        if rating is None:
            raise InvalidInput(f"{cid}={value}: a rating is one of {', '.join(map(str, RATINGS))}")
        checked[cid] = rating
    kept: dict[str, str] = {}
    for cid, text in (notes or {}).items():
        if scorecard.competency(cid) is None:
            raise InvalidInput(f"no competency {cid!r} on this scorecard (its competencies: {known})")
        text = (text or "").strip()
        if len(text) > MAX_NOTE_CHARS:
            raise InvalidInput(f"the note on {cid} is {len(text)} characters long; at most {MAX_NOTE_CHARS}")
        kept[cid] = text
    chosen = scorecard.recommendation(recommendation).id if recommendation else None
    if not checked and not kept and chosen is None:
        raise InvalidInput("nothing to save: give a rating (ID=RATING), a note or a recommendation")
    return Entry(
        interviewer=name,
        at=time.time() if at is None else at,
        via=via,
        ratings=checked,
        notes=kept,
        recommendation=chosen,
    )


def _rating(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*\d\s*", value):
        value = int(value)
    return value if isinstance(value, int) and value in RATINGS else None


# --- who sees what ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disagreement:
    """Two interviewers (or more) CALIBRATION_GAP ratings or more apart on a competency."""

    competency: str
    ratings: dict[str, int]  # interviewer -> rating

    @property
    def gap(self) -> int:
        return max(self.ratings.values()) - min(self.ratings.values())

    def describe(self) -> str:
        return f"{self.competency}: " + ", ".join(f"{who} {r}" for who, r in self.ratings.items())


def calibration(cards: Mapping[str, Card], scorecard: Scorecard) -> list[Disagreement]:
    """Each competency on which the interviewers' ratings are CALIBRATION_GAP or more apart."""
    found = []
    for cid in scorecard.ids:
        given = {who: card.ratings[cid] for who, card in sorted(cards.items()) if cid in card.ratings}
        if len(given) >= 2 and max(given.values()) - min(given.values()) >= CALIBRATION_GAP:
            found.append(Disagreement(cid, given))
    return found


@dataclass(frozen=True)
class View:
    """What an interviewer may see: their own card; the others' only once their own is complete (`unlocked`)."""

    viewer: str | None
    mine: Card | None
    unlocked: bool
    others: dict[str, Card]  # empty while locked
    waiting: list[str]  # while locked: who else has a card (names only, no rating)


def view_for(cards: Mapping[str, Card], scorecard: Scorecard, viewer: str | None) -> View:
    """The independence rule. Without a viewer: the committee's view, every card (the debrief, compare)."""
    if viewer is None:
        return View(None, None, True, dict(cards), [])
    viewer = viewer.strip()
    mine = cards.get(viewer)
    others = {who: card for who, card in cards.items() if who != viewer}
    unlocked = mine is not None and mine.complete(scorecard)
    if unlocked:
        return View(viewer, mine, True, others, [])
    return View(viewer, mine, False, {}, sorted(others))


# --- a session's scorecards on disk ------------------------------------------------------------------------------


class SessionScorecards:
    """The scorecards of one session (see the module's docstring for the files)."""

    def __init__(self, layout: SessionLayout):
        self.layout = layout
        self.root = layout.scorecards

    @property
    def copy(self) -> Path:
        return self.root / "scorecard.yaml"

    @property
    def entries_dir(self) -> Path:
        return self.root / "entries"

    def scorecard(self) -> Scorecard:
        """The scorecard this session is scored on: its copy, or the shipped one while it has none."""
        return load_scorecard(self.copy if self.copy.exists() else DEFAULT_SCORECARD)

    def entries(self) -> list[Entry]:
        """Every change saved, oldest first."""
        found = []
        for path in sorted(self.entries_dir.glob("[!.]*.json")) if self.entries_dir.exists() else []:
            try:
                found.append((Entry.model_validate_json(path.read_text()), path.name))
            except (OSError, ValidationError):
                continue  # nothing half-written can be here (entries are renamed into place); a stray file
        return [e for e, _ in sorted(found, key=lambda pair: (pair[0].at, pair[1]))]

    def cards(self) -> dict[str, Card]:
        return fold(self.entries())

    def chosen(self, path: Path | None) -> tuple[Scorecard, str | None]:
        """The scorecard a save uses, and the text to copy in when the session has none yet. `path` (a team's
        own file) is refused when the session is already scored on another."""
        if self.copy.exists():
            if path is None or Path(path).read_bytes() == self.copy.read_bytes():
                return self.scorecard(), None
            if self.entries():
                raise InvalidInput(
                    f"session {self.layout.root.name!r} is already scored on another scorecard ({self.copy}); "
                    "its cards would no longer compare"
                )
        source = Path(path) if path is not None else DEFAULT_SCORECARD
        scorecard = load_scorecard(source)
        return scorecard, source.read_text()

    def adopt(self, path: Path | None) -> Scorecard:
        """Make `path` (or the shipped scorecard) the one this session is scored on, unless it has one."""
        scorecard, text = self.chosen(path)
        if text is not None:
            self._write_copy(text)
        return scorecard

    def _write_copy(self, text: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".scorecard.yaml.{os.getpid()}.{secrets.token_hex(4)}"
        tmp.write_text(text)
        try:
            if self.copy.exists() and not self.entries():
                os.replace(tmp, self.copy)  # no rating yet: the session may still change its scorecard
            else:
                os.link(tmp, self.copy)  # two first saves at once: the first copy stays (the same file)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)

    def add(self, entry: Entry, scorecard_text: str | None = None) -> Path:
        """Save one entry in a file of its own (and the scorecard's copy first when the session has none)."""
        if scorecard_text is not None:
            self._write_copy(scorecard_text)
        self.entries_dir.mkdir(parents=True, exist_ok=True)
        name = f"{int(entry.at * 1e6):017d}-{os.getpid()}-{secrets.token_hex(4)}.json"
        tmp = self.entries_dir / f".{name}.tmp"
        tmp.write_text(entry.model_dump_json(indent=2))
        final = self.entries_dir / name
        os.link(tmp, final)  # never replaces: a name already taken would raise, not overwrite
        tmp.unlink()
        return final


def session_to_score(name: str | None) -> StoredSession:
    """The session a scorecard is for: the one named (InvalidInput when there is none of that name), or the only
    one running."""
    if name is None:
        return pick(None)
    try:
        layout = session_layout(name)
    except MlsandboxError as exc:  # a name no session can have
        raise InvalidInput(str(exc)) from None
    if not layout.record.exists():
        raise InvalidInput(f"no session {name!r}: a scorecard is for a session that exists (`mlsandbox session list`)")
    return load(name)


def score(
    session: StoredSession,
    interviewer: str,
    ratings: Mapping[str, object] | None = None,
    notes: Mapping[str, str] | None = None,
    recommendation: str | None = None,
    via: Literal["cli", "console"] = "cli",
    scorecard_file: Path | None = None,
) -> tuple[Scorecard, Card]:
    """Check and save one change of `interviewer`'s card (nothing is saved when any part is wrong); the scorecard
    and their card as it stands now."""
    book = SessionScorecards(session.layout)
    scorecard, text = book.chosen(scorecard_file)
    entry = check_entry(scorecard, interviewer, ratings, notes, recommendation, via)
    book.add(entry, text)
    return scorecard, book.cards()[entry.interviewer]


# --- as text ---------------------------------------------------------------------------------------------------


def summary_line(scorecard: Scorecard, card: Card) -> str:
    """One line on where an interviewer's card stands."""
    rated = ", ".join(f"{cid} {card.ratings[cid]}" for cid in scorecard.ids if cid in card.ratings) or "nothing"
    todo = [m for m in card.missing(scorecard) if m != "recommendation"]
    parts = [f"{card.interviewer}: {len(scorecard.ids) - len(todo)} of {len(scorecard.ids)} rated ({rated})"]
    if todo:
        parts.append(f"still to rate: {', '.join(todo)}")
    recommended = next((r.title for r in scorecard.recommendations if r.id == card.recommendation), None)
    parts.append(f"recommendation: {recommended}" if recommended else "no recommendation yet")
    return "; ".join(parts)


def as_text(scorecard: Scorecard, view: View) -> str:
    """The cards `view` may show, a competency a line, an interviewer a column; then the notes and calibration."""
    cards = ({view.mine.interviewer: view.mine} if view.mine else {}) | view.others
    lines = []
    if not cards:
        lines.append("no scorecard yet")
    else:
        who = list(cards)
        width = max(len(c.title) for c in scorecard.competencies) + 2
        lines.append(" " * width + "  ".join(f"{w:>12}" for w in who))
        for c in scorecard.competencies:
            cells = [str(cards[w].ratings.get(c.id, "-")) for w in who]
            lines.append(f"{c.title:<{width}}" + "  ".join(f"{x:>12}" for x in cells))
        titles = {r.id: r.title for r in scorecard.recommendations}
        cells = [titles.get(cards[w].recommendation or "", "-") for w in who]
        lines.append(f"{'recommendation':<{width}}" + "  ".join(f"{x:>12}" for x in cells))
        for w in who:
            for c in scorecard.competencies:
                if c.id in cards[w].notes:
                    lines.append(f"  {w} on {c.id}: {cards[w].notes[c.id]}")
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cards[w].updated_at))
            left = cards[w].missing(scorecard)
            lines.append(
                f"  {w}: {cards[w].changes} change(s), last {stamp}"
                + (f"; still to give: {', '.join(left)}" if left else "; complete")
            )
    if view.unlocked:
        for d in calibration(cards, scorecard):
            lines.append(f"calibration: {d.describe()} ({d.gap} apart: talk it over)")
    else:
        if view.waiting:
            lines.append(
                f"{len(view.waiting)} other interviewer(s) scored: {', '.join(view.waiting)}; their ratings show "
                "once your card is complete (every competency rated, a recommendation given)"
            )
    return "\n".join(lines)
