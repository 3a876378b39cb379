"""Sandboxes for what a candidate runs natively: their room (JupyterLab and its terminals) and their model server,
each in bubblewrap (Debian's `bubblewrap`, the sandbox Flatpak uses), so that neither sees the repository (the
reference solution, the corpus, the scenarios, the grader), the run directory's hidden truth, or another session.

A sandbox sees the system's programs and the Python environment read-only, the folders it is given, a private
/tmp, and a network namespace of its own whose loopback reaches only the ports it is given: each leads, through a
unix socket made by the supervisor on the host (services/sandboxed.py), to that port on the host's loopback.
Inside, the candidate is an unprivileged user with no capabilities and cannot make namespaces of their own.

This module only describes a sandbox (services/sandboxed.py's `BwrapSpec`); that supervisor runs it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import REPO_ROOT

BWRAP = "bwrap"
INSIDE_UID = 1000
# Inside every sandbox: the sockets of the services it may reach, the tools bound in, the door it listens on.
SERVICES = "/run/mlsandbox/services"
TOOLS = "/opt/mlsandbox"
DOOR = "/run/mlsandbox/door"
WORKSPACE = "/workspace"
TMP_BYTES = 256 * 1024 * 1024
FORWARDER = REPO_ROOT / "mlsandbox" / "services" / "forward.py"
# What of /etc a Python program and a login shell need (Debian 12); passwd, group and profile are the sandbox's own.
ETC = (
    "/etc/ld.so.cache",
    "/etc/alternatives",
    "/etc/hosts",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/ssl",
    "/etc/bash.bashrc",
    "/etc/inputrc",
    "/etc/terminfo",
    "/etc/nsswitch.conf",
)


def unavailable() -> str | None:
    """Why bubblewrap cannot make sandboxes on this machine (one line), or None when it can."""
    if shutil.which(BWRAP) is None:
        return "bubblewrap is not installed (`apt-get install bubblewrap`)"
    probe = subprocess.run(
        [BWRAP, "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["no reason given"])[-1]
        return f"bubblewrap cannot make a sandbox here (no user namespaces?): {reason}"
    return None


def require() -> None:
    reason = unavailable()
    if reason:
        raise MlsandboxError(reason)


def socket_folder(run_dir: Path, name: str) -> Path:
    """A short host folder for a sandbox's unix sockets (their paths may not exceed 108 bytes; run directories in
    deep folders would), unique to the run directory."""
    digest = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"mlsb-{digest}-{name}"


def python_paths() -> list[Path]:
    """The Python environment the sandboxes run (read-only, at its own path: its scripts name it), and the
    interpreter it was made from when that lives outside /usr (pyenv)."""
    paths = [Path(sys.prefix)]
    base = Path(os.path.realpath(sys.base_prefix))
    if not str(base).startswith("/usr"):
        paths.append(base)
    return paths


def base_options(hostname: str) -> list[str]:
    """Every sandbox: namespaces of its own, an unprivileged user without capabilities who cannot make
    namespaces, stopped with its supervisor; the system's programs and the Python environment read-only."""
    options = [
        "--unshare-all",
        "--unshare-user",
        "--uid",
        str(INSIDE_UID),
        "--gid",
        str(INSIDE_UID),
        "--disable-userns",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        hostname,
        "--clearenv",
        # A private /tmp in memory, bounded: a candidate filling it fills their own room, not the machine's memory.
        "--size",
        str(TMP_BYTES),
        "--tmpfs",
        "/tmp",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for link in ("bin", "lib", "lib64", "sbin"):
        options += ["--symlink", f"usr/{link}", f"/{link}"]
    for path in ETC:
        options += ["--ro-bind-try", path, path]
    for path in python_paths():
        options += ["--ro-bind", str(path), str(path)]
    options += ["--ro-bind", str(FORWARDER), f"{TOOLS}/forward.py"]
    return options


def plain_environment(home: str) -> dict[str, str]:
    """A trusted room's environment (no sandbox): its tools and the Python environment first on PATH."""
    return {"HOME": home, "PATH": f"{Path(home).parent}/bin:{sys.prefix}/bin:{os.environ.get('PATH', '/usr/bin:/bin')}"}


def environment(home: str, extra: dict[str, str]) -> list[str]:
    env = {
        "HOME": home,
        "USER": "candidate",
        "LOGNAME": "candidate",
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "PATH": f"{TOOLS}/bin:{sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": sys.prefix,
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }
    return [arg for key, value in env.items() for arg in ("--setenv", key, value)]


def identity(home: str) -> dict[str, str]:
    """The sandbox's own passwd, group and login profile (Debian's /etc/profile would reset PATH)."""
    return {
        "/etc/passwd": f"candidate:x:{INSIDE_UID}:{INSIDE_UID}:candidate:{home}:/bin/bash\n",
        "/etc/group": f"candidate:x:{INSIDE_UID}:\n",
        "/etc/profile": f'export PATH="{TOOLS}/bin:{sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin"\n'
        '[ -n "$BASH" ] && [ -f /etc/bash.bashrc ] && . /etc/bash.bashrc\n',
    }


def forwards(reach: list[int]) -> list[str]:
    """The in-sandbox forwarders' specs: each port of its loopback to its socket."""
    return [f"tcp:127.0.0.1:{port}=unix:{SERVICES}/{port}.sock" for port in reach]


def init_script(
    specs: list[str], before: str = "", python: str = sys.executable, forwarder: str = f"{TOOLS}/forward.py"
) -> str:
    """The sandbox's (or the room container's) first program: `before` (shell lines), then the forwarders of its
    loopback, ready before the command it is given starts (a model server loads its model from MLflow at once)."""
    if not specs:
        return f'#!/bin/sh\n{before}exec "$@"\n'
    return (
        "#!/bin/sh\n" + before + f'"{python}" {forwarder} {" ".join(specs)} >/tmp/.forward.out 2>&1 &\n'
        "i=0\n"
        "while [ $i -lt 100 ] && ! grep -q ready /tmp/.forward.out 2>/dev/null; do sleep 0.05; i=$((i + 1)); done\n"
        'exec "$@"\n'
    )
