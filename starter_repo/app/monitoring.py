"""YOUR MONITORING CODE GOES HERE.

`setup(app)` is called once when the server starts, with the FastAPI app and after the model is loaded
(`app.state.service.model_version` tells you which version). Nothing here is monitoring yet: the server
has no /metrics endpoint, so Prometheus shows its target as down until you add one.

See CANDIDATE.md for the brief. prometheus-client is installed; so are evidently, scipy and pandas.
"""
from fastapi import FastAPI


def setup(app: FastAPI) -> None:
    """Register metrics, middleware and background work here."""
