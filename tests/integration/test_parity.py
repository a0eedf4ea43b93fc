"""Berth's predictions equal scikit-learn's, over the REST API."""

from __future__ import annotations

from typing import Final

import pytest

from models import IRIS_MODEL, PARITY_MODELS, ModelRepository, TrainedModel, assert_outputs_match
from v2 import V2Client, decode_outputs, expected_output_fields, infer_ok, output_fields

IRIS: Final = IRIS_MODEL


@pytest.fixture
def iris(model_repository: ModelRepository) -> TrainedModel:
    return model_repository.model(IRIS)


@pytest.mark.parametrize("name", PARITY_MODELS)
@pytest.mark.parametrize("rows", [slice(None), slice(0, 1)], ids=["test-split", "one-row"])
def test_predictions_match_sklearn(
    client: V2Client, model_repository: ModelRepository, name: str, rows: slice
) -> None:
    model = model_repository.model(name)
    X = model.dataset.X_test[rows]
    body = infer_ok(client.infer(name, model.infer_request(X)))
    assert body["model_name"] == name
    assert body["model_version"] == "1"
    assert output_fields(body) == expected_output_fields(model, len(X))
    assert_outputs_match(model.sklearn_outputs(X), decode_outputs(body))


def test_nested_data_equals_flat_data(client: V2Client, iris: TrainedModel) -> None:
    X = iris.dataset.X_test[:5]
    nested_request = iris.infer_request(X)
    nested_request["inputs"][0]["data"] = iris.feeds(X)["X"].tolist()
    flat = decode_outputs(infer_ok(client.infer(IRIS, iris.infer_request(X))))
    nested = decode_outputs(infer_ok(client.infer(IRIS, nested_request)))
    assert_outputs_match(flat, nested)
    assert_outputs_match(iris.sklearn_outputs(X), nested)


@pytest.mark.parametrize("requested", [["probabilities"], ["label"], ["probabilities", "label"]])
def test_only_requested_outputs_are_returned(
    client: V2Client, iris: TrainedModel, requested: list[str]
) -> None:
    X = iris.dataset.X_test
    request = iris.infer_request(X, outputs=[{"name": name} for name in requested])
    body = infer_ok(client.infer(IRIS, request))
    assert sorted(output["name"] for output in body["outputs"]) == sorted(requested)
    expected = iris.sklearn_outputs(X)
    assert_outputs_match({name: expected[name] for name in requested}, decode_outputs(body))


def test_request_id_is_echoed(client: V2Client, iris: TrainedModel) -> None:
    body = infer_ok(client.infer(IRIS, iris.infer_request(iris.dataset.X_test[:2], id="request-42")))
    assert body["id"] == "request-42"


def test_versioned_route(client: V2Client, iris: TrainedModel) -> None:
    X = iris.dataset.X_test
    body = infer_ok(client.infer(IRIS, iris.infer_request(X), version=1))
    assert body["model_name"] == IRIS
    assert body["model_version"] == "1"
    assert_outputs_match(iris.sklearn_outputs(X), decode_outputs(body))
