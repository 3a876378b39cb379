"""The objects a session applies on a cluster, and the machine's part, as plain dicts: the kustomize bases of
deploy/kubernetes read as `kubectl kustomize` builds them (the subset of kustomize they use: resources, labels,
the namespace, generated ConfigMaps, images; a test compares the two), with the session's own values laid over:
its namespace, the workspace's first contents, the room's token, the scenario to play, the images and the
cluster's settings (settings.py).

Everything here is pure: the same inputs give the same objects, and nothing reaches a cluster (backend.py applies
them). `for_podman` turns a session's objects into what Debian's `podman kube play` runs (the tests play one).
"""

from __future__ import annotations

import copy
import gzip
import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlsandbox.config import KubeSettings, RoomSettings, StackConfig, namespace_of
from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import REPO_ROOT
from mlsandbox.stack import room
from mlsandbox.stack.native_config import ALERTMANAGER_SOURCE, cluster_prometheus
from mlsandbox.stack.state import ScenarioPlay

KUBE_DIR = REPO_ROOT / "deploy" / "kubernetes"
SESSION_BASE = KUBE_DIR / "session"
MACHINE_BASE = KUBE_DIR / "machine"
# Where Prometheus mounts the workspace (read-only): the candidate's rule files are in its alerts/.
WORKSPACE_IN_PROMETHEUS = "/etc/prometheus/workspace"
# The image names the bases use, and which of the settings' images each stands for.
BASE_IMAGES = {
    "mlsandbox/model-service": "model",
    "mlsandbox/hub": "hub",
    "prom/prometheus": "prometheus",
    "prom/alertmanager": "alertmanager",
}
NAME_LABEL = "app.kubernetes.io/name"
SESSION_LABEL = "mlsandbox.io/session"
# A ConfigMap holds at most 1 MiB.
MAX_SEED_BYTES = 900 * 1024
# The order objects are applied in: what others need first.
KIND_ORDER = [
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "ConfigMap",
    "Secret",
    "Service",
    "Deployment",
    "Ingress",
    "Job",
    "Pod",
]
POD_TEMPLATE_KINDS = {"Deployment", "Job"}


# --- kustomize's build, for what the bases use ---------------------------------------------------------------

KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "namespace",
    "labels",
    "resources",
    "generatorOptions",
    "configMapGenerator",
    "images",
}


def build(folder: Path) -> list[dict]:
    """The objects `kubectl kustomize folder` prints, for the kustomize features the bases use (anything else in
    a kustomization.yaml is refused, so that this never silently differs from kustomize)."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - KUSTOMIZATION_KEYS
    if unknown:
        raise MlsandboxError(f"{folder}/kustomization.yaml: {', '.join(sorted(unknown))} is not read here")
    if not spec.get("generatorOptions", {}).get("disableNameSuffixHash", not spec.get("configMapGenerator")):
        raise MlsandboxError(f"{folder}/kustomization.yaml: generated names need disableNameSuffixHash")
    objects: list[dict] = []
    for resource in spec.get("resources", []):
        path = folder / resource
        if path.is_dir():
            objects += build(path)
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for generator in spec.get("configMapGenerator", []):
        data = {Path(name).name: (folder / name).read_text() for name in generator.get("files", [])}
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data})
    for entry in spec.get("labels", []):
        if entry.get("includeSelectors") or entry.get("includeTemplates"):
            raise MlsandboxError(f"{folder}/kustomization.yaml: labels go on the objects' metadata only here")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(entry["pairs"])
    if "namespace" in spec:
        set_namespace(objects, spec["namespace"])
    for image in spec.get("images", []):
        for container in containers(objects):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    return objects


def set_namespace(objects: list[dict], namespace: str) -> None:
    """Every object in `namespace`; the Namespace object named so (as kustomize's namespace transformer does)."""
    for obj in objects:
        if obj["kind"] == "Namespace":
            obj["metadata"]["name"] = namespace
        elif obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            obj["metadata"]["namespace"] = namespace
        for subject in obj.get("subjects", []) if obj["kind"] in ("ClusterRoleBinding", "RoleBinding") else []:
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace


def pod_spec(obj: dict) -> dict | None:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] in POD_TEMPLATE_KINDS:
        return obj["spec"]["template"]["spec"]
    return None


def containers(objects: list[dict]) -> Iterator[dict]:
    """Every container and init container of the objects' pods."""
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None:
            yield from spec.get("initContainers", [])
            yield from spec["containers"]


def find(objects: list[dict], kind: str, name: str) -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    if not found:
        raise MlsandboxError(f"no {kind} {name!r} in the objects")
    return found[0]


