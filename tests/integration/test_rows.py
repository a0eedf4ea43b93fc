"""The row route POST /v2/models/{model}[/versions/{v}]/infer_rows: feature rows in, one object per row out.

Besides the shared test models, this module serves a DataFrame-style
pipeline: one [-1, 1] input per column (as skl2onnx converts a
ColumnTransformer over named columns), numeric and categorical mixed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from berth_server import BerthServer, berth_binary
from models import (
    ALL_VERSIONS_MODEL,
    IRIS_MODEL,
    PARITY_MODELS,
    TEST_MAX_BATCH_SIZE,
    ModelRepository,
    TrainedModel,
    assert_outputs_match,
    export_model,
    graph_inputs,
    load_diabetes_with_sex_category,
)
from row_format import decode_predictions, named_rows
from train_models import InputBinding, ModelSpec, model_config, train
from v2 import V2Client, assert_error, infer_ok

COLUMNS_MODEL: Final = "diabetes_columns"
MIXED_MODEL: Final = "diabetes_strings"  # inputs sex BYTES [-1, 1] and X FP32 [-1, 9]


def rows_path(model: str, version: int | None = None) -> str:
    base = f"/v2/models/{model}" if version is None else f"/v2/models/{model}/versions/{version}"
    return f"{base}/infer_rows"


def _one_hot_sex_scaled_numbers() -> Pipeline:
    columns = ColumnTransformer(
        [("sex", OneHotEncoder(), [0]), ("numeric", StandardScaler(), list(range(1, 10)))]
    )
    return Pipeline([("columns", columns), ("logreg", LogisticRegression(max_iter=1000))])


def _column_inputs() -> tuple[InputBinding, ...]:
    names = load_diabetes_with_sex_category().feature_names
    return tuple(
        InputBinding(name, slice(i, i + 1), "BYTES" if name == "sex" else "FP32") for i, name in enumerate(names)
    )


@pytest.fixture(scope="module")
def column_model() -> TrainedModel:
    """sex BYTES [-1, 1], age FP32 [-1, 1], bmi FP32 [-1, 1], ...: one input per column."""
    return train(
        ModelSpec(COLUMNS_MODEL, load_diabetes_with_sex_category, _one_hot_sex_scaled_numbers, _column_inputs())
    )


@pytest.fixture(scope="module")
def column_server(column_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    repository = tmp_path_factory.mktemp("column_repository")
    export_model(column_model, repository, config=model_config(column_model, max_batch_size=TEST_MAX_BATCH_SIZE))
    log_path = tmp_path_factory.mktemp("berth_columns") / "berth.log"
    with BerthServer.start(berth_binary(), repository, log_path, grpc_port=-1) as server:
        yield server


@pytest.fixture(scope="module")
def column_client(column_server: BerthServer) -> Iterator[V2Client]:
    with V2Client(column_server.base_url) as client:
        yield client


def rows_ok(response: Any, model: str, version: str = "1") -> list[Any]:
    body = infer_ok(response)
    assert body["model_name"] == model
    assert body["model_version"] == version
    predictions: list[Any] = body["predictions"]
    return predictions


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_rows_match_sklearn(client: V2Client, model_repository: ModelRepository, name: str) -> None:
    model = model_repository.model(name)
    X = model.dataset.X_test
    # One-column inputs as scalars ("sex": "sex_1"), vector inputs as lists.
    predictions = rows_ok(client.post(rows_path(name), {"instances": named_rows(model, X, scalar_columns=True)}), name)
    assert len(predictions) == len(X)
    assert_outputs_match(model.sklearn_outputs(X), decode_predictions(model, predictions, named=True))


@pytest.mark.parametrize("version", [1, 2])
def test_versioned_rows(client: V2Client, model_repository: ModelRepository, version: int) -> None:
    model = model_repository.model(ALL_VERSIONS_MODEL, version)
    X = model.dataset.X_test
    response = client.post(rows_path(ALL_VERSIONS_MODEL, version), {"instances": named_rows(model, X)})
    predictions = rows_ok(response, ALL_VERSIONS_MODEL, str(version))
    assert_outputs_match(model.sklearn_outputs(X), decode_predictions(model, predictions, named=True))


def test_one_input_per_column(column_client: V2Client, column_model: TrainedModel) -> None:
    assert [spec.shape for spec in graph_inputs(column_model.onnx_model)] == [(-1, 1)] * 10
    X = column_model.dataset.X_test
    instances = named_rows(column_model, X, scalar_columns=True)
    assert isinstance(instances[0]["sex"], str) and isinstance(instances[0]["bmi"], float)
    predictions = rows_ok(column_client.post(rows_path(COLUMNS_MODEL), {"instances": instances}), COLUMNS_MODEL)
    assert_outputs_match(column_model.sklearn_outputs(X), decode_predictions(column_model, predictions, named=True))


def test_per_row_values_may_also_be_lists(column_client: V2Client, column_model: TrainedModel) -> None:
    X = column_model.dataset.X_test[:5]
    instances = named_rows(column_model, X, scalar_columns=False)
    assert instances[0]["sex"] in (["sex_1"], ["sex_2"])
    predictions = rows_ok(column_client.post(rows_path(COLUMNS_MODEL), {"instances": instances}), COLUMNS_MODEL)
    assert_outputs_match(column_model.sklearn_outputs(X), decode_predictions(column_model, predictions, named=True))


def test_key_order_does_not_matter(column_client: V2Client, column_model: TrainedModel) -> None:
    X = column_model.dataset.X_test[:3]
    instances = [dict(reversed(row.items())) for row in named_rows(column_model, X, scalar_columns=True)]
    predictions = rows_ok(column_client.post(rows_path(COLUMNS_MODEL), {"instances": instances}), COLUMNS_MODEL)
    assert_outputs_match(column_model.sklearn_outputs(X), decode_predictions(column_model, predictions, named=True))


def good_row(column_model: TrainedModel) -> dict[str, Any]:
    return named_rows(column_model, column_model.dataset.X_test[:1], scalar_columns=True)[0]


def bad_requests(row: dict[str, Any]) -> dict[str, tuple[bytes, str]]:
    """Bodies for the column model that must be refused with 400, and a part of the message."""
    without_bmi = {key: value for key, value in row.items() if key != "bmi"}
    renamed = {("agee" if key == "age" else key): value for key, value in row.items()}

    def body(instances: Any, **extra: Any) -> bytes:
        return json.dumps({"instances": instances, **extra}).encode()

    return {
        "unknown-feature-name": (body([row, renamed]), "instances[1] has 'agee', which is not an input"),
        "missing-feature": (body([without_bmi]), "instances[0] lacks input 'bmi' (FP32 [-1, 1])"),
        "extra-feature": (body([{**row, "weight": 70}]), "'weight', which is not an input"),
        "string-for-number": (body([{**row, "age": "fifty"}]), "input 'age' is FP32"),
        "number-for-string": (body([{**row, "sex": 1}]), "input 'sex' is BYTES"),
        "two-values-for-one-column": (body([{**row, "age": [50, 51]}]), "has shape [2], expected [1]"),
        "bare-rows": (body([list(row.values())]), "must be an object {input name: value}"),
        "empty-instances": (body([]), "'instances' is empty"),
        "unknown-field": (body([row], outputs=["label"]), "unknown field 'outputs'"),
        "no-instances": (json.dumps({"rows": [row]}).encode(), "unknown field 'rows'"),
        "body-is-a-list": (json.dumps([row]).encode(), "must be a JSON object"),
        "malformed-json": (b'{"instances": [{"age": 50,}]}', "malformed JSON"),
        "deeply-nested-value": (
            body([{**row, "age": "deep"}]).replace(b'"deep"', b"[" * 100_000 + b"]" * 100_000),
            "instances[0]['age'] (input 'age' is FP32 [-1, 1]) is nested deeper",
        ),
        # json.dumps writes float("nan") as the literal NaN, as a careless client would.
        "nan": (body([{**row, "age": float("nan")}]), "input 'age' holds a non-finite value"),
    }


BAD_IDS: Final = list(bad_requests({}))


@pytest.mark.parametrize("case", BAD_IDS)
def test_bad_rows_get_json_400(column_client: V2Client, column_model: TrainedModel, case: str) -> None:
    body, message = bad_requests(good_row(column_model))[case]
    assert message in assert_error(column_client.post_raw(rows_path(COLUMNS_MODEL), body), 400)
    # The server keeps serving.
    X = column_model.dataset.X_test[:2]
    predictions = rows_ok(
        column_client.post(rows_path(COLUMNS_MODEL), {"instances": named_rows(column_model, X, scalar_columns=True)}),
        COLUMNS_MODEL,
    )
    assert_outputs_match(column_model.sklearn_outputs(X), decode_predictions(column_model, predictions, named=True))


def test_unknown_model_or_version_is_404(client: V2Client) -> None:
    assert_error(client.post(rows_path("no_such_model"), {"instances": [{"X": [1, 2, 3, 4]}]}), 404)
    assert_error(client.post(rows_path(IRIS_MODEL, 7), {"instances": [{"X": [1, 2, 3, 4]}]}), 404)


def test_mixed_model_accepts_scalar_category(client: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(MIXED_MODEL)
    X = model.dataset.X_test[:4]
    instances = named_rows(model, X, scalar_columns=True)
    assert all(isinstance(row["sex"], str) and len(row["X"]) == 9 for row in instances)
    predictions = rows_ok(client.post(rows_path(MIXED_MODEL), {"instances": instances}), MIXED_MODEL)
    assert_outputs_match(model.sklearn_outputs(X), decode_predictions(model, predictions, named=True))

