"""`mlsandbox dashboards preview`: the candidate's dashboards drawn from their queries, written as one static HTML
file (data, uPlot and the drawing code embedded; nothing loaded from anywhere). It shows the candidate's own work
only: no scenario, no grade, nothing of the hidden truth."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jinja2

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)


def write(data: dict, title: str, out: Path) -> Path:
    """`data` (render.boards) drawn into one self-contained page at `out`."""
    html = TEMPLATES.get_template("preview.html").render(
        title=title,
        made=time.strftime("%Y-%m-%d %H:%M:%S"),
        css=(STATIC / "uplot" / "uPlot.min.css").read_text() + (STATIC / "dashboards.css").read_text(),
        scripts=[(STATIC / "uplot" / "uPlot.iife.min.js").read_text(), (STATIC / "dashboards.js").read_text()],
        # Inside a <script>: "</" would end it early.
        data=json.dumps(data).replace("</", "<\\/"),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html)
    return out
