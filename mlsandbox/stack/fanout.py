"""One scenario play whose requests go to several candidate servers at once (`mlsandbox calibrate`, the grader's
tests, incident packs).

Each candidate gets a stack of its own: its model server, its Prometheus (a candidate's rules never see another
candidate's series), its run directory (prediction log, fault switch, ledger, a copy of the timeline). MLflow,
Alertmanager and the alert receiver are shared. Locust plays the scenario once to every candidate in parallel;
then each is graded on its own, and the points per item are shown side by side.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from load.targets import Target, write_targets
from load.truth import read_timeline
from mlsandbox.config import StackConfig
from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import Ports
from mlsandbox.say import Say
from mlsandbox.stack import components
from mlsandbox.stack.native_config import alertmanager_config, prometheus_config
from mlsandbox.stack.preflight import check_candidate, check_scenario, require_binaries
from mlsandbox.stack.processes import Component, port_is_free, run_to_end, start, stop, tail, wait_healthy
from mlsandbox.stack.prometheus import wait_first_scrape, wait_quiet
from mlsandbox.stack.state import ScenarioPlay
from mlsandbox.stack.training import models_registered, seed_mlflow_store, train_model

# From the base port: the shared MLflow, Alertmanager and alert receiver, then candidate k's model server at
# base + 10 + 2k and its Prometheus at base + 11 + 2k.
ROOMS_OFFSET = 10
PORTS_PER_ROOM = 2
DEFAULT_BASE_PORT = 31000


@dataclass
class CandidateStack:
    """One candidate's own model server and Prometheus."""

    name: str
    candidate_dir: Path
    cfg: StackConfig
    components: list[Component] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return self.cfg.run_dir

    @property
    def server_url(self) -> str:
        return self.cfg.url(self.cfg.ports.model_server)

    @property
    def prometheus_url(self) -> str:
        return self.cfg.prometheus_url


def stack_names(candidates: list[Path]) -> list[str]:
    """A short unique name per candidate folder (its folder name, numbered when two share one)."""
    names: list[str] = []
    for path in candidates:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.resolve().name).strip("-") or "candidate"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


