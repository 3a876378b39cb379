"""The room's own services, served by its supervisor on the host and reached from inside the room on a port of
its loopback (JupyterLab proxies it at /dashboards/):

- the candidate's dashboards drawn live from their queries (the console's renderer, without any of the truth:
  the last minutes of their own Prometheus);
- `reload-rules`, the room's command: the host checks the candidate's rule files and loads them into their
  session's Prometheus (only the host can: what Prometheus loads is a copy the room cannot write).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from grading.dashboards import from_files
from mlsandbox.services.dashboards import render
from mlsandbox.services.dashboards.preview import STATIC, TEMPLATES

LIVE_MINUTES = 15.0
RELOAD_SECONDS = 90


def create_app(workspace: Path, prometheus: str, reload: list[str]) -> Starlette:
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(TEMPLATES.get_template("live.html").render(minutes=LIVE_MINUTES))

    def data(request: Request) -> JSONResponse:
        minutes = min(max(float(request.query_params.get("minutes", LIVE_MINUTES)), 1.0), 24 * 60.0)
        end = time.time()
        boards = from_files(workspace / "dashboards")
        # Links open Prometheus as the room proxies it (relative to the page: /dashboards/ -> /prometheus/).
        return JSONResponse(render.boards(boards, prometheus, end - minutes * 60, end, link_prometheus="../prometheus"))

    def reload_rules(request: Request) -> PlainTextResponse:
        try:
            result = subprocess.run(reload, capture_output=True, text=True, timeout=RELOAD_SECONDS)
        except subprocess.TimeoutExpired:
            return PlainTextResponse(f"no answer within {RELOAD_SECONDS} s; try again\n", status_code=504)
        text = (result.stdout + result.stderr).replace("mlsandbox: ", "")
        return PlainTextResponse(text, status_code=200 if result.returncode == 0 else 409)

    return Starlette(
        routes=[
            Route("/", page),
            Route("/data", data),
            Route("/reload-rules", reload_rules, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC)),
        ]
    )
