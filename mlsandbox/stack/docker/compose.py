"""A compose project of the sandbox: compose.yaml on an engine from docker_engine, and where no registry can be
reached, compose.local-images.yaml over it (images built on a local Debian base made by debootstrap, no Grafana).

Docker Compose v1 (Debian's docker-compose 1.29) and v2 (`docker compose`) both read these files; this module
uses whichever is installed, and waits for health itself because v1 has no `up --wait`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mlsandbox.errors import MlsandboxError, StartError
from mlsandbox.layout import REPO_ROOT, machine_cache
from mlsandbox.say import Say
from mlsandbox.stack.docker.engine import WORKING_DIR_LABEL, Engine, docker_cli
from mlsandbox.stack.processes import wait_until
from model_service.last_metrics import last_metrics_path
from model_service.settings import ServiceSettings

COMPOSE_FILE = REPO_ROOT / "compose.yaml"
LOCAL_IMAGES_FILE = REPO_ROOT / "compose.local-images.yaml"
# The build copies this file in when it exists: networks that re-sign TLS need their CA to reach PyPI.
CA_BUNDLE = REPO_ROOT / "docker" / "ca-bundle.crt"
CA_BUNDLE_VARIABLES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
LOCAL_BASE_IMAGE = "mlsandbox/debian-base:bookworm"
# bookworm's python3 is 3.11, as the native path requires; venv for the image's virtual environment.
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
# Services that run once and exit: done means exited with 0, not healthy.
ONE_SHOT_SERVICES = {"trainer"}
# The model server's run directory in its container (compose.yaml: MLSANDBOX_RUN_DIR, the model-data volume).
SERVER_RUN_DIR = "/data"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def compose_command() -> list[str]:
    """Debian's docker-compose (v1) when installed, else the docker CLI's compose plugin (v2)."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    probe = subprocess.run([docker_cli(), "compose", "version"], capture_output=True, text=True)
    if probe.returncode == 0:
        return [docker_cli(), "compose"]
    raise MlsandboxError("neither docker-compose nor `docker compose` found: install Debian's docker-compose")


def copy_ca_bundle(say: Say) -> None:
    for variable in CA_BUNDLE_VARIABLES:
        source = os.environ.get(variable)
        if source and Path(source).is_file():
            if not CA_BUNDLE.exists() or CA_BUNDLE.read_bytes() != Path(source).read_bytes():
                shutil.copyfile(source, CA_BUNDLE)
                say(f"the build will trust the CA bundle {source} ({variable})")
            return


