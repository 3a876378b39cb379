"""`mlsandbox incident make`: play a cause on a throwaway stack serving the reference solution (so that Prometheus
has a history to export), then write the pack: candidate/ (data that opens anywhere, a brief and a notebook) and
interviewer/ (the answer key).

The stack is `mlsandbox calibrate`'s fan-out, with one candidate; several packs can share it (the tests make one per cause).
Times in the pack are on a fictional calendar: wall seconds since the play's start, times the compression, from
the pack's start date.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import defaultdict, deque
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from load.traffic import plan_phase
from load.truth import read_timeline
from mlsandbox.incidents.causes import LABEL_DELAY_MINUTES, PLAY_SECONDS, SAMPLING, Catalogue, PackPlan, load_causes
from mlsandbox.incidents.notebook import write_notebook
from mlsandbox.layout import REFERENCE
from mlsandbox.say import Say
from mlsandbox.stack.fanout import CandidateStack, Fanout
from mlsandbox.stack.state import ScenarioPlay
from model_service.prediction_log import read_labelled, read_predictions

# Prometheus scrapes twice per pack-minute at the default compression (one pack-minute is one wall second).
SCRAPE_INTERVAL = "500ms"
INPUT_SAMPLE_ROWS = 400

# metrics.csv: column -> PromQL over the reference's metrics; {w} is a window of a few pack-minutes in wall time.
METRICS = {
    "requests_per_minute": 'sum(increase(http_requests_total{{endpoint="/predict"}}[{w}])) / {minutes_in_w}',
    "error_rate": '(sum(rate(http_requests_total{{endpoint="/predict",status!~"2.."}}[{w}])) or vector(0))'
    ' / sum(rate(http_requests_total{{endpoint="/predict"}}[{w}]))',
    "latency_p95_seconds": "histogram_quantile(0.95, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{{endpoint="/predict"}}[{w}])))',
    "mean_score": "sum(rate(churn_prediction_score_sum[{w}])) / sum(rate(churn_prediction_score_count[{w}]))",
    "predicted_churn_share": 'sum(rate(churn_predictions_total{{predicted="churn"}}[{w}]))'
    " / sum(rate(churn_predictions_total[{w}]))",
    "accuracy": "max(churn_model_accuracy)",
}
WINDOW_PACK_MINUTES = 3


class PackStack:
    """A throwaway stack (MLflow, Alertmanager, one model server on the reference solution, its Prometheus)
    for making packs; a context manager."""

    def __init__(self, work_dir: Path, base_port: int, say: Say = print):
        self.work_dir = work_dir
        # Served from a copy: the shipped answer key is never served in place.
        served = shutil.copytree(REFERENCE, work_dir / "reference", ignore=shutil.ignore_patterns("__pycache__"))
        self.fanout = Fanout([served], work_dir, base_port, SCRAPE_INTERVAL, say=say, names=["pack"])
        self.say = say
        self.plays = 0

    def __enter__(self) -> "PackStack":
        self.fanout.up()
        return self

    def __exit__(self, *exc) -> None:
        self.fanout.down()

    @property
    def room(self) -> CandidateStack:
        return self.fanout.stacks[0]

    def play(self, pack: PackPlan) -> None:
        """Play the pack's scenario on a fresh server (the last pack's windows gone)."""
        if self.plays:
            self.fanout.set_aside(f"pack-{self.plays}")
            self.fanout.restart_servers(settle_seconds=0.0, quiet_seconds=0.0)  # no alert is graded here
        scenario_file = self.work_dir / f"scenario-{self.plays}.yaml"
        scenario_file.write_text(json.dumps(pack.scenario.model_dump(mode="json")))
        self.plays += 1
        self.say(f"playing {pack.minutes:g} pack-minutes in {pack.scenario.duration_seconds / pack.speed:.0f} s ...")
        self.fanout.play(ScenarioPlay(scenario=str(scenario_file), seed=pack.seed, speed=pack.speed, web_ui=False))


def make_pack(stack: PackStack, pack: PackPlan, catalogue: Catalogue, out: Path) -> Path:
    """Play `pack` on `stack` and write it into `out` (replaced if it exists)."""
    stack.play(pack)
    if out.exists():
        shutil.rmtree(out)
    candidate, interviewer = out / "candidate", out / "interviewer"
    candidate.mkdir(parents=True)
    interviewer.mkdir(parents=True)
    clock = PackClock.of(stack.room.run_dir, pack)
    predictions = export_predictions(stack.room.run_dir, clock)
    predictions.to_csv(candidate / "predictions.csv", index=False)
    export_metrics(stack.room.prometheus_url, clock).to_csv(candidate / "metrics.csv", index=False)
    before, after = input_samples(predictions, pack.seed)
    before.to_csv(candidate / "inputs_before.csv", index=False)
    after.to_csv(candidate / "inputs_after.csv", index=False)
    changes = pack.changes(catalogue.decoys)
    pd.DataFrame([{"time": _iso(c.at), "system": c.system, "change": c.text} for c in changes]).to_csv(
        candidate / "changes.csv", index=False
    )
    (candidate / "README.md").write_text(candidate_brief(pack, planned_requests(pack)))
    write_notebook(candidate / "analysis.ipynb")
    write_answer_key(interviewer, pack, changes, catalogue)
    return out


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


class PackClock:
    """Wall time of the play <-> the pack's fictional calendar."""

    def __init__(self, wall_start: float, wall_end: float, pack: PackPlan):
        self.wall_start, self.wall_end, self.pack = wall_start, wall_end, pack

    @classmethod
    def of(cls, run_dir: Path, pack: PackPlan) -> "PackClock":
        timeline = read_timeline(run_dir)
        return cls(timeline.phases[0].start, timeline.phases[-1].end, pack)

    def at(self, wall: float) -> datetime:
        return self.after(wall - self.wall_start)

    def after(self, wall_seconds: float) -> datetime:
        """The pack's time `wall_seconds` of the play after its start."""
        return self.pack.start + timedelta(seconds=wall_seconds * self.pack.speed)


