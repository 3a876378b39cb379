"""Write dashboards/churn-model.json (Grafana, datasource uid "prometheus") from the recorded series.

    cd /work/main && .venv/bin/python tests/corpus/micrometer/checks/gen_dashboard.py
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DS = {"type": "prometheus", "uid": "prometheus"}
PREDICT = 'uri=~"/predict|/predict/batch"'

panels = []
_id = 0
_y = 0


def row(title):
    global _id, _y
    _id += 1
    panels.append({"id": _id, "type": "row", "title": title, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": _y}, "panels": []})
    _y += 1


def panel(title, targets, x, w=8, h=8, kind="timeseries", unit=None, thresholds=None, description="",
          min_=None, max_=None, stack=False, extra=None):
    global _id
    _id += 1
    defaults = {"custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
                           "spanNulls": True}} if kind == "timeseries" else {}
    if stack:
        defaults["custom"]["stacking"] = {"mode": "normal", "group": "A"}
    if unit:
        defaults["unit"] = unit
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    if thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": "green", "value": None}] + [
            {"color": c, "value": v} for v, c in thresholds]}
        if kind == "timeseries":
            defaults["custom"]["thresholdsStyle"] = {"mode": "line+area"}
    p = {
        "id": _id, "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": x, "y": _y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}} if kind == "timeseries" else {},
        "targets": [{"datasource": DS, "expr": e, "legendFormat": l, "refId": chr(65 + i), "range": True,
                     **({"instant": True, "range": False, "format": "table"} if kind == "table" else {})}
                    for i, (e, l) in enumerate(targets)],
    }
    if extra:
        p.update(extra)
    panels.append(p)


def next_row(h=8):
    global _y
    _y += h


# --- overview -------------------------------------------------------------------------------------------
row("Overview")
panel("Predictions / s", [("churn:predictions:rate10s", "predictions/s")], 0, w=4, h=4, kind="stat",
      unit="reqps", description="Customers scored per second (score histogram _count).")
panel("/predict 5xx share", [(f'max(uri:http_server_requests_server_error:ratio10s{{{PREDICT}}})', "5xx")],
      4, w=4, h=4, kind="stat", unit="percentunit", thresholds=[(0.05, "red")])
panel("/predict p95", [('uri:http_server_requests_seconds:p95_10s{uri="/predict"}', "p95")], 8, w=4, h=4,
      kind="stat", unit="s", thresholds=[(0.15, "orange"), (1, "red")])
panel("Accuracy (labels, 15 s)", [("churn:accuracy:ratio15s", "accuracy")], 12, w=4, h=4, kind="stat",
      unit="percentunit", thresholds=[(0.68, "green")],
      extra={"fieldConfig": {"defaults": {"unit": "percentunit", "thresholds": {"mode": "absolute", "steps": [
          {"color": "red", "value": None}, {"color": "green", "value": 0.68}]}}, "overrides": []}})
panel("Max |input drift| (std devs)", [("max(abs(feature:churn_input_mean_shift:zscore10s))", "z")], 16, w=4,
      h=4, kind="stat", unit="none", thresholds=[(0.5, "orange")])
panel("Firing alerts", [('sum(ALERTS{alertstate="firing"}) or vector(0)', "firing")], 20, w=4, h=4,
      kind="stat", thresholds=[(1, "red")])
next_row(4)
panel("Firing alerts", [('ALERTS{alertstate="firing"}', "")], 0, w=16, h=6, kind="table",
      description="Alerts currently firing (alertname, severity, feature/uri).")
panel("Model being served", [("churn_model_info", "")], 16, w=8, h=6, kind="table",
      description="churn_model_info: name, alias, version, source (mlflow or local-copy), threshold.")
next_row(6)

# --- service --------------------------------------------------------------------------------------------
row("Service: http_server_requests_seconds")
panel("Throughput by uri and outcome", [("uri_outcome:http_server_requests:rate10s", "{{uri}} {{outcome}}")],
      0, unit="reqps", stack=True, description="Requests per second from the HTTP timer's _count.")
panel("Error share (prediction endpoints)", [
    (f"uri:http_server_requests_server_error:ratio10s{{{PREDICT}}}", "5xx {{uri}}"),
    (f"uri:http_server_requests_client_error:ratio10s{{{PREDICT}}}", "4xx {{uri}}"),
], 8, unit="percentunit", thresholds=[(0.05, "red")], min_=0,
    description="Alerts: 5xx > 5 % (critical), 4xx > 10 % (warning, usually a 422 from an upstream schema change).")
panel("Latency p50 / p95", [
    ("uri:http_server_requests_seconds:p50_10s{uri=~\"/predict|/predict/batch|/feedback\"}", "p50 {{uri}}"),
    ("uri:http_server_requests_seconds:p95_10s{uri=~\"/predict|/predict/batch|/feedback\"}", "p95 {{uri}}"),
], 16, unit="s", thresholds=[(0.15, "orange"), (1, "red")],
    description="From the timer's buckets. Alerts: p95 > 150 ms (warning), > 1 s (critical).")
next_row()

# --- outputs --------------------------------------------------------------------------------------------
row("Model outputs: churn_model_score")
panel("Mean churn score vs training", [
    ("churn:score:mean15s", "mean score (15 s)"),
    ("max(churn_model_reference_score_mean)", "reference"),
], 0, unit="percentunit", min_=0, max_=1, description="Alert when more than 0.10 away from the reference.")
panel("Share flagged as churners vs training", [
    ("churn:flagged:ratio15s", "flagged (15 s)"),
    ("max(churn_model_reference_flagged_share)", "reference"),
], 8, unit="percentunit", min_=0, max_=1, description="Alert when more than 15 points from the reference.")
panel("Score distribution", [("sum by (le) (increase(churn_model_score_bucket[15s]))", "{{le}}")], 16,
      kind="heatmap", description="Scores per bucket over 15 s.",
      extra={"options": {"calculate": False, "yAxis": {"unit": "none"}, "cellGap": 1,
                         "color": {"mode": "scheme", "scheme": "Oranges"}},
             "targets": [{"datasource": DS, "expr": "sum by (le) (increase(churn_model_score_bucket[15s]))",
                          "legendFormat": "{{le}}", "refId": "A", "format": "heatmap"}]})
next_row()

# --- inputs ---------------------------------------------------------------------------------------------
row("Inputs: churn_model_input_value / churn_model_input_category")
panel("Input mean shift (training std devs)", [("feature:churn_input_mean_shift:zscore10s", "{{feature}}")], 0,
      unit="none", thresholds=[(0.5, "orange")],
      description="(mean over 10 s - training mean) / training std. Alert at |z| > 0.5 (normal noise < 0.35).")
panel("Out-of-typical-range share", [("feature:churn_input_out_of_range:ratio10s", "{{feature}}")], 8,
      unit="percentunit", thresholds=[(0.05, "orange")], min_=0,
      description="Share of values outside the typical range of the model card (from bucket edges). Alert > 5 %.")
panel("Null share", [("feature:churn_input_null:ratio10s", "{{feature}}")], 16, unit="percentunit",
      thresholds=[(0.2, "orange")], min_=0,
      description="Nulls are imputed silently; training had none. Alert > 20 %.")
next_row()
panel("Category share shift from training", [
    ("feature_value:churn_input_category_shift:abs10s", "{{feature}}={{value}}")], 0, unit="percentunit",
      thresholds=[(0.2, "orange")], min_=0, description="|share over 10 s - training share|. Alert > 20 points.")
panel("Input means vs training means", [
    ("feature:churn_input:mean10s", "{{feature}}"),
    ("max by (feature) (churn_model_reference_feature_mean)", "{{feature}} (training)"),
], 8, unit="none", extra={"fieldConfig": {"defaults": {"custom": {"axisScale": {"type": "log", "log": 10},
                                                                    "lineWidth": 1, "showPoints": "never"}},
                                          "overrides": []}},
      description="Raw means in each feature's unit (log scale).")
panel("monthly_charges distribution", [
    ('sum by (le) (increase(churn_model_input_value_bucket{feature="monthly_charges"}[15s]))', "{{le}}")], 16,
      kind="heatmap", extra={"options": {"calculate": False, "color": {"mode": "scheme", "scheme": "Blues"}},
                             "targets": [{"datasource": DS, "refId": "A", "format": "heatmap", "legendFormat": "{{le}}",
                                          "expr": 'sum by (le) (increase(churn_model_input_value_bucket{feature="monthly_charges"}[15s]))'}]},
      description="Buckets per feature; pick another feature in the query to see it.")
next_row()

# --- performance ----------------------------------------------------------------------------------------
row("Performance on labelled predictions: churn_model_feedback_total")
panel("Accuracy / precision / recall", [
    ("churn:accuracy:ratio15s", "accuracy (15 s)"),
    ("churn:precision:ratio20s", "precision (20 s)"),
    ("churn:recall:ratio20s", "recall (20 s)"),
    ('max by (metric) (churn_model_reference_performance{metric=~"accuracy|precision|recall"})', "{{metric}} (holdout)"),
], 0, unit="percentunit", min_=0, max_=1,
    description="Alerts: accuracy < 68 % (critical), precision < 40 %, recall < 30 % (warning).")
panel("Labels by outcome", [
    ('sum by (predicted, actual) (rate(churn_model_feedback_total[15s]))', "predicted {{predicted}} / actual {{actual}}")],
      8, unit="reqps", stack=True, description="TP / FP / FN / TN per second.")
panel("Label coverage, churn rate, label delay", [
    ("churn:feedback_coverage:ratio15s", "labelled share of predictions"),
    ("churn:actual_churn:ratio15s", "actual churn rate (labels)"),
    ('max(churn_model_reference_performance{metric="churn_rate"})', "churn rate (holdout)"),
], 16, unit="percentunit", min_=0, max_=1)
next_row()
panel("Label delay p50 / p95", [
    ("histogram_quantile(0.5, sum by (le) (rate(churn_model_label_delay_seconds_bucket[1m])))", "p50"),
    ("histogram_quantile(0.95, sum by (le) (rate(churn_model_label_delay_seconds_bucket[1m])))", "p95"),
], 0, unit="s")
next_row()

dashboard = {
    "uid": "churn-model-micrometer",
    "title": "Churn model: service, inputs, outputs, performance",
    "description": "Monitoring of the churn-classifier model server (see NOTES.md).",
    "tags": ["churn", "ml-monitoring"],
    "timezone": "browser",
    "schemaVersion": 38,
    "version": 1,
    "editable": True,
    "refresh": "5s",
    "time": {"from": "now-15m", "to": "now"},
    "templating": {"list": []},
    "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                              "enable": True, "hide": True, "name": "Annotations & Alerts", "type": "dashboard"}]},
    "panels": panels,
}
out = ROOT / "dashboards" / "churn-model.json"
out.write_text(json.dumps(dashboard, indent=2) + "\n")
print(f"wrote {out}: {sum(1 for p in panels if p['type'] != 'row')} panels")
