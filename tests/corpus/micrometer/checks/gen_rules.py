"""Write alerts/churn-model.yml (recording and alerting rules) from the bucket layout in app/monitoring.py.

Generated rather than hand-written for one reason: the out-of-range rule must name each feature's typical
min/max bucket edge exactly as prometheus_client prints it (`le="11000.0"`, `le="1e+06"`), and those edges
live in app/monitoring.py. Run after changing INPUT_BUCKETS / TYPICAL_EDGES:

    cd /work/main && .venv/bin/python tests/corpus/micrometer/checks/gen_rules.py
    promtool check rules tests/corpus/micrometer/alerts/*.yml
"""
import sys
from pathlib import Path

import yaml
from prometheus_client.utils import floatToGoString

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from app.monitoring import INPUT_BUCKETS, TYPICAL_EDGES  # noqa: E402

# Windows: the scenario scrapes every 1 s, incidents last 8-15 s, an alert must fire within ~10 s and
# clear within ~30 s. See NOTES.md for the noise measurements behind each threshold.
HTTP_W = "10s"      # HTTP timer: errors and latency show at once, 10 s is 200 requests
INPUT_W = "10s"     # input means, shares, nulls, out-of-range: ~190 customers per window
PRED_W = "15s"      # score mean and flagged share: ~280 customers
ACC_W = "15s"       # accuracy: ~140 labels (half the predictions are labelled, 2 s late)
PR_W = "20s"        # precision / recall: only ~50 flagged and ~60 actual churners in 20 s
LABEL_GAP_W = "5s"  # labels normally arrive ~10/s: none at all for 5 s means the feedback stream stopped

PREDICT_URIS = 'uri=~"/predict|/predict/batch"'

for f, (lo, hi) in TYPICAL_EDGES.items():
    assert hi in INPUT_BUCKETS[f] and (lo is None or lo in INPUT_BUCKETS[f]), f


def out_of_range_expr() -> str:
    parts = []
    for f, (lo, hi) in TYPICAL_EDGES.items():
        sel = f'feature="{f}"'
        count = f"sum by (feature) (rate(churn_model_input_value_count{{{sel}}}[{INPUT_W}]))"
        above = f'{count}\n  - sum by (feature) (rate(churn_model_input_value_bucket{{{sel},le="{floatToGoString(hi)}"}}[{INPUT_W}]))'
        below = (f'\n  + sum by (feature) (rate(churn_model_input_value_bucket{{{sel},le="{floatToGoString(lo)}"}}[{INPUT_W}]))'
                 if lo is not None else "")
        parts.append(f"(\n  {above}{below}\n)\n/ {count}")
    return "\nor\n".join(parts)


def server_error_ratio(outcome: str) -> str:
    total = f"sum by (uri) (rate(http_server_requests_seconds_count[{HTTP_W}]))"
    return (f'(\n  sum by (uri) (rate(http_server_requests_seconds_count{{outcome="{outcome}"}}[{HTTP_W}]))\n'
            f"  or 0 * {total}\n)\n/ {total}")


def fb(pred: str, actual: str, w: str) -> str:
    return f'sum(rate(churn_model_feedback_total{{predicted="{pred}",actual="{actual}"}}[{w}]))'


