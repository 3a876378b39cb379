"""In-process check: import the app with TestClient and an in-memory model (run from /work/main)."""
import importlib
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, "/work/main")
sys.path.insert(0, str(HERE))

from fastapi.testclient import TestClient  # noqa: E402

from model_service.churn_data import draw_labels, generate_features  # noqa: E402
from model_service.faults import FaultSwitch  # noqa: E402
from model_service.model_store import LoadedModel  # noqa: E402
from model_service.prediction_log import PredictionLog  # noqa: E402
from model_service.service import ChurnService  # noqa: E402
from model_service.spec import default_spec  # noqa: E402
from model_service.train import train  # noqa: E402

tmp = Path(tempfile.mkdtemp())
model = LoadedModel(train(seed=42).pipeline, "churn-classifier", "champion", "1", None, 0.5, "mlflow")
main = importlib.import_module("app.main")
monitoring = importlib.import_module("app.monitoring")
svc = ChurnService(model, PredictionLog(tmp / "p.sqlite"), FaultSwitch(tmp / "f.json"))
main.app.state.service = svc
monitoring.MONITOR.refresh_seconds = 3600  # drive refresh() by hand
monitoring.on_startup(main.app)
client = TestClient(main.app)

frame = generate_features(400, 7)
labels = draw_labels(frame, default_spec().dependence, 8)
lat = []
for r, y in zip(frame.to_dict(orient="records"), labels):
    r = {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
    t = time.perf_counter()
    resp = client.post("/predict", json=r)
    lat.append(time.perf_counter() - t)
    assert resp.status_code == 200, resp.text
    client.post("/feedback", json={"request_id": resp.json()["request_id"], "churned": bool(y)})
print("median /predict wall time in TestClient: %.4f s" % sorted(lat)[len(lat) // 2])
# batch, a null, an out-of-range value, a 422, a 404
rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in generate_features(5, 3).to_dict(orient="records")]
rows[0]["age_years"] = None
rows[1]["monthly_charges"] = 5000.0
assert client.post("/predict/batch", json={"customers": rows}).status_code == 200
bad = dict(rows[2]); bad["contract_type"] = "three-year"
assert client.post("/predict", json=bad).status_code == 422
assert client.post("/feedback", json={"request_id": "nope", "churned": True}).status_code == 404
assert client.get("/nowhere").status_code == 404

time.sleep(0.1)
for _ in range(100):
    if monitoring.MONITOR.reference is not None:
        break
    time.sleep(0.2)
print("reference:", monitoring.MONITOR.reference and monitoring.MONITOR.reference.source)
monitoring.MONITOR.refresh()

r1 = client.get("/metrics", follow_redirects=False)
r2 = client.get("/metrics/", follow_redirects=False)
print("/metrics", r1.status_code, "/metrics/", r2.status_code)
assert r1.status_code == 200 and r2.status_code == 200
(HERE / "scripts" / "metrics_sample.txt").write_text(r1.text)
print("\n".join(l for l in r1.text.splitlines() if l.startswith("churn_")))
monitoring.on_shutdown(main.app)
# the rest of the app still works
assert client.get("/openapi.json").status_code == 200
assert client.head("/metrics").status_code in (200, 405)
assert client.get("/health").status_code == 200
print("openapi, health ok")
