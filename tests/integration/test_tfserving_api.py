"""The rest of TensorFlow Serving's REST API: metadata, :classify and :regress with
tf.Example JSON, and version labels (registry aliases), as its documentation
gives them. Results are compared with scikit-learn's on the test split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models import ALL_VERSIONS_MODEL, IRIS_MODEL, ModelRepository, TrainedModel
from row_format import named_rows
from v2 import V2Client, assert_error, infer_ok

REGRESSOR = "diabetes_gbr"
MIXED_MODEL = "diabetes_strings"  # inputs sex BYTES [-1, 1] and X FP32 [-1, 9]; a classifier


def _path(model: str, verb: str, *, version: int | None = None, label: str | None = None) -> str:
    middle = f"/versions/{version}" if version is not None else f"/labels/{label}" if label else ""
    return f"/v1/models/{model}{middle}{verb}"


@pytest.fixture
def iris(model_repository: ModelRepository) -> TrainedModel:
    return model_repository.model(IRIS_MODEL)


def test_metadata_has_the_signature_in_tf_servings_shape(client: V2Client) -> None:
    body = infer_ok(client.get(_path(IRIS_MODEL, "/metadata")))
    assert body["model_spec"] == {"name": IRIS_MODEL, "signature_name": "", "version": "1"}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"] == {
        "X": {
            "dtype": "DT_FLOAT",
            "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "4", "name": ""}], "unknown_rank": False},
            "name": "X",
        }
    }
    assert signature["outputs"]["label"]["dtype"] == "DT_INT64"
    assert signature["outputs"]["probabilities"]["tensor_shape"]["dim"][1]["size"] == "3"


def test_metadata_of_a_version_and_of_an_unknown_one(client: V2Client) -> None:
    body = infer_ok(client.get(_path(ALL_VERSIONS_MODEL, "/metadata", version=2)))
    assert body["model_spec"]["version"] == "2"
    assert_error(client.get(_path(ALL_VERSIONS_MODEL, "/metadata", version=9)), 404)
    assert_error(client.get(_path("no_such_model", "/metadata")), 404)


def test_classify_gives_every_class_with_sklearns_probability(client: V2Client, iris: TrainedModel) -> None:
    X = iris.dataset.X_test
    body = infer_ok(client.post(_path(IRIS_MODEL, ":classify"), {"examples": named_rows(iris, X)}))
    result = body["result"]
    assert len(result) == len(X)
    expected = iris.estimator.predict_proba(X)
    for row, classes in zip(expected, result):
        assert [name for name, _ in classes] == ["0", "1", "2"]
        np.testing.assert_allclose([score for _, score in classes], row, rtol=1e-4, atol=1e-5)


def test_regress_gives_sklearns_prediction(client: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(REGRESSOR)
    X = model.dataset.X_test
    body = infer_ok(client.post(_path(REGRESSOR, ":regress"), {"signature_name": "serving_default",
                                                                "examples": named_rows(model, X)}))  # fmt: skip
    np.testing.assert_allclose(body["result"], model.estimator.predict(X), rtol=1e-4, atol=1e-3)


def test_context_features_join_every_example(client: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(MIXED_MODEL)
    X = model.dataset.X_test[:8]
    examples = named_rows(model, X)
    # Examples sharing their "sex" feature: it moves to the context.
    same_sex = [e for e in examples if e["sex"] == examples[0]["sex"]]
    context = {"sex": same_sex[0]["sex"]}
    stripped = [{k: v for k, v in e.items() if k != "sex"} for e in same_sex]
    with_context = infer_ok(client.post(_path(MIXED_MODEL, ":classify"), {"context": context, "examples": stripped}))
    inline = infer_ok(client.post(_path(MIXED_MODEL, ":classify"), {"examples": same_sex}))
    assert with_context["result"] == inline["result"]
    assert len(inline["result"]) == len(same_sex)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"examples": []}, 400, "empty"),
        ({"instances": [[1, 2, 3, 4]]}, 400, "'instances'"),
        ({"examples": [[5.1, 3.5, 1.4, 0.2]]}, 400, "examples[0] must be an object"),
        ({"examples": [{"X": [1, 2, 3, 4], "Y": 1}]}, 400, "'Y'"),
        ({"examples": [{"X": [1, 2, 3]}]}, 400, "X"),
        ({"signature_name": "other", "examples": [{"X": [1, 2, 3, 4]}]}, 400, "unknown signature 'other'"),
        ({"context": {"X": [1, 2, 3, 4]}, "examples": [{"X": [1, 2, 3, 4]}]}, 400, "in both"),
        ({"context": [1], "examples": [{"X": [1, 2, 3, 4]}]}, 400, "'context' must be an object"),
    ],
)
def test_bad_example_requests_are_clear_400s(client: V2Client, body: dict[str, Any], status: int, words: str) -> None:
    message = assert_error(client.post(_path(IRIS_MODEL, ":classify"), body), status)
    assert words in message
    assert client.get("/v2/health/ready").status_code == 200


def test_classify_on_a_regressor_says_why_not(client: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(REGRESSOR)
    response = client.post(_path(REGRESSOR, ":classify"), {"examples": named_rows(model, model.dataset.X_test[:2])})
    assert "no class scores" in assert_error(response, 400)


def test_labels_are_registry_aliases(client: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(ALL_VERSIONS_MODEL, 2)
    X = model.dataset.X_test[:3]
    promoted = client.post(f"/v2/registry/models/{ALL_VERSIONS_MODEL}/promote", {"version": 2, "alias": "stable"})
    assert promoted.status_code == 200, promoted.text
    predict = client.post(_path(ALL_VERSIONS_MODEL, ":predict", label="stable"), {"instances": X.tolist()})
    assert infer_ok(predict) and predict.headers["Berth-Model-Version"] == "2"
    status = infer_ok(client.get(_path(ALL_VERSIONS_MODEL, "", label="stable")))
    assert [s["version"] for s in status["model_version_status"]] == ["2"]
    metadata = infer_ok(client.get(_path(ALL_VERSIONS_MODEL, "/metadata", label="stable")))
    assert metadata["model_spec"]["version"] == "2"
    classify = client.post(_path(ALL_VERSIONS_MODEL, ":classify", label="stable"), {"examples": named_rows(model, X)})
    assert len(infer_ok(classify)["result"]) == 3 and classify.headers["Berth-Model-Version"] == "2"
    assert "no version or alias 'canary'" in assert_error(
        client.post(_path(ALL_VERSIONS_MODEL, ":predict", label="canary"), {"instances": X.tolist()}), 404
    )
