"""A session on Kubernetes, without a cluster: the kustomize bases build (with kubectl, and as render.py reads
them: the same objects), every object of a rendered session and of the machine's part is valid against the
Kubernetes 1.32 schema and passes checkov's policies (but the skips argued in deploy/kubernetes/.checkov.yaml),
and what the objects say: who mounts the truth, who reaches whom, that the quota holds the session, that every
container is unprivileged. The pods themselves run in tests/test_kube_podman.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlsandbox.cli.main import app
from mlsandbox.config import KubeSettings, RoomSettings, StackConfig, namespace_of
from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import REFERENCE, REPO_ROOT, STARTER
from mlsandbox.sessions.manifests import session_manifests
from mlsandbox.stack.kubernetes import render
from mlsandbox.stack.state import ScenarioPlay

BASES = ["session", "machine", "machine-ingress", "examples/alice"]
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
KUBERNETES_VERSION = "1.32.0"


def key(obj: dict) -> tuple:
    return obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]


def kustomize(folder: Path) -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not installed (v1.32 with kustomize v5.5 is on this project's machines)")
    result = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def session() -> list[dict]:
    return session_manifests("alice", None, ScenarioPlay(scenario="smoke", seed=3, speed=2), KubeSettings())


@pytest.fixture(scope="module")
def machine() -> list[dict]:
    return render.machine_objects(KubeSettings(), console_token="t")


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pods(objects: list[dict]) -> dict[str, dict]:
    """Each Deployment's and Job's pod spec, by name."""
    return {o["metadata"]["name"]: render.pod_spec(o) for o in objects if render.pod_spec(o) is not None}


def mounts(spec: dict) -> dict[str, set[str]]:
    """Each claim a pod mounts, with the containers mounting it."""
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v
    }
    out: dict[str, set[str]] = {}
    for container in spec.get("initContainers", []) + spec["containers"]:
        for mount in container.get("volumeMounts", []):
            if mount["name"] in claims:
                out.setdefault(claims[mount["name"]], set()).add(container["name"])
    return out


# --- the bases ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES)
def test_every_base_builds_with_kubectl_and_render_reads_it_the_same(base):
    built = kustomize(render.KUBE_DIR / base)
    ours = render.build(render.KUBE_DIR / base)
    assert {key(o): o for o in ours} == {key(o): o for o in built}


def test_the_session_bases_config_is_what_the_sandbox_renders_from_its_own_files():
    files = {name: text for files in render.config_files(render.base_config()).values() for name, text in files.items()}
    on_disk = {p.name: p.read_text() for p in (render.SESSION_BASE / "config").iterdir()}
    assert on_disk == files, "run `mlsandbox kube render --base`"
    assert files["alertmanager.yml"] == (REPO_ROOT / "alertmanager" / "alertmanager.yml").read_text()
    assert files["forward.py"] == (REPO_ROOT / "mlsandbox" / "services" / "forward.py").read_text()


def test_the_bases_images_and_tags_are_envs():
    env = KubeSettings()
    for base in ("session", "machine"):
        spec = yaml.safe_load((render.KUBE_DIR / base / "kustomization.yaml").read_text())
        for image in spec["images"]:
            setting = env.image(render.BASE_IMAGES[image["name"]])
            assert setting == f"{image['name']}:{image['newTag']}", (base, image)


# --- valid objects -----------------------------------------------------------------------------------------------


def test_every_object_of_a_session_and_of_the_machine_is_valid_against_the_kubernetes_schema(session, machine):
    from kubernetes_validate import validate

    settings = KubeSettings(room_host="{name}.rooms.example.org", api_server_cidrs=["10.0.0.0/24"], storage_class="ssd")
    with_all = session_manifests("bob", None, None, settings) + render.machine_objects(settings, "t")
    for obj in (
        session + machine + with_all + [render.helper_pod("mlsandbox-alice", "helper-1", {"truth": "/t"}, settings)]
    ):
        validate(obj, KUBERNETES_VERSION, strict=True)
    broken = json.loads(json.dumps(by_kind(session, "Deployment")["workspace"]))
    broken["spec"]["template"]["spec"]["containers"][0]["port"] = 8888
    with pytest.raises(Exception, match="port"):
        validate(broken, KUBERNETES_VERSION, strict=True)


def test_checkov_finds_nothing_beyond_its_argued_skips(session, machine, tmp_path):
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make checkov` makes its virtualenv")
    settings = KubeSettings(room_host="{name}.rooms.example.org", api_server_cidrs=["10.0.0.0/24"])
    render.write_objects(session, tmp_path / "session")
    render.write_objects(session_manifests("bob", None, None, settings), tmp_path / "bob")
    render.write_objects(machine, tmp_path / "machine")
    result = subprocess.run(
        [str(CHECKOV), "--config-file", str(render.KUBE_DIR / ".checkov.yaml"), "-d", str(tmp_path), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [(c["check_id"], c["resource"]) for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    passed = sum(len(r.get("results", {}).get("passed_checks", [])) for r in reports)
    assert failed == [] and passed > 500, (failed, result.stderr[-2000:])


# --- what the session's objects say ------------------------------------------------------------------------------


def test_a_session_is_a_namespace_of_its_own_holding_every_object(session):
    namespace = by_kind(session, "Namespace")["mlsandbox-alice"]
    assert namespace["metadata"]["labels"]["mlsandbox.io/session"] == "alice"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {o["metadata"].get("namespace") for o in session if o["kind"] != "Namespace"} == {"mlsandbox-alice"}
    assert namespace_of("Bob_Smith.2") == "mlsandbox-bob-smith-2"


def test_every_container_is_unprivileged_with_resources(session, machine):
    for name, spec in {**pods(session), **pods(machine)}.items():
        context = spec["securityContext"]
        assert context["runAsNonRoot"] and context["runAsUser"] == 10001, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            own = container["securityContext"]
            assert own["allowPrivilegeEscalation"] is False and own["capabilities"] == {"drop": ["ALL"]}, name
            assert own["readOnlyRootFilesystem"] is True, name
            assert {"requests", "limits"} <= set(container["resources"]), name
        # Only the hub talks to the API server.
        assert spec["automountServiceAccountToken"] is (name == "console"), name


def test_only_the_player_mounts_the_truth_and_the_server_reads_the_workspace_only(session):
    specs = pods(session)
    holders = {name for name, spec in specs.items() if "truth" in mounts(spec)}
    assert holders == {"player"}
    assert set(mounts(specs["workspace"])) == {"workspace"}
    server = specs["model-server"]
    assert set(mounts(server)) == {"workspace", "model-data", "control"}
    read_only = {
        v["persistentVolumeClaim"]["claimName"]
        for v in server["volumes"]
        if v.get("persistentVolumeClaim", {}).get("readOnly")
    }
    assert read_only == {"workspace", "control"}
    # Pods sharing a ReadWriteOnce volume with the room run on its node.
    for name in ("model-server", "prometheus", "player"):
        term = specs[name]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        assert term["labelSelector"]["matchLabels"] == {render.NAME_LABEL: "workspace"}, name


def test_the_rooms_image_copy_of_the_sandbox_is_masked_and_its_token_is_a_secret(session):
    room = pods(session)["workspace"]
    paths = {m["mountPath"] for m in room["containers"][0]["volumeMounts"] if m["name"] == "masked"}
    assert {"/opt/mlsandbox"} | {
        f"/opt/venv/lib/python3.11/site-packages/{p}" for p in ("load", "mlsandbox", "grading")
    } <= paths
    secret = by_kind(session, "Secret")["room-token"]
    assert len(secret["stringData"]["token"]) >= 24
    assert {"secret": {"secretName": "room-token"}, "name": "room-token"} in room["volumes"]


def _peers(policy: dict, direction: str) -> list[tuple]:
    side = "to" if direction == "egress" else "from"
    out = []
    for rule in policy["spec"].get(direction, []):
        ports = tuple(sorted(p["port"] for p in rule.get("ports", [])))
        for peer in rule.get(side, [{}]):
            namespace = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
            pod = peer.get("podSelector", {}).get("matchLabels", {}).get(render.NAME_LABEL)
            out.append((namespace, pod, ports))
    return out


def test_the_room_reaches_its_own_sessions_services_only_and_the_server_also_mlflow(session):
    policies = by_kind(session, "NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert _peers(policies["workspace"], "egress") == [
        (None, "model-server", (8000,)),
        (None, "prometheus", (9090,)),
        (None, "alertmanager", (9093,)),
    ]
    assert _peers(policies["model-server"], "egress") == [("mlsandbox", "mlflow", (5000,))]
    assert {p[1] for p in _peers(policies["model-server"], "ingress")} == {"workspace", "prometheus", "player"}
    assert _peers(policies["player"], "egress") == [(None, "model-server", (8000,))]
    assert _peers(policies["dns"], "egress") == [("kube-system", None, (53, 53))]
    # Every pod of the session is chosen by a policy of its own.
    named = {p["spec"]["podSelector"].get("matchLabels", {}).get(render.NAME_LABEL) for p in policies.values()}
    assert set(pods(session)) <= named


def test_the_quota_holds_the_sessions_pods_and_the_limit_range_each_container(session):
    quota = by_kind(session, "ResourceQuota")["session"]["spec"]["hard"]
    limits = by_kind(session, "LimitRange")["session"]["spec"]["limits"][0]["max"]

    def total(kind: str, resource: str) -> float:
        return sum(
            quantity(c["resources"][kind][resource]) for spec in pods(session).values() for c in spec["containers"]
        )

    assert total("requests", "memory") <= quantity(quota["requests.memory"])
    assert total("limits", "memory") <= quantity(quota["limits.memory"])
    assert total("requests", "cpu") <= quantity(quota["requests.cpu"])
    assert total("limits", "cpu") <= quantity(quota["limits.cpu"])
    for spec in pods(session).values():
        for c in spec["containers"]:
            assert quantity(c["resources"]["limits"]["memory"]) <= quantity(limits["memory"])
    assert int(quota["persistentvolumeclaims"]) == len(by_kind(session, "PersistentVolumeClaim"))
    storage = sum(
        quantity(p["spec"]["resources"]["requests"]["storage"])
        for p in by_kind(session, "PersistentVolumeClaim").values()
    )
    assert storage <= quantity(quota["requests.storage"])


def quantity(text: str) -> float:
    units = {"Mi": 2**20, "Gi": 2**30, "m": 0.001}
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def test_the_player_plays_what_the_session_asked_and_a_scenario_file_travels_in_a_configmap(session, tmp_path):
    env = {v["name"]: v["value"] for v in pods(session)["player"]["containers"][0]["env"]}
    assert (env["MLSANDBOX_SCENARIO"], env["MLSANDBOX_SEED"], env["MLSANDBOX_SPEED"]) == ("smoke", "3", "2")
    assert env["MLSANDBOX_RUN_DIR"] == "/truth"
    assert session[-1]["kind"] == "Job", "the player is applied last"
    scenario = tmp_path / "mine.yaml"
    scenario.write_text((REPO_ROOT / "load" / "scenarios" / "smoke.yaml").read_text())
    objects = render.player_job("mlsandbox-alice", KubeSettings(), ScenarioPlay(scenario=str(scenario)))
    config, job = objects
    assert config["data"] == {"mine.yaml": scenario.read_text()}
    player = job["spec"]["template"]["spec"]["containers"][0]
    assert {v["name"]: v["value"] for v in player["env"]}["MLSANDBOX_SCENARIO"] == "/opt/mlsandbox/played/mine.yaml"


def test_a_session_without_a_play_has_no_player(session):
    assert "Job" not in {o["kind"] for o in session_manifests("quiet", None, None, KubeSettings())}


def test_images_registry_storage_ingress_and_the_api_servers_addresses_are_settings():
    settings = KubeSettings(
        registry="registry.example.com/team/",
        prometheus_image="prom/prometheus:v3.0.0",
        image_pull_policy="IfNotPresent",
        storage_class="fast",
        room_host="{name}.rooms.example.org",
        ingress_class="nginx",
        ingress_namespace="ingress",
        api_server_cidrs=["172.16.0.0/28"],
    )
    objects = session_manifests("Carol", None, None, settings)
    images = {c["image"] for c in render.containers(objects)}
    assert images == {
        "registry.example.com/team/mlsandbox/model-service:0.1.0",
        "prom/prometheus:v3.0.0",
        "prom/alertmanager:v0.28.1",
    }
    assert {c["imagePullPolicy"] for c in render.containers(objects)} == {"IfNotPresent"}
    assert {p["spec"]["storageClassName"] for p in by_kind(objects, "PersistentVolumeClaim").values()} == {"fast"}
    ingress = by_kind(objects, "Ingress")["workspace"]["spec"]
    assert ingress["rules"][0]["host"] == "carol.rooms.example.org" and ingress["ingressClassName"] == "nginx"
    policies = by_kind(objects, "NetworkPolicy")
    assert ("ingress", None, (8888,)) in _peers(policies["workspace"], "ingress")
    api = policies["api-server"]["spec"]
    assert api["ingress"][0]["from"] == [{"ipBlock": {"cidr": "172.16.0.0/28"}}]
    assert sorted(api["podSelector"]["matchExpressions"][0]["values"]) == ["model-server", "prometheus", "workspace"]


def test_the_workspace_starts_from_the_starter_with_the_rooms_brief(session, tmp_path):
    import base64
    import gzip
    import io
    import tarfile

    seed = by_kind(session, "ConfigMap")["workspace-seed"]["binaryData"]["workspace.tar.gz"]
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(seed)), mode="r:gz") as tar:
        names = set(tar.getnames())
        brief = tar.extractfile("CANDIDATE.md").read().decode()
    assert {"app/main.py", "app/monitoring.py", "CANDIDATE.md", "docs/model_card.md", "docs/features.json"} <= names
    assert "reload-rules" in brief and "make up" not in brief
    # The same bytes for the same folder; a link or a folder too big for a ConfigMap refused.
    assert render.workspace_archive(STARTER) == render.workspace_archive(STARTER)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "link").symlink_to("/etc/passwd")
    with pytest.raises(MlsandboxError, match="link"):
        render.workspace_archive(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "noise.bin").write_bytes(__import__("os").urandom(1_000_000))
    with pytest.raises(MlsandboxError, match="ConfigMap"):
        render.workspace_archive(tmp_path / "b")
    assert gzip.decompress(render.workspace_archive(STARTER))


def test_prometheus_reads_the_candidates_rules_from_the_workspace_at_the_sessions_interval():
    cfg = render.base_config("1s")
    prometheus = yaml.safe_load(render.config_files(cfg)["prometheus-config"]["prometheus.yml"])
    assert prometheus["rule_files"] == [
        "/etc/prometheus/workspace/alerts/*.yml",
        "/etc/prometheus/workspace/alerts/*.yaml",
    ]
    assert prometheus["global"]["scrape_interval"] == "1s"
    assert {j["job_name"]: j.get("scrape_timeout") for j in prometheus["scrape_configs"]}["model-server"] == "1s"
    jupyter = render.config_files(cfg)["room-files"]["jupyter_config.py"]
    assert (
        "/opt/room-token/token" in jupyter and "grafana" not in jupyter and '"shell_command": ["/bin/bash"]' in jupyter
    )


# --- podman's rendering, the files, the command ------------------------------------------------------------------


def test_podmans_rendering_is_the_same_pods_named_after_their_services(session):
    out = render.for_podman(session, {"prometheus": 19090})
    assert {o["kind"] for o in out} == {"Pod", "ConfigMap", "PersistentVolumeClaim"}
    named = {o["metadata"]["name"]: o for o in out if o["kind"] == "Pod"}
    assert set(named) == {"workspace", "model-server", "prometheus", "alertmanager", "alert-receiver", "player"}
    assert named["player"]["spec"]["restartPolicy"] == "Never"
    assert named["model-server"]["spec"]["restartPolicy"] == "OnFailure"
    port = named["prometheus"]["spec"]["containers"][0]["ports"][0]
    assert (port["hostPort"], port["hostIP"]) == (19090, "127.0.0.1")
    assert by_kind(out, "ConfigMap")["room-token"]["data"]["token"]
    assert {"name": "room-token", "configMap": {"name": "room-token"}} in named["workspace"]["spec"]["volumes"]
    assert named["workspace"]["spec"]["containers"][0] == pods(session)["workspace"]["containers"][0]


def test_kube_render_writes_one_plain_file_per_object(tmp_path):
    result = CliRunner().invoke(app, ["kube", "render", "dora", "--out", str(tmp_path), "--scenario", "smoke"])
    assert result.exit_code == 0, result.output
    files = sorted(tmp_path.glob("*.yaml"))
    docs = [list(yaml.safe_load_all(p.read_text())) for p in files]
    assert all(len(d) == 1 and d[0]["kind"] not in ("List", "Kustomization") for d in docs)
    assert files[0].name == "00-namespace-mlsandbox-dora.yaml" and files[-1].name.endswith("-job-player.yaml")
    assert not (tmp_path / "kustomization.yaml").exists()
    result = CliRunner().invoke(app, ["kube", "render", "--machine", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert {yaml.safe_load(p.read_text())["kind"] for p in (tmp_path / "m").glob("*.yaml")} >= {
        "Job",
        "Deployment",
        "ClusterRole",
    }


def test_a_reference_folder_renders_too_and_a_session_needs_a_room():
    objects = session_manifests("erin", REFERENCE, None, KubeSettings())
    assert by_kind(objects, "ConfigMap")["workspace-seed"]["binaryData"]
    with pytest.raises(MlsandboxError, match="room"):
        render.session_objects(render.SessionSpec("x", StackConfig(), KubeSettings(), b""))
    room = StackConfig(room=RoomSettings(session="x", token="t"))
    assert render.session_objects(render.SessionSpec("x", room, KubeSettings(), b""))
