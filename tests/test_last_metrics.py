"""The model server keeps the last /metrics body it served (model_service/last_metrics.py), for the grader to read
when the server is down at grading time: as the grader's own scrape would read it, whatever Prometheus asked for."""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter, make_asgi_app

from grading.families import parse_exposition
from grading.grade import as_classic_text
from model_service import last_metrics
from model_service.last_metrics import KeepLastMetrics, read_last_metrics

OPENMETRICS_FIRST = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


def _client(tmp_path, monkeypatch) -> TestClient:
    monkeypatch.setattr(last_metrics, "MIN_INTERVAL_SECONDS", 0.0)
    registry = CollectorRegistry()
    Counter("churn_predictions", "Predictions served.", ["cls"], registry=registry).labels("1").inc(3)
    app = FastAPI()
    app.mount("/metrics", make_asgi_app(registry))  # answers at /metrics/ (a redirect from /metrics)

    @app.get("/broken")
    def broken():
        return {"not": "metrics"}

    return TestClient(KeepLastMetrics(app, tmp_path))


def test_a_gzipped_metrics_body_is_kept_as_text(tmp_path, monkeypatch):
    client = _client(tmp_path, monkeypatch)
    response = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    text, served_at = read_last_metrics(tmp_path)
    assert "churn_predictions_total" in text and abs(served_at - time.time()) < 60
    assert parse_exposition(text).families["churn_predictions"].type == "counter"


def test_an_openmetrics_body_reads_as_the_classic_one_the_grader_scrapes(tmp_path, monkeypatch):
    client = _client(tmp_path, monkeypatch)
    classic = client.get("/metrics/").text
    client.get("/metrics/", headers={"Accept": OPENMETRICS_FIRST})
    kept, _ = read_last_metrics(tmp_path)
    assert kept.rstrip().endswith("# EOF")
    as_read, as_scraped = parse_exposition(as_classic_text(kept)), parse_exposition(classic)
    assert {n: (f.type, f.help, f.series) for n, f in as_read.families.items()} == {
        n: (f.type, f.help, f.series) for n, f in as_scraped.families.items()
    }


def test_other_paths_and_failed_answers_are_not_kept(tmp_path, monkeypatch):
    client = _client(tmp_path, monkeypatch)
    client.get("/broken")
    client.get("/metrics/nothing-here")
    assert read_last_metrics(tmp_path) is None
