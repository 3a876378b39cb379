"""Start components in their own process groups, wait for health, and stop whole groups.

MLflow's server, uvicorn's reloader and Locust all start children; signalling only the parent would leave
those behind holding ports, so every component gets its own session and is stopped as a group.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    argv: list[str]
    port: int
    health_url: str
    url: str
    env: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class RunningComponent:
    name: str
    pid: int
    port: int
    health_url: str
    url: str
    log: str
    started_at: float


class StartError(RuntimeError):
    pass


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def start(spec: ComponentSpec, logs_dir: Path) -> RunningComponent:
    if not port_is_free("127.0.0.1", spec.port):
        raise StartError(
            f"{spec.name}: port {spec.port} is already in use; stop what holds it "
            f"(`mlsandbox down`, or `ss -ltnp 'sport = :{spec.port}'` to see it)"
        )
    logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = logs_dir / f"{spec.name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env={**os.environ, **spec.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return RunningComponent(spec.name, proc.pid, spec.port, spec.health_url, spec.url, str(log_path), time.time())


def is_alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our exited child
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by another parent) is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def is_healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_healthy(comp: RunningComponent, timeout: float) -> float:
    """Seconds until the component answered its health check; StartError if it died or timed out."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if is_healthy(comp.health_url):
            return time.monotonic() - t0
        if not is_alive(comp.pid):
            raise StartError(f"{comp.name} exited during start-up; its log: {comp.log}\n{tail(comp.log)}")
        time.sleep(0.25)
    raise StartError(
        f"{comp.name} not healthy at {comp.health_url} after {timeout:.0f}s; its log: {comp.log}\n{tail(comp.log)}"
    )


def tail(path: str, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


def stop(pid: int, grace_seconds: float = 10.0) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL whatever is left after the grace period."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    is_alive(pgid)  # reaps the leader if it is our child
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # killpg(0) succeeds while zombies remain in the group; count only live members.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def save_state(path: Path, components: list[RunningComponent], extra: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**extra, "components": [asdict(c) for c in components]}, indent=2))
    os.replace(tmp, path)


def load_state(path: Path) -> tuple[list[RunningComponent], dict]:
    if not path.exists():
        return [], {}
    data = json.loads(path.read_text())
    components = [RunningComponent(**c) for c in data.pop("components", [])]
    return components, data
