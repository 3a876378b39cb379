"""The churn model server: FastAPI around the model service.

Run natively by `mlsandbox up` (uvicorn reloads this folder when you save a file).
Everything model-side (loading the model from MLflow, validation, the prediction log) lives in the
`model_service` package; this app is yours to instrument.
"""

from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException

from model_service.errors import register_error_handlers
from model_service.schemas import (
    BatchRequest,
    BatchResponse,
    CustomerFeatures,
    FeedbackRequest,
    FeedbackResponse,
    Health,
    ModelInfo,
    PredictionResponse,
)
from model_service.service import ChurnService, UnknownRequestId

from . import monitoring


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.service = ChurnService.from_settings()
    monitoring.on_startup(app)
    yield
    monitoring.on_shutdown(app)


app = FastAPI(title="Churn model server", lifespan=lifespan)
register_error_handlers(app)
monitoring.setup(app)


def service() -> ChurnService:
    return app.state.service


def _response(p) -> PredictionResponse:
    return PredictionResponse(
        request_id=p.request_id, churn_probability=p.churn_probability, churned=p.churned, model_version=p.model_version
    )


@app.post("/predict", response_model=PredictionResponse)
def predict(customer: CustomerFeatures):
    [prediction] = service().predict([customer])
    monitoring.track_predictions([prediction])
    return _response(prediction)


@app.post("/predict/batch", response_model=BatchResponse)
def predict_batch(batch: BatchRequest):
    predictions = service().predict(batch.customers)
    monitoring.track_predictions(predictions)
    return BatchResponse(predictions=[_response(p) for p in predictions])


@app.post(
    "/feedback",
    response_model=FeedbackResponse,
    responses={404: {"description": "No prediction was made with this request_id."}},
)
def feedback(body: FeedbackRequest):
    try:
        labelled = service().feedback(body.request_id, body.churned)
    except UnknownRequestId:
        raise HTTPException(
            status_code=404,
            detail=[
                {
                    "loc": ["body", "request_id"],
                    "msg": f"no prediction with request_id {body.request_id!r}",
                }
            ],
        ) from None
    monitoring.track_label(labelled.predicted_label, labelled.true_label)
    return FeedbackResponse(
        request_id=labelled.request_id,
        churned=bool(labelled.true_label),
        predicted_churned=bool(labelled.predicted_label),
        churn_probability=labelled.score,
        model_version=labelled.model_version,
        label_delay_seconds=labelled.label_delay_seconds,
    )


@app.get("/health", response_model=Health)
def health():
    return Health(status="ok", model_version=service().model_version)


@app.get("/model", response_model=ModelInfo)
def model_info():
    return service().info()
