"""A sandbox's settings, read once from the environment (prefix MLSANDBOX_) and the command line: where it
lives (its run directory's layout) and where it listens (its ports, MLSANDBOX_<NAME>_PORT each)."""

from __future__ import annotations

import re
from pathlib import Path

from dotenv import dotenv_values
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlsandbox.layout import REPO_ROOT, Ports, RunLayout
from model_service.settings import DEFAULT_RUN_DIR

__all__ = ["REPO_ROOT", "KubeSettings", "StackConfig"]


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
    # The console runs on its own, not started by the sandboxes (the hub's pod on a cluster, whose main process it
    # is): MLSANDBOX_EXTERNAL_CONSOLE=true.
    external_console: bool = False

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


# --- a cluster's settings, for sessions on Kubernetes (stack/kubernetes/) ---------------------------------
# The images and tags of `docker compose up` (.env), the defaults here too.
_ENV = dotenv_values(REPO_ROOT / ".env")
MACHINE_NAMESPACE = "mlsandbox"
SESSION_PREFIX = "mlsandbox-"


class KubeSettings(BaseSettings):
    """A cluster's settings for sessions, read once from the environment (prefix MLSANDBOX_KUBE_) and the command
    line: which cluster (a kubeconfig context), which images (registry and tags), how rooms are reached (an Ingress
    host, or a port-forward), the storage class, and what the session's network policies let in."""

    model_config = SettingsConfigDict(env_prefix="MLSANDBOX_KUBE_", extra="ignore", frozen=True)

    # The kubeconfig context (None: the current one; inside a pod, its service account).
    context: str | None = None
    # Put before our own image's name (registry.example.com/team): where the cluster pulls it from.
    registry: str = ""
    model_image: str = _ENV.get("MLSANDBOX_IMAGE") or "mlsandbox/model-service:0.1.0"
    prometheus_image: str = _ENV.get("PROMETHEUS_IMAGE") or "prom/prometheus:v2.55.1"
    alertmanager_image: str = _ENV.get("ALERTMANAGER_IMAGE") or "prom/alertmanager:v0.28.1"
    # The console's (docker/hub.Dockerfile: ours with the repository, for the hub in the cluster).
    hub_image: str = _ENV.get("MLSANDBOX_HUB_IMAGE") or "mlsandbox/hub:0.1.0"
    # Always (the default: a tag moved is pulled again), IfNotPresent, or Never (images loaded on the nodes).
    image_pull_policy: str = Field("Always", pattern="^(Always|IfNotPresent|Never)$")
    # The session's volumes' storage class (None: the cluster's default).
    storage_class: str | None = None
    # Rooms behind an Ingress: its host, "{name}" standing for the session's name (e.g. "{name}.rooms.example.org");
    # None: the candidate reaches the room through `kubectl port-forward`.
    room_host: str | None = None
    ingress_class: str | None = None
    # The room's link starts with it (TLS ends at the Ingress controller).
    room_scheme: str = Field("https", pattern="^https?$")
    # Where the Ingress controller's pods run: the only ones the room accepts connections from.
    ingress_namespace: str = "ingress-nginx"
    # Where the API server's proxied requests come from, on clusters whose network policies apply to them
    # (`mlsandbox grade` and `status` go through its service proxy); none: nothing added.
    api_server_cidrs: list[str] = []
    # The machine's MLflow, as a session's model server reaches it.
    mlflow_url: str = f"http://mlflow.{MACHINE_NAMESPACE}.svc:5000"
    machine_namespace: str = MACHINE_NAMESPACE
    ready_timeout_seconds: float = Field(600.0, gt=0)

    def image(self, name: str) -> str:
        """An image as the cluster pulls it: ours (the model service's, the hub's) behind the registry, the others as
        given."""
        image = {
            "model": self.model_image,
            "hub": self.hub_image,
            "prometheus": self.prometheus_image,
            "alertmanager": self.alertmanager_image,
        }[name]
        return f"{self.registry.rstrip('/')}/{image}" if name in ("model", "hub") and self.registry else image


def namespace_of(session: str) -> str:
    """A session's namespace on a cluster: its name as a DNS label (lower case; other characters as '-')."""
    return SESSION_PREFIX + re.sub(r"[^a-z0-9-]", "-", session.lower()).strip("-")[: 63 - len(SESSION_PREFIX)]
