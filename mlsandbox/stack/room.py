"""A session's candidate's room, natively: JupyterLab on their workspace (file browser, editor, terminals) behind
one link with a token of its own, proxying their session's services on the room's one address; and their model
server beside it. Each runs under its supervisor (services/sandboxed.py), started as a component like any other,
in a bubblewrap sandbox (bubblewrap.py):

- the room sees the workspace read-write at /workspace, the Python environment read-only, a private /tmp; its
  loopback reaches the session's model server, Prometheus and Alertmanager, and the room's own services (the live
  dashboards, `reload-rules`) on a unix socket;
- the model server sees the workspace read-only, the package that serves it (model_service/), its own data folder
  (prediction log, model cache) and the fault switch read-only; its loopback reaches MLflow (to fetch the model).

Neither sees the repository, the run directory's truth, or another session. A trusted candidate's room (where
bubblewrap cannot run) is the same JupyterLab run as it is, on the host.
"""

from __future__ import annotations

import os
import pprint
import sys
from dataclasses import dataclass
from pathlib import Path

from mlsandbox.config import StackConfig
from mlsandbox.layout import REPO_ROOT
from mlsandbox.services import sandboxed
from mlsandbox.services.sandboxed import BwrapSpec, Door, RoomApp
from mlsandbox.stack import bubblewrap as bw
from mlsandbox.stack.processes import ComponentSpec
from model_service.settings import ServiceSettings

# The room's own services (live dashboards, reload-rules), on a unix socket named after this number.
ROOM_APP = 7000
JUPYTER_SOCKET = "jupyter.sock"
# Before JupyterLab starts: its home; Markdown opened rendered (the brief first); no question about fetching
# Jupyter's news (the room has no internet).
LAB_SETTINGS = """mkdir -p "$HOME" "$JUPYTERLAB_SETTINGS_DIR/@jupyterlab/apputils-extension" \\
  "$JUPYTERLAB_SETTINGS_DIR/@jupyterlab/docmanager-extension"
echo '{"fetchNews": "false"}' > "$JUPYTERLAB_SETTINGS_DIR/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
echo '{"defaultViewers": {"markdown": "Markdown Preview"}}' \\
  > "$JUPYTERLAB_SETTINGS_DIR/@jupyterlab/docmanager-extension/plugin.jupyterlab-settings"
"""
SERVER_SOCKET = "server.sock"
# Where the room shows the model server's log.
SERVER_LOG = "/var/log/model-server.log"


@dataclass(frozen=True)
class RoomPaths:
    """Where the room's things are as JupyterLab sees them: inside its sandbox, or on the host (trusted)."""

    workspace: str
    home: str
    tools: str  # the init script, JupyterLab's configuration, the token, bin/reload-rules
    door: str  # the folder of JupyterLab's socket
    services: str  # the folder of the room app's socket

    @property
    def app_socket(self) -> str:
        return f"{self.services}/{ROOM_APP}.sock"


def _write_spec(cfg: StackConfig, spec: BwrapSpec, port: int, health: str) -> ComponentSpec:
    """The supervisor as a component, on its spec (written into the run directory, which no sandbox sees)."""
    path = cfg.layout.root / "sandboxes" / f"{spec.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(spec.model_dump_json(indent=2))
    argv = [sys.executable, "-m", "mlsandbox.services.sandboxed", str(path)]
    url = cfg.url(port)
    return ComponentSpec(spec.name, argv, port, f"{url}{health}", url, {"PYTHONUNBUFFERED": "1"}, cfg.run_dir)


# --- the room -------------------------------------------------------------------------------------------------


def server_log(cfg: StackConfig) -> str:
    """Where the candidate reads their server's log from their room."""
    return SERVER_LOG if cfg.room.sandboxed else str(cfg.layout.log("model-server"))


