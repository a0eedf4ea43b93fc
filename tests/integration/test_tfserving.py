"""TensorFlow Serving's REST API: predictions equal scikit-learn's; bad requests get a JSON 4xx."""

from __future__ import annotations

import base64
import json
from typing import Any, Final

import pytest

from models import (
    ALL_VERSIONS_MODEL,
    IRIS_MODEL,
    PARITY_MODELS,
    TEST_MAX_BATCH_SIZE,
    ModelRepository,
    TrainedModel,
    assert_outputs_match,
)
from row_format import bare_rows, columns, decode_columns, decode_predictions, named_rows, rows
from v2 import V2Client, assert_error, infer_ok

MIXED_MODEL: Final = "diabetes_strings"  # inputs sex BYTES [-1, 1] and X FP32 [-1, 9]


def predict_path(model: str, version: int | str | None = None) -> str:
    return f"/v1/models/{model}:predict" if version is None else f"/v1/models/{model}/versions/{version}:predict"


@pytest.fixture
def iris(model_repository: ModelRepository) -> TrainedModel:
    return model_repository.model(IRIS_MODEL)


@pytest.mark.parametrize("name", PARITY_MODELS)
@pytest.mark.parametrize("split", [slice(None), slice(0, 1)], ids=["test-split", "one-row"])
def test_row_format_matches_sklearn(
    client: V2Client, model_repository: ModelRepository, name: str, split: slice
) -> None:
    model = model_repository.model(name)
    X = model.dataset.X_test[split]
    body = infer_ok(client.post(predict_path(name), {"instances": rows(model, X)}))
    assert list(body) == ["predictions"]
    assert len(body["predictions"]) == len(X)
    assert_outputs_match(model.sklearn_outputs(X), decode_predictions(model, body["predictions"]))


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_columnar_format_matches_sklearn(client: V2Client, model_repository: ModelRepository, name: str) -> None:
    model = model_repository.model(name)
    X = model.dataset.X_test
    body = infer_ok(client.post(predict_path(name), {"inputs": columns(model, X)}))
    assert list(body) == ["outputs"]
    assert_outputs_match(model.sklearn_outputs(X), decode_columns(model, body["outputs"]))


def test_named_rows_for_a_single_input_model(client: V2Client, iris: TrainedModel) -> None:
    X = iris.dataset.X_test[:7]
    body = infer_ok(client.post(predict_path(IRIS_MODEL), {"instances": named_rows(iris, X)}))
    assert_outputs_match(iris.sklearn_outputs(X), decode_predictions(iris, body["predictions"]))


def test_signature_name_serving_default(client: V2Client, iris: TrainedModel) -> None:
    X = iris.dataset.X_test[:3]
    request = {"signature_name": "serving_default", "instances": bare_rows(iris, X)}
    body = infer_ok(client.post(predict_path(IRIS_MODEL), request))
    assert_outputs_match(iris.sklearn_outputs(X), decode_predictions(iris, body["predictions"]))


@pytest.mark.parametrize("version", [1, 2])
def test_versioned_predict(client: V2Client, model_repository: ModelRepository, version: int) -> None:
    model = model_repository.model(ALL_VERSIONS_MODEL, version)
    X = model.dataset.X_test
    body = infer_ok(client.post(predict_path(ALL_VERSIONS_MODEL, version), {"instances": rows(model, X)}))
    assert_outputs_match(model.sklearn_outputs(X), decode_predictions(model, body["predictions"]))


def test_unversioned_predict_uses_the_highest_version(client: V2Client, model_repository: ModelRepository) -> None:
    newest = model_repository.model(ALL_VERSIONS_MODEL, 2)
    X = newest.dataset.X_test
    body = infer_ok(client.post(predict_path(ALL_VERSIONS_MODEL), {"instances": rows(newest, X)}))
    assert_outputs_match(newest.sklearn_outputs(X), decode_predictions(newest, body["predictions"]))


def available(version: str) -> dict[str, Any]:
    return {"version": version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}


def test_model_status(client: V2Client) -> None:
    response = client.get(f"/v1/models/{ALL_VERSIONS_MODEL}")
    assert response.status_code == 200, response.text
    assert response.json() == {"model_version_status": [available("2"), available("1")]}
    response = client.get(f"/v1/models/{ALL_VERSIONS_MODEL}/versions/1")
    assert response.status_code == 200, response.text
    assert response.json() == {"model_version_status": [available("1")]}


@pytest.mark.parametrize(
    "path", ["/v1/models/no_such_model", f"/v1/models/{IRIS_MODEL}/versions/7", f"/v1/models/{IRIS_MODEL}/versions/x"]
)
def test_model_status_of_unknown_model_or_version_is_404(client: V2Client, path: str) -> None:
    assert_error(client.get(path), 404)


ROW: Final = [5.1, 3.5, 1.4, 0.2]
def b64(text: str) -> dict[str, str]:
    """TF Serving's binary string: {"b64": <base64 of the UTF-8 bytes>}."""
    return {"b64": base64.b64encode(text.encode()).decode()}


