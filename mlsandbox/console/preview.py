"""`mlsandbox dashboards preview`: the candidate's dashboards drawn from their queries against the running
Prometheus, written as one static HTML file (data, uPlot and the drawing code embedded; nothing loaded from
anywhere). It shows the candidate's own work only: no scenario, no grade, nothing of the hidden truth."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jinja2

from mlsandbox.console import views
from mlsandbox.console.rooms import Room

HERE = Path(__file__).resolve().parent


def write(room: Room, out: Path) -> Path:
    data = views.dashboards(room)
    static = HERE / "static"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    html = env.get_template("preview.html").render(
        title=f"Dashboards of {room.candidate_dir}",
        made=time.strftime("%Y-%m-%d %H:%M:%S"),
        css=(static / "uplot" / "uPlot.min.css").read_text() + (static / "console.css").read_text(),
        scripts=[(static / "uplot" / "uPlot.iife.min.js").read_text(), (static / "dashboards.js").read_text()],
        # Inside a <script>: "</" would end it early.
        data=json.dumps(data).replace("</", "<\\/"),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html)
    return out
