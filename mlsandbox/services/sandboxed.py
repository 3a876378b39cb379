"""The supervisor of one bubblewrap sandbox (a candidate's room, or their model server), the sandbox's parent for
its whole life:

- on the host, a unix socket per port the sandbox may reach, leading to that port on the host's loopback (the
  sandbox's own loopback leads to these sockets: services/forward.py runs inside);
- the door: a TCP address on the host leading to the unix socket the sandboxed program listens on;
- for a room, the room's own services on a socket of their own (room_app.py: the candidate's live dashboards,
  reloading their rules);
- bubblewrap itself, its options passed through a pipe (nothing of them, the token included, shows in `ps`), its
  output copied into the log through a pipe (a log file handed to it could be reopened from inside).

It exits when the sandbox ends; SIGTERM ends the sandbox (its whole pid namespace) and then the supervisor.

    python -m mlsandbox.services.sandboxed SPEC.json
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from pydantic import BaseModel

from mlsandbox.services import forward

BWRAP = "bwrap"


class Door(BaseModel):
    """The host's TCP address for the unix socket the sandboxed program listens on."""

    host: str
    port: int
    socket: Path


class RoomApp(BaseModel):
    """The room's own services (room_app.py), on a unix socket the room's JupyterLab and `reload-rules` reach."""

    socket: Path
    workspace: Path
    prometheus: str
    reload: list[str]  # the host's command that checks and loads the candidate's rules


class BwrapSpec(BaseModel):
    """One sandbox: bubblewrap's options, the files it holds of its own (scripts under a bin/ folder are
    executable), the command run inside, the ports its loopback reaches (each the same port on the host's
    loopback, through `sockets`), its door and its app. Not `sandboxed` (a trusted candidate): the command runs
    as it is, in `cwd` with `env`, its files written where they are named on the host."""

    name: str
    sandboxed: bool = True
    options: list[str]
    files: dict[str, str]
    command: list[str]
    env: dict[str, str] = {}
    cwd: Path | None = None
    reach: list[int]
    sockets: Path
    door: Door | None = None
    app: RoomApp | None = None
    log: Path


def _data_fd(text: str) -> int:
    """A pipe whose read end holds `text` (bubblewrap reads --args and --ro-bind-data from file descriptors)."""
    read, write = os.pipe()
    os.write(write, text.encode())
    os.close(write)
    return read


def _mode(path: str) -> str:
    return "0755" if "/bin/" in path else "0644"


