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
    write_fault_state(path, FaultState(added_latency_seconds=0.2))
    t0 = time.perf_counter()
    switch.apply()
    assert time.perf_counter() - t0 >= 0.2
    write_fault_state(path, FaultState(error_rate=1.0))
    with pytest.raises(ServiceFault):
        switch.apply()
    path.unlink()
    switch.apply()  # file removed: faults off


def test_error_rate_is_reproducible_for_a_seed(tmp_path):
    path = tmp_path / "faults.json"

    def outcomes():
        write_fault_state(path, FaultState(error_rate=0.5, seed=9))
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
    write_fault_state(path, FaultState(error_rate=1.0))
    with pytest.raises(ServiceFault):
        switch.apply()
    time.sleep(0.01)
    path.write_text('{"error_rate": ')
    with pytest.raises(ServiceFault):
        switch.apply()
