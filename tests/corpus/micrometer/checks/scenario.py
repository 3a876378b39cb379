"""End-to-end check without a Prometheus server: app -> /metrics -> rules -> alerts, in synthetic time.

Drives the real app (TestClient, in-process model) one synthetic second at a time (20 predictions, labels for
half of them 2 s later), scrapes /metrics after each second, writes the samples as a `promtool test rules`
file (1 s scrape and evaluation), and asks promtool which alerts fire at every second. Incidents of 12 s are
injected after a normal first 30 s, separated by normal traffic.

    cd /work/main && .venv/bin/python tests/corpus/micrometer/checks/scenario.py
"""
from __future__ import annotations

import importlib
import random
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, "/work/main")
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from model_service.churn_data import churn_probability, generate_features  # noqa: E402
from model_service.faults import FaultState, FaultSwitch, write_fault_state  # noqa: E402
from model_service.model_store import LoadedModel  # noqa: E402
from model_service.prediction_log import PredictionLog  # noqa: E402
from model_service.service import ChurnService  # noqa: E402
from model_service.spec import default_spec  # noqa: E402
from model_service.train import train  # noqa: E402

RPS, START, LENGTH, GAP = 20, 30, 12, 35
INCIDENTS = ["errors", "latency", "traffic_drop", "unit_cents", "charges_up_1sd", "nulls", "concept", "contract_mix",
             "bad_category", "labels_stop"]
QUICK = "--quick" in sys.argv
if QUICK:
    INCIDENTS = [i for i in INCIDENTS if i != "latency"]


def incident_at(t: int) -> str | None:
    if t < START:
        return None
    k, r = divmod(t - START, LENGTH + GAP)
    return INCIDENTS[k] if k < len(INCIDENTS) and r < LENGTH else None


T = START + len(INCIDENTS) * (LENGTH + GAP)

QUERIES = {
    "alerts": 'count by (alertname) (ALERTS{alertstate="firing"})',
    "z": "max(abs(feature:churn_input_mean_shift:zscore10s))",
    "cat": "max(feature_value:churn_input_category_shift:abs10s)",
    "acc": "churn:accuracy:ratio15s",
    "prec": "churn:precision:ratio20s",
    "rec": "churn:recall:ratio20s",
    "p95": 'uri:http_server_requests_seconds:p95_10s{uri="/predict"}',
    "flag": "churn:flagged:ratio15s",
    "score": "churn:score:mean15s",
}


