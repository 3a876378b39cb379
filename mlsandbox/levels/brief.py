"""A level's brief: the starter's CANDIDATE.md with the level's variant laid over it, section by section, and the
time box written from the level's figures (so that what the candidate reads and what the session plays agree).

A variant is Markdown whose `## ` sections replace the starter's sections of the same heading (its text before the
first heading replaces the title and introduction); a section the starter does not have goes after the variant's
section before it. A variant writes only what differs: the room's sections (how to run things, where they are,
what is installed) stay the starter's, and a session's room replaces them with its own (sessions/brief.py).
"""

from __future__ import annotations

from mlsandbox.layout import STARTER

from .level import Level

BRIEF = "CANDIDATE.md"
TIME = "Time"
TIME_SECTION = """## Time

- **{time_box}** for the task.
- Then the interviewer gives you **one improvement point** and **{round_minutes:g} minutes** to refine your work.

Ask the interviewer whenever something is unclear. Explaining your reasoning matters as much as the code.

"""


def sections(text: str) -> list[tuple[str, str]]:
    """A Markdown text as (heading, text) per `## ` section; the part before the first has the heading ''."""
    parts, heading, lines = [], "", []
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            parts.append((heading, "".join(lines)))
            heading, lines = line[3:].strip(), []
        lines.append(line)
    parts.append((heading, "".join(lines)))
    return parts


def laid_over(base: str, variant: str) -> str:
    """`base` with the sections of `variant` laid over it (see the module's docstring)."""
    out = sections(base)
    headings = [h for h, _ in out]
    after = ""
    for heading, text in sections(variant):
        if not heading and not text.strip():
            continue  # no text before the first heading: the title and introduction stay
        if heading in headings:
            out[headings.index(heading)] = (heading, text)
        else:
            at = headings.index(after) + 1 if after in headings else len(out)
            out.insert(at, (heading, text))
            headings.insert(at, heading)
        after = heading
    # Sections end with a blank line, but the last: one from the end of the variant may now stand in the middle.
    last = len(out) - 1
    return "".join(t if t.endswith("\n\n") or k == last else t.rstrip("\n") + "\n\n" for k, (_, t) in enumerate(out))


def level_brief(level: Level) -> str:
    """The brief a candidate at this level reads (a session's room renders it for the room)."""
    text = (STARTER / BRIEF).read_text()
    if level.brief is not None:
        text = laid_over(text, level.brief.read_text())
    time = TIME_SECTION.format(time_box=level.time_box, round_minutes=level.spec.round_minutes)
    return laid_over(text, f"## {TIME}\n" + time.split("\n", 1)[1]) if TIME in dict(sections(text)) else text
