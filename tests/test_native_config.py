"""The native Prometheus configuration written from prometheus/prometheus.yml."""

from __future__ import annotations


def test_prometheus_rejects_oversized_or_slow_scrapes_of_the_candidate_and_never_waits_past_the_interval():
    from pathlib import Path

    from mlsandbox.config import StackConfig
    from mlsandbox.stack.native_config import render_prometheus

    for interval, timeout in (("5s", "4s"), ("1s", "1s"), ("500ms", "500ms")):
        job = render_prometheus(StackConfig(scrape_interval=interval), Path("starter_repo"))["scrape_configs"][0]
        assert job["job_name"] == "model-server"
        assert (job["sample_limit"], job["body_size_limit"], job["scrape_timeout"]) == (20000, "10MB", timeout)
