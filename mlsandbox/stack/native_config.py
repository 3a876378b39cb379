"""Native copies of prometheus/prometheus.yml and alertmanager/alertmanager.yml.

Those files are written for compose (service names, /etc/prometheus/alerts). Natively the same jobs,
rules and routes apply with local addresses and ports, the candidate's alerts folder, and the configured
interval; the copies go into the run directory and are checked with promtool and amtool before use.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from mlsandbox.config import REPO_ROOT, StackConfig
from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import Ports

PROMETHEUS_SOURCE = REPO_ROOT / "prometheus" / "prometheus.yml"
ALERTMANAGER_SOURCE = REPO_ROOT / "alertmanager" / "alertmanager.yml"
# Where compose mounts the candidate's alerts folder; natively it is the folder itself.
COMPOSE_ALERTS_DIR = "/etc/prometheus/alerts"
HEADER = "# Written by `mlsandbox up` from {source}; edit that file, not this one.\n"


def service_addresses(cfg: StackConfig) -> dict[str, str]:
    """Compose's host:port of each service (its service name and the default port, Prometheus itself as
    localhost) -> its native address."""
    native = cfg.ports.by_component()
    mapping = {
        f"{'localhost' if name == 'prometheus' else name}:{port}": f"{cfg.host}:{native[name]}"
        for name, port in Ports.default().by_component().items()
    }
    return mapping


def render_prometheus(cfg: StackConfig, candidate_dir: Path) -> dict:
    config = yaml.safe_load(PROMETHEUS_SOURCE.read_text())
    mapping = service_addresses(cfg)
    _interval(cfg, config)
    rules = str(cfg.layout.prometheus_rules.resolve())
    config["rule_files"] = [p.replace(COMPOSE_ALERTS_DIR, rules) for p in config.get("rule_files", [])]
    _paths(cfg, config)
    static = [sc for am in config.get("alerting", {}).get("alertmanagers", []) for sc in am.get("static_configs", [])]
    static += [sc for job in config["scrape_configs"] for sc in job.get("static_configs", [])]
    for sc in static:
        sc["targets"] = [mapping.get(t, t) for t in sc["targets"]]
    return config


def _paths(cfg: StackConfig, config: dict) -> None:
    """Under a path of their own (a session with a room, see components.py): where Prometheus's and
    Alertmanager's metrics and Alertmanager's API are."""
    paths = {"prometheus": cfg.prometheus_path, "alertmanager": cfg.alertmanager_path}
    for job in config["scrape_configs"]:
        if paths.get(job["job_name"]):
            job["metrics_path"] = paths[job["job_name"]] + "/metrics"
    for am in config.get("alerting", {}).get("alertmanagers", []):
        if cfg.alertmanager_path:
            am["path_prefix"] = cfg.alertmanager_path


def _interval(cfg: StackConfig, config: dict) -> None:
    """The configured scrape and evaluation interval; a scrape may not take longer (the tests scrape every second)."""
    config["global"]["scrape_interval"] = cfg.scrape_interval
    config["global"]["evaluation_interval"] = cfg.scrape_interval
    for job in config["scrape_configs"]:
        if "scrape_timeout" in job and _seconds(job["scrape_timeout"]) > _seconds(cfg.scrape_interval):
            job["scrape_timeout"] = cfg.scrape_interval


def compose_prometheus(cfg: StackConfig) -> dict:
    """prometheus/prometheus.yml for a compose session with a room: the same, with the paths above."""
    config = yaml.safe_load(PROMETHEUS_SOURCE.read_text())
    _paths(cfg, config)
    return config


def cluster_prometheus(cfg: StackConfig, alerts_dir: str) -> dict:
    """prometheus/prometheus.yml for a session on a cluster: the same service names (a Service each in the
    session's namespace), the room's paths, the session's interval, and the candidate's rule files in
    `alerts_dir` (their workspace, mounted read-only)."""
    config = compose_prometheus(cfg)
    _interval(cfg, config)
    config["rule_files"] = [p.replace(COMPOSE_ALERTS_DIR, alerts_dir) for p in config.get("rule_files", [])]
    return config


def _seconds(duration: str) -> float:
    """A Prometheus duration as StackConfig allows it (500ms, 5s, 1m) in seconds."""
    for unit, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if duration.endswith(unit) and duration[: -len(unit)].isdigit():
            return int(duration[: -len(unit)]) * factor
    raise ValueError(f"not a duration: {duration!r}")


def render_alertmanager(cfg: StackConfig) -> dict:
    config = yaml.safe_load(ALERTMANAGER_SOURCE.read_text())
    for compose_addr, native in service_addresses(cfg).items():
        for receiver in config.get("receivers", []):
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = hook["url"].replace(f"//{compose_addr}/", f"//{native}/")
    return config


def _write(path: Path, source: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER.format(source=source.relative_to(REPO_ROOT)) + yaml.safe_dump(config, sort_keys=False))
    return path


RULE_SUFFIXES = (".yml", ".yaml")


def copy_rules(source: Path, dest: Path) -> list[str]:
    """The rule files of a candidate's alerts/ folder (`source`) copied into `dest`, plain files only; the links
    left out, by name. A link could point at a file the candidate must not see, which a process outside their
    room (Prometheus, the grader) would read and show."""
    if source.is_symlink():
        return [source.name]
    links, files = [], sorted(source.glob("*")) if source.is_dir() else []
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for path in files:
        if path.is_symlink():
            links.append(path.name)
        elif path.suffix in RULE_SUFFIXES and path.is_file():
            shutil.copyfile(path, dest / path.name)
    return links


def write_prometheus(cfg: StackConfig, candidate_dir: Path) -> Path:
    links = copy_rules(candidate_dir / "alerts", cfg.layout.prometheus_rules)
    if links:
        raise MlsandboxError(f"rules not loaded: {', '.join(links)} is a link; Prometheus loads plain files only")
    return _write(cfg.layout.prometheus_config, PROMETHEUS_SOURCE, render_prometheus(cfg, candidate_dir))


def write_alertmanager(cfg: StackConfig) -> Path:
    return _write(cfg.layout.alertmanager_config, ALERTMANAGER_SOURCE, render_alertmanager(cfg))


def _check(argv: list[str], refused: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        out = result.stdout + result.stderr
        lines = [ln.strip() for ln in out.splitlines() if "FAILED" in ln or "rror" in ln]
        raise MlsandboxError(f"{refused}: {'; '.join(lines) or out.strip()}")


def check_prometheus(path: Path, refused: str = "Prometheus would not start") -> None:
    """promtool check config (which also checks every rule file); MlsandboxError `refused: promtool's words`."""
    _check(["promtool", "check", "config", str(path)], refused)


def check_alertmanager(path: Path) -> None:
    _check(["amtool", "check-config", str(path)], "Alertmanager would not start")


def prometheus_config(cfg: StackConfig, candidate: Path, refused: str = "Prometheus would not start") -> Path:
    """Prometheus's native config for this candidate, checked (with the candidate's rule files) by promtool."""
    path = write_prometheus(cfg, candidate)
    check_prometheus(path, refused)
    return path


def alertmanager_config(cfg: StackConfig) -> Path:
    """Alertmanager's native config, checked by amtool."""
    path = write_alertmanager(cfg)
    check_alertmanager(path)
    return path
