"""What uvicorn serves: the candidate's app (app/main.py of the folder given with --app-dir) behind the control
file's hold (faults.py) and a limit on request bodies (limits.py), keeping a copy of the last /metrics body it
served (last_metrics.py).

While held, the server behaves as a frozen process would, the same natively and under compose: every request
(/metrics and /health included) waits without an answer until the hold is lifted, so clients time out; the
candidate's code sees nothing of it. Lifespan events pass straight through, so the candidate's start-up and
shut-down hooks run as before.
"""

from __future__ import annotations

import asyncio
import logging

# The candidate's own `logging` calls reach the server's log (uvicorn configures only its own loggers). Set up
# before their module is imported, so that a logger they configure themselves keeps their settings.
if not logging.getLogger().handlers:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

from app.main import app as candidate_app  # noqa: E402

from .faults import FaultSwitch  # noqa: E402
from .last_metrics import KeepLastMetrics  # noqa: E402
from .limits import BodyLimit  # noqa: E402
from .settings import get_settings  # noqa: E402

POLL_SECONDS = 0.1


class HoldGate:
    def __init__(self, app, switch: FaultSwitch):
        self.app, self.switch = app, switch

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            while self.switch.state.hold:
                await asyncio.sleep(POLL_SECONDS)
        await self.app(scope, receive, send)


_settings = get_settings()
app = HoldGate(
    KeepLastMetrics(BodyLimit(candidate_app, _settings.max_body_bytes), _settings.run_dir),
    FaultSwitch(_settings.faults_path),
)
