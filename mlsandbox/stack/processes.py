"""Processes: started detached in their own process groups, waited on until healthy, stopped as whole groups.
Every start and poll of the sandbox goes through here.

MLflow's server, uvicorn's reloader, Locust and dockerd all start children; signalling only the parent would
leave those behind holding ports, so every component gets its own session and is stopped as a group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict

from mlsandbox.errors import StartError


@dataclass(frozen=True)
class ComponentSpec:
    """How to start a component: its command, environment and folder, the port it takes and its health check."""

    name: str
    argv: list[str]
    port: int
    health_url: str
    url: str
    env: dict[str, str]
    cwd: Path


@contextmanager
def interrupts_held():
    """Ctrl-C held back until the block is over, then raised: a process started in the block is recorded before
    the KeyboardInterrupt that would otherwise leave it running unrecorded. Main thread only (the only one
    Python delivers signals to); elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, None)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """Start a process detached from this one (its own session and process group), its output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def run_to_end(argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Run a process group in the foreground until it exits; stop the whole group whatever happens (Ctrl-C)."""
    proc = spawn(argv, log, env, cwd)
    try:
        return proc.wait()
    finally:
        stop(proc.pid)


def start(spec: ComponentSpec, logs_dir: Path) -> "Component":
    if not port_is_free("127.0.0.1", spec.port):
        raise StartError(
            f"{spec.name}: port {spec.port} is already in use; stop what holds it "
            f"(`mlsandbox down`, or `ss -ltnp 'sport = :{spec.port}'` to see it)"
        )
    log = logs_dir / f"{spec.name}.log"
    proc = spawn(spec.argv, log, spec.env, spec.cwd)
    return Component(
        name=spec.name,
        pid=proc.pid,
        port=spec.port,
        health_url=spec.health_url,
        url=spec.url,
        log=str(log),
        started_at=time.time(),
    )


class Component(BaseModel):
    """A component started by `start`: its process group and where to check it (kept in the state file)."""

    model_config = ConfigDict(frozen=True)

    name: str
    pid: int
    port: int
    health_url: str
    url: str
    log: str
    started_at: float


def is_alive(pid: int) -> bool:
    """Whether the process lives (not exited, not a zombie); an exited child of ours is reaped."""
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
    """Whether `url` answers 200; a component without a health URL (headless Locust) counts as healthy."""
    if not url:
        return True
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(
    ready: Callable[[], bool],
    timeout: float,
    what: str,
    broken: Callable[[], str | None] = lambda: None,
    interval: float = 0.25,
) -> float:
    """Poll until `ready()` (seconds it took); StartError with `broken()`'s words as soon as it says something is
    wrong, or with `what` when the time is up."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if ready():
            return time.monotonic() - t0
        problem = broken()
        if problem:
            raise StartError(problem)
        time.sleep(interval)
    raise StartError(f"{what} after {timeout:.0f}s")


def wait_healthy(comp: Component, timeout: float) -> float:
    """Seconds until the component answered its health check; StartError if it died or timed out."""
    return wait_until(
        lambda: is_healthy(comp.health_url),
        timeout,
        f"{comp.name} not healthy at {comp.health_url}; its log: {comp.log}\n{tail(comp.log)}",
        lambda: (
            None if is_alive(comp.pid) else f"{comp.name} exited during start-up; its log: {comp.log}\n{tail(comp.log)}"
        ),
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
        if not group_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and group_alive(pid):
        time.sleep(0.1)


def group_members(pgid: int) -> list[int]:
    """Live processes (not zombies) of a process group."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def group_alive(pgid: int) -> bool:
    is_alive(pgid)  # reaps the leader if it is our child
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # killpg(0) succeeds while zombies remain in the group; count only live members.
    return bool(group_members(pgid))
