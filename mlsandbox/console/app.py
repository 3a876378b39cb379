"""The interviewer's console: a page per room (the sandbox, each session) with what the candidate cannot see.

Every request needs the console's token (`?token=` once, then a cookie); without it: 401 and nothing else. The
console reads the truth and Prometheus; it never writes to Prometheus or into the candidate's folder. Its only
writes are the scenario controls (next phase, pause, resume), which go to the player's control file as
`mlsandbox scenario next|pause|resume` do.

    python -m mlsandbox.console.app --port 8090 --token-file run/console.token
"""

from __future__ import annotations

import argparse
import hmac
import threading
from pathlib import Path

import jinja2
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from mlsandbox.console import views
from mlsandbox.console.rooms import Rooms
from mlsandbox.errors import MlsandboxError
from mlsandbox.services.dashboards.preview import STATIC as DASHBOARDS_STATIC

HERE = Path(__file__).resolve().parent
COOKIE = "mlsandbox_console"
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=jinja2.select_autoescape(["html"])
)


def create_app(token: str, rooms: Rooms, grader: views.Grader | None = None) -> FastAPI:
    app = FastAPI(title="mlsandbox console", docs_url=None, redoc_url=None, openapi_url=None)
    grader = grader or views.Grader(rooms)

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if request.url.path == "/health":  # for `mlsandbox status`: says nothing but "ok"
            return await call_next(request)
        given = request.query_params.get("token") or request.cookies.get(COOKIE) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return Response(
                "401: this console needs its token (the URL `mlsandbox up` printed)",
                status_code=401,
                media_type="text/plain",
            )
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    app.mount("/static/dashboards", StaticFiles(directory=DASHBOARDS_STATIC), name="dashboards-static")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def room_or_404(name: str):
        room = rooms.get(name)
        if room is None:
            raise HTTPException(404, f"no room {name!r}")
        return room

    @app.get("/favicon.ico")
    def favicon():
        return Response(status_code=204)

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    def index():
        return TEMPLATES.get_template("index.html").render(rooms=list(rooms.all().values()))

    @app.get("/room/{name}", response_class=HTMLResponse)
    def room_page(name: str):
        return TEMPLATES.get_template("room.html").render(room=room_or_404(name))

    @app.get("/api/rooms")
    def api_rooms():
        return [
            {"name": r.name, "kind": r.kind, "state": r.state, "report": r.report is not None}
            for r in rooms.all().values()
        ]

    @app.get("/api/room/{name}/scenario")
    def api_scenario(name: str):
        return views.scenario(room_or_404(name))

    def grade_of(room) -> dict:
        """The grade so far of a running room; the last report of one that stopped."""
        return grader.get(room.name) if room.running else {**room.archived_grade(), "in_flight": False}

    @app.get("/api/room/{name}/lanes")
    def api_lanes(name: str):
        room = room_or_404(name)
        return views.lanes(room, grade_of(room))

    @app.get("/api/room/{name}/grade")
    def api_grade(name: str):
        return grade_of(room_or_404(name))

    @app.post("/api/room/{name}/grade")
    def api_grade_now(name: str):
        room = room_or_404(name)
        if not room.running:
            raise HTTPException(409, f"{name} is not running; its report is the grade")
        grader.ask(name)
        return {"asked": True}

    @app.get("/api/room/{name}/dashboards")
    def api_dashboards(name: str):
        return views.dashboards(room_or_404(name))

    @app.post("/api/room/{name}/scenario/{action}")
    def api_control(name: str, action: str):
        room = room_or_404(name)
        if action not in ("next", "pause", "resume"):
            raise HTTPException(404, f"no scenario action {action!r} (next, pause, resume)")
        if not room.running:
            raise HTTPException(409, f"{name} is not running")
        try:
            if action == "next":
                room.sandbox.request_skip()
            else:
                room.sandbox.request_pause(action == "pause")
        except MlsandboxError as exc:
            raise HTTPException(409, str(exc)) from None
        return JSONResponse({"done": action})

    @app.get("/room/{name}/report")
    def report(name: str):
        room = room_or_404(name)
        if room.report is None:
            raise HTTPException(404, "no report yet")
        return FileResponse(room.report, media_type="text/html")

    app.state.grader = grader
    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="The interviewer's console.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--token-file", type=Path, required=True)
    args = parser.parse_args(argv)
    token = args.token_file.read_text().strip()
    rooms = Rooms()
    grader = views.Grader(rooms)
    threading.Thread(target=grader.run_forever, name="grader", daemon=True).start()
    uvicorn.run(create_app(token, rooms, grader), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
