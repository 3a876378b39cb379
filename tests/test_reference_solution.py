"""The reference solution, without the stack: rules valid and unit-tested, dashboards well-formed, metric
names clean, and its diff from the starter is monitoring code only."""

from __future__ import annotations

import difflib
import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, import_candidate_app, valid_customer

from model_service.faults import FaultSwitch
from model_service.prediction_log import PredictionLog
from model_service.service import ChurnService

REFERENCE = REPO / "reference_solution"
STARTER = REPO / "starter_repo"


def _rules():
    for path in sorted((REFERENCE / "alerts").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def test_promtool_check_rules_is_clean():
    files = [str(p) for p in (REFERENCE / "alerts").glob("*.yml")]
    result = subprocess.run(["promtool", "check", "rules", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass_and_cover_every_alert():
    tests = sorted((REFERENCE / "alerts" / "tests").glob("*.yml"))
    result = subprocess.run(
        ["promtool", "test", "rules", *[str(t) for t in tests]],
        capture_output=True,
        text=True,
        cwd=REFERENCE / "alerts",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        case["alertname"]
        for t in tests
        for test in yaml.safe_load(t.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    firing = {
        case["alertname"]
        for t in tests
        for test in yaml.safe_load(t.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for t in tests
        for test in yaml.safe_load(t.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    assert alerts == tested == firing == quiet


def test_every_alert_has_for_severity_summary_description_and_runbook():
    required = {
        "feature drift": "FeatureDrift",
        "prediction shift": "PredictionDistributionShift",
        "performance": "ModelPerformanceDrop",
        "latency": "PredictLatencyHigh",
        "errors": "PredictErrorRateHigh",
        "target down": "ModelServerDown",
        "no traffic": "NoPredictionTraffic",
    }
    rules = {r["alert"]: r for r in _rules()}
    assert set(required.values()) <= set(rules)
    for name, rule in rules.items():
        assert rule.get("for"), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name
    assert "churn_performance_window_labels" in rules["ModelPerformanceDrop"]["expr"]  # guarded by coverage


def panels(dashboard: dict):
    """Every panel, including those nested in (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panels(panel)


def dashboard_files() -> list[Path]:
    return sorted((REFERENCE / "dashboards").glob("*.json")) + sorted(
        (REPO / "grafana" / "dashboards" / "interviewer").glob("*.json")
    )


def test_dashboards_cover_each_category_and_query_the_provisioned_prometheus():
    titles = {json.loads(p.read_text())["title"] for p in dashboard_files()}
    for word in ("overview", "outputs", "drift", "performance", "alerts", "Interviewer"):
        assert any(word in t for t in titles), word
    for path in dashboard_files():
        for panel in panels(json.loads(path.read_text())):
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == "prometheus", (path.name, panel["title"])
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), (path.name, panel["title"])


def test_diff_from_the_starter_is_monitoring_code_only():
    def files(root):
        return {p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}

    starter, reference = files(STARTER), files(REFERENCE)
    assert starter <= reference, "the reference lacks starter files"
    for added in reference - starter:
        assert added.parts[0] in ("alerts", "dashboards", "app") or str(added) == "NOTES.md", added
    changed = [p for p in starter if (STARTER / p).read_bytes() != (REFERENCE / p).read_bytes()]
    assert sorted(map(str, changed)) == ["app/main.py", "app/monitoring.py"]
    diff = difflib.unified_diff(
        (STARTER / "app/main.py").read_text().splitlines(),
        (REFERENCE / "app/main.py").read_text().splitlines(),
        lineterm="",
        n=0,
    )
    body = [ln for ln in diff if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    assert body and all(ln.startswith("+") and "monitoring." in ln for ln in body), body


@pytest.fixture
def reference_client(tmp_path, loaded_model):
    from fastapi.testclient import TestClient

    main = import_candidate_app(REFERENCE)
    main.app.state.service = ChurnService(
        loaded_model, PredictionLog(tmp_path / "p.sqlite"), FaultSwitch(tmp_path / "faults.json")
    )
    return TestClient(main.app, raise_server_exceptions=False)


def test_metrics_pass_promtool_lint_and_every_family_has_help(reference_client, tmp_path):
    for i in range(5):
        pred = reference_client.post("/predict", json=valid_customer(i)).json()
        reference_client.post("/feedback", json={"request_id": pred["request_id"], "churned": i % 2 == 0})
    reference_client.post("/predict", json={"bad": 1})
    body = reference_client.get("/metrics").text
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
    assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), lint.stdout + lint.stderr
    families = {ln.split()[2] for ln in body.splitlines() if ln.startswith("# TYPE")}
    helped = {ln.split()[2] for ln in body.splitlines() if ln.startswith("# HELP") and len(ln.split()) > 3}
    assert families == helped
    assert 'http_requests_total{endpoint="/predict",method="POST",status="422"} 1.0' in body
    assert "churn_predictions_total{predicted=" in body and "churn_model_accuracy" in body
