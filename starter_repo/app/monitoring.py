"""YOUR MONITORING CODE GOES HERE.

Nothing here is monitoring yet: the server has no /metrics endpoint, so Prometheus shows its target as
down until you add one. See CANDIDATE.md for the brief. prometheus-client is installed; so are evidently,
scipy and pandas. Add modules next to this one as you like.

app/main.py calls three hooks:
- setup(app)       once, when the app is created and before it starts: add middleware and routes here
                   (FastAPI accepts no middleware once the app has started);
- on_startup(app)  once the model is loaded: `app.state.service` is the ChurnService
                   (`app.state.service.model_version`, `app.state.service.model.run_id`);
                   start background work here;
- on_shutdown(app) when the server stops (and before each reload).
"""

from fastapi import FastAPI


def setup(app: FastAPI) -> None:
    """Register metrics, middleware and routes here."""


def on_startup(app: FastAPI) -> None:
    """Start background work here; the model is loaded."""


def on_shutdown(app: FastAPI) -> None:
    """Stop background work here."""