def test_b64_strings_answer_as_plain_strings(client: V2Client, model_repository: ModelRepository) -> None:
    """{"b64": ...} for a BYTES input, in rows and columns, predicts what the same plain strings do."""
    model = model_repository.model(MIXED_MODEL)
    X = model.dataset.X_test[:5]
    plain_rows = named_rows(model, X)
    coded_rows = [{**row, "sex": [b64(s) for s in row["sex"]]} for row in plain_rows]
    scalar_rows = [{**row, "sex": b64(row["sex"][0])} for row in plain_rows]  # [1] feature as one value
    expected = infer_ok(client.post(predict_path(MIXED_MODEL), {"instances": plain_rows}))
    assert_outputs_match(model.sklearn_outputs(X), decode_predictions(model, expected["predictions"]))
    for instances in (coded_rows, scalar_rows):
        assert infer_ok(client.post(predict_path(MIXED_MODEL), {"instances": instances})) == expected

    plain_columns = columns(model, X)
    coded_columns = {**plain_columns, "sex": [[b64(s) for s in row] for row in plain_columns["sex"]]}
    expected = infer_ok(client.post(predict_path(MIXED_MODEL), {"inputs": plain_columns}))
    assert infer_ok(client.post(predict_path(MIXED_MODEL), {"inputs": coded_columns})) == expected


def test_b64_where_it_does_not_fit_is_400(client: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(MIXED_MODEL)
    row = named_rows(model, model.dataset.X_test[:1])[0]
    cases = [
        ({"instances": [{**row, "X": [b64("1.0"), *row["X"][1:]]}]}, "input 'X' is FP32"),
        ({"instances": [{**row, "sex": {"b64": "not base64!"}}]}, "input 'sex': element 0 is not valid base64"),
        ({"inputs": {"sex": [[{"b64": "c2V4="}]], "X": [row["X"]]}}, "input 'sex': element 0 is not valid base64"),
        ({"inputs": {"sex": [["sex_1"]], "X": [[{"b64": "AAAA"}] * 9]}}, "is a {\"b64\": ...} binary string"),
    ]
    for body, message in cases:
        assert message in assert_error(client.post(predict_path(MIXED_MODEL), body), 400), body
    infer_ok(client.post(predict_path(MIXED_MODEL), {"instances": [row]}))


DEEP: Final = "[" * 100_000 + "]" * 100_000  # nesting that a recursive reader would crash on


def dumps(body: Any) -> bytes:
    return json.dumps(body).encode()


BAD_REQUESTS: Final = {
    "malformed-json": (IRIS_MODEL, b'{"instances": [[5.1, 3.5, 1.4, 0.2]]', 400, "malformed JSON"),
    "not-an-object": (IRIS_MODEL, dumps([ROW]), 400, "must be a JSON object"),
    "neither-format": (IRIS_MODEL, dumps({}), 400, "either 'instances'"),
    "both-formats": (IRIS_MODEL, dumps({"instances": [ROW], "inputs": [ROW]}), 400, "not both"),
    "unknown-field": (IRIS_MODEL, dumps({"instances": [ROW], "examples": []}), 400, "unknown field 'examples'"),
    "unknown-signature": (IRIS_MODEL, dumps({"signature_name": "classify", "instances": [ROW]}), 400, "signature"),
    "empty-instances": (IRIS_MODEL, dumps({"instances": []}), 400, "is empty"),
    "instances-not-a-list": (IRIS_MODEL, dumps({"instances": {"X": ROW}}), 400, "must be a list"),
    "row-too-short": (IRIS_MODEL, dumps({"instances": [ROW, ROW[:3]]}), 400, "instances[1]"),
    "row-too-long": (IRIS_MODEL, dumps({"instances": [[*ROW, 1.0]]}), 400, "has shape [5], expected [4]"),
    "ragged-columnar": (IRIS_MODEL, dumps({"inputs": [ROW, ROW[:3]]}), 400, "ragged"),
    "deeply-nested-row": (IRIS_MODEL, f'{{"instances": [{DEEP}]}}'.encode(), 400, "nested deeper"),
    "deeply-nested-columns": (IRIS_MODEL, f'{{"inputs": {DEEP}}}'.encode(), 400, "nested deeper"),
    "string-for-fp32": (IRIS_MODEL, dumps({"instances": [["5.1", 3.5, 1.4, 0.2]]}), 400, "is FP32"),
    "nan": (IRIS_MODEL, b'{"instances": [[NaN, 3.5, 1.4, 0.2]]}', 400, "NaN"),
    "over-max-batch": (IRIS_MODEL, dumps({"instances": [ROW] * (TEST_MAX_BATCH_SIZE + 1)}), 400, "max_batch_size"),
    "unknown-input-name": (
        MIXED_MODEL,
        dumps({"instances": [{"sex": "sex_1", "X": [0.0] * 9, "age": 50}]}),
        400,
        "'age', which is not an input",
    ),
    "missing-input": (MIXED_MODEL, dumps({"instances": [{"X": [0.0] * 9}]}), 400, "lacks input 'sex'"),
    "bare-rows-for-two-inputs": (MIXED_MODEL, dumps({"instances": [[0.0] * 10]}), 400, "has 2 inputs"),
    "number-for-bytes": (MIXED_MODEL, dumps({"instances": [{"sex": 1, "X": [0.0] * 9}]}), 400, "is BYTES"),
    "unknown-model": ("no_such_model", dumps({"instances": [ROW]}), 404, "no_such_model"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_request_gets_json_error(client: V2Client, iris: TrainedModel, case: tuple[str, bytes, int, str]) -> None:
    model, body, status, message = case
    assert message in assert_error(client.post_raw(predict_path(model), body), status)
    # The server keeps serving.
    X = iris.dataset.X_test[:2]
    good = infer_ok(client.post(predict_path(IRIS_MODEL), {"instances": bare_rows(iris, X)}))
    assert_outputs_match(iris.sklearn_outputs(X), decode_predictions(iris, good["predictions"]))


def test_unknown_version_is_404(client: V2Client) -> None:
    assert_error(client.post(predict_path(IRIS_MODEL, 7), {"instances": [ROW]}), 404)


def test_get_on_predict_is_not_a_model(client: V2Client) -> None:
    assert_error(client.get(predict_path(IRIS_MODEL)), 404)