def room_link(cfg: StackConfig, host: str | None = None) -> str:
    """The candidate's link: their room's JupyterLab with its token (`host`: how the candidate reaches the door)."""
    listen = cfg.room.listen
    host = host or ("127.0.0.1" if listen in ("127.0.0.1", "0.0.0.0", "::") else listen)
    return f"http://{host}:{cfg.ports.room}/lab/tree/CANDIDATE.md?token={cfg.room.token}"


def proxied(cfg: StackConfig) -> dict[str, dict]:
    """What the room's JupyterLab proxies at /NAME/: the port on the room's loopback, and whether the path is
    kept (Prometheus and Alertmanager answer under /prometheus and /alertmanager; the others at their root)."""
    ports = cfg.ports
    return {
        "model-server": {"port": ports.model_server, "keep_path": False, "title": "Model server API", "open": "docs"},
        "prometheus": {"port": ports.prometheus, "keep_path": True, "title": "Prometheus", "open": "classic/graph"},
        "alertmanager": {"port": ports.alertmanager, "keep_path": True, "title": "Alertmanager", "open": ""},
    }


def launcher(name: str, title: str, open_: str, **how) -> dict:
    """A server JupyterLab proxies at /NAME/ (`how`: its port and whether the path is kept, or its unix socket),
    with a launcher entry that opens /NAME/OPEN_."""
    return {**how, "launcher_entry": {"enabled": True, "title": title, "path_info": f"{name}/{open_}"}}


def jupyter_config(listen: str, workspace: str, token_file: str, servers: dict, allow_root: bool = False) -> str:
    """JupyterLab's configuration: where it listens (`listen`: configuration lines), the workspace, the token,
    what it proxies."""
    return f"""# The candidate's room: JupyterLab on the workspace, with the room's token.
from pathlib import Path

c = get_config()  # noqa: F821
{listen}
c.ServerApp.open_browser = False
c.ServerApp.allow_root = {allow_root}
c.ServerApp.root_dir = {workspace!r}
# A remote candidate reaches the door under another host name; the token guards the room.
c.ServerApp.allow_remote_access = True
c.IdentityProvider.token = Path({token_file!r}).read_text().strip()
c.ContentsManager.allow_hidden = False
c.FileContentsManager.delete_to_trash = False
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
# jupyter-lsp would run `npm prefix -g` at start and write npm's logs into the workspace; no language server here.
c.ServerApp.jpserver_extensions = {{"jupyter_lsp": False}}
c.ServerProxy.servers = {pprint.pformat(servers, sort_dicts=False)}
"""


def native_servers(cfg: StackConfig, paths: RoomPaths) -> dict:
    """What a native room proxies: the session's services on its loopback, its own app on a socket."""
    servers = {
        name: launcher(name, p["title"], p["open"], port=p["port"], absolute_url=p["keep_path"])
        for name, p in proxied(cfg).items()
    }
    servers["dashboards"] = launcher("dashboards", "Your dashboards", "", unix_socket=paths.app_socket)
    return servers


def reload_rules_script(paths: RoomPaths) -> str:
    """`reload-rules` in the room's terminal: asks the room's app (on its socket) to load the candidate's rules."""
    return f"""#!{sys.executable}
# reload-rules: check the rule files of your alerts/ folder and load them into your session's Prometheus.
import http.client, socket, sys


class Room(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(120)
        self.sock.connect({paths.app_socket!r})


room = Room("room")
room.request("POST", "/reload-rules")
answer = room.getresponse()
print(answer.read().decode(), end="", file=sys.stdout if answer.status == 200 else sys.stderr)
sys.exit(0 if answer.status == 200 else 1)
"""


def room(cfg: StackConfig, workspace: Path) -> ComponentSpec:
    """The room's component: its supervisor and JupyterLab, in its sandbox (or as it is, not `sandboxed`)."""
    return _write_spec(cfg, room_spec(cfg, workspace), cfg.ports.room, "/login")


