"""What a re-grade needs of an ended session: its rules as Prometheus had them loaded, and a Prometheus serving
a copy of its data with those rules (on a free port, no scrape target, nothing deleted by retention)."""

from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path

import yaml

from mlsandbox.config import StackConfig
from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import Ports, RunLayout
from mlsandbox.say import Say
from mlsandbox.stack.components import prometheus as prometheus_spec
from mlsandbox.stack.native_config import RULE_SUFFIXES
from mlsandbox.stack.processes import start, stop, wait_healthy


def _duration(seconds: float) -> str:
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{int(seconds * 1000)}ms"


def rule_files_from_api(data: dict) -> dict[str, str]:
    """Prometheus's /api/v1/rules answer as rule files (one per file it loaded, named after it)."""
    files: dict[str, list[dict]] = {}
    for group in data.get("data", {}).get("groups", []):
        rules = []
        for r in group.get("rules", []):
            rule = {"alert": r["name"]} if r.get("type") == "alerting" else {"record": r["name"]}
            rule["expr"] = r["query"]
            if r.get("duration"):
                rule["for"] = _duration(r["duration"])
            if r.get("keepFiringFor"):
                rule["keep_firing_for"] = _duration(r["keepFiringFor"])
            if r.get("labels"):
                rule["labels"] = r["labels"]
            if r.get("annotations"):
                rule["annotations"] = r["annotations"]
            rules.append(rule)
        entry = {"name": group["name"], "rules": rules}
        if group.get("interval"):
            entry["interval"] = _duration(group["interval"])
        name = Path(group.get("file") or "rules.yml").name
        files.setdefault(name if name.endswith(RULE_SUFFIXES) else f"{name}.yml", []).append(entry)
    return {name: yaml.safe_dump({"groups": groups}, sort_keys=False) for name, groups in files.items()}


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ArchivedPrometheus:
    """`with ArchivedPrometheus(run, rules_dir, interval) as url:` a Prometheus on a copy of the run's TSDB."""

    def __init__(self, run: RunLayout, rules_dir: Path, interval: str, say: Say = print):
        self.run, self.rules_dir, self.interval, self.say = run, rules_dir, interval, say
        self._tmp: Path | None = None
        self._pid: int | None = None

    def __enter__(self) -> str:
        if not self.run.prometheus_data.exists():
            raise MlsandboxError(f"no Prometheus data in {self.run.prometheus_data}")
        self._tmp = Path(tempfile.mkdtemp(prefix="mlsandbox-regrade-"))
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self) -> str:
        ports = Ports.default().model_copy(update={"prometheus": _free_port("127.0.0.1")})
        cfg = StackConfig(run_dir=self._tmp, ports=ports, scrape_interval=self.interval)
        shutil.copytree(self.run.prometheus_data, cfg.layout.prometheus_data, ignore=shutil.ignore_patterns("lock"))
        rules = sorted(str(p.resolve()) for p in self.rules_dir.glob("*") if p.suffix in (".yml", ".yaml"))
        config = {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": rules,
            "scrape_configs": [],
        }
        cfg.layout.prometheus_config.write_text(yaml.safe_dump(config, sort_keys=False))
        spec = prometheus_spec(cfg, cfg.layout.prometheus_config)
        # The archive's samples are as old as the session: keep every one of them.
        spec.argv.append("--storage.tsdb.retention.time=100y")
        self.say(f"starting a Prometheus on a copy of {self.run.prometheus_data} ...")
        comp = start(spec, cfg.layout.logs)
        self._pid = comp.pid
        wait_healthy(comp, cfg.health_timeout_seconds)
        return comp.url

    def __exit__(self, *exc) -> None:
        if self._pid is not None:
            stop(self._pid)
            self._pid = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
