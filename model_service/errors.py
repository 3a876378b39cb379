"""HTTP error responses for bad input and injected faults: clear 4xx/503, never a 500.

FastAPI's default 422 echoes the offending input back; for NaN or infinity that echo is not valid JSON and
the handler itself fails with a 500. This one keeps the field path and message and writes such inputs
as strings.
"""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .faults import ServiceFault


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{k: v for k, v in err.items() if k != "url"} for err in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(errors))})


async def _service_fault(request: Request, exc: ServiceFault) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": str(exc)})


def register_error_handlers(app: FastAPI) -> None:
    """422 naming the field for bad input (NaN and infinity included); 503 for an injected fault."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ServiceFault, _service_fault)
