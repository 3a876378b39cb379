"""The prediction log survives a restart; faults switch on and off from a file outside the candidate's code."""

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