def _inputs_key(features: dict) -> str:
    """One customer's inputs, written the same way whether read from a planned body or from the log."""
    return json.dumps({k: float(v) if isinstance(v, (int, float)) else v for k, v in features.items()}, sort_keys=True)


def planned_seconds(pack: PackPlan) -> dict[str, deque[tuple[float, float | None]]]:
    """Each planned request's inputs -> (seconds after the play's start it was due, its label's delay), in wall
    seconds. A pack's times come from the plan, not from when a request happened to be answered: the same cause
    and seed give the same predictions.csv, whatever the machine's timing."""
    due: dict[str, deque[tuple[float, float | None]]] = defaultdict(deque)
    phase_start = 0.0
    for index in range(len(pack.scenario.phases)):
        planned = plan_phase(pack.scenario, index, pack.seed, pack.speed)
        for r in planned.requests:
            due[_inputs_key(json.loads(r.body))].append((phase_start + r.offset_seconds, r.feedback_delay_seconds))
        phase_start += planned.wall_seconds
    return due


def export_predictions(run_dir: Path, clock: PackClock) -> pd.DataFrame:
    """The prediction log as a table, in planned order: time, model version, every input, the score and class,
    the true label and when it arrived (empty where none did)."""
    from model_service.settings import ServiceSettings

    log = ServiceSettings(run_dir=run_dir).prediction_log_path
    made = read_predictions(log, clock.wall_start, clock.wall_end)
    labels = {lp.request_id: lp for lp in read_labelled(log, clock.wall_start, clock.wall_end + 5)}
    due = planned_seconds(clock.pack)
    rows = []
    for p in made:
        label = labels.get(p.request_id)
        planned = due[_inputs_key(p.features)]
        # A request the plan does not know (none expected) keeps the time it was answered at.
        at, delay = planned.popleft() if planned else (p.ts - clock.wall_start, None)
        label_at = at + delay if label and delay is not None else (label.label_ts - clock.wall_start if label else None)
        rows.append(
            {
                "request_id": p.request_id,
                "time": _iso(clock.after(at)),
                "model_version": p.model_version,
                **p.features,
                "churn_score": round(p.score, 6),
                "predicted_churn": p.predicted_label,
                "actual_churn": label.true_label if label else None,
                "label_time": _iso(clock.after(label_at)) if label_at is not None else None,
                "_at": at,
            }
        )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.sort_values("_at", kind="stable").reset_index(drop=True)
        frame["actual_churn"] = frame["actual_churn"].astype("Int64")
    return frame.drop(columns="_at", errors="ignore")