recording = [
    # --- HTTP timer -----------------------------------------------------------------------------------
    ("uri_outcome:http_server_requests:rate" + HTTP_W,
     f"sum by (uri, outcome) (rate(http_server_requests_seconds_count[{HTTP_W}]))"),
    ("uri:http_server_requests_server_error:ratio" + HTTP_W, server_error_ratio("SERVER_ERROR")),
    ("uri:http_server_requests_client_error:ratio" + HTTP_W, server_error_ratio("CLIENT_ERROR")),
    ("uri:http_server_requests_seconds:p95_" + HTTP_W,
     f"histogram_quantile(0.95, sum by (uri, le) (rate(http_server_requests_seconds_bucket[{HTTP_W}])))"),
    ("uri:http_server_requests_seconds:p50_" + HTTP_W,
     f"histogram_quantile(0.50, sum by (uri, le) (rate(http_server_requests_seconds_bucket[{HTTP_W}])))"),
    ("churn:predict_requests:rate" + HTTP_W,
     f"sum(rate(http_server_requests_seconds_count{{{PREDICT_URIS}}}[{HTTP_W}]))"),
    ("churn:predict_requests:rate2m",
     f"sum(rate(http_server_requests_seconds_count{{{PREDICT_URIS}}}[2m]))"),
    # --- predictions (score histogram) ---------------------------------------------------------------
    ("churn:predictions:rate" + INPUT_W, f"sum(rate(churn_model_score_count[{INPUT_W}]))"),
    ("churn:predictions:rate" + PRED_W, f"sum(rate(churn_model_score_count[{PRED_W}]))"),
    ("churn:score:mean" + PRED_W,
     f"sum(rate(churn_model_score_sum[{PRED_W}])) / sum(rate(churn_model_score_count[{PRED_W}]))"),
    ("churn:flagged:ratio" + PRED_W,
     f'sum(rate(churn_model_score_count{{predicted="churn"}}[{PRED_W}])) / sum(rate(churn_model_score_count[{PRED_W}]))'),
    # --- inputs ---------------------------------------------------------------------------------------
    ("feature:churn_input:mean" + INPUT_W,
     f"sum by (feature) (rate(churn_model_input_value_sum[{INPUT_W}]))\n"
     f"/ sum by (feature) (rate(churn_model_input_value_count[{INPUT_W}]))"),
    ("feature:churn_input_mean_shift:zscore" + INPUT_W,
     f"(\n  feature:churn_input:mean{INPUT_W}\n  - on (feature) max by (feature) (churn_model_reference_feature_mean)\n)\n"
     "/ on (feature) max by (feature) (churn_model_reference_feature_stddev)"),
    ("feature:churn_input_null:ratio" + INPUT_W,
     # numeric: predictions scored minus values observed; categorical: the value="null" share
     f"1 - sum by (feature) (rate(churn_model_input_value_count[{INPUT_W}]))\n"
     f"    / on () group_left sum(rate(churn_model_score_count[{INPUT_W}]))\n"
     f'or sum by (feature) (rate(churn_model_input_category_total{{value="null"}}[{INPUT_W}]))\n'
     f"   / sum by (feature) (rate(churn_model_input_category_total[{INPUT_W}]))"),
    ("feature:churn_input_out_of_range:ratio" + INPUT_W, out_of_range_expr()),
    ("feature_value:churn_input_category:ratio" + INPUT_W,
     f'sum by (feature, value) (rate(churn_model_input_category_total{{value!="null"}}[{INPUT_W}]))\n'
     f'/ on (feature) group_left sum by (feature) (rate(churn_model_input_category_total{{value!="null"}}[{INPUT_W}]))'),
    ("feature_value:churn_input_category_shift:abs" + INPUT_W,
     f"abs(\n  feature_value:churn_input_category:ratio{INPUT_W}\n"
     "  - on (feature, value) max by (feature, value) (churn_model_reference_category_share)\n)"),
    # --- ground truth (feedback counter: TP / FP / FN / TN) --------------------------------------------
    ("churn:feedback:rate" + ACC_W, f"sum(rate(churn_model_feedback_total[{ACC_W}]))"),
    ("churn:feedback:rate" + PR_W, f"sum(rate(churn_model_feedback_total[{PR_W}]))"),
    ("churn:feedback_coverage:ratio" + ACC_W,
     f"sum(rate(churn_model_feedback_total[{ACC_W}])) / sum(rate(churn_model_score_count[{ACC_W}]))"),
    ("churn:accuracy:ratio" + ACC_W,
     f'({fb("churn", "churn", ACC_W)} + {fb("no_churn", "no_churn", ACC_W)})\n'
     f"/ sum(rate(churn_model_feedback_total[{ACC_W}]))"),
    ("churn:precision:ratio" + PR_W,
     f'{fb("churn", "churn", PR_W)}\n/ sum(rate(churn_model_feedback_total{{predicted="churn"}}[{PR_W}]))'),
    ("churn:recall:ratio" + PR_W,
     f'{fb("churn", "churn", PR_W)}\n/ sum(rate(churn_model_feedback_total{{actual="churn"}}[{PR_W}]))'),
    ("churn:actual_churn:ratio" + ACC_W,
     f'sum(rate(churn_model_feedback_total{{actual="churn"}}[{ACC_W}])) / sum(rate(churn_model_feedback_total[{ACC_W}]))'),
]

# Enough traffic in the window for a statistic to mean something (20/s is normal).
ENOUGH_PREDICTIONS_INPUT = f"on () churn:predictions:rate{INPUT_W} > 5"
ENOUGH_PREDICTIONS_PRED = f"on () churn:predictions:rate{PRED_W} > 5"


def alert(name, expr, for_, severity, summary, description, **labels):
    return {"alert": name, "expr": expr, "for": for_,
            "labels": {"severity": severity, "team": labels.pop("team", "ml-platform"), **labels},
            "annotations": {"summary": summary, "description": description}}


