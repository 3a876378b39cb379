"""The model server's API fuzzed from its own OpenAPI schema (schemathesis, in-process, a bounded number of
cases per operation): whatever a client sends, no 5xx, and every response matches the schema it declares.
Served as uvicorn serves it (model_service.asgi's body limit around the candidate's app), for the starter and
the reference solution."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import schemathesis
from conftest import REPO, import_candidate_app
from hypothesis import HealthCheck, given, settings

from model_service.faults import FaultSwitch
from model_service.limits import BodyLimit
from model_service.prediction_log import PredictionLog
from model_service.service import ChurnService

# A few thousand cases in all: every operation of both apps, this many each.
CASES_PER_OPERATION = 250


@asynccontextmanager
async def _no_start_up(app):
    yield


def _served(folder, loaded_model, tmp_path):
    main = import_candidate_app(REPO / folder)
    main.app.state.service = ChurnService(
        loaded_model, PredictionLog(tmp_path / f"{folder}.sqlite"), FaultSwitch(tmp_path / f"{folder}-faults.json")
    )
    main.app.router.lifespan_context = _no_start_up  # the service is set above: no MLflow at start-up
    return BodyLimit(main.app)


@pytest.mark.parametrize("folder", ["starter_repo", "reference_solution"])
def test_no_input_gets_a_server_error_and_every_answer_matches_the_schema(folder, loaded_model, tmp_path):
    schema = schemathesis.openapi.from_asgi("/openapi.json", _served(folder, loaded_model, tmp_path))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {"POST /predict", "POST /feedback", "GET /health"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=CASES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case):
            case.call_and_validate()

        fuzz()
