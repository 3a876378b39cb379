"""Candidate folders for grading tests: mutants of the reference solution, each breaking one rubric item,
and a solution that names everything differently."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "reference_solution"


def copy_reference(dest: Path) -> Path:
    shutil.copytree(REFERENCE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert text.count(old) >= count, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def _drop_rule(path: Path, alert: str) -> None:
    """Remove one alerting rule (its whole block) from a rule file."""
    text = path.read_text()
    pattern = re.compile(rf"\n      - alert: {alert}\n.*?(?=\n      - alert: |\n  - name: |\Z)", re.S)
    assert pattern.search(text), alert
    path.write_text(pattern.sub("", text))


BROKEN_RULES = """
      - alert: AccuracyTypo
        expr: churn_model_acuracy < 0.7
        for: 10s
        labels:
          severity: critical
        annotations:
          summary: Accuracy is low (but the metric's name is misspelled)
      - alert: ManyToMany
        expr: http_requests_total / on() churn_predictions_total > 1
        for: 10s
        labels:
          severity: warning
        annotations:
          summary: Fails at every evaluation (many-to-many matching)
"""


def unreachable_threshold_and_ms_latency(dest: Path) -> Path:
    """Alerting: the performance alert's threshold cannot be reached, and two more rules can never work: one
    reads a misspelled metric, one fails at every evaluation. System: latency recorded in milliseconds in a
    metric named _seconds (buckets and latency alert in milliseconds too, consistently)."""
    copy_reference(dest)
    rules = dest / "alerts" / "churn-model.yml"
    _edit(rules, "churn_model_accuracy < 0.7", "churn_model_accuracy < -1")
    rules.write_text(rules.read_text().rstrip("\n") + "\n" + BROKEN_RULES.lstrip("\n"))
    http = dest / "app" / "http_metrics.py"
    _edit(
        http,
        "LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)",
        "LATENCY_BUCKETS = (5, 10, 20, 40, 75, 100, 150, 250, 500, 1000, 2500, 5000)",
    )
    _edit(
        http,
        "LATENCY.labels(endpoint).observe(time.perf_counter() - start)",
        "LATENCY.labels(endpoint).observe((time.perf_counter() - start) * 1000)",
    )
    _edit(rules, "[30s]))) > 0.25", "[30s]))) > 250")
    return dest


def no_drift_and_always_firing(dest: Path) -> Path:
    """Drift: nothing watches the inputs' distribution (no drift scores, and no out-of-range counts either,
    which a drift past the training range would move just as well), nor its alerts and panels. Alerting: an
    alert that always fires."""
    copy_reference(dest)
    _edit(dest / "app" / "monitoring.py", "    _drift.start()\n", "")
    _edit(dest / "app" / "monitoring.py", "    _drift = DriftMonitor(settings(), model.run_id, model.version)\n", "")
    _edit(dest / "app" / "model_metrics.py", "                _out_of_range[name].inc()", "                pass")
    rules = dest / "alerts" / "churn-model.yml"
    for alert in ("FeatureDrift", "PredictionDistributionShift", "InputOutOfRange"):
        _drop_rule(rules, alert)
    _edit(
        rules,
        "  - name: churn-model-quality\n    rules:\n",
        "  - name: churn-model-quality\n    rules:\n"
        "      - alert: AlwaysOn\n        expr: vector(1)\n        labels:\n          severity: warning\n"
        "        annotations:\n          summary: Always on\n          description: Fires whatever happens.\n",
    )
    board = dest / "dashboards" / "churn-drift.json"
    doc = json.loads(board.read_text())
    doc["panels"] = [p for p in doc["panels"] if p["type"] == "row"]  # keep only the data-quality row ...
    for row in doc["panels"]:  # ... without its out-of-range panel
        row["panels"] = [
            p
            for p in row.get("panels", [])
            if not any("out_of_range" in t.get("expr", "") for t in p.get("targets", []))
        ]
    board.write_text(json.dumps(doc, indent=2))
    return dest


def empty_panel_dashboards(dest: Path) -> Path:
    """Visualization: one more panel, whose query returns nothing."""
    shutil.copytree(REFERENCE / "dashboards", dest)
    board = dest / "churn-overview.json"
    doc = json.loads(board.read_text())
    doc["panels"].append(
        {
            "id": 99,
            "type": "timeseries",
            "title": "Queue depth",
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "gridPos": {"x": 0, "y": 40, "w": 12, "h": 8},
            "targets": [{"refId": "A", "expr": "sum(model_queue_depth)"}],
        }
    )
    board.write_text(json.dumps(doc, indent=2))
    return dest


INSTRUMENTATOR_SETUP = '''
def setup(app: FastAPI) -> None:
    """HTTP metrics from prometheus-fastapi-instrumentator; it also serves /metrics."""
    from prometheus_fastapi_instrumentator import Instrumentator

    Instrumentator(should_instrument_requests_inprogress=True, excluded_handlers=["/metrics"]).instrument(app).expose(app)
'''


def renamed(dest: Path) -> Path:
    """The reference's monitoring with other names: prometheus-fastapi-instrumentator for HTTP, model_*
    instead of churn_* for the model side; alerts and dashboards follow."""
    copy_reference(dest)
    monitoring = dest / "app" / "monitoring.py"
    text = monitoring.read_text()
    start, end = text.index("def setup(app: FastAPI) -> None:"), text.index("def metrics() -> Response:")
    text = text[:start] + INSTRUMENTATOR_SETUP.lstrip() + "\n\n" + text[end:]
    text = text.replace("from .http_metrics import HttpMetricsMiddleware\n", "")
    monitoring.write_text(text)
    files = [*(dest / "app").glob("*.py"), *(dest / "alerts").rglob("*.yml"), *(dest / "dashboards").glob("*.json")]
    for path in files:
        text = path.read_text()
        # Metric names only: in Python they are the quoted first arguments; in rules and dashboards, words.
        text = text.replace('"churn_', '"model_') if path.suffix == ".py" else re.sub(r"\bchurn_", "model_", text)
        if path.suffix in (".yml", ".json"):
            text = (
                text.replace('endpoint="/predict"', 'handler="/predict"')
                .replace('endpoint=~\\"/predict.*\\"', 'handler=~\\"/predict.*\\"')
                .replace('endpoint=~"/predict.*"', 'handler=~"/predict.*"')
                .replace('status=~\\"5..\\"', 'status=\\"5xx\\"')
                .replace('status=~"5.."', 'status="5xx"')
                .replace('status=~\\"4..\\"', 'status=\\"4xx\\"')
                .replace('status=~"4.."', 'status="4xx"')
                .replace("sum by (endpoint)", "sum by (handler)")
                .replace("{{endpoint}}", "{{handler}}")
                .replace("http_requests_in_flight", "http_requests_inprogress")
            )
        path.write_text(text)
    shutil.rmtree(dest / "alerts" / "tests")  # their series names are the reference's
    return dest


# --- a production-sized solution and the scenario it is played on --------------------------------------------------
# Its alert watches a 20-s average of accuracy and holds for 20 s: sized for phases of half a minute and more (as
# an interview's 10-minute windows and 5-minute `for:` are for its 8-12-minute phases). The scenario's concept drift
# lasts 30 s; a round of 15 s replays the whole scenario in under six seconds a phase.
LONG_PHASES_SCENARIO = """
name: long-phases
description: >
  A baseline, 30 s of concept drift with labels and a recovery: phases long enough for 20-s windows and a 20-s for.