def export_metrics(prometheus_url: str, clock: PackClock) -> pd.DataFrame:
    """One row per pack-minute: traffic, errors, latency, the score distribution and accuracy, as the reference
    solution's metrics in Prometheus saw them."""
    from grading.prometheus import PrometheusClient

    step = 60 / clock.pack.speed
    # Prometheus takes whole milliseconds; at least three scrapes.
    window = f"{int(max(1.5, WINDOW_PACK_MINUTES * step) * 1000)}ms"
    minutes_in_w = WINDOW_PACK_MINUTES * step * clock.pack.speed / 60
    start = clock.wall_start + step
    columns: dict[str, dict[float, float]] = {}
    with PrometheusClient(prometheus_url) as prom:
        for name, expr in METRICS.items():
            query = expr.format(w=window, minutes_in_w=f"{minutes_in_w:g}")
            series = prom.query_range(query, start, clock.wall_end, step)
            columns[name] = {float(t): float(v) for t, v in series[0]["values"]} if series else {}
    times = [start + k * step for k in range(int((clock.wall_end - start) / step) + 1)]
    rows = []
    for t in times:
        row = {"time": _iso(_nearest_minute(clock.at(t)))}
        for name in METRICS:
            value = _nearest(columns[name], t, step / 2)
            row[name] = None if value is None or value != value else round(value, 4)
        rows.append(row)
    return pd.DataFrame(rows).drop_duplicates("time", keep="last")


def _nearest_minute(t: datetime) -> datetime:
    return (t + timedelta(seconds=30)).replace(second=0, microsecond=0)


def _nearest(values: dict[float, float], t: float, tolerance: float) -> float | None:
    if not values:
        return None
    key = min(values, key=lambda k: abs(k - t))
    return values[key] if abs(key - t) <= tolerance else None


