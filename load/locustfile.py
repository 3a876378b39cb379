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
from locust import HttpUser, LoadTestShape, constant, events, task

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, when run from a checkout

from load.player import REQUEST_TIMEOUT_SECONDS, ScenarioPlayer  # noqa: E402
from load.scenario import ScenarioError, load_scenario  # noqa: E402

log = logging.getLogger("load")
_player: ScenarioPlayer | None = None


@events.init_command_line_parser.add_listener
def _options(parser):
    parser.add_argument("--scenario", default="interview", env_var="MLSANDBOX_SCENARIO",
                        help="A shipped scenario name (smoke, interview, ...) or a scenario file.")
    parser.add_argument("--seed", type=int, default=None, env_var="MLSANDBOX_SEED",
                        help="Seed of the request stream; default: the scenario's own (a random one with --surprise).")
    parser.add_argument("--speed", type=float, default=1.0, env_var="MLSANDBOX_SPEED",
                        help="Time compression: 60 plays a minute of scenario in a second.")
    parser.add_argument("--surprise", action="store_true", default=False, env_var="MLSANDBOX_SURPRISE",
                        help="Redraw the hidden parameters from the seed (printed nowhere).")
    parser.add_argument("--run-dir", default=os.environ.get("MLSANDBOX_RUN_DIR", "run"), include_in_web_ui=False,
                        help="Where the hidden timeline and ledger are written.")
    parser.add_argument("--faults-file", default=os.environ.get("MLSANDBOX_FAULTS_FILE") or None,
                        include_in_web_ui=False, help="The model server's fault switch (default: in the run dir).")


@events.init.add_listener
def _check_scenario(environment, **_):
    # A broken scenario stops Locust before any traffic, with one readable line.
    try:
        load_scenario(environment.parsed_options.scenario)
    except ScenarioError as exc:
        print(f"scenario error: {exc}", file=sys.stderr, flush=True)
        os._exit(2)


def player(environment) -> ScenarioPlayer:
    global _player
    if _player is None:
        opts = environment.parsed_options
        scenario = load_scenario(opts.scenario)
        seed = opts.seed if opts.seed is not None else (
            random.SystemRandom().randrange(2**31) if opts.surprise else scenario.seed)
        _player = ScenarioPlayer(scenario, seed, opts.speed, Path(opts.run_dir), surprise=opts.surprise,
                                 faults_path=Path(opts.faults_file) if opts.faults_file else None)
        _player.start()
    return _player


@events.test_stop.add_listener
def _stop(environment, **_):
    global _player
    if _player is not None:
        _player.stop("finished" if _player.finished else "stopped")
        _player = None


class CustomerTraffic(HttpUser):
    wait_time = constant(0)  # the plan sets the pace

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
                self._predict(p, action)
            elif action.kind == "feedback":
                self._feedback(p, action)
        finally:
            p.done(action)

    def _predict(self, p: ScenarioPlayer, action) -> None:
        req = action.request
        outcome = "failures"
        sent = time.perf_counter()
        with self.client.post("/predict", data=req.body, headers={"content-type": "application/json"},
                              name="/predict", timeout=REQUEST_TIMEOUT_SECONDS, catch_response=True) as resp:
            code = resp.status_code or 0
            if 200 <= code < 300:
                outcome = "ok"
                if req.feedback_delay_seconds is not None:
                    p.schedule_feedback(resp.json()["request_id"], bool(req.true_label),
                                        time.time() + req.feedback_delay_seconds)
            elif 400 <= code < 500:
                outcome = "client_errors"
            elif code >= 500:
                outcome = "server_errors"
        p.ledger.record_request(time.time(), action.phase, json.loads(req.body), outcome,
                                time.perf_counter() - sent)

    def _feedback(self, p: ScenarioPlayer, action) -> None:
        resp = self.client.post("/feedback", json={"request_id": action.request_id, "churned": action.churned},
                                name="/feedback", timeout=REQUEST_TIMEOUT_SECONDS)
        if resp.status_code == 200:
            p.ledger.record_label(time.time(), action.phase)


class ScenarioShape(LoadTestShape):
    def tick(self):
        p = player(self.runner.environment)
        p.advance()
        if p.finished:
            return None
        return p.users_needed(), 50
