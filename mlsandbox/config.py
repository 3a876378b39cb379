"""A sandbox's settings, read once from the environment (prefix MLSANDBOX_) and the command line: where it
lives (its run directory's layout) and where it listens (its ports, MLSANDBOX_<NAME>_PORT each)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlsandbox.layout import REPO_ROOT, Ports, RunLayout
from model_service.settings import DEFAULT_RUN_DIR

__all__ = ["REPO_ROOT", "StackConfig"]


class RoomSettings(BaseModel):
    """A candidate's room (interview sessions and courses): JupyterLab on their workspace behind a link with a
    token of its own, their model server beside it, both in bubblewrap sandboxes unless `sandboxed` is off (the
    candidate trusted, where bubblewrap cannot run); the room's door listens on `listen`."""

    session: str
    token: str
    listen: str = "127.0.0.1"
    sandboxed: bool = True


class StackConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLSANDBOX_", extra="ignore")

    run_dir: Path = DEFAULT_RUN_DIR
    # Loopback by default: nothing in the sandbox is meant to be reachable from the network.
    host: str = "127.0.0.1"
    ports: Ports = Field(default_factory=Ports.from_environment)
    # Prometheus's scrape and rule-evaluation interval; short so that a candidate sees changes quickly.
    scrape_interval: str = Field("5s", pattern=r"^\d+(ms|s|m)$")
    health_timeout_seconds: float = Field(120.0, gt=0)
    training_seed: int = 42
    # A new MLflow store starts as a copy of the one this machine trained last with the same training code, seed
    # and libraries (training takes about 26 s per home); off, every new store trains its own.
    reuse_trained_model: bool = True
    # A session's candidate's room; with one, Prometheus and Alertmanager answer under a path of their own
    # (/prometheus, /alertmanager), as the room's JupyterLab proxies them on its one address.
    room: RoomSettings | None = None

    def with_ports(self, **ports: int) -> "StackConfig":
        """The same settings with some ports moved (a room of its own, a Prometheus on a free port)."""
        return self.model_copy(update={"ports": self.ports.model_copy(update=ports)})

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_dir)

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"

    @property
    def mlflow_url(self) -> str:
        return self.url(self.ports.mlflow)

    @property
    def prometheus_path(self) -> str:
        return "/prometheus" if self.room else ""

    @property
    def alertmanager_path(self) -> str:
        return "/alertmanager" if self.room else ""

    @property
    def prometheus_url(self) -> str:
        return self.url(self.ports.prometheus) + self.prometheus_path

    @property
    def alertmanager_url(self) -> str:
        return self.url(self.ports.alertmanager) + self.alertmanager_path
