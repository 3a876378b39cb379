"""Replays a compressed scenario against ModelMonitor in simulated time (no HTTP, no sleeping):
20 predictions/s, labels for half of them 2 s later, refresh every 2 s. Prints the gauges that alerts use,
so that the seconds-to-threshold during an incident and the noise during normal traffic can be read off."""
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, "/work/main")
sys.path.insert(0, str(HERE))

from model_service.churn_data import draw_labels, generate_features  # noqa: E402
from model_service.faults import FaultSwitch  # noqa: E402
from model_service.model_store import LoadedModel  # noqa: E402
from model_service.prediction_log import PredictionLog  # noqa: E402
from model_service.schemas import CustomerFeatures  # noqa: E402
from model_service.service import ChurnService  # noqa: E402
from model_service.spec import default_spec  # noqa: E402
from model_service.train import train  # noqa: E402
from app.model_monitor import ModelMonitor, ReferenceProfile  # noqa: E402

model = LoadedModel(train(seed=42).pipeline, "churn-classifier", "champion", "1", None, 0.5, "mlflow")
tmp = Path(tempfile.mkdtemp())
svc = ChurnService(model, PredictionLog(tmp / "p.sqlite"), FaultSwitch(tmp / "f.json"))
spec = default_spec()


def flip(y, share, rng):
    m = rng.random(len(y)) < share
    return np.where(m, 1 - y, y)


INCIDENTS = {
    "tenure halved": lambda f, y, rng: (f.assign(tenure_months=(f.tenure_months // 2)), y),
    "charges in cents": lambda f, y, rng: (f.assign(monthly_charges=f.monthly_charges * 100), y),
    "age nulls 40%": lambda f, y, rng: (f.assign(age_years=f.age_years.where(rng.random(len(f)) > 0.4)), y),
    "concept drift (40% labels flipped)": lambda f, y, rng: (f, flip(y, 0.4, rng)),
    "support calls +3": lambda f, y, rng: (f.assign(support_calls_90d=f.support_calls_90d + 3), y),
}


def run(name, fn, seed):
    mon = ModelMonitor()
    mon.set_reference(ReferenceProfile.from_spec(model))
    rng = np.random.default_rng(seed)
    pending = []  # (due_second, prediction, true_label)
    rows = []
    for sec in range(60):
        f = generate_features(20, seed * 1000 + sec)
        y = draw_labels(f, spec.dependence, seed * 1000 + sec + 7)
        if 25 <= sec < 37:
            f, y = fn(f, y, rng)
        recs = [{k: (None if v != v else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
                for r in f.to_dict(orient="records")]
        preds = svc.predict([CustomerFeatures(**r) for r in recs])
        mon.record_predictions(preds)
        for p, t in zip(preds, y):
            if rng.random() < 0.5:
                pending.append((sec + 2, p, int(t)))
        for due, p, t in [x for x in pending if x[0] <= sec]:
            mon.record_feedback(svc.feedback(p.request_id, bool(t)))
        pending = [x for x in pending if x[0] > sec]
        if sec % 2 == 1:
            mon.refresh()
            psi = {k[1][0]: v for k, v in _samples(mon.feature_psi).items()}
            top = max(psi, key=lambda k: psi[k] if psi[k] == psi[k] else -1)
            rows.append((sec, top, psi[top], mon.score_psi._value.get(), mon.mean_probability._value.get(),
                         mon.accuracy._value.get()))
    print(f"\n== {name} (incident from s=25 to s=37)")
    print(" sec  top-PSI feature        PSI  scorePSI  meanP   acc")
    for r in rows:
        print(f"{r[0]:4d}  {r[1]:20s} {r[2]:5.2f}   {r[3]:5.2f}   {r[4]:5.3f}  {r[5]:5.3f}")


def _samples(gauge):
    return {(gauge._name, key): child._value.get() for key, child in gauge._metrics.items()}


for i, (name, fn) in enumerate(INCIDENTS.items()):
    run(name, fn, i + 1)
