"""The bare server's API: answers for good input, a 4xx naming the field for bad input, never a 500."""

import json
import random

import pytest
from conftest import valid_customer

from model_service.settings import get_settings


def _loc(response):
    return [tuple(err["loc"]) for err in response.json()["detail"]]


def test_predict_returns_probability_label_version_and_request_id(starter_client, customer):
    r = starter_client.post("/predict", json=customer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert 0 <= body["churn_probability"] <= 1
    assert body["churned"] == (body["churn_probability"] >= 0.5)
    assert body["model_version"] == "1" and len(body["request_id"]) == 32


def test_null_is_a_missing_value_the_model_imputes(starter_client, customer):
    r = starter_client.post("/predict", json={**customer, "monthly_charges": None, "region": None})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda c: c.pop("tenure_months"), "tenure_months"),
        (lambda c: c.update(monthly_charges="lots"), "monthly_charges"),
        (lambda c: c.update(support_calls_90d=2.5), "support_calls_90d"),
        (lambda c: c.update(region="atlantis"), "region"),
        (lambda c: c.update(tenure_months=-3), "tenure_months"),
        (lambda c: c.update(surprise_field=1), "surprise_field"),
    ],
    ids=["missing", "wrong-type", "not-an-integer", "unknown-category", "below-hard-bound", "unknown-field"],
)
def test_bad_field_gets_422_naming_it(starter_client, customer, change, field):
    change(customer)
    r = starter_client.post("/predict", json=customer)
    assert r.status_code == 422
    assert ("body", field) in _loc(r)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_get_422_naming_the_field(starter_client, customer, literal):
    # Python's json writes these literals; many clients do too.
    body = json.dumps({**customer, "monthly_charges": 1.5}).replace("1.5", literal)
    r = starter_client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert ("body", "monthly_charges") in _loc(r)


def test_malformed_json_gets_422(starter_client):
    r = starter_client.post("/predict", content="{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_batch_scores_each_customer(starter_client):
    customers = [valid_customer(s) for s in range(5)]
    r = starter_client.post("/predict/batch", json={"customers": customers})
    assert r.status_code == 200
    assert len({p["request_id"] for p in r.json()["predictions"]}) == 5


def test_oversized_batch_gets_422_naming_customers(starter_client, customer):
    n = get_settings().max_batch_size + 1
    r = starter_client.post("/predict/batch", json={"customers": [customer] * n})
    assert r.status_code == 422 and ("body", "customers") in _loc(r)


def test_bad_row_in_batch_is_named_by_index(starter_client, customer):
    r = starter_client.post("/predict/batch", json={"customers": [customer, {**customer, "region": "mars"}]})
    assert r.status_code == 422 and ("body", "customers", 1, "region") in _loc(r)


def test_feedback_joins_the_prediction(starter_client, customer):
    pred = starter_client.post("/predict", json=customer).json()
    r = starter_client.post("/feedback", json={"request_id": pred["request_id"], "churned": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["churned"] is True and body["predicted_churned"] == pred["churned"]
    assert body["churn_probability"] == pred["churn_probability"] and body["label_delay_seconds"] >= 0
    [labelled] = starter_client.service.prediction_log.labelled()
    assert labelled.request_id == pred["request_id"] and labelled.true_label == 1


def test_feedback_for_unknown_request_id_gets_404_naming_it(starter_client):
    r = starter_client.post("/feedback", json={"request_id": "never-issued", "churned": False})
    assert r.status_code == 404 and ("body", "request_id") in _loc(r)


def test_feedback_without_label_gets_422(starter_client):
    r = starter_client.post("/feedback", json={"request_id": "x"})
    assert r.status_code == 422 and ("body", "churned") in _loc(r)


def test_health_and_model(starter_client):
    assert starter_client.get("/health").json() == {"status": "ok", "model_version": "1"}
    info = starter_client.get("/model").json()
    assert info["name"] == "churn-classifier" and info["alias"] == "champion" and len(info["features"]) == 12


def test_random_junk_never_gets_a_500(starter_client, customer):
    rng = random.Random(1234)
    junk = [None, "", "x" * 300, -1e308, 1e308, 0, -1, True, [], {}, [1, 2], "NaN", 10**30, 3.5]
    for _ in range(300):
        body = dict(customer)
        for field in rng.sample(sorted(body), rng.randint(1, 3)):
            body[field] = rng.choice(junk)
        r = starter_client.post("/predict", json=body)
        assert r.status_code in (200, 422), (body, r.status_code, r.text)


def test_injected_error_fault_is_a_503_and_is_not_logged(starter_client, customer):
    starter_client.faults_path.write_text('{"error_share": 1.0}')
    starter_client.service.faults.poll_seconds = 0
    r = starter_client.post("/predict", json=customer)
    assert r.status_code == 503
    assert starter_client.service.prediction_log.count_predictions() == 0


def test_a_body_over_the_limit_gets_413_before_the_app_sees_it_and_others_pass():
    from fastapi import FastAPI, Request
    from fastapi.testclient import TestClient

    from model_service.limits import BodyLimit

    seen = []
    inner = FastAPI()

    @inner.post("/echo")
    async def echo(request: Request):
        body = await request.body()
        seen.append(len(body))
        return {"bytes": len(body)}

    client = TestClient(BodyLimit(inner, max_bytes=10_000))
    assert client.post("/echo", content=b"x" * 9_000).json() == {"bytes": 9_000}
    over = client.post("/echo", content=b"x" * 20_000)
    assert over.status_code == 413 and "over 10000 bytes" in over.json()["detail"]

    def chunks():  # no content-length: counted as it arrives
        for _ in range(30):
            yield b"y" * 1_000

    assert client.post("/echo", content=chunks()).status_code == 413
    assert seen == [9_000]