def shell(cfg: StackConfig, workspace: Path, command: list[str], room_running: bool) -> int:
    """`command` (default: a login shell) in a sandbox like the room, on this terminal; its exit status. The
    room's sockets lead to the session's services while the room runs; else this process serves them."""
    paths, _, _ = room_paths(cfg, workspace)
    command = ["/bin/sh", f"{paths.tools}/init.sh", *(command or ["/bin/bash", "-l"])]
    return sandboxed.run_here(room_spec(cfg, workspace), command, serve=not room_running)


def room_paths(cfg: StackConfig, workspace: Path) -> tuple[RoomPaths, Path, Path]:
    """The room's paths as JupyterLab sees them, and on the host its sockets' folder and its door's folder."""
    sockets = bw.socket_folder(cfg.run_dir, "room")
    if cfg.room.sandboxed:
        # Home is private (the room's /tmp): a shell's history or a tool's dot files stay out of the workspace.
        return RoomPaths(bw.WORKSPACE, "/tmp/home", bw.TOOLS, bw.DOOR, bw.SERVICES), sockets, sockets / "door"
    tools = cfg.layout.root / "sandboxes" / "workspace-tools"
    paths = RoomPaths(str(workspace), str(tools / "home"), str(tools), str(tools / "door"), str(sockets))
    return paths, sockets, tools / "door"


def room_spec(cfg: StackConfig, workspace: Path) -> BwrapSpec:
    """The room as a sandbox spec (its supervisor's, or `session shell`'s)."""
    settings = cfg.room
    paths, sockets, host_door = room_paths(cfg, workspace)
    reach = [p["port"] for p in proxied(cfg).values()]
    files = {
        f"{paths.tools}/token": settings.token,
        f"{paths.tools}/jupyter_config.py": jupyter_config(
            f'c.ServerApp.sock = {paths.door + "/" + JUPYTER_SOCKET!r}\nc.ServerApp.sock_mode = "0600"',
            paths.workspace,
            f"{paths.tools}/token",
            native_servers(cfg, paths),
        ),
        f"{paths.tools}/bin/reload-rules": reload_rules_script(paths),
    }
    env = {
        "TERM": "xterm-256color",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter/runtime" if settings.sandboxed else f"{paths.home}/runtime",
        "JUPYTER_CONFIG_DIR": f"{paths.home}/.jupyter",
        "JUPYTER_DATA_DIR": f"{paths.home}/.jupyter/data",
        "IPYTHONDIR": f"{paths.home}/.ipython",
        "JUPYTERLAB_SETTINGS_DIR": f"{paths.home}/.jupyter/lab/settings",
        "JUPYTERLAB_WORKSPACES_DIR": f"{paths.home}/.jupyter/lab/workspaces",
    }
    command = [
        "/bin/sh",
        f"{paths.tools}/init.sh",
        "jupyter",
        "lab",
        f"--config={paths.tools}/jupyter_config.py",
    ]
    if settings.sandboxed:
        server_log = cfg.layout.log("model-server-sandbox")
        server_log.parent.mkdir(parents=True, exist_ok=True)
        server_log.touch()
        files.update(bw.identity(paths.home))
        files[f"{bw.TOOLS}/init.sh"] = bw.init_script(bw.forwards(reach), LAB_SETTINGS)
        options = [
            *bw.base_options("room"),
            "--bind",
            str(workspace),
            bw.WORKSPACE,
            "--ro-bind",
            str(sockets),
            bw.SERVICES,
            "--bind",
            str(host_door),
            bw.DOOR,
            # The candidate's server's output (their logging included), read-only.
            "--ro-bind",
            str(server_log),
            SERVER_LOG,
            "--chdir",
            bw.WORKSPACE,
            *bw.environment(paths.home, env),
        ]
    else:
        files[f"{paths.tools}/init.sh"] = bw.init_script([], LAB_SETTINGS)
        options = []
    spec = BwrapSpec(
        name="workspace",
        sandboxed=settings.sandboxed,
        options=options,
        files=files,
        command=command,
        reach=reach if settings.sandboxed else [],
        sockets=sockets,
        door=Door(host=settings.listen, port=cfg.ports.room, socket=host_door / JUPYTER_SOCKET),
        app=RoomApp(
            socket=sockets / f"{ROOM_APP}.sock",
            workspace=workspace,
            prometheus=cfg.prometheus_url,
            reload=[sys.executable, "-m", "mlsandbox.cli", "reload", "--session", settings.session],
        ),
        env={} if settings.sandboxed else {**bw.plain_environment(paths.home), **env},
        cwd=None if settings.sandboxed else workspace,
        log=cfg.layout.log("workspace-sandbox"),
    )
    return spec


