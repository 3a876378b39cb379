"""The calibration corpus on a `--surprise` play of another seed, played with the `mlsandbox calibrate` command
itself: every candidate lands in its band (test_corpus.py says why the bands), and the command shows the points
per item side by side."""

from __future__ import annotations

import pytest
from plays import SURPRISE_SEED, play_with_cli
from test_corpus import CORPUS, outside

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def surprise_play(tmp_path_factory):
    return play_with_cli(tmp_path_factory.mktemp("surprise-play"), seed=SURPRISE_SEED, surprise=True)


def test_every_corpus_candidate_lands_in_its_band_on_a_surprise_play(surprise_play):
    problems = [p for name in CORPUS for p in outside(surprise_play.report(name), name)]
    assert not problems, "\n".join(problems)


def test_calibrate_shows_the_points_per_item_side_by_side(surprise_play):
    out = surprise_play.extra["cli"]
    assert set(out["summary"]) == set(surprise_play.candidates)
    lines = out["stdout"].splitlines()
    assert any(line.split() == list(surprise_play.candidates) for line in lines)  # the table's header
    assert any(line.startswith("performance") for line in out["stdout"].splitlines())
