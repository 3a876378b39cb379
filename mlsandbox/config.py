"""A sandbox's settings, read once from the environment (prefix MLSANDBOX_) and the command line: where it
lives (its run directory's layout) and where it listens (its ports)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from model_service.settings import DEFAULT_RUN_DIR

from .layout import REPO_ROOT, Ports, RunLayout

DEFAULTS = Ports.default()

__all__ = ["REPO_ROOT", "StackConfig"]


class StackConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLSANDBOX_", extra="ignore")

    run_dir: Path = DEFAULT_RUN_DIR
    # Loopback by default: nothing in the sandbox is meant to be reachable from the network.
    host: str = "127.0.0.1"
    model_server_port: int = Field(DEFAULTS.model_server, ge=1, le=65535)
    prometheus_port: int = Field(DEFAULTS.prometheus, ge=1, le=65535)
    alertmanager_port: int = Field(DEFAULTS.alertmanager, ge=1, le=65535)
    mlflow_port: int = Field(DEFAULTS.mlflow, ge=1, le=65535)
    locust_port: int = Field(DEFAULTS.locust, ge=1, le=65535)
    alert_receiver_port: int = Field(DEFAULTS.alert_receiver, ge=1, le=65535)
    grafana_port: int = Field(DEFAULTS.grafana, ge=1, le=65535)
    console_port: int = Field(DEFAULTS.console, ge=1, le=65535)
    # Prometheus's scrape and rule-evaluation interval; short so that a candidate sees changes quickly.
    scrape_interval: str = Field("5s", pattern=r"^\d+(ms|s|m)$")
    health_timeout_seconds: float = Field(120.0, gt=0)
    training_seed: int = 42

    @classmethod
    def with_ports(cls, ports: Ports, **settings) -> "StackConfig":
        return cls(**{f"{name}_port": port for name, port in ports.items()}, **settings)

    @property
    def ports(self) -> Ports:
        return Ports(**{name: getattr(self, f"{name}_port") for name in Ports.model_fields})

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_dir)

    @property
    def logs_dir(self) -> Path:
        return self.layout.logs

    @property
    def notifications_path(self) -> Path:
        return self.layout.notifications

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"

    @property
    def mlflow_url(self) -> str:
        return self.url(self.mlflow_port)

    @property
    def prometheus_url(self) -> str:
        return self.url(self.prometheus_port)
