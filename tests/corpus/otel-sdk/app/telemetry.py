"""OpenTelemetry plumbing: one MeterProvider, exported to Prometheus through prometheus-client.

The SDK's PrometheusMetricReader registers itself as a collector on prometheus-client's default
registry; `GET /metrics` renders that registry (so prometheus-client's own process_* / python_gc_*
collectors come along for free).

Naming: the Prometheus exporter translates OTel names: dots become underscores, counters get
`_total`, and the unit is appended (`s` -> `_seconds`). So `churn.model.inference.duration` with
unit `s` is scraped as `churn_model_inference_duration_seconds_bucket/_sum/_count`.
"""

from __future__ import annotations

import logging
import os

# Use the stable HTTP semantic conventions (http.server.request.duration in seconds, with
# http.route / http.response.status_code attributes) rather than the old millisecond histogram.
# Must be set before the instrumentation initialises its semconv mode.
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")

from fastapi import FastAPI  # noqa: E402
from fastapi.responses import Response  # noqa: E402
from opentelemetry.exporter.prometheus import PrometheusMetricReader  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.view import DropAggregation, View  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest  # noqa: E402

log = logging.getLogger(__name__)

SERVICE_NAME = "churn-model-server"

_provider: MeterProvider | None = None


def meter_provider() -> MeterProvider:
    """The process-wide MeterProvider (created once; uvicorn's reload starts a fresh process)."""
    global _provider
    if _provider is None:
        reader = PrometheusMetricReader(
            # One otel_scope_* label pair on every series is noise here: everything comes from
            # two scopes (ours and the FastAPI instrumentation) with disjoint metric names.
            scope_info_enabled=False,
        )
        _provider = MeterProvider(
            resource=Resource.create({"service.name": SERVICE_NAME}),
            metric_readers=[reader],
            # Request/response body-size histograms: ~70 series of little use for this service.
            views=[
                View(instrument_name="http.server.request.body.size", aggregation=DropAggregation()),
                View(instrument_name="http.server.response.body.size", aggregation=DropAggregation()),
                View(instrument_name="*"),
            ],
        )
    return _provider


def instrument_http(app: FastAPI) -> None:
    """HTTP server metrics (request duration histogram, active requests) via the FastAPI instrumentation."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        meter_provider=meter_provider(),
        # Prometheus scrapes every 5 s: keep the scrape itself out of the traffic figures.
        excluded_urls="/metrics",
    )


def add_metrics_route(app: FastAPI) -> None:
    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:  # sync: rendered in the threadpool, off the event loop
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def shutdown() -> None:
    if _provider is not None:
        try:
            _provider.shutdown()
        except Exception:  # pragma: no cover - best effort on reload
            log.exception("meter provider shutdown failed")
