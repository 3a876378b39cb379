"""Rubric validation is complete: every problem is refused at load with one line naming the field, so that a
rubric that loads can be graded with (no KeyError mid-grade)."""

from __future__ import annotations

import pytest

from grading.rubric import DEFAULT_RUBRIC, KNOWN_CHECKS, RubricError, load_rubric

TEXT = DEFAULT_RUBRIC.read_text()


def rubric(tmp_path, text: str):
    path = tmp_path / "rubric.yaml"
    path.write_text(text)
    return load_rubric(path)


def drop_check(text: str, check: str) -> str:
    """The rubric without one check's block (its name line and the indented lines under it)."""
    lines, out, skipping = text.splitlines(), [], False
    for line in lines:
        if line.strip() == f"{check}:":
            skipping = True
            continue
        if skipping and line.startswith(" " * 8):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out) + "\n"


def test_a_rubric_that_leaves_out_a_check_is_refused_naming_it(tmp_path):
    with pytest.raises(RubricError, match=r"items\.performance\.checks: \['falls_in_concept_drift'\] not listed"):
        rubric(tmp_path, drop_check(TEXT, "falls_in_concept_drift"))


def test_a_check_named_twice_is_refused_with_its_line(tmp_path):
    text = TEXT.replace(
        "      distribution_exposed:\n",
        "      counter_tracks_predictions:\n        points: 1\n        advice: again\n      distribution_exposed:\n",
        1,
    )
    with pytest.raises(RubricError, match=r"rubric.yaml:\d+: 'counter_tracks_predictions' named twice"):
        rubric(tmp_path, text)


def test_only_restricts_an_item_to_the_checks_it_lists(tmp_path):
    text = drop_check(TEXT, "falls_in_concept_drift").replace(
        "    title: Performance from ground truth\n",
        "    title: Performance from ground truth\n    only: [tracks_accuracy]\n",
    )
    r = rubric(tmp_path, text)
    assert list(r.items["performance"].checks) == ["tracks_accuracy"]


@pytest.mark.parametrize(
    "only, message",
    [
        ("[tracks_accuracy, tracks_accuracy]", "named twice"),
        ("[tracks_vibes]", "no such check"),
        ("[falls_in_concept_drift]", "not in `only`"),
        ("[]", "empty"),
    ],
)
def test_a_bad_only_list_is_refused(tmp_path, only, message):
    text = TEXT.replace(
        "    title: Performance from ground truth\n", f"    title: Performance from ground truth\n    only: {only}\n"
    )
    with pytest.raises(RubricError, match=message):
        rubric(tmp_path, text)


def test_needs_name_known_incident_kinds_and_conditions(tmp_path):
    with pytest.raises(RubricError, match="no such incident kind"):
        rubric(
            tmp_path,
            TEXT.replace(
                "needs: {any_of: [concept_drift], conditions: [labels]}",
                "needs: {any_of: [concept_dift], conditions: [labels]}",
            ),
        )
    with pytest.raises(RubricError, match="no such condition"):
        rubric(tmp_path, TEXT.replace("needs: {conditions: [errors]}", "needs: {conditions: [oops]}"))


def test_the_shipped_rubric_names_every_check_and_says_what_incident_checks_need():
    r = load_rubric()
    assert {k: set(v.checks) for k, v in r.items.items()} == {k: set(v) for k, v in KNOWN_CHECKS.items()}
    assert r.items["performance"].checks["falls_in_concept_drift"].needs.any_of == ["concept_drift"]
    assert r.items["drift"].checks["moves_after_drift"].needs.any_of
