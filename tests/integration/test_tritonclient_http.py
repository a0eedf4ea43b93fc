"""The stock Triton HTTP client (tritonclient.http from PyPI) against Berth, with JSON and binary tensors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from berth_server import BerthServer
from models import (
    IRIS_MODEL,
    PARITY_MODELS,
    Array,
    ModelRepository,
    assert_outputs_match,
    graph_inputs,
    graph_outputs,
    v2_datatype,
)
from v2 import as_text


@pytest.fixture(scope="module")
def triton(server: BerthServer) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(url=server.address)
    yield client
    client.close()


def triton_inputs(feeds: dict[str, Array], binary: bool = False) -> list[httpclient.InferInput]:
    """tritonclient inputs for `feeds`, as JSON data or (binary) raw tensor bytes."""
    inputs = []
    for name, tensor in feeds.items():
        infer_input = httpclient.InferInput(name, list(tensor.shape), v2_datatype(tensor))
        infer_input.set_data_from_numpy(tensor, binary_data=binary)
        inputs.append(infer_input)
    return inputs


def test_server_is_live_and_ready(triton: httpclient.InferenceServerClient) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_model_is_ready(triton: httpclient.InferenceServerClient, name: str) -> None:
    assert triton.is_model_ready(name)
    assert triton.is_model_ready(name, model_version="1")


def test_unknown_model_is_not_ready(triton: httpclient.InferenceServerClient) -> None:
    assert not triton.is_model_ready("no_such_model")


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_model_metadata(
    triton: httpclient.InferenceServerClient, model_repository: ModelRepository, name: str
) -> None:
    model = model_repository.model(name)
    metadata = triton.get_model_metadata(name)
    assert metadata["name"] == name
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [spec.as_dict() for spec in graph_inputs(model.onnx_model)]
    assert metadata["outputs"] == [spec.as_dict() for spec in graph_outputs(model.onnx_model)]


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_infer_matches_sklearn(
    triton: httpclient.InferenceServerClient, model_repository: ModelRepository, name: str
) -> None:
    model = model_repository.model(name)
    X = model.dataset.X_test
    output_names = [spec.name for spec in graph_outputs(model.onnx_model)]
    result = triton.infer(
        name,
        triton_inputs(model.feeds(X)),
        outputs=[httpclient.InferRequestedOutput(output, binary_data=False) for output in output_names],
        request_id="triton-1",
    )
    response = result.get_response()
    assert response["model_name"] == name
    assert response["id"] == "triton-1"
    assert_outputs_match(
        model.sklearn_outputs(X), {output: result.as_numpy(output) for output in output_names}
    )


def test_infer_unknown_model_raises_404(
    triton: httpclient.InferenceServerClient, model_repository: ModelRepository
) -> None:
    iris = model_repository.model(IRIS_MODEL)
    with pytest.raises(InferenceServerException) as raised:
        triton.infer("no_such_model", triton_inputs(iris.feeds(iris.dataset.X_test[:1])))
    assert raised.value.status() == "404"
    assert raised.value.message()


@pytest.mark.parametrize("name", PARITY_MODELS)
@pytest.mark.parametrize(("binary_in", "binary_out"), [(True, True), (True, False), (False, True)])
def test_binary_tensors_match_sklearn(
    triton: httpclient.InferenceServerClient,
    model_repository: ModelRepository,
    name: str,
    binary_in: bool,
    binary_out: bool,
) -> None:
    model = model_repository.model(name)
    X = model.dataset.X_test
    output_names = [spec.name for spec in graph_outputs(model.onnx_model)]
    result = triton.infer(
        name,
        triton_inputs(model.feeds(X), binary_in),
        outputs=[httpclient.InferRequestedOutput(o, binary_data=binary_out) for o in output_names],
    )
    for output in result.get_response()["outputs"]:
        assert ("data" not in output) == binary_out
        assert ("binary_data_size" in output.get("parameters", {})) == binary_out
    assert_outputs_match(model.sklearn_outputs(X), {o: as_text(result.as_numpy(o)) for o in output_names})
