"""A cluster, through the official `kubernetes` client: apply objects (server-side apply, as `kubectl apply
--server-side`), wait until a session's Deployments are ready, run a command in a pod (exec) with bytes in and
out, reach a Service through the API server's service proxy, delete a namespace.

The kubeconfig's context is the cluster (the current one by default); inside a pod without a kubeconfig, its
service account. Every failure is one MlsandboxError naming what was asked.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlsandbox.errors import MlsandboxError
from mlsandbox.say import Say

FIELD_MANAGER = "mlsandbox"
# Bytes sent to a command's stdin per websocket frame.
STDIN_CHUNK = 256 * 1024
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def _client():
    """The client's modules, imported when a cluster is used (they take a while to import)."""
    import kubernetes

    return kubernetes


def configuration(context: str | None):
    """The client's configuration for `context` (None: the kubeconfig's current one, or inside a pod without a
    kubeconfig its service account)."""
    k8s = _client()
    cfg = k8s.client.Configuration()
    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    try:
        if context is None and IN_CLUSTER_TOKEN.exists() and not any(Path(p).exists() for p in kubeconfig.split(":")):
            k8s.config.load_incluster_config(client_configuration=cfg)
        else:
            k8s.config.load_kube_config(context=context, client_configuration=cfg, persist_config=False)
    except (k8s.config.ConfigException, OSError) as exc:
        where = f"context {context!r}" if context else "the current context"
        raise MlsandboxError(f"no cluster for {where} in {kubeconfig}: {exc}") from None
    return cfg


@dataclass(frozen=True)
class ExecResult:
    returncode: int
    stdout: bytes
    stderr: bytes

    def text(self) -> str:
        return self.stdout.decode(errors="replace")


