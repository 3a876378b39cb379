"""`mlsandbox grade`: resolve the inputs, grade, write the report, optionally log it to MLflow."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from mlsandbox.config import StackConfig
from mlsandbox.processes import load_state

from . import report
from .grade import grade
from .prometheus import PrometheusClient, PrometheusUnreachable
from .rubric import DEFAULT_RUBRIC, RubricError, load_rubric
from .session import SessionError


class GradingFailed(RuntimeError):
    """Grading could not start; str() is one readable line (the CLI exits 2)."""


def run_grading(cfg: StackConfig, prometheus: str | None, grafana: str | None, candidate: Path | None,
                out: Path | None, rubric_path: Path | None, log_to_mlflow: bool,
                say: Callable[[str], None], server_address: str | None = None) -> tuple[dict, Path]:
    try:
        rubric = load_rubric(rubric_path or DEFAULT_RUBRIC)
    except RubricError as exc:
        raise GradingFailed(str(exc)) from None
    if candidate is None:
        _, extra = load_state(cfg.state_path)
        candidate = Path(extra["candidate_dir"]) if extra.get("candidate_dir") else None
    prom = PrometheusClient(prometheus or cfg.prometheus_url)
    say("grading: reading the timeline, the ledger and Prometheus ...")
    try:
        result = grade(prom, cfg.run_dir, rubric, candidate, grafana, server_address)
    except (PrometheusUnreachable, SessionError) as exc:
        raise GradingFailed(str(exc)) from None
    out = out or cfg.run_dir / "report"
    data = report.write(result, out)
    if log_to_mlflow:
        _log(cfg, data, out)
    return data, out


def _log(cfg: StackConfig, data: dict, out: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(cfg.mlflow_url)
    mlflow.set_experiment("grading")
    with mlflow.start_run(run_name=f"grade-{data['session']['scenario']}"):
        mlflow.log_params({"scenario": data["session"]["scenario"], "seed": data["session"]["seed"]})
        mlflow.log_metrics({"score": data["score"], **{f"item_{i['key']}": i["points"] for i in data["items"]}})
        mlflow.log_artifacts(str(out), artifact_path="report")