alerts = [
    # --- service ------------------------------------------------------------------------------------------
    alert("ModelServerDown", 'up{job="model-server"} == 0', "5s", "critical",
          "Prometheus cannot scrape the model server",
          "The model-server target has been down for 5 s: the CRM gets no scores."),
    alert("PredictServerErrorRateHigh",
          f'uri:http_server_requests_server_error:ratio{HTTP_W}{{{PREDICT_URIS}}} > 0.05\n'
          f'and on (uri) sum by (uri) (rate(http_server_requests_seconds_count{{{PREDICT_URIS}}}[{HTTP_W}])) > 1',
          "3s", "critical",
          "{{ $labels.uri }}: {{ $value | humanizePercentage }} of requests fail with 5xx",
          f"More than 5 % of {{{{ $labels.uri }}}} requests ended in SERVER_ERROR over the last {HTTP_W}: "
          "customers are not being scored."),
    alert("PredictClientErrorRateHigh",
          f'uri:http_server_requests_client_error:ratio{HTTP_W}{{{PREDICT_URIS}}} > 0.10\n'
          f'and on (uri) sum by (uri) (rate(http_server_requests_seconds_count{{{PREDICT_URIS}}}[{HTTP_W}])) > 1',
          "3s", "warning",
          "{{ $labels.uri }}: {{ $value | humanizePercentage }} of requests rejected (4xx)",
          "More than 10 % of prediction requests are rejected, usually 422 for a field the schema refuses "
          "(a new category, a renamed field, an impossible value): an upstream schema change. "
          "The 422 body names the field."),
    alert("PredictLatencyHigh",
          f'uri:http_server_requests_seconds:p95_{HTTP_W}{{{PREDICT_URIS}}} > 0.15', "3s", "warning",
          "{{ $labels.uri }} p95 latency {{ $value | humanizeDuration }}",
          f"p95 of {{{{ $labels.uri }}}} over {HTTP_W} is above 150 ms (normal: under 20 ms)."),
    alert("PredictLatencyCritical",
          f'uri:http_server_requests_seconds:p95_{HTTP_W}{{{PREDICT_URIS}}} > 1', "3s", "critical",
          "{{ $labels.uri }} p95 latency {{ $value | humanizeDuration }}",
          f"p95 of {{{{ $labels.uri }}}} over {HTTP_W} is above 1 s: the CRM's calls are timing out."),
    alert("PredictTrafficDrop",
          f"churn:predict_requests:rate{HTTP_W} < 0.5 * churn:predict_requests:rate2m\n"
          "and churn:predict_requests:rate2m > 2", "2s", "warning",
          "Prediction traffic fell to {{ $value | humanize }} req/s",
          f"Prediction requests over {HTTP_W} are under half the 2-minute average: the CRM may have stopped "
          "calling, or the server is too slow to keep up."),
    # --- inputs -------------------------------------------------------------------------------------------
    alert("ChurnInputDrift",
          f"abs(feature:churn_input_mean_shift:zscore{INPUT_W}) > 0.5\nand {ENOUGH_PREDICTIONS_INPUT}",
          "2s", "warning",
          "Input {{ $labels.feature }} drifted: mean moved {{ $value | printf \"%.2f\" }} training std devs",
          f"The mean of {{{{ $labels.feature }}}} over {INPUT_W} is more than 0.5 training standard deviations "
          "from the reference mean (normal noise: under 0.35). A population shift or an upstream change."),
    alert("ChurnInputOutOfRange",
          f"feature:churn_input_out_of_range:ratio{INPUT_W} > 0.05\nand {ENOUGH_PREDICTIONS_INPUT}",
          "2s", "warning",
          "{{ $value | humanizePercentage }} of {{ $labels.feature }} values outside the typical range",
          "More than 5 % of values lie outside the range seen in training (normally under 1 %): "
          "a changed unit or a broken upstream field. The model extrapolates linearly on them."),
    alert("ChurnInputNullsHigh",
          f"feature:churn_input_null:ratio{INPUT_W} > 0.2\nand {ENOUGH_PREDICTIONS_INPUT}",
          "2s", "warning",
          "{{ $value | humanizePercentage }} of {{ $labels.feature }} values are null",
          "The model imputes nulls with the training median/mode, so these customers look typical on "
          "this feature; the training data had none. A stale or dropped upstream field."),
    alert("ChurnInputCategoryShift",
          f"feature_value:churn_input_category_shift:abs{INPUT_W} > 0.2\nand {ENOUGH_PREDICTIONS_INPUT}",
          "2s", "warning",
          "{{ $labels.feature }}={{ $labels.value }} share moved {{ $value | humanizePercentage }} from training",
          f"The share of {{{{ $labels.feature }}}}={{{{ $labels.value }}}} over {INPUT_W} differs from the reference "
          "share by more than 20 points (normal noise: under 15)."),
    # --- outputs ------------------------------------------------------------------------------------------
    alert("ChurnScoreShift",
          f"abs(churn:score:mean{PRED_W} - on () max(churn_model_reference_score_mean)) > 0.10\n"
          f"and {ENOUGH_PREDICTIONS_PRED}",
          "2s", "warning",
          "Mean churn score moved {{ $value | printf \"%.2f\" }} from training",
          f"The mean churn probability over {PRED_W} is more than 0.10 away from the reference mean (0.29)."),
    alert("ChurnFlaggedShareShift",
          f"abs(churn:flagged:ratio{PRED_W} - on () max(churn_model_reference_flagged_share)) > 0.15\n"
          f"and {ENOUGH_PREDICTIONS_PRED}",
          "2s", "warning",
          "Share of customers flagged as churners moved {{ $value | humanizePercentage }} from training",
          f"The share flagged over {PRED_W} is more than 15 points from the reference (24 %): the call "
          "list grows or shrinks for reasons the retention team should hear about."),
    # --- performance (labelled subset) -----------------------------------------------------------------------
    alert("ChurnModelAccuracyLow",
          f"churn:accuracy:ratio{ACC_W} < 0.68\nand on () churn:feedback:rate{ACC_W} > 3",
          "2s", "critical",
          "Accuracy on recent labels {{ $value | humanizePercentage }}",
          f"Accuracy over the labels of the last {ACC_W} is under 68 % (holdout 81 %, normal noise "
          "down to about 71 %). Concept drift or broken inputs."),
    alert("ChurnModelPrecisionLow",
          f"churn:precision:ratio{PR_W} < 0.40\n"
          f'and on () sum(rate(churn_model_feedback_total{{predicted="churn"}}[{PR_W}])) > 1',
          "2s", "warning",
          "Precision on recent labels {{ $value | humanizePercentage }}",
          f"Of the flagged customers labelled in the last {PR_W}, under 40 % churned (holdout 72 %): "
          "retention offers go to customers who would have stayed (finance)."),
    alert("ChurnModelRecallLow",
          f"churn:recall:ratio{PR_W} < 0.30\n"
          f'and on () sum(rate(churn_model_feedback_total{{actual="churn"}}[{PR_W}])) > 1',
          "2s", "warning",
          "Recall on recent labels {{ $value | humanizePercentage }}",
          f"Of the churners labelled in the last {PR_W}, the model caught under 30 % (holdout 58 %): "
          "churners leave without a call (retention team)."),
    alert("ChurnFeedbackMissing",
          f"sum(rate(churn_model_feedback_total[{LABEL_GAP_W}])) == 0\nand {ENOUGH_PREDICTIONS_INPUT}",
          "3s", "warning",
          "No labels for {LABEL_GAP_W} while predictions continue".replace("{LABEL_GAP_W}", LABEL_GAP_W),
          "Ground truth has stopped arriving while customers are still being scored: the performance "
          "alerts are blind. Check the feedback pipeline. (Sandbox timing, labels ~2 s late: in production, "
          "where labels take weeks, this window would be hours.)"),
]


class _Literal(str):
    pass


yaml.SafeDumper.add_representer(
    _Literal, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def lit(x):
    if isinstance(x, dict):
        return {k: lit(v) for k, v in x.items()}
    if isinstance(x, list):
        return [lit(v) for v in x]
    return _Literal(x) if isinstance(x, str) and "\n" in x else x


doc = {"groups": [
    {"name": "churn-model-recording", "rules": [{"record": n, "expr": e} for n, e in recording]},
    {"name": "churn-model-alerts", "rules": alerts},
]}
header = ("# GENERATED by checks/gen_rules.py from the bucket layout in app/monitoring.py; edit the generator.\n"
          "# Windows are sized for the 1 s scrape / 8-15 s incidents of the exercise; see NOTES.md.\n")
out = ROOT / "alerts" / "churn-model.yml"
out.write_text(header + yaml.safe_dump(lit(doc), sort_keys=False, width=200))
print(f"wrote {out}: {len(recording)} recording rules, {len(alerts)} alerts")