class Cluster:
    """One cluster (a kubeconfig context)."""

    def __init__(self, context: str | None = None):
        k8s = _client()
        self.context = context
        self.configuration = configuration(context)
        self.api = k8s.client.ApiClient(self.configuration)
        self.core = k8s.client.CoreV1Api(self.api)
        self.apps = k8s.client.AppsV1Api(self.api)
        self.batch = k8s.client.BatchV1Api(self.api)
        self._dynamic = None

    def _errors(self, what: str):
        """`with self._errors("doing X"):` the client's errors as one MlsandboxError."""
        return _Translated(what)

    # --- objects ------------------------------------------------------------------------------------------------

    @property
    def dynamic(self):
        if self._dynamic is None:
            with self._errors("reading the cluster's API"):
                self._dynamic = _client().dynamic.DynamicClient(self.api)
        return self._dynamic

    def apply(self, obj: dict) -> None:
        """Create or update `obj` (server-side apply: what it names is ours, the rest is left as it is)."""
        what = f"applying {obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
        with self._errors(what):
            resource = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            resource.server_side_apply(
                body=obj,
                namespace=obj["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        readers: dict[str, Callable] = {
            "Namespace": lambda: self.core.read_namespace(name),
            "Deployment": lambda: self.apps.read_namespaced_deployment(name, namespace),
            "Job": lambda: self.batch.read_namespaced_job(name, namespace),
            "Pod": lambda: self.core.read_namespaced_pod(name, namespace),
        }
        try:
            readers[kind]()
            return True
        except _client().client.ApiException as exc:
            if exc.status == 404:
                return False
            raise _translate(f"reading {kind} {name}", exc) from None

    def delete_namespace(self, namespace: str, timeout: float = 300.0, say: Say = print) -> None:
        """Delete the namespace and everything in it (its volumes too), and wait until it is gone."""
        k8s = _client()
        try:
            self.core.delete_namespace(namespace, propagation_policy="Foreground")
        except k8s.client.ApiException as exc:
            if exc.status == 404:
                return
            raise _translate(f"deleting namespace {namespace}", exc) from None
        say(f"deleting namespace {namespace} (its pods stop, its volumes go) ...")
        wait_for(lambda: not self.exists("Namespace", namespace), timeout, f"namespace {namespace} still exists")

    def delete(self, kind: str, name: str, namespace: str) -> None:
        """Delete a Job (with its pods) or a Pod; nothing when it does not exist."""
        k8s = _client()
        try:
            if kind == "Job":
                self.batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground")
            else:
                self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=30)
        except k8s.client.ApiException as exc:
            if exc.status != 404:
                raise _translate(f"deleting {kind} {namespace}/{name}", exc) from None
            return
        wait_for(lambda: not self.exists(kind, name, namespace), 120, f"{kind} {namespace}/{name} still exists")

    # --- what runs --------------------------------------------------------------------------------------------

    def deployments(self, namespace: str) -> dict[str, tuple[int, int]]:
        """Each Deployment's (ready replicas of its current template, wanted replicas): a pod of the template before
        a restart does not count, nor one still stopping."""
        with self._errors(f"reading the Deployments of {namespace}"):
            items = self.apps.list_namespaced_deployment(namespace).items
        return {d.metadata.name: (_ready(d), d.spec.replicas or 0) for d in items}

    def job_state(self, namespace: str, name: str) -> str | None:
        """A Job's state: running, done or failed; None when there is no such Job."""
        k8s = _client()
        try:
            job = self.batch.read_namespaced_job(name, namespace)
        except k8s.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise _translate(f"reading Job {namespace}/{name}", exc) from None
        status = job.status
        if status.succeeded:
            return "done"
        if status.failed:
            return "failed"
        return "running"

    def job_uid(self, namespace: str, name: str) -> str | None:
        try:
            return self.batch.read_namespaced_job(name, namespace).metadata.uid
        except _client().client.ApiException:
            return None

    def running_pod(self, namespace: str, component: str) -> str | None:
        """The name of a pod of `component` (its app.kubernetes.io/name) whose containers all run, if any."""
        with self._errors(f"listing the pods of {namespace}"):
            pods = self.core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/name={component}").items
        for pod in pods:
            statuses = pod.status.container_statuses or []
            if pod.status.phase == "Running" and statuses and all(s.state.running for s in statuses):
                if pod.metadata.deletion_timestamp is None:
                    return pod.metadata.name
        return None

    def pod_phase(self, namespace: str, name: str) -> str | None:
        try:
            return self.core.read_namespaced_pod(name, namespace).status.phase
        except _client().client.ApiException:
            return None

    def wait_ready(
        self, namespace: str, names: list[str], timeout: float, say: Say = print, interval: float = 2.0
    ) -> float:
        """Until each named Deployment has all its replicas ready; the seconds it took."""
        t0 = time.monotonic()
        waiting: list[str] = list(names)

        def ready() -> bool:
            states = self.deployments(namespace)
            waiting[:] = [n for n in names if states.get(n, (0, 1))[0] < max(states.get(n, (0, 1))[1], 1)]
            return not waiting

        wait_for(
            ready, timeout, lambda: f"not ready after {timeout:.0f} s in {namespace}: {', '.join(waiting)}", interval
        )
        return time.monotonic() - t0

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        with self._errors(f"scaling {namespace}/{deployment} to {replicas}"):
            self.apps.patch_namespaced_deployment_scale(deployment, namespace, {"spec": {"replicas": replicas}})

    def restart(self, namespace: str, deployment: str) -> None:
        """A new pod for the Deployment (as `kubectl rollout restart`: a changed annotation on its template)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
        with self._errors(f"restarting {namespace}/{deployment}"):
            self.apps.patch_namespaced_deployment(deployment, namespace, patch)

    def wait_gone(self, namespace: str, component: str, timeout: float = 180.0) -> None:
        """Until no pod of `component` is left (after scaling it to 0)."""

        def gone() -> bool:
            with self._errors(f"listing the pods of {namespace}"):
                pods = self.core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/name={component}")
            return not pods.items

        wait_for(gone, timeout, f"pods of {component} still in {namespace}")

    def wait_pod_running(self, namespace: str, name: str, timeout: float = 180.0) -> None:
        def running() -> bool:
            phase = self.pod_phase(namespace, name)
            if phase in ("Failed", "Succeeded"):
                raise MlsandboxError(f"pod {namespace}/{name} ended ({phase}) before it was used")
            return phase == "Running"

        wait_for(running, timeout, f"pod {namespace}/{name} is not running")

    # --- in a pod ---------------------------------------------------------------------------------------------

    def exec(
        self,
        namespace: str,
        pod: str,
        command: list[str],
        container: str | None = None,
        stdin: bytes | None = None,
        timeout: float = 300.0,
    ) -> ExecResult:
        """Run `command` in a pod's container (no terminal), with `stdin` given; its exit status and output."""
        k8s = _client()
        # stream() swaps the client's request method while it runs: an ApiClient of its own, so that the
        # service-proxy relays (other threads) never use a swapped one.
        core = k8s.client.CoreV1Api(k8s.client.ApiClient(self.configuration))
        what = f"running {command[0]} in {namespace}/{pod}"
        try:
            ws = k8s.stream.stream(
                core.connect_get_namespaced_pod_exec,
                pod,
                namespace,
                command=command,
                container=container,
                stdin=stdin is not None,
                stdout=True,
                stderr=True,
                tty=False,
                _preload_content=False,
                binary=True,
            )
        except k8s.client.ApiException as exc:
            raise _translate(what, exc) from None
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            if stdin:
                for start in range(0, len(stdin), STDIN_CHUNK):
                    ws.write_stdin(stdin[start : start + STDIN_CHUNK])
            while ws.is_open():
                ws.update(timeout=1)
                out += ws.read_stdout(timeout=0) if ws.peek_stdout() else b""
                err += ws.read_stderr(timeout=0) if ws.peek_stderr() else b""
                if time.monotonic() > deadline:
                    raise MlsandboxError(f"{what}: no end after {timeout:.0f} s")
            out += ws.read_stdout(timeout=0) if ws.peek_stdout() else b""
            err += ws.read_stderr(timeout=0) if ws.peek_stderr() else b""
            code = ws.returncode
        finally:
            ws.close()
        return ExecResult(code if code is not None else 1, bytes(out), bytes(err))

    def check_exec(self, namespace: str, pod: str, command: list[str], **kwargs) -> bytes:
        """`exec`, refused with the command's stderr unless it exits with 0; its stdout."""
        result = self.exec(namespace, pod, command, **kwargs)
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace").strip()[-500:]
            raise MlsandboxError(
                f"`{' '.join(command)[:200]}` in {namespace}/{pod} exited {result.returncode}: {detail}"
            )
        return result.stdout

    # --- through the API server ---------------------------------------------------------------------------------

    def proxy(
        self, namespace: str, service: str, port: int, path: str, method: str = "GET", query=None, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        """An HTTP request to a Service through the API server's service proxy: status, headers, body."""
        k8s = _client()
        resource = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}"
        try:
            response = self.api.call_api(
                resource,
                method,
                query_params=list(query or []),
                header_params={"Accept": "*/*", **({"Content-Type": "application/octet-stream"} if body else {})},
                body=body or None,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=60,
            )
        except k8s.client.ApiException as exc:
            return (
                exc.status or 502,
                dict(exc.headers or {}),
                (exc.body or b"") if isinstance(exc.body, bytes) else ((exc.body or "").encode()),
            )
        except Exception as exc:  # the connection to the API server itself
            return 502, {"Content-Type": "text/plain"}, f"API server unreachable: {exc}".encode()
        return response.status, dict(response.headers), response.data


