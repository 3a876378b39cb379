"""What a session leaves for the interviewer and a later reviewer: archive/summary.md (the grades, the improvement
round and what changed in it, the candidate's snapshots beside the scenario's phases), and the team lead's
tables: `session list` and `session compare`."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from load.truth import TruthError, read_timeline
from mlsandbox.sessions.history import History
from mlsandbox.sessions.store import GradeRecord, StoredSession

MAX_DIFF_LINES = 400


def _clock(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _phases(session: StoredSession) -> list[tuple[float, str]]:
    """(start, "phase NAME [play]") of every phase played: the main play's (archived at the round) and the last."""
    found = []
    for label, run_dir in (("main play", session.layout.plays / "main"), ("", session.layout.run.root)):
        try:
            timeline = read_timeline(run_dir)
        except TruthError:
            timeline = None
        for p in timeline.phases if timeline else []:
            injected = ", ".join(i.kind for i in p.injections) or "nothing injected"
            found.append((p.start, f"phase {p.name} ({injected}){' - ' + label if label else ''}"))
    return found


def write_summary(session: StoredSession) -> Path:
    r, layout = session.record, session.layout
    lines = [f"# Session {r.name}", ""]
    play = r.play
    seed = play.seed if play and play.seed is not None else "the scenario's own"
    lines += [
        f"- scenario: {play.scenario if play else 'none'}"
        + (f" (seed {seed}, speed {play.speed:g}{', surprise' if play.surprise else ''})" if play else ""),
        f"- backend: {r.backend}; workspace copied from {r.source}",
        f"- started {_clock(r.started_at)}, ended {_clock(r.ended_at)}"
        + (f" ({_minutes(r.ended_at - r.started_at)})" if r.ended_at else ""),
        "",
    ]
    if r.grades:
        lines += [
            "## Grades",
            "",
            "| item | " + " | ".join(g.label for g in r.grades) + " |",
            "|---|" + "---:|" * len(r.grades),
        ]
        for key in r.grades[-1].items:
            cells = [f"{g.items.get(key, 0):g}/{g.max_items.get(key, 0):g}" for g in r.grades]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        lines.append("| **score %** | " + " | ".join(f"**{g.score:g}**" for g in r.grades) + " |")
        lines += [
            "",
            "Reports: "
            + ", ".join(
                f"[{g.label}]({Path(g.report).relative_to(layout.archive)}/report.html)"
                for g in r.grades
                if Path(g.report).is_relative_to(layout.archive)
            ),
            "",
        ]
    if r.round is not None:
        lines += _round_section(session)
    history = History(layout.candidate, layout.history)
    events = [
        (
            s.time,
            f"snapshot {s.commit[:8]}: {s.message} ({', '.join(s.files[:6]) or 'no file'}"
            f"{' ...' if len(s.files) > 6 else ''})",
        )
        for s in history.log()
    ]
    events += _phases(session)
    if r.round is not None:
        events.append((r.round.started_at, "**the improvement round starts**"))
    if events:
        lines += [
            "## What the candidate did, beside the scenario",
            "",
            "Times from the session's start; `git --git-dir history.git log -p` shows each snapshot.",
            "",
        ]
        for t, what in sorted(events):
            lines.append(f"- +{max(0.0, t - r.started_at) / 60:5.1f} min  {what}")
        lines.append("")
    if r.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in r.notes], ""]
    layout.archive.mkdir(parents=True, exist_ok=True)
    layout.summary.write_text("\n".join(lines))
    return layout.summary


def _round_section(session: StoredSession) -> list[str]:
    r, layout = session.record, session.layout
    rnd = r.round
    before = next((g for g in r.grades if g.label == "before the round"), None)
    final = r.final
    item = rnd.improvement.get("item")
    lines = [
        "## The improvement round",
        "",
        f"Started {_clock(rnd.started_at)}, {rnd.minutes:g} minutes; the scenario replayed at speed "
        f"{rnd.play.speed:g}.",
        "",
        f"The improvement point given: {rnd.improvement.get('text')}",
        "",
    ]
    if item and before and final:
        lines.append(
            f"The item it named, **{item}**: {before.items.get(item, 0):g} before the round, "
            f"{final.items.get(item, 0):g} at the end (of {final.max_items.get(item, 0):g})."
        )
    if before and final:
        lines.append(f"Score: {before.score:g}% before the round, {final.score:g}% at the end.")
    lines.append("")
    diff = layout.round_diff.read_text() if layout.round_diff.exists() else ""
    if diff.strip():
        files = History(layout.candidate, layout.history).changed_files(rnd.snapshot) if rnd.snapshot else []
        lines += [f"Changed during the round: {', '.join(files)}", "", "```diff"]
        diff_lines = diff.splitlines()
        lines += diff_lines[:MAX_DIFF_LINES]
        if len(diff_lines) > MAX_DIFF_LINES:
            lines.append(f"... ({len(diff_lines) - MAX_DIFF_LINES} more lines in round.diff)")
        lines += ["```", ""]
    else:
        lines += ["Nothing changed in the workspace during the round.", ""]
    return lines


# --- the team lead's tables -------------------------------------------------------------------------------


def list_rows(sessions: list[StoredSession]) -> list[dict]:
    rows = []
    for s in sessions:
        r = s.record
        end = r.ended_at or time.time()
        score = r.grades[-1].score if r.grades else None
        rows.append(
            {
                "name": r.name,
                "scenario": r.play.scenario if r.play else "-",
                "backend": r.backend,
                "started": _clock(r.started_at),
                "minutes": round((end - r.started_at) / 60, 1),
                "score": score,
                "state": s.state,
            }
        )
    return rows


def list_table(rows: list[dict]) -> str:
    if not rows:
        return "no session yet (`mlsandbox session start NAME` starts one)"
    out = [f"{'name':<20} {'scenario':<16} {'started':<20} {'minutes':>8} {'score':>7}  state"]
    for row in rows:
        score = f"{row['score']:g}" if row["score"] is not None else "-"
        out.append(
            f"{row['name'][:20]:<20} {row['scenario'][:16]:<16} {row['started']:<20} {row['minutes']:>8} "
            f"{score:>7}  {row['state']}"
        )
    return "\n".join(out)


def compare_rows(graded: dict[str, GradeRecord]) -> list[list[str]]:
    """Rows of [what, out of, session A, session B, ...]: points per rubric item, the score, and each incident's
    detection latency in seconds ("missed": not detected; "": not played in that session)."""
    names = list(graded)
    keys = list(dict.fromkeys(k for g in graded.values() for k in g.items))
    rows = [["item", "out of", *names]]
    for k in keys:
        top = max(g.max_items.get(k, 0) for g in graded.values())
        rows.append([k, f"{top:g}", *(f"{graded[n].items.get(k, 0):g}" for n in names)])
    rows.append(["score %", "100", *(f"{graded[n].score:g}" for n in names)])
    incidents = list(dict.fromkeys(i for g in graded.values() for i in g.detections))
    for incident in incidents:
        cells = []
        for n in names:
            if incident not in graded[n].detections:
                cells.append("")
            else:
                latency = graded[n].detections[incident]
                cells.append("missed" if latency is None else f"{latency:.0f}")
        rows.append([f"detection seconds: {incident}", "", *cells])
    return rows


def as_text(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows
    )


def as_csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()