def ordered(objects: list[dict]) -> list[dict]:
    """In the order they are applied: namespaces, quotas and policies first, the player last (stable otherwise)."""
    return sorted(objects, key=lambda o: KIND_ORDER.index(o["kind"]) if o["kind"] in KIND_ORDER else len(KIND_ORDER))


# --- the files the bases generate ConfigMaps from --------------------------------------------------------------


def base_config(scrape_interval: str = "5s") -> StackConfig:
    """A session's settings as the bases have them (a room, the default interval)."""
    return StackConfig(room=RoomSettings(session="session", token=""), scrape_interval=scrape_interval)


def config_files(cfg: StackConfig) -> dict[str, dict[str, str]]:
    """The session's generated ConfigMaps, by name, as {file: text}: Prometheus's configuration for the session
    (prometheus/prometheus.yml with the room's paths, the session's interval and the workspace's rule files),
    Alertmanager's (as it is), the room's own files (the compose room's, without Grafana)."""
    prometheus = "# prometheus/prometheus.yml for a session's namespace (written by `mlsandbox kube render --base`).\n"
    prometheus += yaml.safe_dump(cluster_prometheus(cfg, f"{WORKSPACE_IN_PROMETHEUS}/alerts"), sort_keys=False)
    return {
        "prometheus-config": {"prometheus.yml": prometheus},
        "alertmanager-config": {"alertmanager.yml": ALERTMANAGER_SOURCE.read_text()},
        "room-files": room.container_room_files(cfg, cluster=True),
    }


def write_base_config(folder: Path = SESSION_BASE / "config") -> list[Path]:
    """The session base's config/ folder, from the files it is made of (what a test keeps equal)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for files in config_files(base_config()).values():
        for name, text in files.items():
            (folder / name).write_text(text)
            written.append(folder / name)
    return written


# --- a session --------------------------------------------------------------------------------------------------


def workspace_archive(folder: Path) -> bytes:
    """The workspace's first contents as a gzipped tar (the same bytes for the same folder); refused when too big
    for the ConfigMap that carries it."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink():
                raise MlsandboxError(f"{path}: a link in the candidate's folder; copy the file itself")
            info = tar.gettarinfo(str(path), str(path.relative_to(folder)))
            info.uid = info.gid = 10001
            info.uname = info.gname = ""
            if path.is_file():
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    packed = gzip.compress(raw.getvalue(), mtime=0)
    if len(packed) > MAX_SEED_BYTES:
        raise MlsandboxError(
            f"{folder} is {len(packed) // 1024} KB packed; a session on a cluster starts from at most "
            f"{MAX_SEED_BYTES // 1024} KB (a ConfigMap carries it)"
        )
    return packed


@dataclass(frozen=True)
class SessionSpec:
    """What makes one session's objects: its name, settings (the room's token among them), the cluster's settings,
    the workspace's first contents, and the scenario to play (None: none yet)."""

    name: str
    cfg: StackConfig
    kube: KubeSettings
    workspace: bytes
    play: ScenarioPlay | None = None

    @property
    def namespace(self) -> str:
        return namespace_of(self.name)


def session_objects(spec: SessionSpec, with_player: bool = True) -> list[dict]:
    """Every object of the session, in the order they are applied (the player last, unless `with_player` is off or
    nothing is to be played)."""
    if spec.cfg.room is None:
        raise MlsandboxError("a session on a cluster has a candidate's room: its settings have none")
    objects = build(SESSION_BASE)
    set_namespace(objects, spec.namespace)
    namespace = find(objects, "Namespace", spec.namespace)
    namespace["metadata"]["labels"][SESSION_LABEL] = spec.namespace.removeprefix("mlsandbox-")
    for name, files in config_files(spec.cfg).items():
        find(objects, "ConfigMap", name)["data"] = files
    objects.append(_configmap(spec.namespace, "workspace-seed", {}, {"workspace.tar.gz": spec.workspace}))
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "room-token", "namespace": spec.namespace, "labels": _labels(objects)},
            "type": "Opaque",
            "stringData": {"token": spec.cfg.room.token},
        }
    )
    _cluster_settings(objects, spec.kube)
    if spec.kube.room_host:
        objects.append(room_ingress(spec.namespace, spec.kube, spec.name, _labels(objects)))
    if spec.kube.api_server_cidrs:
        objects.append(api_server_policy(spec.namespace, spec.kube.api_server_cidrs, _labels(objects), PROXIED))
    job = find(objects, "Job", "player")
    objects.remove(job)
    if with_player and spec.play is not None:
        objects += player_objects(job, spec.play)
    return ordered(objects)


def _labels(objects: list[dict]) -> dict[str, str]:
    """The labels the base gives every object (part-of, component)."""
    return dict(find(objects, "Service", "workspace")["metadata"].get("labels", {}))


