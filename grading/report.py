"""The report: report.json for machines, report.md and a self-contained report.html (with a timeline
picture) for people."""
from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import asdict
from pathlib import Path

import jinja2

from .checks.series import describe
from .grade import Grade

TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                               autoescape=jinja2.select_autoescape(["html"]))


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_dict(g: Grade) -> dict:
    s = g.session
    ctx = g.context
    found = ctx.artifacts.get("detections", [])
    return _plain({
        "score": g.score, "points": g.points, "max_points": g.max_points,
        "graded_at": g.graded_at, "grading_seconds": g.duration_seconds,
        "session": {"scenario": s.timeline["scenario"], "seed": s.timeline["seed"], "speed": s.timeline["speed"],
                    "start": s.start, "end": s.end, "phases": [p["name"] for p in s.phases],
                    "incidents": [{"kind": i.kind, "target": i.label, "start": i.start, "end": i.end}
                                  for i in s.incidents()]},
        "server_up": ctx.server_up, "notes": g.notes, "dashboards": ctx.artifacts.get("dashboards", []),
        "metrics_found": {k: sorted(v) for k, v in ctx.roles().items()},
        "detections": [{"incident": inc.label, "alert": dict(key)["alertname"] if key else None,
                        "detection_seconds": lat} for inc, key, lat in found],
        "items": [{"key": i.key, "title": i.title, "points": round(i.points, 2), "max_points": i.max_points,
                   "checks": [{**asdict(c), "evidence": [asdict(e) for e in c.evidence]} for c in i.checks]}
                  for i in g.items],
        "improvement": g.improvement,
    })


def timeline_png(g: Grade) -> bytes:
    """Phases shaded; requests sent; the candidate's performance and drift metrics; alert firing intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s, ctx = g.session, g.context
    t0 = s.start
    fig, axes = plt.subplots(4, 1, figsize=(11, 8), sharex=True, gridspec_kw={"height_ratios": [1, 1, 1, 1.3]})
    colors = ["#f2f2f2", "#fde2e2", "#e2ecfd", "#e5f6e0", "#fff1d6", "#efe2fd"]
    for ax in axes:
        for k, p in enumerate(s.phases):
            ax.axvspan(p["start"] - t0, (p["end"] or p["planned_end"]) - t0, color=colors[k % len(colors)], lw=0)
    for p in s.phases:
        axes[0].text((p["start"] - t0) + 0.5, 1.02, p["name"], transform=axes[0].get_xaxis_transform(), fontsize=8)
    rows = [r for r in s.ledger if s.start - 1 <= int(r["second"]) <= s.end + 1]
    axes[0].plot([int(r["second"]) - t0 for r in rows], [int(r["requests"]) for r in rows], label="sent /s")
    axes[0].plot([int(r["second"]) - t0 for r in rows], [int(r["ok"]) for r in rows], label="answered 2xx /s")
    axes[0].set_ylabel("traffic")
    axes[0].legend(fontsize=7, loc="lower left")
    acc = s.rolling_accuracy(ctx.tol.accuracy_window_labels)
    if acc:
        axes[1].plot([t - t0 for t, _ in acc], [v for _, v in acc], color="black", lw=1, label="grader: accuracy")
    for fam in ctx.roles().get("performance_gauge", set()):
        for labels, pts in ctx.prom.series_values(fam, s.start, s.end + 10, 2)[:4]:
            axes[1].plot([t - t0 for t, _ in pts], [v for _, v in pts], label=describe(labels), lw=1)
    axes[1].set_ylabel("performance")
    axes[1].legend(fontsize=7, loc="lower left")
    drift_family = ctx.artifacts.get("drift_family")
    if drift_family:
        for labels, pts in ctx.prom.series_values(drift_family, s.start, s.end + 10, 2)[:12]:
            axes[2].plot([t - t0 for t, _ in pts], [v for _, v in pts], lw=1, label=describe(labels))
        axes[2].legend(fontsize=6, loc="upper left", ncol=3)
    axes[2].set_ylabel("drift")
    intervals = ctx.artifacts.get("alert_intervals", {})
    names = sorted({dict(k)["alertname"] + ("/" + dict(k)["feature"] if "feature" in dict(k) else "") for k in intervals})
    for key, ivs in intervals.items():
        d = dict(key)
        y = names.index(d["alertname"] + ("/" + d["feature"] if "feature" in d else ""))
        axes[3].broken_barh([(a - t0, max(b - a, 1)) for a, b in ivs], (y - 0.35, 0.7), color="#d9534f")
    axes[3].set_yticks(range(len(names)), names, fontsize=7)
    axes[3].set_ylabel("alerts firing")
    axes[3].set_xlabel(f"seconds since the scenario started ({s.timeline['scenario']}, seed {s.timeline['seed']})")
    axes[3].set_xlim(-5, s.end - t0 + 30)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write(g: Grade, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    data = to_dict(g)
    (out / "report.json").write_text(json.dumps(data, indent=2))
    png = timeline_png(g)
    (out / "timeline.png").write_bytes(png)
    (out / "report.md").write_text(TEMPLATES.get_template("report.md.j2").render(r=data))
    (out / "report.html").write_text(TEMPLATES.get_template("report.html.j2").render(
        r=data, png=base64.b64encode(png).decode()))
    return data
