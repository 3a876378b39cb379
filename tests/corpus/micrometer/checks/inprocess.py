"""In-process check: train a small model, drive the app with TestClient, print /metrics.

    cd /work/main && .venv/bin/python tests/corpus/micrometer/checks/inprocess.py [--out metrics.txt]
"""
import sys, importlib, time, tempfile
from pathlib import Path
HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, "/work/main"); sys.path.insert(0, str(HERE))
from fastapi.testclient import TestClient
from model_service.train import train
from model_service.model_store import LoadedModel
from model_service.prediction_log import PredictionLog
from model_service.faults import FaultSwitch
from model_service.service import ChurnService
from model_service.churn_data import generate_features

tmp = Path(tempfile.mkdtemp())
model = LoadedModel(train(seed=42).pipeline, "churn-classifier", "champion", "1", None, 0.5, "mlflow")
main = importlib.import_module("app.main")
svc = ChurnService(model, PredictionLog(tmp / "p.sqlite"), FaultSwitch(tmp / "f.json"))
main.app.state.service = svc
main.monitoring.on_startup(main.app)  # run_id None: keeps the built-in baselines
client = TestClient(main.app)
rows = generate_features(300, 1).to_dict(orient="records")
lat = []
for i, r in enumerate(rows):
    r = {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
    if i % 10 == 0:
        r["data_usage_gb"] = None
        r["region"] = None
    t = time.perf_counter()
    resp = client.post("/predict", json=r); assert resp.status_code == 200, resp.text
    lat.append(time.perf_counter() - t)
    if i % 2 == 0:
        client.post("/feedback", json={"request_id": resp.json()["request_id"], "churned": bool(i % 3 == 0)})
batch = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows[:5]]
assert client.post("/predict/batch", json={"customers": batch}).status_code == 200
bad = dict(batch[0]); bad["contract_type"] = "three-year"
assert client.post("/predict", json=bad).status_code == 422
assert client.post("/feedback", json={"request_id": "nope", "churned": True}).status_code == 404
assert client.get("/nowhere").status_code == 404
lat.sort()
print(f"# client-side latency p50={lat[len(lat)//2]*1000:.1f}ms p95={lat[int(len(lat)*.95)]*1000:.1f}ms "
      f"max={lat[-1]*1000:.1f}ms", file=sys.stderr)
body = client.get("/metrics").text
out = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else None
if out:
    Path(out).write_text(body)
else:
    print(body)
