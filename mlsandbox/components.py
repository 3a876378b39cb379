"""How each component of the native stack is started: its command, port and health check."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .config import REPO_ROOT, StackConfig
from .processes import ComponentSpec

PYTHON = sys.executable


def mlflow(cfg: StackConfig) -> ComponentSpec:
    data = cfg.run_dir / "mlflow"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        PYTHON,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{(data / 'mlflow.db').resolve()}",
        "--artifacts-destination",
        str((data / "artifacts").resolve()),
        "--host",
        cfg.host,
        "--port",
        str(cfg.mlflow_port),
        # One worker starts in seconds instead of about 15 and is plenty for one sandbox.
        "--workers",
        "1",
    ]
    url = cfg.url(cfg.mlflow_port)
    # Server-side jobs serve GenAI features the sandbox does not use; off, MLflow starts 8 fewer processes.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return ComponentSpec("mlflow", argv, cfg.mlflow_port, f"{url}/health", url, env, cfg.run_dir)


def model_server(cfg: StackConfig, candidate_dir: Path) -> ComponentSpec:
    candidate_dir = candidate_dir.resolve()
    argv = [
        PYTHON,
        "-m",
        "uvicorn",
        "app.main:app",
        "--app-dir",
        str(candidate_dir),
        "--host",
        cfg.host,
        "--port",
        str(cfg.model_server_port),
        # The candidate's edits take effect on save.
        "--reload",
        "--reload-dir",
        str(candidate_dir),
    ]
    env = {
        "MLSANDBOX_RUN_DIR": str(cfg.run_dir.resolve()),
        "MLFLOW_TRACKING_URI": cfg.mlflow_url,
        "PYTHONUNBUFFERED": "1",
    }
    url = cfg.url(cfg.model_server_port)
    return ComponentSpec("model-server", argv, cfg.model_server_port, f"{url}/health", url, env, candidate_dir)


def prometheus(cfg: StackConfig, config_file: Path) -> ComponentSpec:
    data = cfg.run_dir / "prometheus" / "data"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        "prometheus",
        f"--config.file={config_file.resolve()}",
        f"--storage.tsdb.path={data.resolve()}",
        f"--web.listen-address={cfg.host}:{cfg.prometheus_port}",
        # Lets `mlsandbox reload` load the candidate's edited rules without a restart.
        "--web.enable-lifecycle",
    ]
    url = cfg.url(cfg.prometheus_port)
    return ComponentSpec("prometheus", argv, cfg.prometheus_port, f"{url}/-/ready", url, {}, cfg.run_dir)


def alert_receiver(cfg: StackConfig) -> ComponentSpec:
    argv = [
        PYTHON,
        "-m",
        "mlsandbox.alert_receiver",
        "--host",
        cfg.host,
        "--port",
        str(cfg.alert_receiver_port),
        "--out",
        str(cfg.notifications_path.resolve()),
    ]
    url = cfg.url(cfg.alert_receiver_port)
    return ComponentSpec("alert-receiver", argv, cfg.alert_receiver_port, f"{url}/health", url, {}, REPO_ROOT)


def alertmanager(cfg: StackConfig, config_file: Path) -> ComponentSpec:
    data = cfg.run_dir / "alertmanager" / "data"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        "prometheus-alertmanager",
        f"--config.file={config_file.resolve()}",
        f"--storage.path={data.resolve()}",
        f"--web.listen-address={cfg.host}:{cfg.alertmanager_port}",
        # No cluster: a single Alertmanager would otherwise listen for peers on all interfaces.
        "--cluster.listen-address=",
    ]
    url = cfg.url(cfg.alertmanager_port)
    return ComponentSpec("alertmanager", argv, cfg.alertmanager_port, f"{url}/-/ready", url, {}, cfg.run_dir)


# Binaries the native stack needs from the system, and the Debian package that brings each.
SYSTEM_BINARIES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
}


@dataclass(frozen=True)
class ScenarioPlay:
    scenario: str
    seed: int | None = None
    speed: float = 1.0
    surprise: bool = False


def load_generator(
    cfg: StackConfig, play: ScenarioPlay, headless: bool = False, targets_file: Path | None = None
) -> ComponentSpec:
    """Locust playing a scenario: with its web UI on the Locust port (started at once), or headless; to the
    sandbox's model server, or to each server a targets file lists (`mlsandbox calibrate`)."""
    argv = [
        PYTHON,
        "-m",
        "locust",
        "-f",
        str(REPO_ROOT / "load" / "locustfile.py"),
        "--host",
        cfg.url(cfg.model_server_port),
        "--scenario",
        play.scenario,
        "--speed",
        str(play.speed),
        # Injected errors are the point of a scenario, not a reason for Locust to report failure.
        "--exit-code-on-error",
        "0",
    ]
    if play.seed is not None:
        argv += ["--seed", str(play.seed)]
    if play.surprise:
        argv += ["--surprise"]
    if targets_file is not None:
        argv += ["--targets", str(targets_file.resolve())]
    if headless:
        argv += ["--headless", "--only-summary"]
    else:
        argv += ["--autostart", "--web-host", cfg.host, "--web-port", str(cfg.locust_port)]
    env = {"MLSANDBOX_RUN_DIR": str(cfg.run_dir.resolve()), "PYTHONUNBUFFERED": "1"}
    url = cfg.url(cfg.locust_port)
    return ComponentSpec("load", argv, cfg.locust_port, f"{url}/", url, env, REPO_ROOT)