# --- the model server -----------------------------------------------------------------------------------------


def model_server(cfg: StackConfig, candidate_dir: Path) -> ComponentSpec:
    """The candidate's model server in its sandbox: uvicorn on a unix socket, reloading on their edits; its
    supervisor's door is the server's port on the host (Prometheus, the load generator and the room reach it)."""
    run = cfg.run_dir.resolve()
    service = ServiceSettings(run_dir=run)
    service.server_dir.mkdir(parents=True, exist_ok=True)
    service.faults_path.parent.mkdir(parents=True, exist_ok=True)
    sockets = bw.socket_folder(cfg.run_dir, "server")
    reach = [cfg.ports.mlflow]
    package = REPO_ROOT / "model_service"
    options = [
        *bw.base_options("model-server"),
        "--ro-bind",
        str(candidate_dir.resolve()),
        bw.WORKSPACE,
        # The package that serves the candidate's app, at its own path (the environment's editable install names
        # it there); nothing else of the repository.
        "--ro-bind",
        str(package),
        str(package),
        # Of the run directory only the server's own folder and the fault switch (the truth is beside them).
        "--size",
        "1048576",
        "--tmpfs",
        str(run),
        "--bind",
        str(service.server_dir),
        str(service.server_dir),
        "--ro-bind",
        str(service.faults_path.parent),
        str(service.faults_path.parent),
        "--ro-bind",
        str(sockets),
        bw.SERVICES,
        "--bind",
        str(sockets / "door"),
        bw.DOOR,
        "--chdir",
        bw.WORKSPACE,
        *bw.environment(
            "/tmp",
            {
                "MLSANDBOX_RUN_DIR": str(run),
                "MLFLOW_TRACKING_URI": cfg.mlflow_url,
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "PYTHONUNBUFFERED": "1",
            },
        ),
    ]
    command = [
        "/bin/sh",
        f"{bw.TOOLS}/init.sh",
        sys.executable,
        "-m",
        "uvicorn",
        "model_service.asgi:app",
        "--app-dir",
        bw.WORKSPACE,
        "--uds",
        f"{bw.DOOR}/{SERVER_SOCKET}",
        # The candidate's edits to the app take effect on save (as components.model_server).
        "--reload",
        "--reload-dir",
        f"{bw.WORKSPACE}/app",
    ]
    spec = BwrapSpec(
        name="model-server",
        options=options,
        files={**bw.identity("/tmp"), f"{bw.TOOLS}/init.sh": bw.init_script(bw.forwards(reach))},
        command=command,
        reach=reach,
        sockets=sockets,
        door=Door(host=cfg.host, port=cfg.ports.model_server, socket=sockets / "door" / SERVER_SOCKET),
        log=cfg.layout.log("model-server-sandbox"),
    )
    return _write_spec(cfg, spec, cfg.ports.model_server, "/health")


