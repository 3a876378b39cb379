"""Grade a session and write its report: the one entry point for every caller (the `mlsandbox grade` command,
the Docker stack, calibration). Callers resolve where things are; this module knows nothing of how the
sandbox was started."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import report
from .errors import GradingFailed
from .grade import Grade, grade
from .play import PlayError
from .prometheus import PrometheusClient, PrometheusUnreachable
from .round import MainPlay
from .rubric import Rubric, rubric_or_fail


def run_grading(
    run_dir: Path,
    prometheus_url: str,
    *,
    candidate: Path | None = None,
    grafana: str | None = None,
    out: Path | None = None,
    rubric: Rubric | Path | None = None,
    mlflow_url: str | None = None,
    say: Callable[[str], None] = print,
    server_address: str | None = None,
    metrics_body: str | None = None,
    now: float | None = None,
    rule_groups: list[dict] | None = None,
    round_of: MainPlay | None = None,
) -> tuple[Grade, dict, Path]:
    """Grade the session in `run_dir` against the Prometheus at `prometheus_url`; write the report to `out`
    (default run_dir/report); log it to MLflow when `mlflow_url` is given. `round_of`: the play in `run_dir` is an
    improvement round's, and this is the session's main play: the round's alerting is judged by replaying the rules
    over it (grading/round.py)."""
    if not isinstance(rubric, Rubric):
        rubric = rubric_or_fail(rubric)
    say("grading: reading the timeline, the ledger and Prometheus ...")
    try:
        with PrometheusClient(prometheus_url, rule_groups=rule_groups) as prom:
            result = grade(
                prom,
                Path(run_dir),
                rubric,
                candidate,
                grafana,
                server_address,
                metrics_body,
                now=now,
                round_of=round_of,
            )
    except (PrometheusUnreachable, PlayError) as exc:
        raise GradingFailed(str(exc)) from None
    out = out or Path(run_dir) / "report"
    data = report.write(result, out)
    if mlflow_url:
        _log(mlflow_url, data, out)
    return result, data, out


def _log(mlflow_url: str, data: dict, out: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(mlflow_url)
    mlflow.set_experiment("grading")
    with mlflow.start_run(run_name=f"grade-{data['session']['scenario']}"):
        mlflow.log_params({"scenario": data["session"]["scenario"], "seed": data["session"]["seed"]})
        mlflow.log_metrics({"score": data["score"], **{f"item_{i['key']}": i["points"] for i in data["items"]}})
        mlflow.log_artifacts(str(out), artifact_path="report")