def _configmap(namespace: str, name: str, data: dict[str, str], binary: dict[str, bytes] | None = None) -> dict:
    import base64

    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "mlsandbox", "app.kubernetes.io/component": "session"},
        },
        "data": data,
    }
    if binary:
        obj["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
    return obj


def _cluster_settings(objects: list[dict], kube: KubeSettings) -> None:
    """Images and their pull policy, the storage class, where the model server finds MLflow, which namespace the
    room's Ingress controller is in."""
    for container in containers(objects):
        name = container["image"].partition(":")[0]
        if name in BASE_IMAGES:
            container["image"] = kube.image(BASE_IMAGES[name])
        container["imagePullPolicy"] = kube.image_pull_policy
        for variable in container.get("env", []):
            if variable["name"] == "MLFLOW_TRACKING_URI":
                variable["value"] = kube.mlflow_url
    for obj in objects:
        if obj["kind"] == "PersistentVolumeClaim" and kube.storage_class:
            obj["spec"]["storageClassName"] = kube.storage_class
        if obj["kind"] == "NetworkPolicy":
            for rule in obj["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    labels = peer.get("namespaceSelector", {}).get("matchLabels", {})
                    if labels.get("kubernetes.io/metadata.name") == "ingress-nginx":
                        labels["kubernetes.io/metadata.name"] = kube.ingress_namespace
            for rule in obj["spec"].get("egress", []):
                for peer in rule.get("to", []):
                    labels = peer.get("namespaceSelector", {}).get("matchLabels", {})
                    if labels.get("kubernetes.io/metadata.name") == "mlsandbox":
                        labels["kubernetes.io/metadata.name"] = kube.machine_namespace


def room_host(kube: KubeSettings, session: str) -> str | None:
    return (
        kube.room_host.replace("{name}", namespace_of(session).removeprefix("mlsandbox-")) if kube.room_host else None
    )


def room_ingress(namespace: str, kube: KubeSettings, session: str, labels: dict[str, str]) -> dict:
    """The room's Ingress: its host to the workspace's JupyterLab (TLS ends at the controller)."""
    spec: dict = {
        "rules": [
            {
                "host": room_host(kube, session),
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "workspace", "port": {"number": 8888}}},
                        }
                    ]
                },
            }
        ]
    }
    if kube.ingress_class:
        spec["ingressClassName"] = kube.ingress_class
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "workspace", "namespace": namespace, "labels": labels},
        "spec": spec,
    }


# What the API server's service proxy reaches: in a session, Prometheus (grades, status), the model server (the
# grader's scrape), the room (its activity, for the idle check); on the machine, MLflow (the room's docs/).
PROXIED = {"prometheus": 9090, "model-server": 8000, "workspace": 8888}
PROXIED_MACHINE = {"mlflow": 5000}


def api_server_policy(namespace: str, cidrs: list[str], labels: dict[str, str], targets: dict[str, int]) -> dict:
    """Lets the API server's service proxy in (on clusters whose policies apply to it), to what it proxies."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "api-server", "namespace": namespace, "labels": labels},
        "spec": {
            "podSelector": {"matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": sorted(targets)}]},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs],
                    "ports": [{"protocol": "TCP", "port": port} for port in sorted(set(targets.values()))],
                }
            ],
        },
    }


def player_objects(job: dict, play: ScenarioPlay) -> list[dict]:
    """The player's Job playing `play` (and, for a scenario file, a ConfigMap carrying it)."""
    job = copy.deepcopy(job)
    namespace = job["metadata"]["namespace"]
    spec = job["spec"]["template"]["spec"]
    player = spec["containers"][0]
    scenario, extra = play.scenario, []
    path = Path(play.scenario)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        scenario = f"/opt/mlsandbox/played/{path.name}"
        extra.append(_configmap(namespace, "played-scenario", {path.name: path.read_text()}))
        spec["volumes"].append({"name": "played", "configMap": {"name": "played-scenario"}})
        player["volumeMounts"].append({"name": "played", "mountPath": "/opt/mlsandbox/played", "readOnly": True})
    values = {
        "MLSANDBOX_SCENARIO": scenario,
        "MLSANDBOX_SPEED": f"{play.speed:g}",
        "MLSANDBOX_SURPRISE": "true" if play.surprise else "false",
        "MLSANDBOX_SEED": "" if play.seed is None else str(play.seed),
        "MLSANDBOX_FROM_PHASE": play.from_phase or "",
    }
    for variable in player["env"]:
        if variable["name"] in values:
            variable["value"] = values[variable["name"]]
    return [*extra, job]