seed: 7
ground_truth: {fraction: 0.5, delay_seconds: 2}
phases:
  - name: baseline
    duration_seconds: 25
    rate: 20
  - name: concept-drift
    duration_seconds: 30
    rate: 20
    ground_truth: {fraction: 0.8, delay_seconds: 2}
    injections:
      - kind: concept_drift
        weights: {tenure_months: 1.1, support_calls_90d: -0.8}
        levels: {contract_type: {month-to-month: -1.3, one-year: 0.0, two-year: 1.4}}
  - name: recovery
    duration_seconds: 25
    rate: 20
"""

PRODUCTION_RULES = """
groups:
  - name: churn-model-quality
    rules:
      - alert: ChurnAccuracyLow
        expr: avg_over_time(churn_model_accuracy[20s]) < {threshold} and on() churn_performance_window_labels >= 50
        for: 20s
        labels:
          severity: critical
        annotations:
          summary: Accuracy on recent labels averaged under {threshold} for the last 20 s
          description: Sustained, not a blip; the holdout's accuracy is 0.81.
"""


def production_sized(dest: Path, threshold: float = 0.3) -> Path:
    """The reference's server and dashboards with one production-sized alert on accuracy (a 20-s average, `for:
    20s`) whose threshold, at first, cannot be reached on this model (accuracy stays above 0.3)."""
    copy_reference(dest)
    for path in (dest / "alerts").glob("*.yml"):
        path.unlink()
    production_rules(dest, threshold)
    return dest


def production_rules(dest: Path, threshold: float) -> Path:
    """(Re)write the production-sized rule file with an accuracy threshold."""
    path = dest / "alerts" / "churn-quality.yml"
    path.write_text(PRODUCTION_RULES.replace("{threshold}", f"{threshold:g}").lstrip("\n"))
    return path
