"""The report, drawn from the Grade alone: report.json for machines, report.md and a self-contained report.html
(with a timeline picture) for people."""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import asdict
from pathlib import Path

import jinja2
import numpy as np

from . import round as round_mod
from .grade import Grade

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=jinja2.select_autoescape(["html", "html.j2"]),
)


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _plain(value.item())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return value


def to_dict(g: Grade) -> dict:
    s = g.session
    return _plain(
        {
            "score": g.score,
            "points": g.points,
            "max_points": g.max_points,
            # The level the rubric was composed for (None: the rubric as given), and its plus checks: graded and
            # shown beside the score, never counted in it.
            "level": g.level,
            "plus": {
                "points": round(sum(c.points for _, c in g.plus), 2),
                "max_points": sum(c.max_points for _, c in g.plus),
                "checks": [
                    {"item": k, "name": c.name, "passed": c.passed, "points": c.points, "summary": c.summary}
                    for k, c in g.plus
                ],
            },
            "graded_at": g.graded_at,
            "grading_seconds": g.duration_seconds,
            "session": {
                "scenario": s.timeline.scenario,
                "seed": s.timeline.seed,
                "speed": s.timeline.speed,
                "status": s.timeline.status,
                "as_of": s.now,
                "start": s.start,
                "end": s.end,
                "phases": [p.name for p in s.phases],
                "incidents": [
                    {"kind": i.kind, "target": i.label, "start": i.start, "end": i.end} for i in s.incidents()
                ],
                "not_judged": [
                    {"kind": i.kind, "target": i.label, "start": i.start, "end": i.end} for i in s.unseen_incidents()
                ],
                # When the model server or Prometheus was down outside injected faults (grading.gaps).
                "gaps": [gap.as_dict() for gap in s.gaps],
            },
            "server_up": g.server_up,
            "notes": g.notes,
            "dashboards": g.dashboards,
            "roles": g.findings.summary(),
            "alerts": [
                {
                    "alert": r.name,
                    "watches": [x.value for x in r.roles],
                    "how": r.how,
                    "can_fire": not r.dead and not r.broken,
                }
                for r in g.alerts.rules
            ],
            "detections": [
                {
                    "incident": d.incident.label,
                    "alert": d.firing.key if d.firing else None,
                    "detection_seconds": d.latency,
                    "judged": d.judged,
                }
                for d in _judged_detections(g)
            ],
            # An improvement round's alerting, judged again (grading/round.py): how, why, and per incident what the
            # main play's alerts caught then and the rules as they are now catch when replayed over it.
            "round": g.round.as_dict() if g.round is not None else None,
            "items": [
                {
                    "key": i.key,
                    "title": i.title,
                    "points": i.points,
                    "max_points": i.max_points,
                    "checks": [{**asdict(c), "evidence": [asdict(e) for e in c.evidence]} for c in i.checks],
                }
                for i in g.items
            ],
            "not_applicable": [{"item": k, "check": c.name, "why": c.summary} for k, c in g.not_applicable],
            "improvement": asdict(g.improvement),
        }
    )


def _judged_detections(g: Grade):
    """The detections the alerting checks judged: the replay's over the main play, when the round was judged so."""
    if g.round is not None and g.round.main_grade is not None and g.round.judgement == round_mod.REPLAY:
        return g.round.main_grade.alerts.detections
    return g.alerts.detections


def timeline_png(g: Grade) -> bytes:
    """Phases shaded; requests sent; the performance and drift signals taken; alert firing intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = g.session
    t0 = s.start
    fig, axes = plt.subplots(4, 1, figsize=(11, 8), sharex=True, gridspec_kw={"height_ratios": [1, 1, 1, 1.3]})
    colors = ["#f2f2f2", "#fde2e2", "#e2ecfd", "#e5f6e0", "#fff1d6", "#efe2fd"]
    for ax in axes:
        for k, p in enumerate(s.phases):
            ax.axvspan(p.start - t0, s.phase_end(p) - t0, color=colors[k % len(colors)], lw=0)
    for k, p in enumerate(s.phases):  # names staggered: short phases sit side by side
        axes[0].text(
            p.start - t0 + 0.5, 1.02 + 0.12 * (k % 2), p.name, transform=axes[0].get_xaxis_transform(), fontsize=8
        )
    rows = [r for r in s.ledger if s.start - 1 <= r.second < s.end + 2]  # gaps included: the plot shows them
    axes[0].plot([r.second - t0 for r in rows], [r.requests for r in rows], label="sent /s")
    axes[0].plot([r.second - t0 for r in rows], [r.ok for r in rows], label="answered 2xx /s")
    axes[0].set_ylabel("traffic")
    axes[0].legend(fontsize=7, loc="lower left")
    for k, ps in enumerate(g.performance_plot):
        axes[1].plot(
            ps.times - t0, ps.values, label=ps.label[:60], lw=1.4 if k == 0 else 1, color="black" if k == 0 else None
        )
    axes[1].set_ylabel("performance")
    if g.performance_plot:
        axes[1].legend(fontsize=7, loc="lower left")
    # Each drift series in its own units (a mean in dollars, a p-value, a distance): drawn as its departure from
    # its baseline level in multiples of its baseline noise, on a symmetric log scale, the movers only.
    base_end = (s.baseline() or (s.start, s.start + 10))[1]
    movers = []
    for ps in g.drift_plot:
        v = ps.values
        base = v[np.isfinite(v) & (ps.times < base_end)]
        if len(base) < 3:
            base = v[np.isfinite(v)][:10]
        if not len(base):
            continue
        ref = float(np.median(base))
        noise = max(float(1.4826 * np.median(np.abs(base - ref))), 1e-6 * max(abs(ref), 1e-9))
        z = (v - ref) / noise
        movers.append((float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.0, ps, z))
    for _, ps, z in sorted(movers, key=lambda m: -m[0])[:6]:
        axes[2].plot(ps.times - t0, z, lw=1, label=ps.label[:50])
    if movers:
        axes[2].set_yscale("symlog", linthresh=3)
        axes[2].legend(fontsize=6, loc="upper left", ncol=3)
    axes[2].set_ylabel("drift\n(baseline noises)")
    names = sorted({f.key for f in g.alerts.firings})
    for f in g.alerts.firings:
        y = names.index(f.key)
        axes[3].broken_barh([(f.start - t0, max(f.end - f.start, 1))], (y - 0.35, 0.7), color="#d9534f")
    axes[3].set_yticks(range(len(names)), names, fontsize=7)
    axes[3].set_ylabel("alerts firing")
    axes[3].set_xlabel(f"seconds since the scenario started ({s.timeline.scenario}, seed {s.timeline.seed})")
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
    (out / "report.html").write_text(
        TEMPLATES.get_template("report.html.j2").render(r=data, png=base64.b64encode(png).decode())
    )
    return data
