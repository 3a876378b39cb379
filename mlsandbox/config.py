"""Where the native stack lives and listens: read once from the environment (prefix MLSANDBOX_) and flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class StackConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLSANDBOX_", extra="ignore")

    run_dir: Path = REPO_ROOT / "run"
    # Loopback by default: nothing in the sandbox is meant to be reachable from the network.
    host: str = "127.0.0.1"
    model_server_port: int = Field(8000, ge=1, le=65535)
    prometheus_port: int = Field(9090, ge=1, le=65535)
    alertmanager_port: int = Field(9093, ge=1, le=65535)
    mlflow_port: int = Field(5000, ge=1, le=65535)
    locust_port: int = Field(8089, ge=1, le=65535)
    alert_receiver_port: int = Field(9095, ge=1, le=65535)
    # Prometheus's scrape and rule-evaluation interval; short so that a candidate sees changes quickly.
    scrape_interval: str = Field("5s", pattern=r"^\d+(ms|s|m)$")
    health_timeout_seconds: float = Field(120.0, gt=0)
    training_seed: int = 42

    @property
    def state_path(self) -> Path:
        return self.run_dir / "stack.json"

    @property
    def notifications_path(self) -> Path:
        """Every notification Alertmanager delivered, one JSON line each."""
        return self.run_dir / "alerts" / "notifications.jsonl"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"

    @property
    def mlflow_url(self) -> str:
        return self.url(self.mlflow_port)

    @property
    def prometheus_url(self) -> str:
        return self.url(self.prometheus_port)