# --- the room as a container (compose, a cluster) ------------------------------------------------------------
# The workspace container (compose.yaml, profile `room`; a session's `workspace` pod on a cluster) mounts the
# workspace and these files at /opt/room; inside, the session's services are reached by their service names,
# forwarded to the container's own loopback so that JupyterLab and the brief name them the same way natively, under
# compose and on a cluster.
COMPOSE_SERVICES = {8000: "model-server", 9090: "prometheus", 9093: "alertmanager", 3000: "grafana"}
COMPOSE_ROOM = "/opt/room"
COMPOSE_PYTHON = "/opt/venv/bin/python"
# On a cluster the token is a Secret of its own, mounted apart from the room's files (a ConfigMap).
CLUSTER_TOKEN = "/opt/room-token/token"
# ConfigMap files are not executable (and podman's `kube play` ignores their modes): the room's first program
# copies `reload-rules` into a folder of its PATH in its private /tmp.
CLUSTER_BIN = "/tmp/home/bin"
INSTALL_RELOAD = f"""mkdir -p {CLUSTER_BIN} && cp {COMPOSE_ROOM}/reload-rules {CLUSTER_BIN}/reload-rules \\
  && chmod 755 {CLUSTER_BIN}/reload-rules
"""


def container_room_files(cfg: StackConfig, allow_root: bool = False, cluster: bool = False) -> dict[str, str]:
    """The workspace container's own files by name: JupyterLab's configuration, the forwarder and the first
    program, and `reload-rules` (`bin/reload-rules` under compose, `reload-rules` installed by the first program
    on a cluster, where Grafana does not run and the token is mounted apart)."""
    services = {p: s for p, s in COMPOSE_SERVICES.items() if not (cluster and s == "grafana")}
    titles = {
        "model-server": ("Model server API", "docs"),
        "prometheus": ("Prometheus", "classic/graph"),
        "alertmanager": ("Alertmanager", ""),
        "grafana": ("Grafana", ""),
    }
    servers = {
        name: launcher(name, *titles[name], port=port, absolute_url=name != "model-server")
        for port, name in services.items()
    }
    # Terminals as the container's environment has them: a login shell would take Debian's /etc/profile's PATH
    # (no Python environment, no reload-rules).
    config = jupyter_config(
        'c.ServerApp.ip = "0.0.0.0"\nc.ServerApp.port = 8888\n'
        'c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash"]}',
        "/workspace",
        CLUSTER_TOKEN if cluster else f"{COMPOSE_ROOM}/token",
        servers,
        allow_root,
    )
    specs = [f"tcp:127.0.0.1:{port}=tcp:{service}:{port}" for port, service in services.items()]
    before = LAB_SETTINGS + (INSTALL_RELOAD if cluster else "")
    init = bw.init_script(specs, before, python=COMPOSE_PYTHON, forwarder=f"{COMPOSE_ROOM}/forward.py")
    reload = f"""#!{COMPOSE_PYTHON}
# reload-rules: load the rule files of your alerts/ folder into your session's Prometheus (it refuses, and keeps
# the last ones, when a file is broken: the answer says why).
import sys, urllib.error, urllib.request

request = urllib.request.Request("http://127.0.0.1:9090{cfg.prometheus_path}/-/reload", method="POST")
try:
    urllib.request.urlopen(request, timeout=60)
    print("rules loaded")
except urllib.error.HTTPError as error:
    print("rules not loaded:", error.read().decode().strip(), file=sys.stderr)
    sys.exit(1)
"""
    return {
        "jupyter_config.py": config,
        "init.sh": init,
        "reload-rules" if cluster else "bin/reload-rules": reload,
        "forward.py": bw.FORWARDER.read_text(),
    }


def compose_room_files(cfg: StackConfig, folder: Path, owner: int) -> None:
    """The workspace container's own files, written into `folder` (its ROOM_DIR), with its token."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"token": cfg.room.token, **container_room_files(cfg, allow_root=owner == 0)}
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755 if name.startswith("bin/") else 0o644 if name != "token" else 0o600)
        if os.geteuid() == 0:  # the container runs as the workspace's owner, who must read its token
            os.chown(path, owner, owner)