def _ready(deployment) -> int:
    status = deployment.status
    if (status.observed_generation or 0) < (deployment.metadata.generation or 0):
        return 0  # the controller has not seen the latest change yet
    if (status.replicas or 0) > (deployment.spec.replicas or 0):
        return 0  # an old pod still stopping
    return min(status.ready_replicas or 0, status.updated_replicas or 0)


class _Translated:
    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, MlsandboxError):
            return False
        k8s = _client()
        if isinstance(exc, k8s.client.ApiException):
            raise _translate(self.what, exc) from None
        if isinstance(exc, (OSError, k8s.config.ConfigException)) or type(exc).__module__.startswith("urllib3"):
            raise MlsandboxError(f"{self.what}: the cluster cannot be reached ({exc})") from None
        return False


def _translate(what: str, exc) -> MlsandboxError:
    """An ApiException as one line: the status and the API server's message."""
    import json

    message = exc.reason or ""
    try:
        message = json.loads(exc.body).get("message") or message
    except (TypeError, ValueError):
        pass
    hint = " (your kubeconfig's user may not do this: see the README's RBAC)" if exc.status == 403 else ""
    return MlsandboxError(f"{what}: {exc.status} {message}{hint}")


def wait_for(
    condition: Callable[[], bool], timeout: float, message: str | Callable[[], str], interval: float = 2.0
) -> None:
    """Until `condition()` holds; MlsandboxError(message) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise MlsandboxError(message() if callable(message) else message)
        time.sleep(interval)
