"""A session's pods played for real with Debian's `podman kube play` (4.3), for tests/test_kube_podman.py.

No cluster runs on the machines that test this project; podman runs the same pods (render.for_podman) on the
images the compose test builds. What podman needs here, made by this module:

- its own store, one per machine (~/.cache/mlsandbox/podman, as the Docker image store is), away from the
  system's: CONTAINERS_CONF and CONTAINERS_STORAGE_CONF name its files; a lock beside it keeps two test runs
  (two checkouts) from playing in it at once;
- containers.conf's default_ulimits fitted to this machine's hard limits: podman's default RLIMIT_NOFILE
  (1048576) is above them, and root here lacks CAP_SYS_RESOURCE to raise them ("error setting rlimit");
- the images moved from the Docker store: `docker save` (on the private engine, started for it when none runs)
  into a tarball cached under ~/.cache/mlsandbox, keyed by the three images' ids, then `podman load`; a store
  that already holds those ids loads nothing;
- Debian's catatonit (podman's init for a pod's infra container): scripts/ensure-system-deps.sh --test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from mlsandbox.layout import machine_cache
from mlsandbox.stack.docker.backend import engine_root
from mlsandbox.stack.docker.engine import PrivateEngine, answers, image_store
from mlsandbox.stack.state import held

# The images the compose test builds (compose.local-images.yaml), by the name the session's pods give them.
IMAGES = {
    "model": "mlsandbox/model-service:0.1.0-debian",
    "prometheus": "mlsandbox/prometheus-debian:bookworm",
    "alertmanager": "mlsandbox/alertmanager-debian:bookworm",
}


def store() -> Path:
    return machine_cache() / "podman"


def environment() -> dict[str, str]:
    """podman's own store and configuration (written by `configure`)."""
    etc = store() / "etc"
    return {
        **os.environ,
        "CONTAINERS_CONF": str(etc / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(etc / "storage.conf"),
    }


def hard_limits() -> tuple[int, int]:
    """(open files, processes) this machine lets a process set: its hard limits, processes capped by pid_max
    (podman lowers its own to that)."""
    import resource

    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
    return (nofile if nofile != resource.RLIM_INFINITY else 1048576), nproc


def configure() -> None:
    """containers.conf and storage.conf of the store (written every time: the machine's limits may change)."""
    root = store()
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    nofile, nproc = hard_limits()
    (etc / "containers.conf").write_text(
        f"""# Written by the tests (tests/kube_podman.py): podman's store for the Kubernetes tests.
[containers]
# podman's defaults are above this machine's hard limits, which root here may not raise.
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{root}/run/events.log"
tmp_dir = "{root}/run/libpod"
static_dir = "{root}/storage/libpod"
volume_path = "{root}/storage/volumes"

[network]
network_config_dir = "{root}/networks"
"""
    )
    (etc / "storage.conf").write_text(
        f"""[storage]
driver = "overlay"
graphroot = "{root}/storage"
runroot = "{root}/run/storage"
"""
    )


def podman(*args: str, check: bool = True, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["podman", *args], env=environment(), capture_output=True, text=True, timeout=timeout, **kwargs
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


@contextmanager
def locked_store(wait_seconds: float = 1800):
    """The store to ourselves (another checkout's test waits its turn)."""
    with held(machine_cache() / "podman.lock", "another test run plays in podman's store", wait_seconds=wait_seconds):
        yield


def docker_image_ids() -> dict[str, str] | None:
    """The three images' ids in the machine's Docker image store, read from its files (no engine needed); None
    when one is missing."""
    try:
        repositories = json.loads((image_store() / "image" / "overlay2" / "repositories.json").read_text())
    except (OSError, ValueError):
        return None
    ids = {}
    for key, ref in IMAGES.items():
        found = repositories.get("Repositories", {}).get(ref.split(":")[0], {}).get(ref)
        if not found:
            return None
        ids[key] = found
    return ids


def in_podman(ids: dict[str, str]) -> bool:
    """Whether podman's store holds each image under its name, with the Docker store's id."""
    for key, ref in IMAGES.items():
        result = podman("image", "inspect", "--format", "{{.Id}}", f"localhost/{ref}", check=False)
        if result.returncode != 0 or result.stdout.strip() != ids[key].removeprefix("sha256:"):
            return False
    return True


def tarball(ids: dict[str, str]) -> Path:
    digest = hashlib.sha256(" ".join(ids[k] for k in sorted(ids)).encode()).hexdigest()[:16]
    return machine_cache() / f"kube-images-{digest}.tar"


def save_from_docker(path: Path, say=print) -> None:
    """`docker save` of the three images into `path`, on the engine that answers, or the private engine started
    for it (and stopped again)."""
    private = PrivateEngine(engine_root())
    started = False
    if answers(None):
        host = None
    else:
        if not answers(private.host):
            say("starting the private Docker engine to save the images ...")
            private.start()
            started = True
        host = private.host
    env = {**os.environ, **({"DOCKER_HOST": host} if host else {})}
    partial = path.with_suffix(".partial")
    try:
        subprocess.run(["docker", "save", "-o", str(partial), *IMAGES.values()], env=env, check=True, timeout=900)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
        if started:
            private.stop()
    for old in machine_cache().glob("kube-images-*.tar"):
        if old != path:
            old.unlink()


def ensure_images(say=print) -> dict[str, float]:
    """The compose test's images in podman's store; the seconds each step took (0 when not needed)."""
    took = {"docker save": 0.0, "podman load": 0.0}
    ids = docker_image_ids()
    if ids is None:
        raise RuntimeError(
            "the compose test's images are not in the machine's Docker image store: run tests/test_docker_stack.py "
            "first (the same worker runs it just before)"
        )
    if in_podman(ids):
        return took
    path = tarball(ids)
    if not path.exists():
        t0 = time.monotonic()
        save_from_docker(path, say)
        took["docker save"] = time.monotonic() - t0
    t0 = time.monotonic()
    podman("load", "-q", "-i", str(path), timeout=1200)
    took["podman load"] = time.monotonic() - t0
    if not in_podman(ids):
        raise RuntimeError(f"podman load of {path} did not give the Docker store's images")
    return took


def missing_tools() -> str | None:
    for tool in ("podman", "catatonit"):
        if shutil.which(tool) is None and not Path(f"/usr/libexec/podman/{tool}").exists():
            return f"{tool} is not installed (scripts/ensure-system-deps.sh --test installs it)"
    return None
