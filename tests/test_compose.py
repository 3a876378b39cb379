"""Static checks of the Docker stack: compose.yaml as docker-compose resolves it, .env, the Dockerfile and
Grafana's provisioning. No Docker engine needed: `docker-compose config` only reads files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from mlsandbox.layout import Ports

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "compose.yaml"
LOCAL_IMAGES_FILE = REPO / "compose.local-images.yaml"
ENV_FILE = REPO / ".env"
DOCKERFILE = REPO / "model_service" / "Dockerfile"
GRAFANA_PROVISIONING = REPO / "grafana" / "provisioning"
DATASOURCE_UID = "prometheus"
CANDIDATE_MOUNT = "/candidate"
# A tag that names one release: v2.55.1, 11.6.0, 3.11.11-slim-bookworm, 0.1.0.
PINNED_TAG = re.compile(r"^v?\d+\.\d+\.\d+([-.][A-Za-z0-9.-]+)?$")
VARIABLE = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+)(?::?[-?][^}]*)?\}$")


def read_env_file() -> dict[str, str]:
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail(
            "docker-compose not found: install it (`apt-get install docker-compose`); "
            "these tests check compose.yaml with `docker-compose config`"
        )
    return path


def compose_config(*files: Path, **overrides: str) -> subprocess.CompletedProcess:
    """`docker-compose config` as a user gets it: .env's values, not whatever this shell has exported."""
    from_file = read_env_file()
    env = {k: v for k, v in os.environ.items() if k not in from_file and not k.startswith("COMPOSE_")}
    env.update(overrides)
    argv = [docker_compose()]
    for path in files or (COMPOSE_FILE,):
        argv += ["-f", str(path)]
    return subprocess.run([*argv, "config"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def resolved(*files: Path, **overrides: str) -> dict:
    result = compose_config(*files, **overrides)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def config() -> dict:
    return resolved()


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def published_ports(service: dict) -> list[dict]:
    """Each published port as {host_ip, published, target}, from the short or the long syntax."""
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.append(
                {"host_ip": port.get("host_ip"), "published": port.get("published"), "target": port.get("target")}
            )
            continue
        parts = str(port).split("/")[0].split(":")
        host_ip, published, target = [None] * (3 - len(parts)) + parts
        ports.append({"host_ip": host_ip, "published": published, "target": target})
    return ports


def mounts(service: dict) -> list[dict]:
    """Each volume as {type, source, target}, from the short or the long syntax."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            out.append(
                {
                    "type": volume.get("type"),
                    "source": volume.get("source"),
                    "target": volume["target"],
                    "read_only": bool(volume.get("read_only")),
                }
            )
            continue
        source, _, rest = volume.partition(":")
        target, _, mode = rest.partition(":")
        kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
        out.append({"type": kind, "source": source, "target": target, "read_only": "ro" in mode.split(",")})
    return out


def test_compose_config_is_valid(config):
    assert set(config["services"]) >= {"model-server", "mlflow", "trainer", "prometheus", "alertmanager", "grafana"}
    raw_text = COMPOSE_FILE.read_text()
    assert not re.search(r"(?m)^name:", raw_text), "docker-compose 1.29 rejects a top-level name:"


def test_every_port_binds_localhost(config):
    for name, service in config["services"].items():
        for port in published_ports(service):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes {port} beyond 127.0.0.1"


def test_env_file_ports_are_the_layouts_defaults():
    # One place owns the ports (mlsandbox/layout.py); .env is what plain `docker compose up` reads.
    env = read_env_file()
    for name, port in Ports.default().compose_environment().items():
        assert env.get(name) == port, f".env has {name}={env.get(name)}, the layout says {port}"


def test_every_service_has_a_healthcheck_and_a_memory_limit(config):
    for name, service in config["services"].items():
        check = service.get("healthcheck") or {}
        test = check.get("test") or ["NONE"]
        # docker-compose writes `disable: true` as test: [NONE].
        assert not check.get("disable") and test[0] != "NONE", f"{name} has no health check"
        assert service.get("mem_limit"), f"{name} has no mem_limit"


def test_start_order_waits_for_health(config):
    services = config["services"]
    model_deps = services["model-server"]["depends_on"]
    assert model_deps["mlflow"]["condition"] == "service_healthy"
    assert model_deps["trainer"]["condition"] == "service_completed_successfully"
    assert services["trainer"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert services["prometheus"]["depends_on"]["alertmanager"]["condition"] == "service_healthy"
    assert "--if-missing" in services["trainer"]["command"]


def test_images_are_pinned_in_env_file(raw, config):
    env = read_env_file()
    for name, service in raw["services"].items():
        match = VARIABLE.match(str(service.get("image", "")))
        assert match, f"{name}: image must be a variable from .env, not {service.get('image')!r}"
        variable = match["name"]
        assert variable in env, f"{name}: {variable} is not set in .env"
        image = env[variable]
        assert config["services"][name]["image"] == image
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{variable}={image}: no tag"
        assert tag != "latest" and PINNED_TAG.match(tag), f"{variable}={image}: tag is not a pinned version"
    # Built images: the base image comes from .env too, and the Dockerfile's default is the same pin.
    base = env["PYTHON_BASE_IMAGE"]
    assert PINNED_TAG.match(base.rpartition(":")[2]), f"PYTHON_BASE_IMAGE={base} is not pinned"
    assert re.search(rf"(?m)^ARG BASE_IMAGE={re.escape(base)}$", DOCKERFILE.read_text()), (
        "model_service/Dockerfile's default BASE_IMAGE differs from PYTHON_BASE_IMAGE in .env"
    )
    for service in config["services"].values():
        if "build" in service:
            assert service["build"]["args"]["BASE_IMAGE"] == base


def test_our_services_share_one_image(config):
    services = config["services"]
    images = {services[s]["image"] for s in ("model-server", "mlflow", "trainer")}
    assert len(images) == 1, f"model-server, mlflow and trainer should run one image, not {images}"
    assert Path(services["model-server"]["build"]["context"]).resolve() == REPO


def test_grafana_reads_a_password_drawn_on_first_start_not_one_from_the_repository(config):
    services = config["services"]
    environment = services["grafana"]["environment"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in environment
    assert environment["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/mlsandbox/grafana-admin-password"
    assert environment.get("GF_AUTH_ANONYMOUS_ENABLED") == "false"
    assert services["grafana"]["depends_on"]["grafana-secret"]["condition"] == "service_completed_successfully"
    secret = services["grafana-secret"]
    assert secret["command"][-1] == "/secrets/grafana-admin-password"
    folder = (REPO / "run" / "secrets").resolve()
    assert ("/secrets", folder) in {(m["target"], Path(m["source"]).resolve()) for m in mounts(secret)}
    grafana = {(m["target"], Path(m["source"]).resolve()) for m in mounts(services["grafana"])}
    assert ("/run/secrets/mlsandbox", folder) in grafana


def test_the_grafana_password_is_drawn_once_readable_and_kept(tmp_path):
    from mlsandbox.services.grafana_secret import ensure

    path = tmp_path / "secrets" / "grafana-admin-password"
    assert ensure(path) is True
    first = path.read_text().strip()
    assert len(first) >= 20 and (path.stat().st_mode & 0o777) == 0o644
    assert ensure(path) is False and path.read_text().strip() == first
    other = tmp_path / "other"
    ensure(other)
    assert other.read_text().strip() != first


# A password in a file: `password: "x..."`, `PASSWORD=x...`, `password = 'x...'` (a value, not code).
PASSWORD_VALUE = re.compile(
    r"""passw(?:or)?d\w*["']?\s*[=:]\s*(?:["'][^"'\s]{6,}["']|[A-Za-z0-9_+\-]{6,}\s*$)""", re.I | re.M
)


def test_no_tracked_file_holds_a_password():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    found = []
    for name in filter(None, tracked.stdout.split("\0")):
        path = REPO / name
        if not path.is_file() or path.suffix in (".png", ".sqlite", ".pkl"):
            continue
        text = path.read_text(errors="replace")
        found += [f"{name}: {m.group(0)}" for m in PASSWORD_VALUE.finditer(text)]
    assert not found, found
    assert PASSWORD_VALUE.search("GRAFANA_ADMIN_PASSWORD=ST7xUH2FyV13jAAPlZjMtf")  # what .env held before


def test_bind_mounts_exist_in_repo(config):
    for name, service in config["services"].items():
        for mount in mounts(service):
            if mount["type"] != "bind":
                continue
            source = Path(mount["source"]).resolve()
            assert source.is_relative_to(REPO), f"{name} mounts {source}, outside the repository"
            if source.is_relative_to(REPO / "run"):
                continue  # untracked, made at the first start (run/secrets/ by the engine)
            assert source.exists(), f"{name} mounts {source}, which does not exist"


def test_model_server_mounts_only_candidate_and_data(config):
    model_server = config["services"]["model-server"]
    candidate = (REPO / read_env_file()["CANDIDATE_DIR"]).resolve()
    found = {(m["type"], m["target"]): m["source"] for m in mounts(model_server)}
    assert set(found) == {("bind", CANDIDATE_MOUNT), ("volume", "/data"), ("volume", "/data/control")}, found
    assert Path(found[("bind", CANDIDATE_MOUNT)]).resolve() == candidate
    assert found[("volume", "/data")] in config["volumes"]
    assert model_server["environment"]["MLSANDBOX_RUN_DIR"] == "/data"


def test_hidden_truth_is_on_a_volume_the_model_server_does_not_mount(config):
    load = config["services"]["load"]
    truth = {m["target"]: m["source"] for m in mounts(load)}["/truth"]
    assert load["environment"]["MLSANDBOX_RUN_DIR"] == "/truth"
    assert truth not in {m["source"] for m in mounts(config["services"]["model-server"])}
    # The fault switch is shared, and read-only on the model server's side.
    control = {m["target"]: m for m in mounts(config["services"]["model-server"])}["/data/control"]
    assert control["read_only"] and control["source"] == {m["target"]: m["source"] for m in mounts(load)}["/control"]


def test_candidate_dir_switches_every_candidate_mount(tmp_path):
    for folder in ("app", "alerts", "dashboards"):
        (tmp_path / folder).mkdir()
    services = resolved(CANDIDATE_DIR=str(tmp_path))["services"]
    expected = {
        "model-server": {CANDIDATE_MOUNT: tmp_path},
        "prometheus": {"/etc/prometheus/alerts": tmp_path / "alerts"},
        "grafana": {"/var/lib/grafana/dashboards/candidate": tmp_path / "dashboards"},
    }
    for name, targets in expected.items():
        found = {m["target"]: Path(m["source"]) for m in mounts(services[name]) if m["type"] == "bind"}
        for target, source in targets.items():
            assert found.get(target) == source, f"{name}: {target} comes from {found.get(target)}"


def test_prometheus_config_and_rules_are_mounted(config):
    prometheus = config["services"]["prometheus"]
    targets = {m["target"]: m["source"] for m in mounts(prometheus)}
    assert Path(targets["/etc/prometheus/prometheus.yml"]) == REPO / "prometheus" / "prometheus.yml"
    assert "/etc/prometheus/alerts" in targets
    assert "--web.enable-lifecycle" in prometheus["command"]
    rule_files = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())["rule_files"]
    assert all(path.startswith("/etc/prometheus/alerts/") for path in rule_files)


def grafana_mount_targets(config: dict) -> dict[str, Path]:
    return {m["target"]: Path(m["source"]) for m in mounts(config["services"]["grafana"]) if m["type"] == "bind"}


def test_grafana_datasource_is_the_compose_prometheus(config):
    doc = yaml.safe_load((GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text())
    [datasource] = doc["datasources"]
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] == "prometheus"
    # Grafana expands ${VAR} in provisioning files from its own environment: the path Prometheus is served under.
    environment = config["services"]["grafana"]["environment"]
    assert "PROMETHEUS_PATH" in environment
    url = urlparse(datasource["url"].replace("${PROMETHEUS_PATH}", environment["PROMETHEUS_PATH"] or ""))
    assert url.hostname in config["services"], f"{url.hostname} is not a compose service"
    assert any(int(p["target"]) == url.port for p in published_ports(config["services"][url.hostname]))
    assert grafana_mount_targets(config)["/etc/grafana/provisioning"] == GRAFANA_PROVISIONING


def test_grafana_dashboard_providers_read_mounted_folders(config):
    doc = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    providers = {p["folder"]: p for p in doc["providers"]}
    assert set(providers) == {"Candidate", "Interviewer"}
    targets = grafana_mount_targets(config)
    for provider in providers.values():
        assert provider["type"] == "file"
        assert provider["options"]["path"] in targets, f"{provider['name']}: its path is not mounted"
    interviewer = targets[providers["Interviewer"]["options"]["path"]]
    assert interviewer == REPO / "grafana" / "dashboards" / "interviewer"


def datasource_uids(node) -> list[str]:
    """Every datasource uid a dashboard's JSON refers to."""
    found = []
    if isinstance(node, dict):
        source = node.get("datasource")
        if isinstance(source, dict) and "uid" in source:
            found.append(source["uid"])
        for value in node.values():
            found += datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            found += datasource_uids(value)
    return found


def test_dashboards_refer_to_the_provisioned_datasource():
    folders = [REPO / "grafana" / "dashboards", REPO / read_env_file()["CANDIDATE_DIR"] / "dashboards"]
    for path in sorted(p for folder in folders if folder.is_dir() for p in folder.rglob("*.json")):
        uids = datasource_uids(json.loads(path.read_text()))
        wrong = {
            uid
            for uid in uids
            if uid != DATASOURCE_UID and not uid.startswith("$") and uid not in {"-- Grafana --", "grafana"}
        }
        assert not wrong, f"{path.relative_to(REPO)} uses datasource uids {wrong}, not {DATASOURCE_UID!r}"


def test_local_images_override_changes_only_images_and_leaves_grafana_out(config):
    overridden = resolved(COMPOSE_FILE, LOCAL_IMAGES_FILE)
    assert set(overridden["services"]) == set(config["services"])

    def comparable(key, value):  # docker-compose may list a merged service's volumes in another order
        return sorted(map(str, value)) if key == "volumes" and value else value

    for name, service in config["services"].items():
        other = overridden["services"][name]
        differing = {
            key
            for key in set(service) | set(other)
            if comparable(key, service.get(key)) != comparable(key, other.get(key))
        }
        assert differing <= {"image", "build", "profiles"}, f"the override changes {differing} of {name}"
    assert overridden["services"]["grafana"]["profiles"] == ["grafana"]
    profiled = [n for n, s in overridden["services"].items() if s.get("profiles")]
    assert sorted(profiled) == ["grafana", "grafana-secret", "workspace"]
    # Built here, never pulled: every image that is not Grafana's has a build section.
    assert all("build" in s for n, s in overridden["services"].items() if n != "grafana")


def test_up_removes_stopped_containers_another_folder_left_and_refuses_to_start_over_a_running_one(monkeypatch):
    """A run killed before `down` in a checkout since deleted leaves its containers on the machine's image store
    (stopped when the engine starts again): `up` from here removes them; a stack running from another folder is
    left alone, and this one does not start over it."""
    from mlsandbox.errors import MlsandboxError
    from mlsandbox.stack.docker.compose import ComposeProject
    from mlsandbox.stack.docker.engine import WORKING_DIR_LABEL

    def container(cid, folder, running):
        return {"Id": cid, "Config": {"Labels": {WORKING_DIR_LABEL: folder}}, "State": {"Running": running}}

    removed, said = [], []
    project = ComposeProject(engine=None, local_images=True, project="mlsandbox-t", say=said.append)
    monkeypatch.setattr(
        ComposeProject,
        "docker",
        lambda self, *args, **kw: removed.append(args) or subprocess.CompletedProcess(args, 0, "", ""),
    )
    here = [container("mine", str(REPO), False), container("gone", "/tmp/ci18", False)]
    monkeypatch.setattr(ComposeProject, "containers", lambda self: here)
    project.remove_strays()
    assert removed == [("rm", "--force", "gone")] and "another folder" in said[0]

    here.append(container("theirs", "/home/ana/mlsandbox", True))
    with pytest.raises(MlsandboxError, match="running from /home/ana/mlsandbox"):
        project.remove_strays()
