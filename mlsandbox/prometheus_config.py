"""The native copy of prometheus/prometheus.yml: same jobs and rules, local addresses and paths."""
from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from .config import REPO_ROOT, StackConfig

SOURCE = REPO_ROOT / "prometheus" / "prometheus.yml"
# Where compose mounts the candidate's alerts folder; natively it is the folder itself.
COMPOSE_ALERTS_DIR = "/etc/prometheus/alerts"


def _native_targets(cfg: StackConfig) -> dict[str, str]:
    return {
        "model-server:8000": f"{cfg.host}:{cfg.model_server_port}",
        "localhost:9090": f"{cfg.host}:{cfg.prometheus_port}",
        "alertmanager:9093": f"{cfg.host}:{cfg.alertmanager_port}",
    }


def render_native(cfg: StackConfig, candidate_dir: Path) -> dict:
    config = yaml.safe_load(SOURCE.read_text())
    mapping = _native_targets(cfg)
    config["global"]["scrape_interval"] = cfg.scrape_interval
    config["global"]["evaluation_interval"] = cfg.scrape_interval
    alerts = str((candidate_dir / "alerts").resolve())
    config["rule_files"] = [p.replace(COMPOSE_ALERTS_DIR, alerts) for p in config.get("rule_files", [])]
    for am in config.get("alerting", {}).get("alertmanagers", []):
        for sc in am.get("static_configs", []):
            sc["targets"] = [mapping.get(t, t) for t in sc["targets"]]
    for job in config["scrape_configs"]:
        for sc in job.get("static_configs", []):
            sc["targets"] = [mapping.get(t, t) for t in sc["targets"]]
    return config


def write_native(cfg: StackConfig, candidate_dir: Path) -> Path:
    out = cfg.run_dir / "prometheus" / "prometheus.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `mlsandbox up` from prometheus/prometheus.yml; edit that file, not this one.\n"
    out.write_text(header + yaml.safe_dump(render_native(cfg, candidate_dir), sort_keys=False))
    return out


class InvalidRules(ValueError):
    pass


def check_config(path: Path) -> None:
    """promtool check config (which also checks every rule file); InvalidRules with promtool's words."""
    result = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        lines = [ln for ln in (result.stdout + result.stderr).splitlines() if "FAILED" in ln or "rror" in ln]
        raise InvalidRules("; ".join(lines) or result.stdout + result.stderr)
