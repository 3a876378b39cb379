"""Locust plays a scenario against the model server.

    locust -f load/locustfile.py --host http://127.0.0.1:8000 --scenario smoke --seed 7 --speed 1 --headless

`CustomerTraffic` sends what the scenario's plan says when it says it (predictions, then delayed labels);
`ScenarioShape` holds enough users for each phase and ends the test when the scenario is over.
The options are also settable from the web UI and the environment (MLSANDBOX_SCENARIO, ...).
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from pathlib import Path

import gevent
from locust import FastHttpUser, LoadTestShape, constant, events, task

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, when run from a checkout

from load.player import REQUEST_TIMEOUT_SECONDS, PhaseError, ScenarioPlayer, phase_index  # noqa: E402
from load.scenario import ScenarioError, load_scenario  # noqa: E402
from load.targets import Target, TargetsError, read_targets  # noqa: E402

log = logging.getLogger("load")
_player: ScenarioPlayer | None = None


@events.init_command_line_parser.add_listener
def _options(parser):
    parser.add_argument(
        "--scenario",
        default="interview",
        env_var="MLSANDBOX_SCENARIO",
        help="A shipped scenario name (smoke, interview, ...) or a scenario file.",
    )
    parser.add_argument(
        "--seed",
        default="",
        env_var="MLSANDBOX_SEED",
        help="Seed of the request stream; default (empty): the scenario's own (a random one with --surprise).",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        env_var="MLSANDBOX_SPEED",
        help="Time compression: 60 plays a minute of scenario in a second.",
    )
    parser.add_argument(
        "--surprise",
        action="store_true",
        default=False,
        env_var="MLSANDBOX_SURPRISE",
        help="Redraw the hidden parameters from the seed (printed nowhere).",
    )
    parser.add_argument(
        "--from-phase",
        default="",
        env_var="MLSANDBOX_FROM_PHASE",
        help="Start at this phase (name or number), going on with the timeline of an interrupted play.",
    )
    parser.add_argument(
        "--run-dir",
        default=os.environ.get("MLSANDBOX_RUN_DIR", "run"),
        include_in_web_ui=False,
        help="Where the hidden timeline and ledger are written.",
    )
    parser.add_argument(
        "--faults-file",
        default=os.environ.get("MLSANDBOX_FAULTS_FILE") or None,
        include_in_web_ui=False,
        help="The model server's fault switch (default: in the run dir).",
    )
    parser.add_argument(
        "--targets",
        default=None,
        include_in_web_ui=False,
        help="A JSON file of several model servers to play to at once (each with its own run "
        "directory); replaces --host, --run-dir and --faults-file.",
    )


@events.init.add_listener
def _check_scenario(environment, **_):
    # A broken scenario (or targets file, or seed) stops Locust before any traffic, with one readable line.
    try:
        load_scenario(environment.parsed_options.scenario)
        targets(environment)
        seed = str(environment.parsed_options.seed).strip()
        if seed and not seed.lstrip("-").isdigit():
            raise ScenarioError(f"--seed: {seed!r} is not a whole number")
        if environment.parsed_options.from_phase:
            phase_index(load_scenario(environment.parsed_options.scenario), environment.parsed_options.from_phase)
    except (ScenarioError, TargetsError, PhaseError) as exc:
        print(f"scenario error: {exc}", file=sys.stderr, flush=True)
        os._exit(2)


def targets(environment) -> list[Target]:
    opts = environment.parsed_options
    if opts.targets:
        return read_targets(Path(opts.targets))
    return [
        Target(
            name="model-server",
            url=environment.host or opts.host,
            run_dir=Path(opts.run_dir),
            faults_path=Path(opts.faults_file) if opts.faults_file else None,
        )
    ]


def player(environment) -> ScenarioPlayer:
    global _player
    if _player is None:
        opts = environment.parsed_options
        scenario = load_scenario(opts.scenario)
        seed = (
            int(opts.seed)
            if str(opts.seed).strip()
            else (random.SystemRandom().randrange(2**31) if opts.surprise else scenario.seed)
        )
        _player = ScenarioPlayer(
            scenario,
            seed,
            opts.speed,
            targets=targets(environment),
            surprise=opts.surprise,
            from_phase=opts.from_phase or None,
        )
        _player.start()
    return _player


@events.test_stop.add_listener
def _stop(environment, **_):
    global _player
    if _player is not None:
        _player.stop("finished" if _player.finished else "stopped")
        _player = None


class CustomerTraffic(FastHttpUser):
    """Sends what the plan says when it says it; to several targets at once, each request goes to every one
    in parallel (so that each sees it at the same time) and each outcome goes to that target's ledger.

    FastHttpUser (geventhttpclient) costs a few times less CPU per request than HttpUser (requests): with several
    targets, the load generator shares two cores with every server it plays to.
    """

    wait_time = constant(0)  # the plan sets the pace
    network_timeout = connection_timeout = REQUEST_TIMEOUT_SECONDS
    concurrency = 64  # connections per user: one per target it sends to at once

    @task
    def act(self):
        p = player(self.environment)
        action = p.next_action()
        if action is None:
            gevent.sleep(0.5)
            return
        delay = action.due - time.time()
        if delay > 0:
            gevent.sleep(delay)
        try:
            if action.kind == "predict":
                ids = self._each_target(p, lambda t: self._predict(p, t, action))
                if action.request.feedback_delay_seconds is not None:
                    answered = {name: rid for name, rid in ids.items() if rid}
                    p.schedule_feedback(
                        answered, bool(action.request.true_label), time.time() + action.request.feedback_delay_seconds
                    )
            elif action.kind == "feedback":
                self._each_target(p, lambda t: self._feedback(p, t, action), only=set(action.request_ids))
        finally:
            p.done(action)

    def _each_target(self, p: ScenarioPlayer, send, only: set[str] | None = None) -> dict:
        chosen = [t for t in p.targets if only is None or t.name in only]
        if len(chosen) == 1:
            return {chosen[0].name: send(chosen[0])}
        jobs = {t.name: gevent.spawn(send, t) for t in chosen}
        gevent.joinall(list(jobs.values()))
        return {name: job.value for name, job in jobs.items()}

    def _predict(self, p: ScenarioPlayer, target: Target, action) -> str | None:
        """Send one prediction; its request id when answered with a 2xx."""
        req = action.request
        outcome, request_id = "failures", None
        sent = time.perf_counter()
        with self.client.post(
            f"{target.url}/predict",
            data=req.body,
            headers={"content-type": "application/json"},
            name="/predict",
            catch_response=True,
        ) as resp:
            code = resp.status_code or 0
            if 200 <= code < 300:
                outcome = "ok"
                try:
                    request_id = resp.json()["request_id"]
                except (ValueError, KeyError, TypeError):
                    request_id = None
            elif 400 <= code < 500:
                outcome = "client_errors"
            elif code >= 500:
                outcome = "server_errors"
        p.ledgers[target.name].record_request(
            time.time(), action.phase, json.loads(req.body), outcome, time.perf_counter() - sent
        )
        return request_id

    def _feedback(self, p: ScenarioPlayer, target: Target, action) -> None:
        resp = self.client.post(
            f"{target.url}/feedback",
            json={"request_id": action.request_ids[target.name], "churned": action.churned},
            name="/feedback",
        )
        if resp.status_code == 200:
            p.ledgers[target.name].record_label(time.time(), action.phase)


class ScenarioShape(LoadTestShape):
    def tick(self):
        p = player(self.runner.environment)
        p.advance()
        if p.finished:
            return None
        return p.users_needed(), 50
