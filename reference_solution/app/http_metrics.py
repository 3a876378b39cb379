"""Requests by endpoint and status, latency, requests in flight: a plain ASGI middleware (cheaper than
BaseHTTPMiddleware, and it sees every response, errors included)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

# /predict takes milliseconds; an injected fault or a slow host pushes it to tenths of a second. Dense
# below 100 ms, where the SLO decisions are, and up to the client time-out.
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by endpoint, method and status code.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being handled right now.")

SKIPPED_PATHS = ("/metrics",)


class HttpMetricsMiddleware:
    def __init__(self, app, known_paths):
        self.app = app
        # Unknown paths share one label value, so that a scanner cannot blow up the series count.
        self.known_paths = known_paths

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(SKIPPED_PATHS):
            await self.app(scope, receive, send)
            return
        endpoint = path if path in self.known_paths() else "other"
        status = 500  # what the client gets if the app raises before answering

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            LATENCY.labels(endpoint).observe(time.perf_counter() - start)
            REQUESTS.labels(endpoint, scope["method"], str(status)).inc()
            IN_FLIGHT.dec()
