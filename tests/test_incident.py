"""Incident packs for the root-cause exercise: the causes file, the change log, and one short pack per cause made on
one throwaway stack, checked for the files, the evidence a careful analyst finds, the decoys, the notebook running
top to bottom, and nothing in candidate/ that gives the cause away."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import port

from mlsandbox.errors import InvalidInput
from mlsandbox.incidents.causes import CAUSES_FILE, load_causes, phase_names, plan
from mlsandbox.layout import REPO_ROOT

CATALOGUE = load_causes()
START = datetime(2025, 3, 3, 8, 0)
SEED = 614207
MINUTES = 30
PLAY_SECONDS = 16  # a short pack: 30 pack-minutes in 16 s
BASE_PORT = port(32400)
AGAIN = "model_release-again"
CANDIDATE_FILES = {
    "metrics.csv",
    "predictions.csv",
    "inputs_before.csv",
    "inputs_after.csv",
    "changes.csv",
    "README.md",
    "analysis.ipynb",
}


def test_the_causes_cover_the_exercise():
    assert set(CATALOGUE.causes) >= {
        "covariate_drift",
        "unit_change",
        "renamed_category",
        "concept_drift",
        "latency",
        "missing_values",
        "model_release",
    }


def test_a_broken_causes_file_is_one_readable_line(tmp_path):
    data = yaml.safe_load(CAUSES_FILE.read_text())
    data["causes"]["unit_change"]["injections"][0]["feature"] = "shoe_size"
    path = tmp_path / "causes.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(
        InvalidInput, match=r"causes.yaml: causes.unit_change.injections: 'shoe_size' is not a numeric feature"
    ):
        load_causes(path)
    result = subprocess.run(
        [sys.executable, "-m", "mlsandbox.cli", "incident", "list", "--causes", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 2 and "shoe_size" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, says",
    [
        (["--cause", "gremlins"], "no cause 'gremlins'"),
        (["--minutes", "3"], "a pack covers 10 minutes to a day"),
        (["--start", "yesterday"], "give YYYY-MM-DD HH:MM"),
    ],
)
def test_a_bad_request_is_refused_before_any_stack_starts(tmp_path, args, says):
    result = subprocess.run(
        [sys.executable, "-m", "mlsandbox.cli", "incident", "make", "--out", str(tmp_path / "p"), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert result.returncode == 2 and says in result.stderr and not (tmp_path / "p").exists()


def test_the_change_log_has_the_true_change_before_the_onset_and_a_decoy_closer_to_it():
    for kind in CATALOGUE.causes:
        pack = plan(CATALOGUE, kind, SEED, 60, START)
        changes = pack.changes(CATALOGUE.decoys)
        true = [c for c in changes if c.true_cause]
        assert len(true) == 1 and true[0].at < pack.onset
        near = [c for c in changes if not c.true_cause and true[0].at < c.at <= pack.onset]
        assert near, "a careless analyst's decoy sits between the true change and the onset"
        assert len(changes) == 5 and len({c.at for c in changes}) == 5
    assert plan(CATALOGUE, None, SEED, 60, START).kind == plan(CATALOGUE, None, SEED, 60, START).kind


# --- one short pack per cause, on one stack ---------------------------------------------------------------


@pytest.fixture(scope="module")
def packs(tmp_path_factory) -> dict[str, Path]:
    from mlsandbox.incidents.pack import make

    base = tmp_path_factory.mktemp("packs")
    kinds = sorted(CATALOGUE.causes)
    # One cause made twice on the same stack, for the reproducibility test.
    names = [*kinds, AGAIN]
    made = make(
        [(name.removesuffix("-again"), SEED) for name in names],
        [base / name for name in names],
        MINUTES,
        START,
        BASE_PORT,
        base / "stack",
        say=lambda _: None,
        play_seconds=PLAY_SECONDS,
    )
    return dict(zip(names, made))


def _load(pack: Path) -> dict:
    c = pack / "candidate"
    return {
        "metrics": pd.read_csv(c / "metrics.csv", parse_dates=["time"]),
        "predictions": pd.read_csv(c / "predictions.csv", parse_dates=["time", "label_time"]),
        "before": pd.read_csv(c / "inputs_before.csv"),
        "after": pd.read_csv(c / "inputs_after.csv"),
        "changes": pd.read_csv(c / "changes.csv"),
        "key": json.loads((pack / "interviewer" / "answer.json").read_text()),
    }


def _split(frame: pd.DataFrame, onset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Before the onset, and after it with two pack-minutes to settle."""
    at = pd.Timestamp(onset)
    return frame[frame["time"] < at], frame[frame["time"] > at + pd.Timedelta(minutes=2)]


def _accuracy(frame: pd.DataFrame) -> float:
    labelled = frame.dropna(subset=["actual_churn"])
    return float((labelled["predicted_churn"] == labelled["actual_churn"]).mean())


