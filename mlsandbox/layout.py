"""Where a sandbox lives and listens, in one place: its ports and every path of its run directory.

The native stack, the Docker stack (the environment compose reads), the tests' harness and the benchmarks all
read these. Files that another package writes keep their names with their writer (the prediction log and the
fault switch with model_service.settings, the scenario's truth with load.truth); this module only says where
they are for a given run directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from load.truth import control_path, ledger_path, scenario_dir, timeline_path
from model_service.settings import DEFAULT_RUN_DIR, ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
# The bare starter a candidate begins from, and the answer key: the same files but the monitoring code.
STARTER = REPO_ROOT / "starter_repo"
REFERENCE = REPO_ROOT / "reference_solution"
Port = Field(ge=1, le=65535)


def machine_cache() -> Path:
    """What the machine keeps between checkouts and runs (XDG's cache): Docker's image store, the Debian base's
    root file system, the trained model's MLflow store."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlsandbox"


class Ports(BaseModel):
    """The host ports of one sandbox (all on 127.0.0.1)."""

    model_config = ConfigDict(frozen=True)

    model_server: int = Port
    prometheus: int = Port
    alertmanager: int = Port
    mlflow: int = Port
    locust: int = Port
    alert_receiver: int = Port
    grafana: int = Port
    console: int = Port  # the interviewer's console: one per machine (see stack/machine.py)
    room: int = Port  # a session's candidate's room: their link opens it (see stack/room.py)

    @classmethod
    def default(cls) -> "Ports":
        return cls(
            model_server=8000,
            prometheus=9090,
            alertmanager=9093,
            mlflow=5000,
            locust=8089,
            alert_receiver=9095,
            grafana=3000,
            console=8090,
            room=8888,
        )

    @classmethod
    def block(cls, base: int) -> "Ports":
        """Consecutive ports from `base`, one per component: a second sandbox, a session, the tests."""
        return cls(**{name: base + k for k, name in enumerate(cls.model_fields)})

    def environment(self) -> dict[str, str]:
        """As `mlsandbox` reads them (MLSANDBOX_MODEL_SERVER_PORT, ...): for a child `mlsandbox` process."""
        return {f"MLSANDBOX_{name.upper()}_PORT": str(port) for name, port in self.model_dump().items()}

    def compose_environment(self) -> dict[str, str]:
        """As compose.yaml reads them (MODEL_SERVER_PORT, ... as in .env)."""
        return {f"{name.upper()}_PORT": str(port) for name, port in self.model_dump().items()}

    def items(self) -> list[tuple[str, int]]:
        return list(self.model_dump().items())

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "Ports":
        """The defaults, each replaced by its MLSANDBOX_<NAME>_PORT when set (what `environment()` writes)."""
        environ = os.environ if environ is None else environ
        given = {name: environ.get(f"MLSANDBOX_{name.upper()}_PORT") for name in cls.model_fields}
        return cls(**{**cls.default().model_dump(), **{k: v for k, v in given.items() if v}})

    def by_component(self) -> dict[str, int]:
        """The port of each component, by the name the stacks give it (compose's service names)."""
        return {COMPONENT_OF_PORT.get(name, name.replace("_", "-")): port for name, port in self.items()}


# The component behind a port whose name is not the component's own.
COMPONENT_OF_PORT = {"locust": "load", "room": "workspace"}


@dataclass(frozen=True)
class RunLayout:
    """Every path of a run directory."""

    root: Path

    @classmethod
    def default(cls) -> "RunLayout":
        return cls(DEFAULT_RUN_DIR)

    # --- the sandbox's own bookkeeping ------------------------------------------------------------------
    @property
    def state(self) -> Path:
        """What is running here and how it was started (see state.py)."""
        return self.root / "sandbox.json"

    @property
    def lock(self) -> Path:
        """Held while a sandbox starts or stops here: a second `up` is refused."""
        return self.root / ".lock"

    @property
    def machine(self) -> Path:
        """The machine's shared services started from this run directory (see stack/machine.py)."""
        return self.root / "machine.json"

    @property
    def console_token(self) -> Path:
        """The console's token: the console answers nothing without it."""
        return self.root / "console.token"

    @property
    def machine_lock(self) -> Path:
        return self.root / ".machine.lock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    # --- what the components keep ---------------------------------------------------------------------
    @property
    def mlflow(self) -> Path:
        return self.root / "mlflow"

    @property
    def prometheus(self) -> Path:
        return self.root / "prometheus"

    @property
    def prometheus_config(self) -> Path:
        return self.prometheus / "prometheus.yml"

    @property
    def prometheus_rules(self) -> Path:
        """The candidate's rule files as Prometheus loads them (copied there by `up` and `reload`)."""
        return self.prometheus / "rules"

    @property
    def prometheus_data(self) -> Path:
        return self.prometheus / "data"

    @property
    def alertmanager(self) -> Path:
        return self.root / "alertmanager"

    @property
    def alertmanager_config(self) -> Path:
        return self.alertmanager / "alertmanager.yml"

    @property
    def alertmanager_data(self) -> Path:
        return self.alertmanager / "data"

    @property
    def notifications(self) -> Path:
        """Every notification Alertmanager delivered, one JSON line each."""
        return self.root / "alerts" / "notifications.jsonl"

    # --- files other packages write -------------------------------------------------------------------
    @property
    def service(self) -> ServiceSettings:
        return ServiceSettings(run_dir=self.root)

    @property
    def predictions(self) -> Path:
        return self.service.prediction_log_path

    @property
    def model_cache(self) -> Path:
        return self.service.model_cache_dir

    @property
    def faults(self) -> Path:
        return self.service.faults_path

    @property
    def scenario(self) -> Path:
        return scenario_dir(self.root)

    @property
    def timeline(self) -> Path:
        return timeline_path(self.root)

    @property
    def ledger(self) -> Path:
        return ledger_path(self.root)

    @property
    def scenario_control(self) -> Path:
        return control_path(self.root)

    # --- what the commands write ----------------------------------------------------------------------
    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def docker_engine(self) -> Path:
        """A private Docker engine's images, state, socket and log."""
        return self.root / "docker"

    @property
    def docker_session(self) -> Path:
        """A compose session copied out of its volumes for grading."""
        return self.root / "docker-session"

    @property
    def calibration(self) -> Path:
        return self.root / "calibration"
