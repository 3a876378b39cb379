"""The registry of backends, defined after them: which sandbox runs in a run directory, and a new one to start.
The Sandbox interface (sandbox.py) imports none of them."""

from __future__ import annotations

from pathlib import Path

from mlsandbox.config import KubeSettings, StackConfig
from mlsandbox.say import Say
from mlsandbox.stack.docker.backend import DockerBackend
from mlsandbox.stack.kubernetes.backend import KubernetesSandbox
from mlsandbox.stack.native import NativeSandbox
from mlsandbox.stack.sandbox import Sandbox
from mlsandbox.stack.state import SandboxState

BACKENDS: dict[str, type[Sandbox]] = {
    "native": NativeSandbox,
    "docker": DockerBackend,
    "kubernetes": KubernetesSandbox,
}


def new_sandbox(
    cfg: StackConfig,
    docker: bool = False,
    local_images: bool = False,
    project: str = "mlsandbox",
    say: Say = print,
    machine_dir: Path | None = None,
    kube: KubeSettings | None = None,
) -> Sandbox:
    """A sandbox to start. `machine_dir`: the run directory whose shared services (machine.py: the console; natively
    MLflow too) the sandbox uses (default: its own); `kube`: a session's namespace on that cluster."""
    if kube is not None:
        return KubernetesSandbox(cfg, say, kube, machine_dir=machine_dir)
    if docker:
        return DockerBackend(cfg, say, local_images=local_images, project=project, machine_dir=machine_dir)
    return NativeSandbox(cfg, say, machine_dir=machine_dir)


def open_sandbox(cfg: StackConfig, say: Say = print) -> Sandbox | None:
    """The sandbox started in this run directory (native or Docker), or a compose stack started with a plain
    `docker compose up`; None when neither runs."""
    state = SandboxState.load(cfg.layout)
    if state is not None:
        return BACKENDS[state.backend].from_state(cfg, state, say)
    return DockerBackend.plain_compose_up(cfg, say)
