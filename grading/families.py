"""The candidate's metric families: name, type, HELP and the series names Prometheus holds for each.

Read from the /metrics exposition when there is one (scraped now, or archived at the end of the session), else
from Prometheus's target metadata, else from the series names Prometheus holds (types implied by suffixes,
no HELP): the server may be down by the time the grader runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

JOB = "model-server"
# The client libraries' own process and runtime collectors: not the candidate's monitoring.
STANDARD_PREFIXES = ("process_", "python_", "go_", "promhttp_")
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created", "_info", "_gcount", "_gsum")
COUNTING_TYPES = ("counter", "histogram", "summary", "gaugehistogram")


@dataclass(frozen=True)
class Family:
    name: str
    type: str  # counter, gauge, histogram, summary, info, untyped ...
    help: str
    series: tuple[str, ...]  # the series names Prometheus holds for it (name, name_total, name_bucket, ...)

    def sample(self, suffix: str = "") -> str:
        """The series name to query: the family itself (a counter's _total), or its _bucket/_sum/_count."""
        if not suffix and self.type == "counter" and f"{self.name}_total" in self.series:
            return f"{self.name}_total"
        return f"{self.name}{suffix}"

    def counting_series(self) -> list[str]:
        """Series that only go up while the server runs: a counter, and a histogram's or summary's _count."""
        if self.type == "counter":
            return [self.sample()]
        if self.type in ("histogram", "summary") and f"{self.name}_count" in self.series:
            return [f"{self.name}_count"]
        return []


@dataclass
class Exposition:
    """What one scrape of /metrics said, parsed; `error` when the text could not be parsed."""

    text: str
    families: dict[str, Family] = field(default_factory=dict)
    error: str | None = None


def parse_exposition(text: str, held: set[str] | None = None) -> Exposition:
    """Families from exposition text. `held`: the series names Prometheus holds (default: those in the text)."""
    out = Exposition(text)
    try:
        parsed = list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError) as exc:
        out.error = f"{type(exc).__name__}: {str(exc)[:200]}"
        return out
    for fam in parsed:
        if fam.name.startswith(STANDARD_PREFIXES):
            continue
        names = {s.name for s in fam.samples} | {fam.name}
        if fam.type == "counter":
            names.add(f"{fam.name}_total")
        series = tuple(sorted(names & held)) if held is not None else tuple(sorted(names))
        out.families[fam.name] = Family(fam.name, fam.type, fam.documentation or "", series)
    return out


def from_metadata(metadata: list[dict], held: set[str]) -> dict[str, Family]:
    """Families from Prometheus's /api/v1/targets/metadata for the model server's target."""
    families: dict[str, Family] = {}
    for meta in metadata:
        name, kind = meta["metric"], meta["type"]
        if name in families or name.startswith(STANDARD_PREFIXES):
            continue
        series = tuple(sorted({name, *(f"{name}{s}" for s in SUFFIXES)} & held))
        if series:
            families[name] = Family(name, kind, meta.get("help", ""), series)
    return families


def from_series_names(held: set[str]) -> dict[str, Family]:
    """Families guessed from series names alone: _bucket+_count is a histogram, _total a counter, the rest
    gauges (a summary without quantiles looks like a _sum/_count pair: a summary)."""
    families: dict[str, Family] = {}
    for name in sorted(held):
        if (
            name.startswith(STANDARD_PREFIXES)
            or name in ("up", "ALERTS", "ALERTS_FOR_STATE")
            or name.startswith("scrape_")
        ):
            continue
        base = name.rsplit("_", 1)[0]
        if name.endswith("_bucket") and f"{base}_count" in held:
            families[base] = Family(
                base,
                "histogram",
                "",
                tuple(f"{base}{s}" for s in ("_bucket", "_count", "_sum") if f"{base}{s}" in held),
            )
        elif name.endswith("_count") and f"{base}_sum" in held and f"{base}_bucket" not in held:
            families[base] = Family(base, "summary", "", (f"{base}_count", f"{base}_sum"))
        elif name.endswith(("_sum", "_count", "_bucket", "_created")):
            continue
        elif name.endswith("_total"):
            families[name[:-6]] = Family(name[:-6], "counter", "", (name,))
        else:
            families[name] = Family(name, "gauge", "", (name,))
    return families
