"""How each component of the native stack is started: its command, port and health check."""

from __future__ import annotations

import sys
from pathlib import Path

from mlsandbox.config import REPO_ROOT, StackConfig
from mlsandbox.stack.processes import ComponentSpec
from mlsandbox.stack.state import ScenarioPlay

PYTHON = sys.executable


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
        str(cfg.ports.mlflow),
        # One worker starts in seconds instead of about 15 and is plenty for one sandbox.
        "--workers",
        "1",
    ]
    url = cfg.url(cfg.ports.mlflow)
    # Server-side jobs serve GenAI features the sandbox does not use; off, MLflow starts 8 fewer processes.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return ComponentSpec("mlflow", argv, cfg.ports.mlflow, f"{url}/health", url, env, cfg.run_dir)


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
        str(cfg.ports.model_server),
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
    url = cfg.url(cfg.ports.model_server)
    return ComponentSpec("model-server", argv, cfg.ports.model_server, f"{url}/health", url, env, candidate_dir)


def _prometheus_binary(
    cfg: StackConfig, name: str, binary: str, config_file: Path, storage: tuple[str, Path], web: tuple[int, str]
) -> ComponentSpec:
    """Prometheus or Alertmanager (Debian's binaries): a config file, a data folder (`storage`: its flag and
    folder), loopback, ready at /-/ready. With a path (`web`: port and path; a session with a room) it answers
    under that path: a path of its own lets the room's JupyterLab proxy its web UI on the room's one address (its
    pages then ask for scripts and API under it)."""
    (flag, data), (port, path) = storage, web
    data.mkdir(parents=True, exist_ok=True)
    url = cfg.url(port) + path
    argv = [binary, f"--config.file={config_file.resolve()}", f"{flag}={data.resolve()}"]
    argv += [f"--web.listen-address={cfg.host}:{port}"] + ([f"--web.external-url={url}/"] if path else [])
    return ComponentSpec(name, argv, port, f"{url}/-/ready", url, {}, cfg.run_dir)


def prometheus(cfg: StackConfig, config_file: Path) -> ComponentSpec:
    storage, web = ("--storage.tsdb.path", cfg.layout.prometheus_data), (cfg.ports.prometheus, cfg.prometheus_path)
    spec = _prometheus_binary(cfg, "prometheus", "prometheus", config_file, storage, web)
    # Lets `mlsandbox reload` load the candidate's edited rules without a restart.
    spec.argv.append("--web.enable-lifecycle")
    return spec


def alert_receiver(cfg: StackConfig) -> ComponentSpec:
    argv = [
        PYTHON,
        "-m",
        "mlsandbox.services.alert_receiver",
        "--host",
        cfg.host,
        "--port",
        str(cfg.ports.alert_receiver),
        "--out",
        str(cfg.layout.notifications.resolve()),
    ]
    url = cfg.url(cfg.ports.alert_receiver)
    return ComponentSpec("alert-receiver", argv, cfg.ports.alert_receiver, f"{url}/health", url, {}, REPO_ROOT)


def alertmanager(cfg: StackConfig, config_file: Path) -> ComponentSpec:
    storage, web = ("--storage.path", cfg.layout.alertmanager_data), (cfg.ports.alertmanager, cfg.alertmanager_path)
    spec = _prometheus_binary(cfg, "alertmanager", "prometheus-alertmanager", config_file, storage, web)
    # No cluster: a single Alertmanager would otherwise listen for peers on all interfaces.
    spec.argv.append("--cluster.listen-address=")
    return spec


def console(cfg: StackConfig, token_file: Path) -> ComponentSpec:
    argv = [
        PYTHON,
        "-m",
        "mlsandbox.console.app",
        "--host",
        cfg.host,
        "--port",
        str(cfg.ports.console),
        "--token-file",
        str(token_file.resolve()),
    ]
    url = cfg.url(cfg.ports.console)
    # The console reads the home run directory and the sessions as the command that started it sees them.
    env = {"MLSANDBOX_RUN_DIR": str(cfg.run_dir.resolve()), "PYTHONUNBUFFERED": "1"}
    return ComponentSpec("console", argv, cfg.ports.console, f"{url}/health", url, env, REPO_ROOT)


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
        cfg.url(cfg.ports.model_server),
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
        return ComponentSpec("load", argv, cfg.ports.locust, "", "", env, REPO_ROOT)
    argv += ["--autostart", "--web-host", cfg.host, "--web-port", str(cfg.ports.locust)]
    url = cfg.url(cfg.ports.locust)
    return ComponentSpec("load", argv, cfg.ports.locust, f"{url}/", url, env, REPO_ROOT)