def generate() -> Path:
    tmp = Path(tempfile.mkdtemp())
    model = LoadedModel(train(seed=42).pipeline, "churn-classifier", "champion", "1", None, 0.5, "mlflow")
    main = importlib.import_module("app.main")
    faults_path = tmp / "f.json"
    svc = ChurnService(model, PredictionLog(tmp / "p.sqlite"), FaultSwitch(faults_path, poll_seconds=0))
    main.app.state.service = svc
    main.monitoring.on_startup(main.app)
    client = TestClient(main.app)
    spec = default_spec()
    rng = np.random.default_rng(5)
    prng = random.Random(5)

    rows = generate_features(T * RPS, 11)
    truth_p = churn_probability(rows, spec.dependence)
    records = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows.to_dict("records")]

    series: dict[tuple, dict[int, float]] = defaultdict(dict)
    pending: list[tuple[int, str, bool]] = []  # (due step, request id, label)
    for t in range(T):
        inc = incident_at(t)
        write_fault_state(faults_path, FaultState(error_rate=0.3 if inc == "errors" else 0.0,
                                                  added_latency_seconds=0.25 if inc == "latency" else 0.0, seed=t))
        for i in range(4 if inc == "traffic_drop" else RPS):
            n = t * RPS + i
            r = dict(records[n])
            if inc == "unit_cents":
                r["monthly_charges"] = round(r["monthly_charges"] * 100, 2)
            elif inc == "charges_up_1sd":
                r["monthly_charges"] = round(r["monthly_charges"] + 25, 2)
            elif inc == "nulls":
                r["tenure_months"] = None
            elif inc == "contract_mix":
                r["contract_type"] = "month-to-month"
            elif inc == "bad_category" and i % 3 == 0:
                r["payment_method"] = "paypal"
            label = bool(rng.uniform() < truth_p[n])
            if inc == "concept":
                label = not label
            resp = client.post("/predict", json=r)
            if resp.status_code == 200 and prng.random() < 0.5 and inc != "labels_stop":
                pending.append((t + 2, resp.json()["request_id"], label))
        due = [p for p in pending if p[0] <= t]
        pending = [p for p in pending if p[0] > t]
        for _, rid, label in due:
            assert client.post("/feedback", json={"request_id": rid, "churned": label}).status_code == 200
        for fam in text_string_to_metric_families(client.get("/metrics").text):
            for s in fam.samples:
                if s.name.startswith(("python_", "process_")):
                    continue
                series[(s.name, tuple(sorted(s.labels.items())))][t] = s.value
        if t % 20 == 0:
            print(f"t={t} {inc or ''}", file=sys.stderr)

    input_series = []
    for (name, labels), vals in series.items():
        lab = ",".join(f'{k}="{v}"' for k, v in labels)
        values = " ".join(repr(vals[t]) if t in vals else "_" for t in range(T))
        input_series.append({"series": f"{name}{{{lab}}}", "values": values})

    tests = [{
        "interval": "1s",
        "input_series": input_series,
        "promql_expr_test": [{"expr": q, "eval_time": f"{t}s", "exp_samples": [{"labels": "{}", "value": -1}]}
                              for t in range(1, T) for q in QUERIES.values()],
    }]
    test_file = tmp / "scenario_test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(ROOT / "alerts" / "churn-model.yml")],
                                         "evaluation_interval": "1s", "tests": tests}, width=10**9))
    return test_file


if "--reuse" in sys.argv:
    test_file = Path(sys.argv[sys.argv.index("--reuse") + 1])
else:
    test_file = generate()
print(f"promtool test rules {test_file}", file=sys.stderr)
proc = subprocess.run(["promtool", "test", "rules", str(test_file)], capture_output=True, text=True)
out = proc.stdout + proc.stderr

# Every expectation fails on purpose; the failure messages carry the actual results.
timeline: dict[int, dict[str, str]] = defaultdict(dict)
query_by_expr = {v: k for k, v in QUERIES.items()}
for m in re.finditer(r"expr: \"(.*?)\", time: (\S+),\s*exp: .*?\n\s*got: (.*?)\n", out, re.S):
    expr, at, got = m.group(1).replace('\\"', '"'), m.group(2), m.group(3)
    secs = int(float(at.rstrip("s"))) if at.endswith("s") and "m" not in at else None
    if secs is None:  # 1m30s style
        mm = re.match(r"(?:(\d+)m)?(?:(\d+)s)?", at)
        secs = int(mm.group(1) or 0) * 60 + int(mm.group(2) or 0)
    key = query_by_expr.get(expr)
    if key == "alerts":
        names = re.findall(r'alertname="(\w+)"', got)
        timeline[secs]["alerts"] = ",".join(sorted(names))
    elif key:
        v = re.findall(r"\} (\S+)", got)
        timeline[secs][key] = f"{float(v[0]):.2f}" if v else "-"
if not timeline:
    print(out[:3000])
    sys.exit(1)
print(f"{'t':>4} {'incident':15} {'z':>5} {'cat':>5} {'acc':>5} {'prec':>5} {'rec':>5} {'p95':>5} "
      f"{'flag':>5} {'score':>5}  firing")
for t in range(1, T):
    row = timeline.get(t, {})
    print(f"{t:4d} {incident_at(t) or '':15} " + " ".join(f"{row.get(k, '-'):>5}" for k in
          ("z", "cat", "acc", "prec", "rec", "p95", "flag", "score")) + f"  {row.get('alerts', '')}")
