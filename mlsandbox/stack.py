"""Bring the native stack up and down, and report its state."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import components
from .config import StackConfig
from .native_config import (
    InvalidConfig,
    check_alertmanager,
    check_prometheus,
    write_alertmanager,
    write_prometheus,
)
from .processes import (
    RunningComponent,
    StartError,
    is_alive,
    is_healthy,
    load_state,
    save_state,
    start,
    stop,
    tail,
    wait_healthy,
)

Say = Callable[[str], None]


class StackError(RuntimeError):
    """A readable reason the stack cannot do what was asked."""


def check_scenario(name_or_path: str) -> None:
    from load.scenario import ScenarioError, load_scenario

    try:
        load_scenario(name_or_path)
    except ScenarioError as exc:
        raise StackError(str(exc)) from None


def missing_binaries() -> list[str]:
    return [b for b in components.SYSTEM_BINARIES if shutil.which(b) is None]


def require_binaries() -> None:
    missing = missing_binaries()
    if missing:
        packages = sorted({components.SYSTEM_BINARIES[b] for b in missing})
        raise StackError(
            f"{', '.join(missing)} not found: install with `sudo apt-get install "
            f"{' '.join(packages)}` (or run `make up`, which does it)"
        )


def champion_exists(cfg: StackConfig) -> bool:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from model_service.settings import MODEL_ALIAS, MODEL_NAME

    try:
        MlflowClient(tracking_uri=cfg.mlflow_url).get_model_version_by_alias(MODEL_NAME, MODEL_ALIAS)
    except MlflowException:
        return False
    return True


def train_model(cfg: StackConfig, say: Say) -> None:
    say("training the churn model and registering churn-classifier@champion in MLflow ...")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_service.train",
            "--tracking-uri",
            cfg.mlflow_url,
            "--seed",
            str(cfg.training_seed),
        ],
        capture_output=True,
        text=True,
    )
    log = cfg.logs_dir / "training.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise StackError(f"training failed; its log: {log}\n{result.stderr[-2000:]}")
    for line in result.stdout.splitlines():
        say("  " + line)


@dataclass
class Stack:
    cfg: StackConfig
    say: Say = print

    def running(self) -> list[RunningComponent]:
        comps, _ = load_state(self.cfg.state_path)
        return [c for c in comps if is_alive(c.pid)]

    def up(self, candidate_dir: Path, play: components.ScenarioPlay | None = None) -> list[RunningComponent]:
        """Start MLflow (training the model if needed), Alertmanager, Prometheus, the model server on the
        candidate's code and, unless `play` is None, Locust playing the scenario."""
        cfg = self.cfg
        candidate_dir = candidate_dir.resolve()
        if not (candidate_dir / "app" / "main.py").exists():
            raise StackError(f"{candidate_dir} is not a candidate folder: it has no app/main.py")
        if play is not None:
            check_scenario(play.scenario)
        if self.running():
            raise StackError("the sandbox is already running; `mlsandbox down` first (or `mlsandbox status`)")
        require_binaries()
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        prom_config = write_prometheus(cfg, candidate_dir)
        am_config = write_alertmanager(cfg)
        try:
            check_prometheus(prom_config)
        except InvalidConfig as exc:
            raise StackError(f"Prometheus would not start: {exc}") from None
        try:
            check_alertmanager(am_config)
        except InvalidConfig as exc:
            raise StackError(f"Alertmanager would not start: {exc}") from None

        started: list[RunningComponent] = []
        extra = {"candidate_dir": str(candidate_dir), "started_at": time.time()}

        def launch(spec) -> RunningComponent:
            comp = start(spec, cfg.logs_dir)
            started.append(comp)
            save_state(cfg.state_path, started, extra)
            self.say(f"starting {spec.name} ...")
            took = wait_healthy(comp, cfg.health_timeout_seconds)
            self.say(f"  {spec.name} healthy in {took:.1f}s at {spec.url}")
            return comp

        try:
            launch(components.mlflow(cfg))
            if not champion_exists(cfg):
                train_model(cfg, self.say)
            launch(components.alert_receiver(cfg))
            launch(components.alertmanager(cfg, am_config))
            launch(components.prometheus(cfg, prom_config))
            launch(components.model_server(cfg, candidate_dir))
            if play is not None:
                launch(components.load_generator(cfg, play))
        except (StartError, StackError) as exc:
            self.say("start-up failed; stopping what was started")
            for comp in reversed(started):
                stop(comp.pid)
            cfg.state_path.unlink(missing_ok=True)
            raise StackError(str(exc)) from None
        return started

    def down(self) -> list[str]:
        comps, _ = load_state(self.cfg.state_path)
        stopped = []
        for comp in reversed(comps):
            stop(comp.pid)
            stopped.append(comp.name)
        self.cfg.state_path.unlink(missing_ok=True)
        return stopped

    def status(self) -> list[dict]:
        comps, _ = load_state(self.cfg.state_path)
        return [
            {
                "name": c.name,
                "pid": c.pid,
                "port": c.port,
                "url": c.url,
                "alive": is_alive(c.pid),
                "healthy": is_healthy(c.health_url),
                "log": c.log,
            }
            for c in comps
        ]

    def play(self, play: components.ScenarioPlay) -> int:
        """Play a scenario headless in the foreground against the running model server; Locust's exit code."""
        check_scenario(play.scenario)
        if not any(c.name == "model-server" for c in self.running()):
            raise StackError("the sandbox is not running; `mlsandbox up --no-load` first")
        if any(c.name == "load" for c in self.running()):
            raise StackError("a scenario is already playing (the `load` component); `mlsandbox down` stops it")
        spec = components.load_generator(self.cfg, play, headless=True)
        log = self.cfg.logs_dir / "load-headless.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                spec.argv,
                cwd=spec.cwd,
                env={**os.environ, **spec.env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            code = proc.wait()
        finally:
            stop(proc.pid)  # Ctrl-C or an error here must not leave Locust running
        if code != 0:
            raise StackError(f"the load generator exited {code}; its log: {log}\n{tail(str(log))}")
        return code

    def reload_rules(self) -> None:
        """Check the candidate's rules with promtool, then ask Prometheus to load them."""
        import httpx

        _, extra = load_state(self.cfg.state_path)
        if "candidate_dir" not in extra:
            raise StackError("the sandbox is not running; `mlsandbox up` first")
        prom_config = write_prometheus(self.cfg, Path(extra["candidate_dir"]))
        try:
            check_prometheus(prom_config)
        except InvalidConfig as exc:
            raise StackError(f"rules not loaded: {exc}") from None
        response = httpx.post(f"{self.cfg.prometheus_url}/-/reload", timeout=10)
        if response.status_code != 200:
            raise StackError(f"Prometheus refused the reload: {response.text.strip()}")