class Fanout:
    """Stacks for several candidates around one shared MLflow and Alertmanager, under `out_dir`, on ports from
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
            raise MlsandboxError("give at least one candidate folder")
        candidates = [check_candidate(Path(c)) for c in candidates]
        self.out_dir = out_dir.resolve()
        self.say = say
        settings = {"run_dir": self.out_dir / "shared"}
        if scrape_interval:
            settings["scrape_interval"] = scrape_interval
        # The shared services on the block's first ports; each room's two from base + ROOMS_OFFSET.
        self.shared = StackConfig(ports=Ports.block(base_port), **settings)
        names = names or stack_names(candidates)
        self.stacks = [
            CandidateStack(
                name,
                Path(c).resolve(),
                self.shared.with_ports(
                    model_server=base_port + ROOMS_OFFSET + PORTS_PER_ROOM * k,
                    prometheus=base_port + ROOMS_OFFSET + PORTS_PER_ROOM * k + 1,
                ).model_copy(update={"run_dir": self.out_dir / name}),
            )
            for k, (name, c) in enumerate(zip(names, candidates))
        ]
        self._shared: list[Component] = []

    # --- start and stop -------------------------------------------------------------------------------
    def up(self) -> None:
        """Shared services first (training the model when MLflow has none), then every room; stops what was
        started when anything fails."""
        require_binaries()
        busy = [p for p in self._ports() if not port_is_free(self.shared.host, p)]
        if busy:
            raise MlsandboxError(f"ports already in use: {', '.join(map(str, busy))} (choose another --base-port)")
        try:
            self._up()
        except BaseException:
            self.down()
            raise

    def _ports(self) -> list[int]:
        s = self.shared
        return [
            s.ports.mlflow,
            s.ports.alertmanager,
            s.ports.alert_receiver,
            *[p for r in self.stacks for p in (r.cfg.ports.model_server, r.cfg.ports.prometheus)],
        ]

    def _launch(self, spec, into: list[Component], logs: Path) -> Component:
        comp = start(spec, logs)
        into.append(comp)
        return comp

    def _up(self) -> None:
        s = self.shared
        s.run_dir.mkdir(parents=True, exist_ok=True)
        am_config = alertmanager_config(s)
        self.say("starting MLflow, Alertmanager and the alert receiver (shared) ...")
        seed_mlflow_store(s, self.say)
        mlflow = self._launch(components.mlflow(s), self._shared, s.layout.logs)
        others = [
            self._launch(components.alert_receiver(s), self._shared, s.layout.logs),
            self._launch(components.alertmanager(s, am_config), self._shared, s.layout.logs),
        ]
        self._healthy([mlflow])
        if not models_registered(s.mlflow_url):
            train_model(s, self.say)
        for room in self.stacks:
            if room.run_dir.exists():
                shutil.rmtree(room.run_dir)
            room.run_dir.mkdir(parents=True)
            prom_config = prometheus_config(room.cfg, room.candidate_dir, f"{room.name}: Prometheus would not start")
            self._launch(components.prometheus(room.cfg, prom_config), room.components, room.cfg.layout.logs)
            self._launch(components.model_server(room.cfg, room.candidate_dir), room.components, room.cfg.layout.logs)
        self.say(f"starting {len(self.stacks)} rooms (a model server and a Prometheus each) ...")
        self._healthy(others + [c for r in self.stacks for c in r.components])
        self.say("every room is up: " + ", ".join(f"{r.name} {r.server_url}" for r in self.stacks))

    def _healthy(self, comps: list[Component]) -> None:
        for comp in comps:
            wait_healthy(comp, self.shared.health_timeout_seconds)

    def down(self) -> None:
        for room in self.stacks:
            for comp in reversed(room.components):
                stop(comp.pid)
            room.components.clear()
        for comp in reversed(self._shared):
            stop(comp.pid)
        self._shared.clear()

    def __enter__(self) -> "Fanout":
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    # --- play and grade -------------------------------------------------------------------------------
    def play(self, play: ScenarioPlay) -> None:
        """Play the scenario once, headless, to every room at the same time; returns when it is over."""
        check_scenario(play.scenario)
        targets_file = self.out_dir / "targets.json"
        write_targets(targets_file, [Target(name=r.name, url=r.server_url, run_dir=r.run_dir) for r in self.stacks])
        spec = components.load_generator(self.shared, play, headless=True, targets_file=targets_file)
        log = self.shared.layout.log("load-headless")
        self.say(f"playing {play.scenario} to {len(self.stacks)} rooms ...")
        code = run_to_end(spec.argv, log, spec.env, spec.cwd)
        if code != 0:
            raise MlsandboxError(f"the load generator exited {code}; its log: {log}\n{tail(str(log))}")

    def set_aside(self, label: str) -> None:
        """Move every room's scenario truth (timeline, ledger) into its plays/LABEL/: the next play starts a fresh
        one on the same servers and Prometheus."""
        for room in self.stacks:
            source = room.cfg.layout.scenario
            if source.exists():
                dest = room.run_dir / "plays" / label
                dest.mkdir(parents=True, exist_ok=True)
                shutil.move(str(source), str(dest / source.name))

    def restart_servers(self, settle_seconds: float, quiet_seconds: float) -> None:
        """Every room's model server started afresh, as `mlsandbox course check` does before a play: returns
        once each Prometheus has scraped its new server and evaluated its rules on it (`settle_seconds`) and no
        alert of any room still fires (or `quiet_seconds` passed)."""
        for room in self.stacks:
            old = next(c for c in room.components if c.name == "model-server")
            stop(old.pid)
            room.components.remove(old)
            self._launch(components.model_server(room.cfg, room.candidate_dir), room.components, room.cfg.layout.logs)
        self._healthy([c for r in self.stacks for c in r.components if c.name == "model-server"])
        started = time.time()
        for room in self.stacks:
            wait_first_scrape(room.prometheus_url, self.shared.health_timeout_seconds, since=started)
        time.sleep(settle_seconds)
        deadline = time.time() + quiet_seconds
        for room in self.stacks:
            wait_quiet(room.prometheus_url, max(0.0, deadline - time.time()))

    def wait_after_play(self, seconds: float) -> None:
        """Wait until `seconds` after the scenario's end (alerts must have had the time to resolve)."""
        timeline = read_timeline(self.stacks[0].run_dir)
        if timeline is None or not timeline.phases:
            return
        wait = timeline.phases[-1].finish + seconds - time.time()
        if wait > 0:
            self.say(f"waiting {wait:.0f}s for alerts to resolve ...")
            time.sleep(wait)

    def save_metrics(self) -> None:
        """Keep each room's last /metrics body (what a re-grade uses when its server is gone)."""
        for room in self.stacks:
            try:
                response = httpx.get(f"{room.server_url}/metrics", timeout=10)
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                (room.run_dir / "metrics.txt").write_text(response.text)

    def grade(self, rubric) -> dict[str, object]:
        """Grade every room on its own (reports in each room's report/); room name -> its Grade."""
        from grading.api import run_grading

        grades = {}
        for room in self.stacks:
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


def calibrate(
    candidates: list[Path],
    play: ScenarioPlay,
    rubric,
    out: Path,
    base_port: int = DEFAULT_BASE_PORT,
    scrape_interval: str | None = None,
    say: Say = print,
) -> tuple[dict[str, object], dict[str, dict]]:
    """Play `play` to every candidate at once, grade each with `rubric` (a Rubric); their Grades by name, and the
    summary also written to OUT/calibration.json (score, points per item, report folder)."""
    check_scenario(play.scenario)
    fanout = Fanout(candidates, out, base_port, scrape_interval, say)
    with fanout:
        fanout.play(play)
        fanout.wait_after_play(rubric.tolerances.resolve_grace_seconds)
        fanout.save_metrics()
        say("grading ...")
        grades = fanout.grade(rubric)
    summary = {
        name: {
            "score": g.score,
            "items": {i.key: i.points for i in g.items},
            "report": str(fanout.out_dir / name / "report"),
        }
        for name, g in grades.items()
    }
    (fanout.out_dir / "calibration.json").write_text(json.dumps(summary, indent=2))
    return grades, summary
