"""Candidates whose /metrics is hostile or broken, each the bare starter with one `app/monitoring.py` written for
the purpose: the sandbox must survive them and the grader must say what it found, in seconds, without a traceback.

- bomb: 100,000 series in one scrape (a label per request id gone wrong), far over Prometheus's sample_limit;
- slow: every scrape answers after 30 s, far over the scrape timeout;
- nan: honest counters next to gauges that read NaN, +Inf and -Inf;
- big-help: an honest counter whose HELP text is 1 MB;
- invalid: text that is not the exposition format.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_HEADER = '''"""A hostile /metrics for the sandbox's hardening tests."""

import asyncio
import math
import time

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

TEXT = "text/plain; version=0.0.4; charset=utf-8"
served = {"predictions": 0, "requests": 0}


def setup(app: FastAPI) -> None:
    @app.middleware("http")
    async def count(request: Request, call_next):
        response = await call_next(request)
        if request.url.path == "/predict":
            served["requests"] += 1
            served["predictions"] += response.status_code == 200
        return response

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(await body(), media_type=TEXT)


def on_startup(app: FastAPI) -> None:
    pass


def on_shutdown(app: FastAPI) -> None:
    pass


def honest() -> str:
    return (
        "# HELP churn_predictions_total Predictions served.\\n# TYPE churn_predictions_total counter\\n"
        f"churn_predictions_total {served['predictions']}\\n"
    )
'''

BODIES = {
    "bomb": """
BOMB = "# HELP churn_request_seen Requests by id.\\n# TYPE churn_request_seen gauge\\n" + "".join(
    f'churn_request_seen{{request_id="r{i:06d}"}} 1\\n' for i in range(100_000)
)


async def body() -> str:
    return honest() + BOMB
""",
    "slow": """

async def body() -> str:
    await asyncio.sleep(30)
    return honest()
""",
    "nan": """

async def body() -> str:
    return honest() + (
        "# HELP churn_model_accuracy Accuracy, not known yet.\\n# TYPE churn_model_accuracy gauge\\n"
        f"churn_model_accuracy {math.nan}\\n"
        "# HELP churn_drift_score Drift, overflowing.\\n# TYPE churn_drift_score gauge\\n"
        'churn_drift_score{feature="monthly_charges"} +Inf\\n'
        'churn_drift_score{feature="tenure_months"} -Inf\\n'
        f"# HELP churn_started_seconds Start.\\n# TYPE churn_started_seconds gauge\\nchurn_started_seconds {time.time()}\\n"
    )
""",
    "big-help": """
HELP = "Predictions served. " + "x" * (1024 * 1024)


async def body() -> str:
    return (
        f"# HELP churn_predictions_total {HELP}\\n# TYPE churn_predictions_total counter\\n"
        f"churn_predictions_total {served['predictions']}\\n"
    )
""",
    "invalid": """

async def body() -> str:
    return "churn predictions: " + str(served["predictions"]) + "\\n{not: exposition} = text\\n"
""",
}


def hostile(dest: Path, kind: str) -> Path:
    """The bare starter with the hostile monitoring module `kind` (one of BODIES)."""
    shutil.copytree(REPO / "starter_repo", dest, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "app" / "monitoring.py").write_text(_HEADER + BODIES[kind])
    return dest