EVIDENCE = {
    # cause -> (what a careful analyst sees, check on (predictions before, after, metrics before, after))
    "covariate_drift": lambda p0, p1, m0, m1: p1["monthly_charges"].mean() - p0["monthly_charges"].mean() > 15,
    "unit_change": lambda p0, p1, m0, m1: p1["total_charges"].median() > 30 * p0["total_charges"].median(),
    "renamed_category": lambda p0, p1, m0, m1: (
        (p0["payment_method"] == "credit-card").mean() > 0.1
        and (p1["payment_method"] == "credit-card").mean() == 0
        and m1["error_rate"].median() > m0["error_rate"].median() + 0.05
    ),
    "concept_drift": lambda p0, p1, m0, m1: (
        _accuracy(p1) < _accuracy(p0) - 0.05
        and abs(p1["monthly_charges"].median() / p0["monthly_charges"].median() - 1) < 0.15
        and abs(p1["tenure_months"].median() - p0["tenure_months"].median()) < 6
    ),
    "latency": lambda p0, p1, m0, m1: m1["latency_p95_seconds"].median() > m0["latency_p95_seconds"].median() + 0.2,
    "missing_values": lambda p0, p1, m0, m1: (
        p0["tenure_months"].isna().mean() == 0 and p1["tenure_months"].isna().mean() > 0.15
    ),
    "model_release": lambda p0, p1, m0, m1: (
        set(p0["model_version"]) == {1}
        and set(p1["model_version"]) == {2}
        and p1["predicted_churn"].mean() > p0["predicted_churn"].mean() + 0.08
        and _accuracy(p1) < _accuracy(p0) - 0.04
        and abs(p1["monthly_charges"].median() / p0["monthly_charges"].median() - 1) < 0.15
    ),
}


@pytest.mark.stack
@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", sorted(CATALOGUE.causes))
def test_each_pack_has_its_files_its_evidence_and_its_decoys(packs, kind):
    pack = packs[kind]
    assert {p.name for p in (pack / "candidate").iterdir()} == CANDIDATE_FILES
    assert (pack / "interviewer" / "answer_key.md").exists()
    data = _load(pack)
    key = data["key"]
    assert key["cause"] == kind
    metrics, predictions = data["metrics"], data["predictions"]
    assert len(metrics) >= MINUTES - 2 and metrics["requests_per_minute"].median() > 5
    assert predictions["actual_churn"].notna().mean() > 0.3
    assert len(data["before"]) > 50 and list(data["before"].columns) == list(data["after"].columns)
    p0, p1 = _split(predictions, key["onset"])
    m0, m1 = _split(metrics, key["onset"])
    assert EVIDENCE[kind](p0, p1, m0, m1), (kind, p0.describe(include="all"), p1.describe(include="all"))
    changes = data["changes"]
    assert key["true_change"]["change"] in set(changes["change"])
    assert all(d["change"] in set(changes["change"]) for d in key["decoys"]) and len(key["decoys"]) == 4


@pytest.mark.stack
@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", sorted(CATALOGUE.causes))
def test_nothing_the_candidate_gets_names_the_cause(packs, kind):
    steady, incident = phase_names(kind, SEED)
    # Injection kinds are named_like_this; an ordinary word such as "latency" may appear.
    kinds = [re.escape(k) for k in CATALOGUE.causes if "_" in k]
    forbidden = kinds + [re.escape(steady), re.escape(incident), r"\bseed\b"]
    pattern = re.compile("|".join(forbidden) + rf"|(?<![0-9a-f.]){SEED}(?![0-9a-f.])", re.IGNORECASE)
    for path in (packs[kind] / "candidate").iterdir():
        found = pattern.search(path.read_text())
        assert found is None, f"{path.name} says {found.group(0)!r}"


@pytest.mark.stack
@pytest.mark.timeout(900)
def test_the_notebook_runs_top_to_bottom_on_a_pack(packs):
    import nbclient
    import nbformat

    candidate = packs["unit_change"] / "candidate"
    notebook = nbformat.read(str(candidate / "analysis.ipynb"), as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(candidate)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum(o.output_type == "display_data" and "image/png" in o.data for o in outputs) >= 2, "the plots"


@pytest.mark.stack
@pytest.mark.timeout(900)
def test_the_same_cause_and_seed_make_the_same_pack_but_for_ids_and_measured_values(packs):
    """Byte for byte but for request ids; where the server switched models, the requests answered while the
    switch was under way may differ (at most a handful); metrics.csv's values are Prometheus's measurements of a
    real play (rates over windows), so only its minutes and columns must match, and its values come close."""
    first, again = packs["model_release"], packs[AGAIN]
    for name in ("changes.csv", "README.md", "analysis.ipynb", "inputs_before.csv", "inputs_after.csv"):
        assert (first / "candidate" / name).read_bytes() == (again / "candidate" / name).read_bytes(), name
    for name in ("answer_key.md", "answer.json"):
        assert (first / "interviewer" / name).read_bytes() == (again / "interviewer" / name).read_bytes(), name
    a, b = (pd.read_csv(p / "candidate" / "predictions.csv").drop(columns="request_id") for p in (first, again))
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    switched = a["model_version"] != b["model_version"]
    assert switched.sum() <= 5, a[switched]
    pd.testing.assert_frame_equal(a[~switched], b[~switched])
    m1, m2 = (pd.read_csv(p / "candidate" / "metrics.csv", parse_dates=["time"]) for p in (first, again))
    assert list(m1.columns) == list(m2.columns) and list(m1["time"]) == list(m2["time"])
    onset = json.loads((first / "interviewer" / "answer.json").read_text())["onset"]
    # A short test pack logs about ten predictions a minute: minute by minute the rates are noisy, their levels
    # before and after the onset are not. Which minute's window a request falls in depends on when the scrapes
    # came, so a level may move by one request a minute: a share or a mean of scores by 1/n of n requests.
    per_minute = float(m1["requests_per_minute"].median())
    one_request = {"requests_per_minute": 1.0}
    for column in ("requests_per_minute", "error_rate", "mean_score", "predicted_churn_share"):
        levels = [[_split(m, onset)[k][column].median() for k in (0, 1)] for m in (m1, m2)]
        for a_level, b_level in zip(*levels):
            tolerance = max(0.03, 0.1 * abs(a_level), one_request.get(column, 1 / max(per_minute, 1.0)))
            assert abs(a_level - b_level) <= tolerance, (column, levels, per_minute)
