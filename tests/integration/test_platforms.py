"""The cloud container contracts (--platform sagemaker | vertex | azure), over the wire.

Each platform gets its own server, started the way the platform starts a
container: SageMaker's port in SAGEMAKER_BIND_TO_PORT, Vertex AI's port and
routes in AIP_* variables, Azure chosen by BERTH_PLATFORM. Every prediction
is compared with scikit-learn's.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import pytest

from berth_server import BerthServer, berth_binary, free_port
from models import IRIS_MODEL, PARITY_MODELS, ModelRepository, TrainedModel, assert_outputs_match, export_model
from row_format import bare_rows, decode_predictions, named_rows, rows
from train_models import model_config
from v2 import V2Client, assert_error, infer_ok

MIXED_MODEL: Final = "diabetes_strings"  # inputs sex BYTES [-1, 1] and X FP32 [-1, 9]
FP64_MODEL: Final = "breast_cancer_rf"  # input X FP64 [-1, 30]
AZURE_DEFAULT_MODEL: Final = "wine_scaled_logreg"
VERTEX_HEALTH_ROUTE: Final = "/v1/endpoints/1234/deployedModels/5678"
VERTEX_PREDICT_ROUTE: Final = "/v1/endpoints/1234/deployedModels/5678:predict"
TARGET_MODEL: Final = "X-Amzn-SageMaker-Target-Model"
CSV: Final = {"Content-Type": "text/csv"}
JSON: Final = {"Content-Type": "application/json"}


def start(
    repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    http_port_env: str | None = None,
) -> BerthServer:
    log_path = tmp_path_factory.mktemp("berth_platform") / "berth.log"
    return BerthServer.start(
        berth_binary(), repository, log_path, grpc_port=-1, extra_args=extra_args, env=env, http_port_env=http_port_env
    )


@pytest.fixture(scope="module")
def sagemaker(model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[V2Client]:
    """Every test model, no --default-model: requests name their model in the header."""
    with start(
        model_repository.root,
        tmp_path_factory,
        extra_args=["--platform", "sagemaker"],
        http_port_env="SAGEMAKER_BIND_TO_PORT",
    ) as server:
        with V2Client(server.base_url) as client:
            yield client


@pytest.fixture(scope="module")
def vertex(model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[V2Client]:
    """A repository with one model (the mixed one), which therefore answers without --default-model."""
    repository = tmp_path_factory.mktemp("vertex_repository")
    model = model_repository.model(MIXED_MODEL)
    export_model(model, repository, config=model_config(model, max_batch_size=256))
    env = {"AIP_HEALTH_ROUTE": VERTEX_HEALTH_ROUTE, "AIP_PREDICT_ROUTE": VERTEX_PREDICT_ROUTE}
    with start(
        repository, tmp_path_factory, extra_args=["--platform", "vertex"], env=env, http_port_env="AIP_HTTP_PORT"
    ) as server:
        with V2Client(server.base_url) as client:
            yield client


@pytest.fixture(scope="module")
def azure(model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[V2Client]:
    """Chosen by BERTH_PLATFORM; every test model, --default-model answers."""
    with start(
        model_repository.root,
        tmp_path_factory,
        extra_args=["--default-model", AZURE_DEFAULT_MODEL],
        env={"BERTH_PLATFORM": "azure"},
    ) as server:
        with V2Client(server.base_url) as client:
            yield client


def post(client: V2Client, path: str, body: bytes | str, headers: dict[str, str]) -> Any:
    data = body.encode() if isinstance(body, str) else body
    return client.session.post(client.base_url + path, data=data, headers=headers, timeout=10)


def predictions_of(response: Any) -> list[Any]:
    body = infer_ok(response)
    assert list(body) == ["predictions"], body
    predictions: list[Any] = body["predictions"]
    return predictions


def assert_matches_sklearn(model: TrainedModel, X: Any, response: Any) -> None:
    predictions = predictions_of(response)
    assert len(predictions) == len(X)
    assert_outputs_match(model.sklearn_outputs(X), decode_predictions(model, predictions))


def csv_body(model: TrainedModel, X: Any) -> str:
    """One line per row; repr() round-trips every float exactly."""
    (tensor,) = model.feeds(X).values()
    return "".join(",".join(repr(value) for value in row) + "\n" for row in tensor.tolist())


# --- SageMaker -------------------------------------------------------------------


def test_sagemaker_ping(sagemaker: V2Client) -> None:
    response = sagemaker.get("/ping")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_sagemaker_json_instances(sagemaker: V2Client, model_repository: ModelRepository, name: str) -> None:
    model = model_repository.model(name)
    X = model.dataset.X_test
    response = post(sagemaker, "/invocations", json.dumps({"instances": rows(model, X)}), {**JSON, TARGET_MODEL: name})
    assert_matches_sklearn(model, X, response)


def test_sagemaker_json_bare_list(sagemaker: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(MIXED_MODEL)
    X = model.dataset.X_test[:9]
    body = json.dumps(named_rows(model, X, scalar_columns=True))
    assert_matches_sklearn(model, X, post(sagemaker, "/invocations", body, {**JSON, TARGET_MODEL: MIXED_MODEL}))


@pytest.mark.parametrize("name", [IRIS_MODEL, FP64_MODEL], ids=["fp32", "fp64"])
@pytest.mark.parametrize("content_type", ["text/csv", "text/csv; charset=utf-8", "Text/CSV;header=absent"])
def test_sagemaker_csv(sagemaker: V2Client, model_repository: ModelRepository, name: str, content_type: str) -> None:
    model = model_repository.model(name)
    X = model.dataset.X_test
    response = post(sagemaker, "/invocations", csv_body(model, X), {"Content-Type": content_type, TARGET_MODEL: name})
    assert_matches_sklearn(model, X, response)


def test_sagemaker_target_model_may_name_the_archive(sagemaker: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(IRIS_MODEL)
    X = model.dataset.X_test[:3]
    response = post(sagemaker, "/invocations", csv_body(model, X), {**CSV, TARGET_MODEL: f"{IRIS_MODEL}.tar.gz"})
    assert_matches_sklearn(model, X, response)


def test_sagemaker_without_target_model_names_the_choices(sagemaker: V2Client) -> None:
    message = assert_error(post(sagemaker, "/invocations", "5.1,3.5,1.4,0.2\n", CSV), 400)
    assert "--default-model" in message and f"'{IRIS_MODEL}'" in message


IRIS_CSV_ERRORS: Final = {
    "header-line": ("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n", "header"),
    "row-too-short": ("5.1,3.5,1.4,0.2\n6.7,3.0,5.2\n", "CSV line 2 has 3 values, but line 1 has 4"),
    "rows-too-long": ("5.1,3.5,1.4,0.2,9.9\n", "CSV line 1 has 5 values, but input 'X' (FP32 [-1, 4]) takes 4"),
    "not-a-number": ("5.1,3.5,1.4,0.2\n6.7,three,5.2,2.3\n", "CSV line 2, field 2 ('three') is not a number"),
    "empty-field": ("5.1,,1.4,0.2\n", "field 2 ('') is not a number"),
    "quoted-number": ('"5.1",3.5,1.4,0.2\n', "is not a number"),
    "semicolons": ("5.1;3.5;1.4;0.2\n", "is not a number"),
    "blank-line-between-rows": ("5.1,3.5,1.4,0.2\n\n6.7,3.0,5.2,2.3\n", "CSV line 2 is blank"),
    "empty-body": ("", "no rows"),
    "nan": ("nan,3.5,1.4,0.2\n", "NaN"),
}


@pytest.mark.parametrize("case", IRIS_CSV_ERRORS.values(), ids=IRIS_CSV_ERRORS.keys())
def test_sagemaker_malformed_csv(sagemaker: V2Client, model_repository: ModelRepository, case: tuple[str, str]) -> None:
    body, message = case
    assert message in assert_error(post(sagemaker, "/invocations", body, {**CSV, TARGET_MODEL: IRIS_MODEL}), 400)
    still_serving(sagemaker, model_repository)


def still_serving(sagemaker: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(IRIS_MODEL)
    X = model.dataset.X_test[:2]
    assert_matches_sklearn(
        model, X, post(sagemaker, "/invocations", csv_body(model, X), {**CSV, TARGET_MODEL: IRIS_MODEL})
    )


def test_sagemaker_csv_needs_a_single_numeric_input(sagemaker: V2Client) -> None:
    response = post(sagemaker, "/invocations", "sex_1,1,2,3,4,5,6,7,8,9\n", {**CSV, TARGET_MODEL: MIXED_MODEL})
    assert "text/csv needs a model with one input" in assert_error(response, 400)


SAGEMAKER_JSON_ERRORS: Final = {
    "unknown-feature-name": (
        MIXED_MODEL,
        {"instances": [{"sex": "sex_1", "X": [0.0] * 9, "bmi": 30.0}]},
        "'bmi', which is not an input",
    ),
    "wrong-row-width": (IRIS_MODEL, {"instances": [[5.1, 3.5, 1.4]]}, "has shape [3], expected [4]"),
    "unknown-field": (IRIS_MODEL, {"instances": [[5.1, 3.5, 1.4, 0.2]], "inputs": []}, "unknown field 'inputs'"),
    "no-rows-field": (IRIS_MODEL, {"data": [[5.1, 3.5, 1.4, 0.2]]}, "unknown field 'data'"),
}


@pytest.mark.parametrize("case", SAGEMAKER_JSON_ERRORS.values(), ids=SAGEMAKER_JSON_ERRORS.keys())
def test_sagemaker_bad_json(
    sagemaker: V2Client, model_repository: ModelRepository, case: tuple[str, dict[str, Any], str]
) -> None:
    name, body, message = case
    response = post(sagemaker, "/invocations", json.dumps(body), {**JSON, TARGET_MODEL: name})
    assert message in assert_error(response, 400)
    still_serving(sagemaker, model_repository)


def test_sagemaker_deeply_nested_json(sagemaker: V2Client, model_repository: ModelRepository) -> None:
    body = "[" * 100_000 + "]" * 100_000
    response = post(sagemaker, "/invocations", body, {**JSON, TARGET_MODEL: IRIS_MODEL})
    assert "nested deeper" in assert_error(response, 400)
    still_serving(sagemaker, model_repository)


def test_sagemaker_malformed_json(sagemaker: V2Client, model_repository: ModelRepository) -> None:
    response = post(sagemaker, "/invocations", '{"instances": [[5.1, 3.5', {**JSON, TARGET_MODEL: IRIS_MODEL})
    assert "malformed JSON" in assert_error(response, 400)
    still_serving(sagemaker, model_repository)


def test_sagemaker_unsupported_content_type_is_415(sagemaker: V2Client, model_repository: ModelRepository) -> None:
    headers = {"Content-Type": "text/plain", TARGET_MODEL: IRIS_MODEL}
    response = post(sagemaker, "/invocations", "5.1 3.5 1.4 0.2", headers)
    assert "text/plain" in assert_error(response, 415)
    still_serving(sagemaker, model_repository)


def test_sagemaker_unknown_target_model_is_404(sagemaker: V2Client) -> None:
    assert_error(post(sagemaker, "/invocations", "5.1,3.5,1.4,0.2\n", {**CSV, TARGET_MODEL: "no_such_model"}), 404)


# --- Vertex AI ---------------------------------------------------------------------


def test_vertex_health_route(vertex: V2Client) -> None:
    response = vertex.get(VERTEX_HEALTH_ROUTE)
    assert response.status_code == 200, response.text


def test_vertex_predict_route(vertex: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(MIXED_MODEL)
    X = model.dataset.X_test
    assert_matches_sklearn(model, X, vertex.post(VERTEX_PREDICT_ROUTE, {"instances": named_rows(model, X)}))


def test_vertex_b64_strings_answer_as_plain_strings(vertex: V2Client, model_repository: ModelRepository) -> None:
    """Vertex AI sends binary values as {"b64": ...}, as TF Serving does: the same answer as plain strings."""
    model = model_repository.model(MIXED_MODEL)
    X = model.dataset.X_test[:5]
    plain = named_rows(model, X)
    coded = [{**row, "sex": [{"b64": base64.b64encode(s.encode()).decode()} for s in row["sex"]]} for row in plain]
    expected = vertex.post(VERTEX_PREDICT_ROUTE, {"instances": plain})
    assert_matches_sklearn(model, X, expected)
    answer = vertex.post(VERTEX_PREDICT_ROUTE, {"instances": coded})
    assert answer.status_code == 200, answer.text
    assert answer.json() == expected.json()
    bad = [{**plain[0], "sex": {"b64": "not base64!"}}]
    assert "not valid base64" in assert_error(vertex.post(VERTEX_PREDICT_ROUTE, {"instances": bad}), 400)


def test_vertex_parameters_are_accepted(vertex: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(MIXED_MODEL)
    X = model.dataset.X_test[:5]
    request = {"instances": named_rows(model, X, scalar_columns=True), "parameters": {"confidence": 0.5}}
    assert_matches_sklearn(model, X, vertex.post(VERTEX_PREDICT_ROUTE, request))


@pytest.mark.parametrize("path", ["/predict", "/health"])
def test_vertex_default_routes_give_way_to_the_environment(vertex: V2Client, path: str) -> None:
    response = vertex.post(path, {"instances": []}) if path == "/predict" else vertex.get(path)
    assert_error(response, 404)


VERTEX_ERRORS: Final = {
    "unknown-feature-name": ({"instances": [{"sex": "sex_1", "x": [0.0] * 9}]}, "'x', which is not an input"),
    "wrong-width": ({"instances": [{"sex": "sex_1", "X": [0.0] * 8}]}, "has shape [8], expected [9]"),
    "bare-rows": ({"instances": [[0.0] * 10]}, "has 2 inputs"),
    "unknown-field": ({"instances": [{"sex": "sex_1", "X": [0.0] * 9}], "signature_name": "x"}, "unknown field"),
    "parameters-not-an-object": ({"instances": [{"sex": "sex_1", "X": [0.0] * 9}], "parameters": 1}, "'parameters'"),
    "no-instances": ({"parameters": {}}, "must be {\"instances\": [...]}"),
}


@pytest.mark.parametrize("case", VERTEX_ERRORS.values(), ids=VERTEX_ERRORS.keys())
def test_vertex_bad_request(vertex: V2Client, model_repository: ModelRepository, case: tuple[Any, str]) -> None:
    body, message = case
    assert message in assert_error(vertex.post(VERTEX_PREDICT_ROUTE, body), 400)
    model = model_repository.model(MIXED_MODEL)
    X = model.dataset.X_test[:2]
    assert_matches_sklearn(model, X, vertex.post(VERTEX_PREDICT_ROUTE, {"instances": named_rows(model, X)}))


# --- Azure ML ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/ready"])
def test_azure_probes(azure: V2Client, path: str) -> None:
    response = azure.get(path)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("form", ["data", "instances", "bare-list"])
def test_azure_score(azure: V2Client, model_repository: ModelRepository, form: str) -> None:
    model = model_repository.model(AZURE_DEFAULT_MODEL)
    X = model.dataset.X_test
    instances = bare_rows(model, X)
    body: Any = instances if form == "bare-list" else {form: instances}
    assert_matches_sklearn(model, X, azure.post("/score", body))


AZURE_ERRORS: Final = {
    "both-data-and-instances": (b'{"data": [[1]], "instances": [[1]]}', "both 'data' and 'instances'"),
    "wrong-width": (b'{"data": [[1.0, 2.0]]}', "has shape [2], expected [13]"),
    "malformed-json": (b'{"data": [[1.0, 2.0]', "malformed JSON"),
    "not-rows": (b'"hello"', "must be"),
}


@pytest.mark.parametrize("case", AZURE_ERRORS.values(), ids=AZURE_ERRORS.keys())
def test_azure_bad_request(azure: V2Client, model_repository: ModelRepository, case: tuple[bytes, str]) -> None:
    body, message = case
    assert message in assert_error(azure.post_raw("/score", body), 400)
    model = model_repository.model(AZURE_DEFAULT_MODEL)
    X = model.dataset.X_test[:2]
    assert_matches_sklearn(model, X, azure.post("/score", {"data": bare_rows(model, X)}))


def test_platform_routes_are_off_without_a_platform(client: V2Client) -> None:
    for path in ["/ping", "/ready", "/health"]:
        assert_error(client.get(path), 404)
    for path in ["/invocations", "/score", "/predict"]:
        assert_error(client.post(path, {"instances": [[5.1, 3.5, 1.4, 0.2]]}), 404)


# --- Start-up errors ----------------------------------------------------------------


def run_berth(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `berth serve` expecting it to refuse to start; it must exit on its own."""
    command = [str(berth_binary()), "serve", "--http-port", str(free_port()), "--grpc-port", "-1", *args]
    environment = {**os.environ, **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=20, env=environment, check=False)


def test_unknown_platform_is_refused() -> None:
    result = run_berth(["--model-repository", ".", "--platform", "heroku"])
    assert result.returncode == 2
    assert "unknown platform 'heroku' (--platform)" in result.stderr


def test_unknown_berth_platform_variable_is_refused() -> None:
    result = run_berth(["--model-repository", "."], env={"BERTH_PLATFORM": "gcp"})
    assert result.returncode == 2
    assert "unknown platform 'gcp' (BERTH_PLATFORM)" in result.stderr


def test_vertex_cloud_storage_uri_is_not_supported_yet() -> None:
    result = run_berth(["--platform", "vertex"], env={"AIP_STORAGE_URI": "gs://bucket/models/iris"})
    assert result.returncode == 2
    assert "AIP_STORAGE_URI='gs://bucket/models/iris'" in result.stderr
    assert "not supported yet" in result.stderr


def test_unknown_default_model_is_refused(model_repository: ModelRepository) -> None:
    result = run_berth(
        ["--model-repository", str(model_repository.root), "--platform", "azure", "--default-model", "nope"]
    )
    assert result.returncode == 1
    assert "--default-model 'nope' is not a model of the repository" in result.stdout + result.stderr