def player_job(namespace: str, kube: KubeSettings, play: ScenarioPlay) -> list[dict]:
    """A new play's objects, for a session already running (the base's Job with the cluster's settings)."""
    objects = build(SESSION_BASE)
    set_namespace(objects, namespace)
    _cluster_settings(objects, kube)
    return player_objects(find(objects, "Job", "player"), play)


def helper_pod(namespace: str, name: str, claims: dict[str, str], kube: KubeSettings, readonly: bool = True) -> dict:
    """A pod that holds volumes for a moment (`session end` copies Prometheus's data out through one, after
    Prometheus stopped; the truth is read through one when no player runs): each claim mounted at its path
    (read-only unless `readonly` is off), nothing running but a sleep, as restricted as every pod of a session."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {NAME_LABEL: "helper", "app.kubernetes.io/part-of": "mlsandbox"},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "activeDeadlineSeconds": 900,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "helper",
                    "image": kube.image("model"),
                    "imagePullPolicy": kube.image_pull_policy,
                    "command": ["sleep", "900"],
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "32Mi"},
                        "limits": {"cpu": "500m", "memory": "128Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [
                        {"name": claim, "mountPath": path, "readOnly": readonly} for claim, path in claims.items()
                    ],
                }
            ],
            "volumes": [
                {"name": claim, "persistentVolumeClaim": {"claimName": claim, "readOnly": readonly}} for claim in claims
            ],
        },
    }


# --- the machine's part -----------------------------------------------------------------------------------------


def machine_objects(kube: KubeSettings, console_token: str | None = None) -> list[dict]:
    """The machine's part (MLflow with its volume, the training Job, the console), with the cluster's settings and,
    when given, the console's token as its Secret."""
    objects = build(MACHINE_BASE)
    set_namespace(objects, kube.machine_namespace)
    _cluster_settings(objects, kube)
    if kube.api_server_cidrs:
        labels = dict(find(objects, "Service", "mlflow")["metadata"].get("labels", {}))
        objects.append(api_server_policy(kube.machine_namespace, kube.api_server_cidrs, labels, PROXIED_MACHINE))
    if console_token is not None:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "console-token", "namespace": kube.machine_namespace},
                "type": "Opaque",
                "stringData": {"token": console_token},
            }
        )
    return ordered(objects)


# --- podman -----------------------------------------------------------------------------------------------------

# What `podman kube play` (4.3) skips or refuses: it reads Pods, Deployments, ConfigMaps and claims only.
PODMAN_SKIPS = {"Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "Service", "Ingress", "ServiceAccount"}
PODMAN_SKIPS |= {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def for_podman(objects: list[dict], host_ports: dict[str, int], host: str = "127.0.0.1") -> list[dict]:
    """The same pods as `podman kube play` runs them on one machine: each Deployment and Job a Pod named after it
    (podman's DNS finds a pod by its name, where a cluster has the Service), init containers run once (podman 4.3
    restarts them with an `Always` pod), Secrets as ConfigMaps (no Secret volumes there), what podman skips left
    out; `host_ports` publishes a component's port on `host` (podman publishes host ports only)."""
    out = []
    for obj in copy.deepcopy(objects):
        kind = obj["kind"]
        if kind in PODMAN_SKIPS:
            continue
        if kind == "Secret":
            data = obj.get("stringData", {})
            out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": _bare(obj["metadata"]), "data": data})
            continue
        spec = pod_spec(obj)
        if spec is None:
            out.append({**obj, "metadata": _bare(obj["metadata"])})
            continue
        spec = copy.deepcopy(spec)
        spec["restartPolicy"] = "Never" if kind == "Job" else "OnFailure"
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                volume["configMap"] = {"name": volume.pop("secret")["secretName"]}
        name = obj["metadata"]["name"]
        for container in spec["containers"]:
            for port in container.get("ports", []):
                if name in host_ports:
                    port.update(hostPort=host_ports[name], hostIP=host)
        labels = obj["spec"]["template"]["metadata"]["labels"] if kind in POD_TEMPLATE_KINDS else {}
        out.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec})
    return out


def _bare(metadata: dict) -> dict:
    return {"name": metadata["name"], **({"labels": metadata["labels"]} if metadata.get("labels") else {})}


# --- files --------------------------------------------------------------------------------------------------------


def file_name(index: int, obj: dict) -> str:
    return f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def write_objects(objects: list[dict], out: Path) -> list[Path]:
    """One plain YAML file per object (numbered in the order they are applied), into `out` (emptied of earlier
    renders first)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("[0-9][0-9]-*.yaml"):
        old.unlink()
    paths = []
    for index, obj in enumerate(objects):
        path = out / file_name(index, obj)
        path.write_text(yaml.safe_dump(obj, sort_keys=False, width=120))
        paths.append(path)
    return paths
