"""How far do the windowed statistics wander under normal traffic? (Sets the alert thresholds.)

20 predictions/s, labels for half of them 2 s later; statistics over the last W seconds evaluated every second
(what `rate(x[Ws])` sees with a 1 s scrape: about W-1 seconds of data).
    cd /work/main && .venv/bin/python tests/corpus/micrometer/checks/simulate_normal.py
"""
import sys
import numpy as np
sys.path.insert(0, "/work/main")
from model_service.train import train
from model_service.churn_data import generate_features, draw_labels
from model_service.spec import default_spec
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from app.reference import BUILTIN
from app.monitoring import TYPICAL_EDGES

SECONDS, RPS = 3000, 20
spec = default_spec()
res = train(seed=42)
X = generate_features(SECONDS * RPS, 7)
score = res.pipeline.predict_proba(X)[:, 1]
y = draw_labels(X, spec.dependence, 99)
pred = (score >= 0.5).astype(int)
sec = np.arange(len(X)) // RPS
rng = np.random.default_rng(3)
labelled = rng.uniform(size=len(X)) < 0.5
label_sec = sec + 2

def windows(W):
    out = {}
    starts = np.arange(W, SECONDS)
    def agg(mask_sec, values):
        c = np.bincount(mask_sec, weights=values, minlength=SECONDS + 3)
        cs = np.concatenate([[0], np.cumsum(c)])
        return np.array([cs[t] - cs[t - (W - 1)] for t in starts])
    n = agg(sec, np.ones(len(X)))
    for f in BUILTIN.numeric:
        m, s = BUILTIN.numeric[f]
        z = (agg(sec, X[f].to_numpy(float)) / n - m) / s
        out[f"z[{f}]"] = (z.min(), z.max())
        lo, hi = TYPICAL_EDGES[f]
        x = X[f].to_numpy(float)
        oor = (x > hi) | ((x <= lo) if lo is not None else False)
        out[f"oor[{f}]"] = (0, (agg(sec, oor.astype(float)) / n).max())
    for f, shares in BUILTIN.categorical.items():
        worst = 0
        for lv, share in shares.items():
            d = np.abs(agg(sec, (X[f] == lv).to_numpy(float)) / n - share)
            worst = max(worst, d.max())
        out[f"catshift[{f}]"] = (0, worst)
    ms = agg(sec, score) / n
    out["score_mean"] = (ms.min(), ms.max())
    fl = agg(sec, pred.astype(float)) / n
    out["flagged"] = (fl.min(), fl.max())
    L = labelled
    nl = agg(label_sec[L], np.ones(L.sum()))
    tp = agg(label_sec[L], ((pred == 1) & (y == 1))[L].astype(float))
    fp = agg(label_sec[L], ((pred == 1) & (y == 0))[L].astype(float))
    fn = agg(label_sec[L], ((pred == 0) & (y == 1))[L].astype(float))
    tn = nl - tp - fp - fn
    acc = (tp + tn) / nl
    out["accuracy"] = (acc.min(), acc.max())
    out["precision"] = ((tp / (tp + fp)).min(), (tp / (tp + fp)).max())
    out["recall"] = ((tp / (tp + fn)).min(), (tp / (tp + fn)).max())
    out["label_churn_rate"] = (((tp + fn) / nl).min(), ((tp + fn) / nl).max())
    return out

for W in (10, 15, 20):
    print(f"--- window {W}s: min / max over {SECONDS - W} evaluations")
    for k, (a, b) in windows(W).items():
        print(f"{k:32s} {a:8.3f} {b:8.3f}")