def input_samples(predictions: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Inputs of the pack's first and last fifth (not split at the onset, which the candidate must find)."""
    from model_service.spec import default_spec

    features = list(default_spec().features)
    n = len(predictions)
    head, tail = predictions.iloc[: n // 5], predictions.iloc[n - n // 5 :]
    sample = min(INPUT_SAMPLE_ROWS, n // 5)
    return (
        head[features].sample(sample, random_state=seed).sort_index().reset_index(drop=True),
        tail[features].sample(sample, random_state=seed + 1).sort_index().reset_index(drop=True),
    )


def planned_requests(pack: PackPlan) -> int:
    """How many requests the pack's play sends: from the plan, not the log, so that the same cause and seed give the
    same README whatever a busy machine refused or a model switch dropped."""
    return sum(math.floor(p.rate * p.duration_seconds / pack.speed + 1e-9) for p in pack.scenario.phases)


def candidate_brief(pack: PackPlan, logged: int) -> str:
    end = pack.start + timedelta(minutes=pack.minutes)
    per_minute = logged / pack.minutes
    return f"""# The churn model degraded: find out why

The churn model scores customers for the retention team; its scores decide who gets a call. It had performed
well for months. Between {_iso(pack.start)} and {_iso(end)} something changed, and the team wants to know what,
since when, and what to do about it. You have 45-60 minutes. Find the cause, argue for it from the data, and
rule out the explanations it could be mistaken for.

## What you have

| file | what |
|---|---|
| `metrics.csv` | the monitoring system's view, one row per minute: predictions per minute, error rate, p95 latency (seconds), mean churn score, share predicted to churn, accuracy over the last 200 labelled predictions |
| `predictions.csv` | the prediction log: every input, the score and predicted class, the model version, and the true outcome where it has arrived (labels come about {LABEL_DELAY_MINUTES:g} minutes later, for about half the predictions) |
| `inputs_before.csv`, `inputs_after.csv` | samples of the inputs from the first and the last fifth of the period |
| `changes.csv` | the change log of the systems around the model (deploys, configuration, releases, and events the business recorded) |
| `analysis.ipynb` | a notebook that loads each file and plots it: start here |

The prediction log is a sample: each logged request stands for {SAMPLING} real ones (about
{per_minute:.0f} logged per minute, of about {per_minute * SAMPLING:,.0f} a minute in production). Requests the
server refused are not in it; they show in the error rate.

## What to bring back

1. The cause, and when it started.
2. The evidence for it, and why the other changes in the log are not it.
3. One monitoring improvement that would have caught it sooner.
"""


def write_answer_key(folder: Path, pack: PackPlan, changes, catalogue: Catalogue) -> None:
    cause = pack.cause
    true_change = next(c for c in changes if c.true_cause)
    decoys = [c for c in changes if not c.true_cause]
    key = {
        "cause": pack.kind,
        "title": cause.title,
        "onset": _iso(pack.onset),
        "true_change": {"time": _iso(true_change.at), "system": true_change.system, "change": true_change.text},
        "clues": cause.clues,
        "decoys": [{"time": _iso(c.at), "system": c.system, "change": c.text, "why_not": c.why_not} for c in decoys],
        "alternatives": cause.alternatives,
        "improvement": cause.improvement,
        "seed": pack.seed,
        "minutes": pack.minutes,
        "compression": pack.speed,
    }
    (folder / "answer.json").write_text(json.dumps(key, indent=2))
    lines = [
        f"# Answer key: {cause.title}",
        "",
        f"**Cause:** {cause.title} (`{pack.kind}`), from **{_iso(pack.onset)}**.",
        "",
        f"**The change behind it:** {_iso(true_change.at)}, {true_change.system}: {true_change.text}",
        "",
        "## Where the evidence is",
        *[f"- {c}" for c in cause.clues],
        "",
        "## The decoys in changes.csv, and why they are not it",
        *[f"- {_iso(c.at)}, {c.system}: {c.text} — {c.why_not}" for c in decoys],
        "",
        "## Explanations a good candidate rules out",
        *[f"- {a}" for a in cause.alternatives],
        "",
        "## The improvement to suggest",
        cause.improvement,
        "",
        f"(Pack: seed {pack.seed}, {pack.minutes:g} minutes played {pack.speed:g}x compressed.)",
        "",
    ]
    (folder / "answer_key.md").write_text("\n".join(lines))


def make(
    kinds_and_seeds: list[tuple[str | None, int]],
    out_dirs: list[Path],
    minutes: float,
    start: datetime,
    base_port: int,
    work_dir: Path,
    say: Say = print,
    catalogue: Catalogue | None = None,
    play_seconds: float = PLAY_SECONDS,
) -> list[Path]:
    """Packs on one throwaway stack, one per (cause or None, seed), into `out_dirs`."""
    from mlsandbox.incidents.causes import plan

    catalogue = catalogue or load_causes()
    plans = [plan(catalogue, kind, seed, minutes, start, play_seconds) for kind, seed in kinds_and_seeds]
    made = []
    with PackStack(work_dir, base_port, say) as stack:
        for pack, out in zip(plans, out_dirs):
            made.append(make_pack(stack, pack, catalogue, out))
    return made
