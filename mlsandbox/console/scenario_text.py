"""The interviewer's view of a playing scenario, from its hidden timeline."""

from __future__ import annotations

import time
from datetime import datetime

from load.scenario import Injection
from load.truth import TimelineRecord


def _clock(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts else "--:--:--"


def _injection(inj: Injection) -> str:
    params = ", ".join(f"{k}={v}" for k, v in inj.model_dump().items() if k != "kind")
    return f"{inj.kind}({params})" if params else inj.kind


def describe(timeline: TimelineRecord, now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = [
        f"scenario {timeline.scenario}  seed {timeline.seed}  speed {timeline.speed}x"
        f"{'  surprise' if timeline.surprise else ''}  status {timeline.status}"
    ]
    cur = timeline.current
    if timeline.interrupted(now):
        last = timeline.phases[-1] if timeline.phases else None
        nxt = timeline.next_phase()
        lines.append(
            f"INTERRUPTED in phase {last.index + 1}/{len(timeline.planned_phases)} {last.name!r}: the load "
            f"generator stopped at {_clock(timeline.heartbeat_at)} and nothing has played since"
            if last
            else "INTERRUPTED before the first phase"
        )
        if nxt:
            again = f" (--from {last.name} plays that phase again)" if last else ""
            lines.append(f"  resume: `mlsandbox scenario play {timeline.scenario} --from {nxt}`{again}")
        cur = None
    if timeline.paused_at is not None:
        lines.append(f"PAUSED since {_clock(timeline.paused_at)} (`mlsandbox scenario resume` resumes the traffic)")
    if cur is not None:
        left = max(0.0, cur.planned_end - now + (now - timeline.paused_at if timeline.paused_at else 0))
        lines.append(
            f"NOW: phase {cur.index + 1}/{len(timeline.planned_phases)} {cur.name!r}, "
            f"{left:.0f}s left, {cur.rate:g} req/s, labels {cur.ground_truth.fraction:.0%} "
            f"after {cur.ground_truth.wall_delay_seconds:g}s"
        )
        injected = [_injection(i) for i in cur.injections]
        lines.append("  injected: " + ("; ".join(injected) if injected else "nothing"))
        if cur.notes:
            lines.append("  note: " + "; ".join(cur.notes))
        upcoming = timeline.planned_phases[cur.index + 1 :]
        lines.append("  next: " + (", ".join(upcoming) if upcoming else "end of scenario"))
    lines.append("played:")
    for p in timeline.phases:
        injected = "; ".join(_injection(i) for i in p.injections) or "nothing"
        lines.append(
            f"  {_clock(p.start)}-{_clock(p.end)}  {p.name:<16} {injected}{'  (skipped ahead)' if p.skipped else ''}"
        )
    return "\n".join(lines)
