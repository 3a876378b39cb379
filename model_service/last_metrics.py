"""The last /metrics body the candidate's server answered with, kept in the run directory.

When the server is down at grading time (killed, or stopped by an edit that does not import), Prometheus still
holds the session's series but no longer their types, HELP texts and bucket layouts, which the grader reads from
an exposition. This middleware keeps the body of each successful GET /metrics (at most one write a second,
bodies up to Prometheus's own size limit), so the grader can read what the server last served.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import zlib
from pathlib import Path

from .settings import server_dir

FILE_NAME = "last-metrics.txt"
MAX_BYTES = 10 * 1024 * 1024  # Prometheus's body_size_limit for the model server's job
MIN_INTERVAL_SECONDS = 1.0


def last_metrics_path(run_dir: Path) -> Path:
    return server_dir(run_dir) / FILE_NAME


def read_last_metrics(run_dir: Path) -> tuple[str, float] | None:
    """(the body, when it was served) or None."""
    path = last_metrics_path(run_dir)
    try:
        return path.read_text(errors="replace"), path.stat().st_mtime
    except OSError:
        return None


class KeepLastMetrics:
    """ASGI middleware: passes everything through unchanged, keeping a copy of GET /metrics bodies."""

    def __init__(self, app, run_dir: Path):
        self.app, self.path = app, last_metrics_path(run_dir)
        self.kept_at = 0.0
        self._names = itertools.count()

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] != "http"
            or scope.get("method") != "GET"
            or scope.get("path", "").rstrip("/") != "/metrics"  # a mounted app answers at /metrics/
            or time.monotonic() - self.kept_at < MIN_INTERVAL_SECONDS
        ):
            await self.app(scope, receive, send)
            return
        self.kept_at = time.monotonic()
        response = {"status": 0, "encoding": b"", "chunks": [], "size": 0}

        async def keeping(message):
            await send(message)  # the scraper first; the copy after
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                response["encoding"] = headers.get(b"content-encoding", b"").strip().lower()
            elif message["type"] == "http.response.body" and response["status"] == 200:
                body = message.get("body", b"")
                response["size"] += len(body)
                if response["size"] <= MAX_BYTES:
                    response["chunks"].append(body)
                if not message.get("more_body", False) and response["size"] <= MAX_BYTES:
                    body = b"".join(response["chunks"])
                    await asyncio.to_thread(self._keep, body, response["encoding"])

        await self.app(scope, receive, keeping)

    def _keep(self, body: bytes, encoding: bytes) -> None:
        try:
            if encoding == b"gzip":  # bounded: a small body must not inflate without limit
                inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                body = inflate.decompress(body, MAX_BYTES)
                if not inflate.eof or inflate.unconsumed_tail:
                    return  # larger than Prometheus would take, or cut short
            elif encoding not in (b"", b"identity"):
                return
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{next(self._names)}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(body)
            os.replace(tmp, self.path)
        except (OSError, zlib.error):
            pass  # keeping a copy must never break the candidate's endpoint