def write_files(spec: BwrapSpec) -> None:
    """A trusted room's files, where they are named on the host (a sandbox gets them through bubblewrap)."""
    for dest, text in spec.files.items():
        path = Path(dest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(int(_mode(dest), 8))


def launch_plain(spec: BwrapSpec, log, stdio: bool = False, command: list[str] | None = None):
    """A trusted room: the command as it is; (the process, no sandbox info)."""
    write_files(spec)
    proc = subprocess.Popen(
        command or spec.command,
        cwd=spec.cwd,
        env={**os.environ, **spec.env},
        stdin=None if stdio else subprocess.DEVNULL,
        stdout=None if stdio else log,
        stderr=None if stdio else subprocess.STDOUT,
    )
    return proc, {}


def launch(spec: BwrapSpec, log, stdio: bool = False, extra_command: list[str] | None = None):
    """Start bubblewrap; (the process, its info: `child-pid` is the sandbox's first process). `stdio`: the
    sandbox talks on this process's terminal (`session shell`) instead of the log."""
    fds, options = [], []
    for dest, text in spec.files.items():
        fd = _data_fd(text)
        fds.append(fd)
        options += ["--perms", _mode(dest), "--ro-bind-data", str(fd), dest]
    info_read, info_write = os.pipe()
    fds.append(info_write)
    args = _data_fd("\0".join([*options, "--info-fd", str(info_write), *spec.options]) + "\0")
    fds.append(args)
    command = extra_command or spec.command
    proc = subprocess.Popen(
        [BWRAP, "--args", str(args), "--", *command],
        pass_fds=fds,
        stdin=None if stdio else subprocess.DEVNULL,
        stdout=None if stdio else subprocess.PIPE,
        stderr=None if stdio else subprocess.STDOUT,
    )
    for fd in fds:
        os.close(fd)
    if not stdio:

        def copy() -> None:
            for chunk in iter(lambda: proc.stdout.read1(65536), b""):
                log.write(chunk)
                log.flush()

        threading.Thread(target=copy, daemon=True).start()
    with os.fdopen(info_read) as info:
        return proc, json.loads(info.read() or "{}")


def end(proc: subprocess.Popen, info: dict, grace: float = 5.0) -> None:
    """The sandbox ended: its main program asked to stop, then its first process killed (and with it the whole
    pid namespace)."""
    inner = info.get("child-pid")
    if inner:
        try:
            for child in Path(f"/proc/{inner}/task/{inner}/children").read_text().split():
                os.kill(int(child), signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if inner:
        try:
            os.kill(inner, signal.SIGKILL)
        except OSError:
            pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


class Forwarders:
    """The host side of a sandbox's network, in a thread of its own: the sockets to the ports it reaches, and
    its door."""

    def __init__(self, spec: BwrapSpec):
        self.spec = spec
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._servers: list[asyncio.AbstractServer] = []

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait(30)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self._servers = self.loop.run_until_complete(forward.listen(self._pairs(), socket_mode=0o666))
        except BaseException as exc:  # a port taken: say so, the supervisor exits
            self.error = exc
        self.ready.set()
        if self.error is None:
            self.loop.run_forever()

    def _pairs(self) -> list[tuple[tuple, tuple]]:
        spec = self.spec
        spec.sockets.mkdir(parents=True, exist_ok=True)
        pairs = [(("unix", str(spec.sockets / f"{p}.sock")), ("tcp", "127.0.0.1", p)) for p in spec.reach]
        if spec.door is not None:
            spec.door.socket.parent.mkdir(parents=True, exist_ok=True)
            # A socket left by the last run of the sandboxed program: it would refuse to listen there.
            spec.door.socket.unlink(missing_ok=True)
            pairs.append((("tcp", spec.door.host, spec.door.port), ("unix", str(spec.door.socket))))
        return pairs

    def stop(self) -> None:
        for server in self._servers:
            self.loop.call_soon_threadsafe(server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


def serve_app(spec: BwrapSpec) -> None:
    """The room's own services on their socket, in a thread (uvicorn installs no signal handler there)."""
    import uvicorn

    from mlsandbox.services.room_app import create_app

    app = spec.app
    path = app.socket
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(app.workspace, app.prometheus, app.reload), uds=str(path), log_level="warning", access_log=False
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.chmod(path, 0o666)


def run(spec: BwrapSpec) -> int:
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    forwarders = Forwarders(spec)
    forwarders.start()
    if spec.app is not None:
        serve_app(spec)
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log, "ab") as log:
        proc, info = launch(spec, log) if spec.sandboxed else launch_plain(spec, log)
        while not stopping.is_set() and proc.poll() is None:
            time.sleep(0.2)
        code = proc.poll()
        end(proc, info)
    forwarders.stop()
    return 0 if code is None else code


def run_here(spec: BwrapSpec, command: list[str], serve: bool) -> int:
    """`command` in a sandbox like `spec`'s, on this process's terminal (`session shell`); its exit status.
    `serve`: this process serves the sandbox's sockets (its supervisor does not run)."""
    forwarders = Forwarders(spec.model_copy(update={"door": None})) if serve else None
    if forwarders is not None:
        forwarders.start()
    try:
        if spec.sandboxed:
            proc, info = launch(spec, None, stdio=True, extra_command=command)
        else:
            proc, info = launch_plain(spec, None, stdio=True, command=command[2:])
        code = proc.wait()
        if info:
            end(proc, info, grace=0.5)
        return code
    finally:
        if forwarders is not None:
            forwarders.stop()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m mlsandbox.services.sandboxed SPEC.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(run(BwrapSpec.model_validate_json(Path(argv[0]).read_text())))


if __name__ == "__main__":
    main()
