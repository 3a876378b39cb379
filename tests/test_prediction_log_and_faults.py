"""The prediction log survives a restart; faults switch on and off from a file outside the candidate's code."""

import sqlite3
import threading
import time

import pytest

from model_service.faults import FaultState, FaultSwitch, ServiceFault, write_fault_state
from model_service.prediction_log import PredictionLog, PredictionRecord, UnknownRequestId


def test_labels_survive_reopening_the_log(tmp_path):
    path = tmp_path / "p.sqlite"
    log = PredictionLog(path)
    log.record_predictions([PredictionRecord(f"r{i}", time.time(), "1", {"a": i}, 0.1 * i, i % 2) for i in range(10)])
    for i in range(0, 10, 2):
        log.record_feedback(f"r{i}", 1)
    log.close()  # what a server restart does
    again = PredictionLog(path)
    assert again.count_predictions() == 10
    assert sorted(lp.request_id for lp in again.labelled()) == ["r0", "r2", "r4", "r6", "r8"]


def test_feedback_for_unknown_id_raises(tmp_path):
    with pytest.raises(UnknownRequestId):
        PredictionLog(tmp_path / "p.sqlite").record_feedback("nope", 0)


def _record(i: int) -> PredictionRecord:
    return PredictionRecord(f"r{i}", time.time(), "1", {"a": i}, 0.5, i % 2)


def test_a_write_is_committed_when_it_returns_under_sixteen_concurrent_writers(tmp_path):
    """What a request was told is logged is on disk for any other reader at that moment (a SIGKILL right after
    the answer loses nothing), with as many writers at once as the server has threads busy under load."""
    path = tmp_path / "p.sqlite"
    log = PredictionLog(path)
    unseen: list[str] = []

    def client(k: int) -> None:
        reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        for i in range(k * 100, k * 100 + 100):
            log.record_predictions([_record(i)])
            if reader.execute("SELECT 1 FROM predictions WHERE request_id = ?", (f"r{i}",)).fetchone() is None:
                unseen.append(f"r{i}")
            if i % 3 == 0:
                log.record_feedback(f"r{i}", 1)
        reader.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert unseen == []
    assert log.count_predictions() == 1600 and log.count_feedback() == len(range(0, 1600, 3))


def test_latency_and_errors_follow_the_fault_file(tmp_path):
    path = tmp_path / "control" / "faults.json"
    switch = FaultSwitch(path, poll_seconds=0)
    switch.apply()  # no file: no fault
    write_fault_state(path, FaultState(delay_seconds=0.2))
    t0 = time.perf_counter()
    switch.apply()
    assert time.perf_counter() - t0 >= 0.2
    write_fault_state(path, FaultState(error_share=1.0))
    with pytest.raises(ServiceFault):
        switch.apply()
    path.unlink()
    switch.apply()  # file removed: faults off


def test_error_rate_is_reproducible_for_a_seed(tmp_path):
    path = tmp_path / "faults.json"

    def outcomes():
        write_fault_state(path, FaultState(error_share=0.5, seed=9))
        switch = FaultSwitch(path, poll_seconds=0)
        out = []
        for _ in range(200):
            try:
                switch.apply()
                out.append(0)
            except ServiceFault:
                out.append(1)
        return out

    first = outcomes()
    assert first == outcomes() and 60 < sum(first) < 140


def test_a_broken_fault_file_keeps_the_last_good_state(tmp_path):
    path = tmp_path / "faults.json"
    switch = FaultSwitch(path, poll_seconds=0)
    write_fault_state(path, FaultState(error_share=1.0))
    with pytest.raises(ServiceFault):
        switch.apply()
    time.sleep(0.01)
    path.write_text('{"error_share": ')
    with pytest.raises(ServiceFault):
        switch.apply()


class _Row:
    """A validated request row, as the candidate's app hands it to the service."""

    def __init__(self, features: dict):
        self.features = features

    def model_dump(self) -> dict:
        return dict(self.features)


def _service(tmp_path, loaded_model, load_release):
    from model_service.service import ChurnService

    return ChurnService(
        loaded_model,
        PredictionLog(tmp_path / "predictions.sqlite"),
        FaultSwitch(tmp_path / "faults.json", poll_seconds=0),
        load_release=load_release,
    )


def test_a_released_version_serves_while_the_fault_file_names_it_then_the_champion_again(tmp_path, loaded_model):
    import dataclasses

    from conftest import valid_customer

    worse = dataclasses.replace(loaded_model, alias="challenger", version="2", threshold=0.2, scorer=None)
    fetched = []
    svc = _service(tmp_path, loaded_model, lambda alias: fetched.append(alias) or worse)
    customers = [_Row(valid_customer(k)) for k in range(20)]
    assert {p.model_version for p in svc.predict(customers)} == {"1"}
    write_fault_state(tmp_path / "faults.json", FaultState(model_alias="challenger"))
    released = svc.predict(customers)
    assert {p.model_version for p in released} == {"2"} and svc.model_version == "2"
    svc.predict(customers)
    assert fetched == ["challenger"], "fetched once, then kept"
    write_fault_state(tmp_path / "faults.json", FaultState())
    assert {p.model_version for p in svc.predict(customers)} == {"1"}
    logged = sqlite3.connect(tmp_path / "predictions.sqlite").execute("SELECT model_version FROM predictions")
    assert [r[0] for r in logged] == ["1"] * 20 + ["2"] * 40 + ["1"] * 20


def test_a_release_that_cannot_be_fetched_leaves_the_champion_serving(tmp_path, loaded_model):
    from conftest import valid_customer

    def unreachable(alias):
        raise ConnectionError("MLflow is away")

    svc = _service(tmp_path, loaded_model, unreachable)
    write_fault_state(tmp_path / "faults.json", FaultState(model_alias="challenger"))
    assert {p.model_version for p in svc.predict([_Row(valid_customer())])} == {"1"}
