"""The interviewer's console: a page per room (the sandbox, each session) with what the candidate cannot see.

Every request needs the console's token (`?token=` once, then a cookie); without it: 401 and nothing else. The
console reads the truth and Prometheus; it never writes to Prometheus or into the candidate's folder, whose files
it reads without following links (sessions/workspace.py). Its only writes are the scenario controls (next phase,
pause, resume), which go to the player's control file as `mlsandbox scenario next|pause|resume` do, and the
interviewers' scorecards (sessions/scorecard.py: a new file per change).

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
from pydantic import BaseModel, ConfigDict

from mlsandbox.console import views
from mlsandbox.console.rooms import Rooms
from mlsandbox.errors import InvalidInput, MlsandboxError
from mlsandbox.services.dashboards.preview import STATIC as DASHBOARDS_STATIC
from mlsandbox.sessions.history import HistoryError

HERE = Path(__file__).resolve().parent
COOKIE = "mlsandbox_console"
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=jinja2.select_autoescape(["html"])
)
# The room page shows what the candidate wrote (their NOTES.md rendered, their files): it runs our scripts only,
# and loads nothing from elsewhere.
ROOM_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class ScorecardChange(BaseModel):
    """What the room page's scorecard form sends: the interviewer and what they set."""

    model_config = ConfigDict(extra="forbid")

    interviewer: str
    ratings: dict[str, int] = {}
    notes: dict[str, str] = {}
    recommendation: str | None = None


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
        page = TEMPLATES.get_template("room.html").render(room=room_or_404(name))
        return HTMLResponse(page, headers={"Content-Security-Policy": ROOM_CSP})

    @app.get("/api/rooms")
    def api_rooms():
        return [
            {
                "name": r.name,
                "kind": r.kind,
                "state": r.state,
                "level": r.level.name if r.level else None,
                "report": r.report is not None,
            }
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

    def refused(exc: Exception) -> HTTPException:
        """A request the sessions' layer refused: 404 for a snapshot that is not there, else 422, one line."""
        return HTTPException(404 if isinstance(exc, HistoryError) else 422, str(exc))

    @app.get("/api/room/{name}/history")
    def api_history(name: str):
        return views.work_history(room_or_404(name))

    @app.get("/api/room/{name}/workspace")
    def api_workspace(name: str, at: str | None = None):
        try:
            return views.workspace_tree(room_or_404(name), at)
        except (InvalidInput, HistoryError) as exc:
            raise refused(exc) from None

    @app.get("/api/room/{name}/workspace/file")
    def api_workspace_file(name: str, path: str, at: str | None = None):
        try:
            return views.workspace_file(room_or_404(name), path, at)
        except (InvalidInput, HistoryError) as exc:
            raise refused(exc) from None

    @app.get("/api/room/{name}/scorecard")
    def api_scorecard(name: str, interviewer: str | None = None):
        try:
            return views.scorecards(room_or_404(name), interviewer)
        except InvalidInput as exc:
            raise refused(exc) from None

    @app.post("/api/room/{name}/scorecard")
    def api_scorecard_save(name: str, change: ScorecardChange):
        room = room_or_404(name)
        try:
            return views.save_scorecard(room, change.interviewer, change.ratings, change.notes, change.recommendation)
        except InvalidInput as exc:
            raise refused(exc) from None

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
