"""A Docker engine for the compose stack: the one that already answers, or a private `dockerd` under the run dir.

Machines without a running engine (CI here, a fresh Debian box) can still run the Docker path: Debian's dockerd,
started as root with its own data root, exec root and socket, runs containers. It is started in its own process
group (it starts containerd as a child) and stopped as a group, so nothing is left behind.

Its images live in one store per machine (~/.cache/mlsandbox/docker-data), not in the checkout: a fresh clone
finds the images an earlier one built, and builds in seconds what took minutes. Two private engines never use the
store at once: the engine that starts on it writes its pid and checkout into an owner file, and another checkout's
engine refuses to start while that pid lives.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

from mlsandbox.errors import MlsandboxError, StartError
from mlsandbox.layout import REPO_ROOT, machine_cache
from mlsandbox.stack import processes
from mlsandbox.stack.state import held

# A unix socket path longer than this is refused by the kernel (108 bytes, minus containerd's own suffixes).
MAX_SOCKET_PATH = 90
# compose labels each container with the folder it was started from.
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"


def image_store() -> Path:
    return machine_cache() / "docker-data"


def docker_cli() -> str:
    path = shutil.which("docker")
    if path is None:
        raise MlsandboxError("docker not found: install Debian's docker.io (`scripts/ensure-system-deps.sh --docker`)")
    return path


def answers(docker_host: str | None) -> bool:
    """True when an engine answers at `docker_host` (None: the client's default, DOCKER_HOST or its socket)."""
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    try:
        result = subprocess.run(
            [docker_cli(), "version", "--format", "{{.Server.Version}}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=15,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


@dataclass(frozen=True)
class PrivateEngine:
    """A private dockerd: its runtime state, socket and log under `root` (the checkout's run/docker), its images
    in the machine's image store."""

    root: Path

    @property
    def data_root(self) -> Path:
        return image_store()

    @property
    def _owner(self) -> Path:
        return self.data_root.with_name("docker-data.owner")

    @property
    def exec_root(self) -> Path:
        return self.root / "exec"

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if processes.is_alive(pid) else None

    def start(self, timeout: float = 90.0) -> None:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise MlsandboxError(
                "dockerd not found: install Debian's docker.io (`scripts/ensure-system-deps.sh --docker`)"
            )
        if os.geteuid() != 0:
            raise MlsandboxError("no Docker engine answers, and starting one needs root: start Docker, or run as root")
        containerd_socket = self.exec_root / "containerd" / "containerd.sock"
        if len(str(containerd_socket)) > MAX_SOCKET_PATH:
            raise MlsandboxError(
                f"the run directory's path is too long for the engine's sockets ({containerd_socket}); "
                "use a shorter --run-dir"
            )
        for folder in (self.data_root, self.exec_root):
            folder.mkdir(parents=True, exist_ok=True)
        with self._store_lock():
            self._refuse_when_owned()
            release_dead_engines()
            proc = self._spawn(dockerd)
            self._owner.write_text(json.dumps({"pid": proc.pid, "root": str(self.root.resolve())}))
        try:
            processes.wait_until(
                lambda: answers(self.host),
                timeout,
                f"dockerd did not answer; its log: {self.log}",
                lambda: (
                    None
                    if proc.poll() is None
                    else f"dockerd exited with {proc.returncode} while starting; its log: {self.log}\n"
                    f"{processes.tail(str(self.log))}"
                ),
                interval=0.5,
            )
        except StartError:
            processes.stop(proc.pid)
            raise
        self._stop_foreign_containers()

    def _stop_foreign_containers(self) -> None:
        """The store is the machine's: an engine stopped without `down` (a killed run) leaves containers whose
        restart policy starts them again with this engine, with mounts from another checkout (perhaps deleted)
        and holding their ports. Those of compose projects started from another folder are stopped (not removed:
        their volumes and logs stay, and `up` from that folder starts them again)."""
        env = {**os.environ, "DOCKER_HOST": self.host}
        listed = subprocess.run(
            [docker_cli(), "ps", "--quiet"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        ids = listed.stdout.split()
        if not ids:
            return
        inspected = subprocess.run(
            [docker_cli(), "inspect", *ids], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        try:
            containers = json.loads(inspected.stdout or "[]")
        except ValueError:
            return
        here = str(REPO_ROOT)
        foreign = [
            c["Id"]
            for c in containers
            if (folder := (c.get("Config", {}).get("Labels") or {}).get(WORKING_DIR_LABEL)) and folder != here
        ]
        if foreign:
            subprocess.run(
                [docker_cli(), "stop", "--time", "5", *foreign], env=env, capture_output=True, timeout=300, check=False
            )

    def _store_lock(self):
        # Waited for: two checkouts starting engines at once take turns at the owner file.
        return held(self.data_root.with_name("docker-data.lock"), "the image store's lock is held", wait_seconds=60)

    def _refuse_when_owned(self) -> None:
        """Another checkout's engine on the store while its dockerd lives: refused, with the way out."""
        try:
            owner = json.loads(self._owner.read_text())
        except (OSError, ValueError):
            return
        if owner.get("root") != str(self.root.resolve()) and processes.is_alive(int(owner.get("pid", 0))):
            raise MlsandboxError(
                f"the machine's image store {self.data_root} is in use by the private engine of {owner['root']} "
                f"(pid {owner['pid']}); `mlsandbox down` there first"
            )

    def _spawn(self, dockerd: str):
        return processes.spawn(
            [
                dockerd,
                "--data-root",
                str(self.data_root),
                "--exec-root",
                str(self.exec_root),
                "--host",
                self.host,
                "--pidfile",
                str(self.pidfile),
            ],
            self.log,
        )

    def stop(self) -> None:
        """Stop dockerd and its containerd (its process group); it stops any container still running first."""
        pid = self.pid()
        if pid is not None:
            processes.stop(pid, grace_seconds=30)
        self.socket.unlink(missing_ok=True)
        with self._store_lock():
            try:
                if json.loads(self._owner.read_text()).get("root") == str(self.root.resolve()):
                    self._owner.unlink()
            except (OSError, ValueError):
                pass


def release_dead_engines() -> list[str]:
    """The network namespaces a private engine killed without `down` leaves mounted under its exec root.

    Each holds its container's end of a veth pair still plugged into the bridge of a network kept in the machine's
    image store, with that container's address. The next engine on the store reuses the bridge and hands the same
    addresses to new containers: a packet to one of them may reach the dead one, which answers "connection refused"
    (a compose session's trainer never reached its MLflow). Unmounted, a namespace goes, and its veth pair with it.
    Only mounts of this layout (`ROOT/exec/netns/ID` beside `ROOT/dockerd.pid`) whose dockerd no longer lives."""
    released = []
    for mount in psutil.disk_partitions(all=True):
        mount_point = Path(mount.mountpoint)
        if mount.fstype != "nsfs" or mount_point.parent.name != "netns" or mount_point.parent.parent.name != "exec":
            continue
        root = mount_point.parents[2]
        try:
            pid = int((root / "dockerd.pid").read_text().strip())
        except (OSError, ValueError):
            pid = 0
        if pid and processes.is_alive(pid):
            continue
        if subprocess.run(["umount", str(mount_point)], capture_output=True, check=False).returncode == 0:
            released.append(str(mount_point))
    return released


@dataclass(frozen=True)
class Engine:
    """The engine in use: its address for the docker client and compose, and whether this sandbox started it."""

    host: str | None
    private: PrivateEngine | None

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.host} if self.host else {}


def connect(root: Path, say=print) -> Engine:
    """The engine that answers (the client's default first, then a private one under `root`), or a new private
    engine under `root` when none does."""
    if answers(None):
        return Engine(None, None)
    private = PrivateEngine(root)
    if answers(private.host):
        return Engine(private.host, private)
    say(f"no Docker engine answers: starting a private dockerd (data under {private.root}) ...")
    private.start()
    return Engine(private.host, private)


def find_private(root: Path) -> PrivateEngine | None:
    """The private engine under `root`, when one runs."""
    private = PrivateEngine(root)
    return private if private.pid() is not None else None
