"""`mlsandbox calibrate DIR...`: one scenario play whose requests go to several candidate servers at once.

Each candidate gets a room of its own: its model server, its Prometheus (a candidate's rules never see
another candidate's series), its run directory (prediction log, fault switch, ledger, a copy of the timeline).
MLflow, Alertmanager and the alert receiver are shared. Locust plays the scenario once to every room in
parallel; then each room is graded on its own, and the points per item are shown side by side.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import components
from .config import StackConfig
from .layout import Ports
from .native import check_candidate, check_scenario, models_registered, prometheus_config, require_binaries, train_model
from .native_config import InvalidConfig, check_alertmanager, write_alertmanager
from .processes import Started, StartError, port_is_free, run_to_end, start, stop, tail, wait_healthy
from .sandbox import SandboxError
from .state import ScenarioPlay

Say = Callable[[str], None]
# From the base port: the shared MLflow, Alertmanager and alert receiver, then room k's model server at
# base + 10 + 2k and its Prometheus at base + 11 + 2k.
ROOMS_OFFSET = 10
PORTS_PER_ROOM = 2
DEFAULT_BASE_PORT = 31000


@dataclass
class Room:
    """One candidate's own model server and Prometheus."""

    name: str
    candidate_dir: Path
    cfg: StackConfig
    components: list[Started] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return self.cfg.run_dir

    @property
    def server_url(self) -> str:
        return self.cfg.url(self.cfg.model_server_port)

    @property
    def prometheus_url(self) -> str:
        return self.cfg.prometheus_url


def room_names(candidates: list[Path]) -> list[str]:
    """A short unique name per candidate folder (its folder name, numbered when two share one)."""
    names: list[str] = []
    for path in candidates:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.resolve().name).strip("-") or "candidate"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