@dataclass
class ComposeProject:
    engine: Engine
    local_images: bool
    project: str = "mlsandbox"
    # Variables compose.yaml reads (CANDIDATE_DIR, SCENARIO, ports, ...); they win over .env.
    settings: dict[str, str] = field(default_factory=dict)
    say: Say = print

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.engine.env,
            "COMPOSE_PROJECT_NAME": self.project,
            "LOCAL_BASE_IMAGE": LOCAL_BASE_IMAGE,
            **self.settings,
        }

    @property
    def files(self) -> list[Path]:
        return [COMPOSE_FILE, LOCAL_IMAGES_FILE] if self.local_images else [COMPOSE_FILE]

    def compose(
        self, *args: str, capture: bool = False, timeout: float | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        argv = [*compose_command(), "--project-directory", str(REPO_ROOT)]
        for path in self.files:
            argv += ["-f", str(path)]
        result = subprocess.run(
            [*argv, "--project-name", self.project, *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=capture,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            detail = (result.stderr or "")[-3000:] if capture else ""
            raise MlsandboxError(f"`{' '.join(['compose', *args])}` exited with {result.returncode}\n{detail}")
        return result

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([docker_cli(), *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    # --- images --------------------------------------------------------------------------------------------

    def ensure_base_image(self) -> None:
        """The local Debian base: already in the engine, or imported from the cached root file system, or made
        with debootstrap (about 45 s) and cached for next time."""
        if self.docker("image", "inspect", LOCAL_BASE_IMAGE).returncode == 0:
            return
        tarball = machine_cache() / "debian-bookworm-minbase.tar"
        if not tarball.exists():
            self._debootstrap(tarball)
        self.say(f"importing {tarball} as {LOCAL_BASE_IMAGE} ...")
        with open(tarball, "rb") as fh:
            result = subprocess.run(
                [docker_cli(), "import", "-", LOCAL_BASE_IMAGE], stdin=fh, env=self.env, capture_output=True, text=True
            )
        if result.returncode != 0:
            raise MlsandboxError(f"docker import of {tarball} failed: {result.stderr.strip()}")

    def _debootstrap(self, tarball: Path) -> None:
        debootstrap = shutil.which("debootstrap")
        if debootstrap is None:
            raise MlsandboxError("debootstrap not found: install it (`scripts/ensure-system-deps.sh --docker`)")
        if os.geteuid() != 0:
            raise MlsandboxError("making the local base image with debootstrap needs root")
        mirror = os.environ.get("MLSANDBOX_DEBIAN_MIRROR", "http://deb.debian.org/debian")
        tarball.parent.mkdir(parents=True, exist_ok=True)
        self.say(f"making a Debian bookworm base image with debootstrap from {mirror} (about a minute, once) ...")
        with tempfile.TemporaryDirectory(dir=tarball.parent) as tmp:
            root = Path(tmp) / "rootfs"
            result = subprocess.run(
                [debootstrap, "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(root), mirror],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise MlsandboxError(f"debootstrap failed:\n{(result.stdout + result.stderr)[-2000:]}")
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
            os.replace(partial, tarball)

    def build(self) -> None:
        copy_ca_bundle(self.say)
        if self.local_images:
            self.ensure_base_image()
        self.say("building images (the first time installs the pinned Python packages: a few minutes) ...")
        self.compose("build", capture=True)

    # --- running -------------------------------------------------------------------------------------------

    def expected_services(self) -> set[str]:
        """Services `up` starts: those in the resolved files, less those in a profile nobody asked for
        (COMPOSE_PROFILES asks)."""
        resolved = yaml.safe_load(self.compose("config", capture=True).stdout)
        asked = set(filter(None, self.env.get("COMPOSE_PROFILES", "").split(",")))
        return {name for name, s in resolved["services"].items() if not s.get("profiles") or asked & set(s["profiles"])}

    def up(self, without: set[str] = frozenset(), timeout: float = 600) -> float:
        """Start the stack (all but the services `without`) and wait until every service is healthy (one-shot
        services: exited with 0). Returns the seconds from `up` until then."""
        t0 = time.monotonic()
        services = sorted(self.expected_services() - without)
        self.remove_strays()
        try:
            self.compose("up", "--detach", "--no-build", *(services if without else []), capture=True)
        except MlsandboxError as error:
            # compose names the container that failed, not why: the last lines of what failed or exited say it.
            failed = sorted(name for name, state in self.service_states().items() if state in ("failed", "exited"))
            raise MlsandboxError(f"{error}\n{self.logs_tail(failed, 40)}") from None
        self.wait_healthy(timeout - (time.monotonic() - t0), set(services))
        return time.monotonic() - t0

    def remove_strays(self) -> None:
        """Containers of this project that another folder created and left stopped (a checkout since deleted, a
        run killed before `down`; the engine stops them when it starts) are removed: their mounts point into that
        folder, and compose would start the new stack beside them. One still running is another stack's, and this
        one does not start over it."""
        strays = []
        for c in self.containers():
            folder = (c.get("Config", {}).get("Labels") or {}).get(WORKING_DIR_LABEL)
            if not folder or Path(folder) == REPO_ROOT:
                continue
            if c.get("State", {}).get("Running"):
                raise MlsandboxError(
                    f"compose project {self.project!r} is running from {folder}: `mlsandbox down` there first, or "
                    "start this one under another project name"
                )
            strays.append(c["Id"])
        if strays:
            self.say(f"removing {len(strays)} stopped container(s) of project {self.project!r} left by another folder")
            removed = self.docker("rm", "--force", *strays)
            if removed.returncode != 0:
                raise MlsandboxError(f"could not remove stray containers: {removed.stderr.strip()}")

    def containers(self) -> list[dict]:
        ids = self.docker("ps", "--all", "--quiet", "--filter", f"label={PROJECT_LABEL}={self.project}").stdout.split()
        if not ids:
            return []
        result = self.docker("inspect", *ids)
        if result.returncode != 0:  # a container went away between ps and inspect: ask again
            return self.containers()
        return json.loads(result.stdout)

    def service_states(self) -> dict[str, str]:
        """Each service's state: healthy, starting, unhealthy, running (no health check), done or failed (one
        shot), or exited."""
        states = {}
        for container in self.containers():
            service = container["Config"]["Labels"].get(SERVICE_LABEL, "?")
            state = container["State"]
            if service in ONE_SHOT_SERVICES and state["Status"] == "exited":
                states[service] = "done" if state["ExitCode"] == 0 else "failed"
            elif state["Status"] != "running":
                states[service] = "exited"
            else:
                states[service] = (state.get("Health") or {}).get("Status", "running")
        return states

    def wait_healthy(self, timeout: float, expected: set[str] | None = None) -> None:
        expected = self.expected_services() if expected is None else expected
        states: dict[str, str] = {}

        def ready() -> bool:
            states.update(self.service_states())
            return set(states) >= expected and all(states[s] in {"healthy", "running", "done"} for s in expected)

        def broken() -> str | None:
            failed = sorted(s for s, st in states.items() if s in expected and st in {"failed", "exited", "unhealthy"})
            return f"{', '.join(failed)} did not come up ({states});\n{self.logs_tail(failed)}" if failed else None

        try:
            wait_until(ready, timeout, "not healthy", broken, interval=1.0)
        except StartError as exc:
            waiting = sorted(s for s in expected if states.get(s) not in {"healthy", "running", "done"})
            detail = (
                str(exc)
                if "did not come up" in str(exc)
                else f"not healthy after {timeout:.0f}s: {', '.join(waiting)} ({states})\n{self.logs_tail(waiting)}"
            )
            raise MlsandboxError(detail) from None

    def logs_tail(self, services: list[str], lines: int = 20) -> str:
        result = self.compose("logs", "--no-color", "--tail", str(lines), *services, capture=True, check=False)
        return result.stdout[-4000:]

    def published_url(self, service: str, port: int) -> str:
        """The host address of a service's port, e.g. http://127.0.0.1:9090."""
        result = self.compose("port", service, str(port), capture=True, check=False)
        address = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        if result.returncode != 0 or not address:
            raise MlsandboxError(f"{service} publishes no port {port}: is the stack up?")
        return f"http://{address}"

    def collect_session(self, dest: Path) -> Path:
        """Copy what the grader reads out of the volumes into `dest`: the scenario's timeline and ledger (from the
        load service), the prediction log (a consistent copy taken inside the model server) and the last /metrics body
        it served."""
        dest.mkdir(parents=True, exist_ok=True)
        self._copy_truth(dest / "scenario")
        # The prediction log and the last /metrics body, where the server keeps them in its data volume.
        server = ServiceSettings(run_dir=Path(SERVER_RUN_DIR))
        backup = (
            f"import sqlite3; s = sqlite3.connect({str(server.prediction_log_path)!r}); "
            "d = sqlite3.connect('/tmp/predictions.sqlite'); s.backup(d); d.close()"
        )
        kept = ServiceSettings(run_dir=dest)
        kept.server_dir.mkdir(parents=True, exist_ok=True)
        self.compose("exec", "-T", "model-server", "python", "-c", backup, capture=True)
        self.copy_out("model-server", "/tmp/predictions.sqlite", kept.prediction_log_path)
        try:  # the /metrics body the server last served (none when it never served one)
            self.copy_out("model-server", str(last_metrics_path(Path(SERVER_RUN_DIR))), last_metrics_path(dest))
        except MlsandboxError:
            pass
        return dest

    def _copy_truth(self, dest: Path) -> None:
        """The load service's scenario folder, whole. Once in a clean-clone run the copy left no timeline for the
        grade that followed, while the same copy a minute before had one: copied again (a sandbox that never
        played has none, and the grader says so)."""
        for attempt in range(3):
            shutil.rmtree(dest, ignore_errors=True)
            self.copy_out("load", "/truth/scenario", dest)
            if (dest / "timeline.json").exists():
                return
            time.sleep(1 + attempt)

    def copy_out(self, service: str, source: str, dest: Path) -> None:
        """`docker cp` out of the service's container, running or stopped; one that was never started (the load
        service of a sandbox started without load) is created for the copy and removed again: its volumes are
        what is wanted."""
        created = False
        container = self._container(service)
        if not container:
            self.compose("up", "--no-start", "--no-deps", service, capture=True)
            container, created = self._container(service), True
        try:
            if not container:
                raise MlsandboxError(f"no {service} container: is the stack up?")
            result = self.docker("cp", f"{container}:{source}", str(dest))
            if result.returncode != 0:
                raise MlsandboxError(f"cannot copy {source} out of {service}: {result.stderr.strip()}")
        finally:
            if created:
                self.compose("rm", "--force", service, capture=True, check=False)

    def _container(self, service: str) -> str | None:
        ids = self.compose("ps", "--all", "--quiet", service, capture=True, check=False).stdout.split()
        return ids[0] if ids else None

    def down(self, volumes: bool) -> None:
        self.compose("down", "--remove-orphans", *(["--volumes"] if volumes else []), capture=True)

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes of this project that still exist."""
        label = f"label={PROJECT_LABEL}={self.project}"
        return {
            "containers": self.docker("ps", "--all", "--quiet", "--filter", label).stdout.split(),
            "networks": self.docker("network", "ls", "--quiet", "--filter", label).stdout.split(),
            "volumes": self.docker("volume", "ls", "--quiet", "--filter", label).stdout.split(),
        }
