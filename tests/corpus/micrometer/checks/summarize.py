"""Summarise scenario.py's timeline: per incident, which alerts fired, how soon, and when they cleared;
and any alert firing in normal traffic (more than 30 s after the previous incident ended).

    .venv/bin/python tests/corpus/micrometer/checks/scenario.py > timeline.txt
    .venv/bin/python tests/corpus/micrometer/checks/summarize.py timeline.txt
"""
import sys
from collections import defaultdict

rows = []
for line in open(sys.argv[1]):
    parts = line.split()
    if not parts or not parts[0].isdigit():
        continue
    t = int(parts[0])
    inc = parts[1] if not parts[1].replace(".", "").replace("-", "").isdigit() else ""
    firing = set(parts[-1].split(",")) if "," in parts[-1] or parts[-1][:1].isupper() else set()
    rows.append((t, inc, firing))

incidents = []  # (name, start, end)
for t, inc, _ in rows:
    if inc and (not incidents or incidents[-1][0] != inc or incidents[-1][2] != t - 1):
        incidents.append([inc, t, t])
    elif inc:
        incidents[-1][2] = t
for name, start, end in incidents:
    seen = defaultdict(list)
    for t, _, firing in rows:
        if start <= t <= end + 30:
            for a in firing:
                seen[a].append(t)
    desc = ", ".join(f"{a} +{ts[0] - start}s..+{ts[-1] - end}s after end" for a, ts in sorted(seen.items(),
                     key=lambda kv: kv[1][0]))
    print(f"{name:15s} [{start}-{end}]: {desc or 'NOTHING FIRED'}")
fp = defaultdict(list)
for t, inc, firing in rows:
    if not any(s <= t <= e + 30 for _, s, e in incidents):
        for a in firing:
            fp[a].append(t)
print("firing in normal traffic:", dict(fp) or "none")