class Calibration:
    """Rooms for several candidates around one shared MLflow and Alertmanager, under `out_dir`, on ports from
    `base_port` (see ROOMS_OFFSET)."""

    def __init__(
        self,
        candidates: list[Path],
        out_dir: Path,
        base_port: int = DEFAULT_BASE_PORT,
        scrape_interval: str | None = None,
        say: Say = print,
        names: list[str] | None = None,
    ):
        if not candidates:
            raise SandboxError("give at least one candidate folder")
        candidates = [check_candidate(Path(c)) for c in candidates]
        self.out_dir = out_dir.resolve()
        self.say = say
        settings = {"run_dir": self.out_dir / "shared"}
        if scrape_interval:
            settings["scrape_interval"] = scrape_interval
        # The shared services on the block's first ports; each room's two from base + ROOMS_OFFSET.
        self.shared = StackConfig.with_ports(Ports.block(base_port), **settings)
        names = names or room_names(candidates)
        self.rooms = [
            Room(
                name,
                Path(c).resolve(),
                self.shared.model_copy(
                    update={
                        "run_dir": self.out_dir / name,
                        "model_server_port": base_port + ROOMS_OFFSET + PORTS_PER_ROOM * k,
                        "prometheus_port": base_port + ROOMS_OFFSET + PORTS_PER_ROOM * k + 1,
                    }
                ),
            )
            for k, (name, c) in enumerate(zip(names, candidates))
        ]
        self._shared: list[Started] = []

    # --- start and stop -------------------------------------------------------------------------------
    def up(self) -> None:
        """Shared services first (training the model when MLflow has none), then every room; stops what was
        started when anything fails."""
        require_binaries()
        busy = [p for p in self._ports() if not port_is_free(self.shared.host, p)]
        if busy:
            raise SandboxError(f"ports already in use: {', '.join(map(str, busy))} (choose another --base-port)")
        try:
            self._up()
        except BaseException:
            self.down()
            raise

    def _ports(self) -> list[int]:
        s = self.shared
        return [
            s.mlflow_port,
            s.alertmanager_port,
            s.alert_receiver_port,
            *[p for r in self.rooms for p in (r.cfg.model_server_port, r.cfg.prometheus_port)],
        ]

    def _launch(self, spec, into: list[Started], logs: Path) -> Started:
        comp = start(spec, logs)
        into.append(comp)
        return comp

    def _up(self) -> None:
        s = self.shared
        s.run_dir.mkdir(parents=True, exist_ok=True)
        am_config = write_alertmanager(s)
        try:
            check_alertmanager(am_config)
        except InvalidConfig as exc:
            raise SandboxError(f"Alertmanager would not start: {exc}") from None
        self.say("starting MLflow, Alertmanager and the alert receiver (shared) ...")
        mlflow = self._launch(components.mlflow(s), self._shared, s.logs_dir)
        others = [
            self._launch(components.alert_receiver(s), self._shared, s.logs_dir),
            self._launch(components.alertmanager(s, am_config), self._shared, s.logs_dir),
        ]
        self._healthy([mlflow])
        if not models_registered(s.mlflow_url):
            train_model(s, self.say)
        for room in self.rooms:
            if room.run_dir.exists():
                shutil.rmtree(room.run_dir)
            room.run_dir.mkdir(parents=True)
            try:
                prom_config = prometheus_config(room.cfg, room.candidate_dir)
            except SandboxError as exc:
                raise SandboxError(f"{room.name}: {exc}") from None
            self._launch(components.prometheus(room.cfg, prom_config), room.components, room.cfg.logs_dir)
            self._launch(components.model_server(room.cfg, room.candidate_dir), room.components, room.cfg.logs_dir)
        self.say(f"starting {len(self.rooms)} rooms (a model server and a Prometheus each) ...")
        self._healthy(others + [c for r in self.rooms for c in r.components])
        self.say("every room is up: " + ", ".join(f"{r.name} {r.server_url}" for r in self.rooms))

    def _healthy(self, comps: list[Started]) -> None:
        try:
            for comp in comps:
                wait_healthy(comp, self.shared.health_timeout_seconds)
        except StartError as exc:
            raise SandboxError(str(exc)) from None

    def down(self) -> None:
        for room in self.rooms:
            for comp in reversed(room.components):
                stop(comp.pid)
            room.components.clear()
        for comp in reversed(self._shared):
            stop(comp.pid)
        self._shared.clear()

    def __enter__(self) -> "Calibration":
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    # --- play and grade -------------------------------------------------------------------------------
    def play(self, play: ScenarioPlay) -> None:
        """Play the scenario once, headless, to every room at the same time; returns when it is over."""
        from load.targets import Target, write_targets

        check_scenario(play.scenario)
        targets_file = self.out_dir / "targets.json"
        write_targets(targets_file, [Target(name=r.name, url=r.server_url, run_dir=r.run_dir) for r in self.rooms])
        spec = components.load_generator(self.shared, play, headless=True, targets_file=targets_file)
        log = self.shared.layout.log("load-headless")
        self.say(f"playing {play.scenario} to {len(self.rooms)} rooms ...")
        code = run_to_end(spec.argv, log, spec.env, spec.cwd)
        if code != 0:
            raise SandboxError(f"the load generator exited {code}; its log: {log}\n{tail(str(log))}")

    def set_aside(self, label: str) -> None:
        """Move every room's scenario truth (timeline, ledger) into its plays/LABEL/: the next play starts a fresh
        one on the same servers and Prometheus."""
        for room in self.rooms:
            source = room.cfg.layout.scenario
            if source.exists():
                dest = room.run_dir / "plays" / label
                dest.mkdir(parents=True, exist_ok=True)
                shutil.move(str(source), str(dest / source.name))

    def restart_servers(self, quiet: bool = True) -> None:
        """Every room's model server started afresh, as `mlsandbox course check` does before a play: returns
        once each Prometheus has scraped its new server and, with `quiet`, no alert of any room still fires (or
        the course's wait is over)."""
        from .course_session import QUIET_TIMEOUT_SECONDS, RULES_SETTLE_SECONDS
        from .native import wait_first_scrape
        from .rule_health import wait_quiet

        for room in self.rooms:
            old = next(c for c in room.components if c.name == "model-server")
            stop(old.pid)
            room.components.remove(old)
            self._launch(components.model_server(room.cfg, room.candidate_dir), room.components, room.cfg.logs_dir)
        self._healthy([c for r in self.rooms for c in r.components if c.name == "model-server"])
        started = time.time()
        for room in self.rooms:
            wait_first_scrape(room.prometheus_url, self.shared.health_timeout_seconds, since=started)
        time.sleep(RULES_SETTLE_SECONDS)
        deadline = time.time() + (QUIET_TIMEOUT_SECONDS if quiet else 0.0)
        for room in self.rooms:
            wait_quiet(room.prometheus_url, max(0.0, deadline - time.time()))

    def wait_after_play(self, seconds: float) -> None:
        """Wait until `seconds` after the scenario's end (alerts must have had the time to resolve)."""
        from load.truth import read_timeline

        timeline = read_timeline(self.rooms[0].run_dir)
        if timeline is None or not timeline.phases:
            return
        wait = timeline.phases[-1].finish + seconds - time.time()
        if wait > 0:
            self.say(f"waiting {wait:.0f}s for alerts to resolve ...")
            time.sleep(wait)

    def save_metrics(self) -> None:
        """Keep each room's last /metrics body (what a re-grade uses when its server is gone)."""
        import httpx

        for room in self.rooms:
            try:
                response = httpx.get(f"{room.server_url}/metrics", timeout=10)
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                (room.run_dir / "metrics.txt").write_text(response.text)

    def grade(self, rubric) -> dict[str, object]:
        """Grade every room on its own (reports in each room's report/); room name -> its Grade."""
        from grading.cli import run_grading

        grades = {}
        for room in self.rooms:
            grade, _, _ = run_grading(
                room.run_dir, room.prometheus_url, candidate=room.candidate_dir, rubric=rubric, say=lambda _: None
            )
            grades[room.name] = grade
            self.say(f"  {room.name}: {grade.score}%")
        return grades


def side_by_side(grades: dict[str, object]) -> str:
    """Points per rubric item, one column per room, and each incident's detection latency."""
    names = list(grades)
    first = next(iter(grades.values()))
    keys = [i.key for i in first.items]
    width = max(12, *(len(n) for n in names))
    head = f"{'':<28}" + "".join(f"{n[:width]:>{width + 2}}" for n in names)
    lines = [head]
    for k in keys:
        row = f"{k:<28}"
        for n in names:
            item = next(i for i in grades[n].items if i.key == k)
            row += f"{f'{item.points:g}/{item.max_points:g}':>{width + 2}}"
        lines.append(row)
    lines.append(f"{'score %':<28}" + "".join(f"{grades[n].score:>{width + 2}}" for n in names))
    incidents = [d.incident.label for d in first.alerts.detections]
    for k, label in enumerate(incidents):
        row = f"{('caught: ' + label)[:27]:<28}"
        for n in names:
            d = grades[n].alerts.detections[k] if k < len(grades[n].alerts.detections) else None
            row += f"{(f'{d.latency:.0f} s' if d and d.latency is not None else '-'):>{width + 2}}"
        lines.append(row)
    return "\n".join(lines)
