"""How each component of the native stack is started: its command, port and health check."""

from __future__ import annotations

import sys
from pathlib import Path

from .config import REPO_ROOT, StackConfig
from .processes import ComponentSpec
from .state import ScenarioPlay

PYTHON = sys.executable

__all__ = [
    "ScenarioPlay",
    "mlflow",
    "model_server",
    "prometheus",
    "alert_receiver",
    "alertmanager",
    "load_generator",
    "SYSTEM_BINARIES",
]


def mlflow(cfg: StackConfig) -> ComponentSpec:
    data = cfg.layout.mlflow
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
        # model_service.asgi serves the candidate's app/main.py behind the scenario's fault switch.
        PYTHON,
        "-m",
        "uvicorn",
        "model_service.asgi:app",
        "--app-dir",
        str(candidate_dir),
        "--host",
        cfg.host,
        "--port",
        str(cfg.model_server_port),
        # The candidate's edits to the app take effect on save; a helper script saved elsewhere in the
        # workspace restarts nothing (a restart resets every counter).
        "--reload",
        "--reload-dir",
        str(candidate_dir / "app"),
    ]
    env = {
        "MLSANDBOX_RUN_DIR": str(cfg.run_dir.resolve()),
        "MLFLOW_TRACKING_URI": cfg.mlflow_url,
        "PYTHONUNBUFFERED": "1",
    }
    url = cfg.url(cfg.model_server_port)
    return ComponentSpec("model-server", argv, cfg.model_server_port, f"{url}/health", url, env, candidate_dir)


def prometheus(cfg: StackConfig, config_file: Path) -> ComponentSpec:
    data = cfg.layout.prometheus_data
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
        str(cfg.layout.notifications.resolve()),
    ]
    url = cfg.url(cfg.alert_receiver_port)
    return ComponentSpec("alert-receiver", argv, cfg.alert_receiver_port, f"{url}/health", url, {}, REPO_ROOT)


def alertmanager(cfg: StackConfig, config_file: Path) -> ComponentSpec:
    data = cfg.layout.alertmanager_data
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


def console(cfg: StackConfig, token_file: Path) -> ComponentSpec:
    argv = [
        PYTHON,
        "-m",
        "mlsandbox.console.app",
        "--host",
        cfg.host,
        "--port",
        str(cfg.console_port),
        "--token-file",
        str(token_file.resolve()),
    ]
    url = cfg.url(cfg.console_port)
    # The console reads the home run directory and the sessions as the command that started it sees them.
    env = {"MLSANDBOX_RUN_DIR": str(cfg.run_dir.resolve()), "PYTHONUNBUFFERED": "1"}
    return ComponentSpec("console", argv, cfg.console_port, f"{url}/health", url, env, REPO_ROOT)


# Binaries the native stack needs from the system, and the Debian package that brings each.
SYSTEM_BINARIES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
}


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
    if play.from_phase is not None:
        argv += ["--from-phase", play.from_phase]
    if targets_file is not None:
        argv += ["--targets", str(targets_file.resolve())]
    env = {"MLSANDBOX_RUN_DIR": str(cfg.run_dir.resolve()), "PYTHONUNBUFFERED": "1"}
    if headless or not play.web_ui:
        # No web server: healthy while alive (an empty health URL), and no URL to show.
        argv += ["--headless", "--only-summary"]
        return ComponentSpec("load", argv, cfg.locust_port, "", "", env, REPO_ROOT)
    argv += ["--autostart", "--web-host", cfg.host, "--web-port", str(cfg.locust_port)]
    url = cfg.url(cfg.locust_port)
    return ComponentSpec("load", argv, cfg.locust_port, f"{url}/", url, env, REPO_ROOT)
