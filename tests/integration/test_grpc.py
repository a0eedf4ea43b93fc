"""The gRPC front end (inference.GRPCInferenceService) against the stock Triton gRPC client.

tritonclient.grpc always sends raw_input_contents and reads raw_output_contents;
typed InferTensorContents and malformed messages are sent with the generated
stubs that ship inside tritonclient (tritonclient.grpc.service_pb2*).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from berth_server import BerthServer, berth_binary
from models import (
    ALL_VERSIONS_MODEL,
    IRIS_MODEL,
    PARITY_MODELS,
    Array,
    ModelRepository,
    TrainedModel,
    assert_outputs_match,
    export_model,
    graph_inputs,
    graph_outputs,
    v2_datatype,
)

STRINGS_MODEL: Final = "diabetes_strings"  # a BYTES input ("sex") and a BYTES output ("label")


@pytest.fixture(scope="module")
def triton(grpc_address: str) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(url=grpc_address)
    yield client
    client.close()


@pytest.fixture(scope="module")
def stub(grpc_address: str) -> Iterator[service_pb2_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(grpc_address) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def raw_inputs(feeds: Mapping[str, Array]) -> list[grpcclient.InferInput]:
    inputs = []
    for name, tensor in feeds.items():
        infer_input = grpcclient.InferInput(name, list(tensor.shape), v2_datatype(tensor))
        infer_input.set_data_from_numpy(tensor)
        inputs.append(infer_input)
    return inputs


def as_text(array: Array) -> Array:
    """BYTES come back as bytes objects; scikit-learn's labels are str."""
    if array.dtype == np.object_:
        return np.array([value.decode() for value in array.ravel()], dtype=object).reshape(array.shape)
    return array


def output_names(model: TrainedModel) -> list[str]:
    return [spec.name for spec in graph_outputs(model.onnx_model)]


def infer_raw(
    triton: grpcclient.InferenceServerClient, name: str, model: TrainedModel, X: Array, **kwargs: Any
) -> dict[str, Array]:
    result = triton.infer(name, raw_inputs(model.feeds(X)), **kwargs)
    return {output: as_text(result.as_numpy(output)) for output in output_names(model)}


def typed_tensor(tensor: service_pb2.ModelInferRequest.InferInputTensor, name: str, array: Array) -> None:
    tensor.name = name
    tensor.datatype = v2_datatype(array)
    tensor.shape.extend(array.shape)
    flat = array.ravel()
    if tensor.datatype == "BYTES":
        tensor.contents.bytes_contents.extend(str(value).encode() for value in flat)
    elif tensor.datatype == "FP32":
        tensor.contents.fp32_contents.extend(flat.tolist())
    elif tensor.datatype == "FP64":
        tensor.contents.fp64_contents.extend(flat.tolist())
    elif tensor.datatype == "INT64":
        tensor.contents.int64_contents.extend(flat.tolist())
    else:
        raise ValueError(f"no typed contents in this test for {tensor.datatype}")


def typed_request(name: str, feeds: Mapping[str, Array]) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name=name)
    for input_name, array in feeds.items():
        typed_tensor(request.inputs.add(), input_name, array)
    return request


def raw_outputs(response: service_pb2.ModelInferResponse) -> dict[str, Array]:
    """Decodes raw_output_contents as a client written against Triton's protos does."""
    dtypes = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}
    assert len(response.raw_output_contents) == len(response.outputs)
    outputs = {}
    for output, raw in zip(response.outputs, response.raw_output_contents):
        assert not output.HasField("contents"), "a reply carries its data raw only"
        if output.datatype == "BYTES":
            values, at = [], 0
            while at < len(raw):
                size = int.from_bytes(raw[at : at + 4], "little")
                values.append(raw[at + 4 : at + 4 + size].decode())
                at += 4 + size
            array = np.array(values, dtype=object)
        else:
            array = np.frombuffer(raw, dtype=dtypes[output.datatype])
        outputs[output.name] = array.reshape(tuple(output.shape))
    return outputs


def raw_request(name: str, feeds: Mapping[str, Array]) -> service_pb2.ModelInferRequest:
    """What tritonclient sends, built by hand so that a test can corrupt it."""
    request = service_pb2.ModelInferRequest(model_name=name)
    for input_name, array in feeds.items():
        request.inputs.add(name=input_name, datatype=v2_datatype(array), shape=array.shape)
        request.raw_input_contents.append(array.tobytes())
    return request


def assert_rpc_error(
    stub: service_pb2_grpc.GRPCInferenceServiceStub,
    request: service_pb2.ModelInferRequest,
    code: grpc.StatusCode,
    fragment: str,
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request)
    error: Any = raised.value
    assert error.code() == code, error.details()
    assert fragment in error.details()


# --- health and metadata ----------------------------------------------------------------


def test_server_is_live_and_ready(triton: grpcclient.InferenceServerClient) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()


def test_server_metadata(triton: grpcclient.InferenceServerClient) -> None:
    metadata = triton.get_server_metadata(as_json=True)
    assert metadata["name"] == "berth"
    assert metadata["version"]
    assert "model_repository" in metadata["extensions"]


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_model_is_ready(triton: grpcclient.InferenceServerClient, name: str) -> None:
    assert triton.is_model_ready(name)
    assert triton.is_model_ready(name, model_version="1")


def test_unknown_model_or_version_is_not_ready(triton: grpcclient.InferenceServerClient) -> None:
    assert not triton.is_model_ready("no_such_model")
    assert not triton.is_model_ready(IRIS_MODEL, model_version="7")
    assert not triton.is_model_ready(IRIS_MODEL, model_version="x")


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_model_metadata(triton: grpcclient.InferenceServerClient, model_repository: ModelRepository, name: str) -> None:
    model = model_repository.model(name)
    metadata = triton.get_model_metadata(name, as_json=True)
    assert metadata["name"] == name
    assert metadata["versions"] == ["1"]
    assert metadata["platform"] == "onnxruntime_onnx"
    # MessageToJson writes int64 as strings.
    for got, want in (
        (metadata["inputs"], graph_inputs(model.onnx_model)),
        (metadata["outputs"], graph_outputs(model.onnx_model)),
    ):
        assert [{**spec, "shape": [int(d) for d in spec["shape"]]} for spec in got] == [spec.as_dict() for spec in want]


def test_model_metadata_lists_ready_versions(triton: grpcclient.InferenceServerClient) -> None:
    assert triton.get_model_metadata(ALL_VERSIONS_MODEL).versions == ["1", "2"]
    assert triton.get_model_metadata(ALL_VERSIONS_MODEL, model_version="1").versions == ["1"]


def test_model_metadata_of_unknown_model_is_not_found(triton: grpcclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as raised:
        triton.get_model_metadata("no_such_model")
    assert raised.value.status() == "StatusCode.NOT_FOUND"
    assert "no_such_model" in raised.value.message()


def test_repository_index(triton: grpcclient.InferenceServerClient, model_repository: ModelRepository) -> None:
    index = triton.get_model_repository_index().models
    got = {(entry.name, entry.version, entry.state, entry.reason) for entry in index}
    # Every model on disk is served: iris_latest_version keeps only its version 2.
    assert {(name, "1", "READY", "") for name in PARITY_MODELS} <= got
    assert (ALL_VERSIONS_MODEL, "2", "READY", "") in got
    assert {entry.name for entry in index} == set(model_repository.versions)


# --- inference ------------------------------------------------------------------------


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_raw_infer_matches_sklearn(
    triton: grpcclient.InferenceServerClient, model_repository: ModelRepository, name: str
) -> None:
    model = model_repository.model(name)
    X = model.dataset.X_test
    result = triton.infer(name, raw_inputs(model.feeds(X)), request_id="grpc-1")
    response = result.get_response()
    assert response.model_name == name
    assert response.model_version == "1"
    assert response.id == "grpc-1"
    assert len(response.raw_output_contents) == len(response.outputs)
    actual = {output: as_text(result.as_numpy(output)) for output in output_names(model)}
    assert_outputs_match(model.sklearn_outputs(X), actual)


@pytest.mark.parametrize("name", [IRIS_MODEL, STRINGS_MODEL, "diabetes_gbr"])
def test_typed_infer_matches_sklearn(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, model_repository: ModelRepository, name: str
) -> None:
    model = model_repository.model(name)
    X = model.dataset.X_test
    response = stub.ModelInfer(typed_request(name, model.feeds(X)))
    # As from Triton, the reply is raw whatever form the request used.
    assert_outputs_match(model.sklearn_outputs(X), raw_outputs(response))


def test_infer_named_version(triton: grpcclient.InferenceServerClient, model_repository: ModelRepository) -> None:
    for version in (1, 2):
        model = model_repository.model(ALL_VERSIONS_MODEL, version)
        X = model.dataset.X_test
        actual = infer_raw(triton, ALL_VERSIONS_MODEL, model, X, model_version=str(version))
        assert_outputs_match(model.sklearn_outputs(X), actual)


def test_infer_requested_output_only(
    triton: grpcclient.InferenceServerClient, model_repository: ModelRepository
) -> None:
    model = model_repository.model(IRIS_MODEL)
    X = model.dataset.X_test[:5]
    result = triton.infer(
        IRIS_MODEL, raw_inputs(model.feeds(X)), outputs=[grpcclient.InferRequestedOutput("probabilities")]
    )
    assert [output.name for output in result.get_response().outputs] == ["probabilities"]
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), model.sklearn_outputs(X)["probabilities"], rtol=1e-5, atol=1e-6
    )


def test_concurrent_infer(triton: grpcclient.InferenceServerClient, model_repository: ModelRepository) -> None:
    model = model_repository.model(STRINGS_MODEL)
    X = model.dataset.X_test
    expected = model.sklearn_outputs(X)

    def one(i: int) -> dict[str, Array]:
        rows = slice(i % 7, i % 7 + 20)
        return {k: v for k, v in infer_raw(triton, STRINGS_MODEL, model, X[rows]).items()}

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(64)))
    for i, actual in enumerate(results):
        rows = slice(i % 7, i % 7 + 20)
        assert_outputs_match({k: v[rows] for k, v in expected.items()}, actual)


# --- bad input ------------------------------------------------------------------------


def test_infer_unknown_model_is_not_found(
    triton: grpcclient.InferenceServerClient, model_repository: ModelRepository
) -> None:
    iris = model_repository.model(IRIS_MODEL)
    with pytest.raises(InferenceServerException) as raised:
        triton.infer("no_such_model", raw_inputs(iris.feeds(iris.dataset.X_test[:1])))
    assert raised.value.status() == "StatusCode.NOT_FOUND"
    assert "no_such_model" in raised.value.message()


def test_infer_wrong_shape_is_invalid_argument(
    triton: grpcclient.InferenceServerClient, model_repository: ModelRepository
) -> None:
    iris = model_repository.model(IRIS_MODEL)
    X = np.hstack([iris.feeds(iris.dataset.X_test[:2])["X"], np.zeros((2, 1), np.float32)])
    with pytest.raises(InferenceServerException) as raised:
        triton.infer(IRIS_MODEL, raw_inputs({"X": X}))
    assert raised.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "shape [2, 5]" in raised.value.message()


def test_infer_wrong_datatype_is_invalid_argument(
    triton: grpcclient.InferenceServerClient, model_repository: ModelRepository
) -> None:
    iris = model_repository.model(IRIS_MODEL)
    X = iris.feeds(iris.dataset.X_test[:2])["X"].astype(np.float64)
    with pytest.raises(InferenceServerException) as raised:
        triton.infer(IRIS_MODEL, raw_inputs({"X": X}))
    assert raised.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "datatype FP64, expected FP32" in raised.value.message()


def test_raw_contents_of_the_wrong_size_are_invalid_argument(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, model_repository: ModelRepository
) -> None:
    iris = model_repository.model(IRIS_MODEL)
    request = raw_request(IRIS_MODEL, iris.feeds(iris.dataset.X_test[:2]))
    request.raw_input_contents[0] = request.raw_input_contents[0][:-4]
    assert_rpc_error(stub, request, grpc.StatusCode.INVALID_ARGUMENT, "shape [2, 4] of FP32 needs 32 bytes of binary data, got 28")


def test_raw_contents_missing_for_an_input_are_invalid_argument(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, model_repository: ModelRepository
) -> None:
    model = model_repository.model(STRINGS_MODEL)
    request = raw_request(STRINGS_MODEL, {"X": model.feeds(model.dataset.X_test[:2])["X"]})
    request.inputs.add(name="sex", datatype="BYTES", shape=[2, 1])
    assert_rpc_error(stub, request, grpc.StatusCode.INVALID_ARGUMENT, "one entry per input")


def test_raw_bytes_framing_errors_are_invalid_argument(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, model_repository: ModelRepository
) -> None:
    model = model_repository.model(STRINGS_MODEL)
    feeds = model.feeds(model.dataset.X_test[:2])
    request = service_pb2.ModelInferRequest(model_name=STRINGS_MODEL)
    request.inputs.add(name="sex", datatype="BYTES", shape=[2, 1])
    request.inputs.add(name="X", datatype="FP32", shape=feeds["X"].shape)
    # The second element claims 100 bytes; 5 follow.
    request.raw_input_contents.append((5).to_bytes(4, "little") + b"sex_1" + (100).to_bytes(4, "little") + b"sex_2")
    request.raw_input_contents.append(feeds["X"].tobytes())
    assert_rpc_error(stub, request, grpc.StatusCode.INVALID_ARGUMENT, "BYTES element 1 declares 100 bytes but only 5 remain")

    request.raw_input_contents[0] = (5).to_bytes(4, "little") + b"sex_1"
    assert_rpc_error(stub, request, grpc.StatusCode.INVALID_ARGUMENT, "binary BYTES data ends before element 1 of 2")


def test_typed_contents_in_the_wrong_field_are_invalid_argument(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, model_repository: ModelRepository
) -> None:
    iris = model_repository.model(IRIS_MODEL)
    request = typed_request(IRIS_MODEL, {"X": iris.feeds(iris.dataset.X_test[:2])["X"].astype(np.float64)})
    request.inputs[0].datatype = "FP32"
    assert_rpc_error(stub, request, grpc.StatusCode.INVALID_ARGUMENT, "contents.fp64_contents")


def test_request_over_max_request_bytes_is_resource_exhausted(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, max_request_bytes: int
) -> None:
    rows = max_request_bytes // 16 + 1
    request = raw_request(IRIS_MODEL, {"X": np.zeros((rows, 4), np.float32)})
    assert_rpc_error(stub, request, grpc.StatusCode.RESOURCE_EXHAUSTED, "")


def test_server_still_serves_after_bad_input(
    triton: grpcclient.InferenceServerClient, model_repository: ModelRepository, server: BerthServer
) -> None:
    model = model_repository.model(IRIS_MODEL)
    X = model.dataset.X_test[:3]
    assert_outputs_match(model.sklearn_outputs(X), infer_raw(triton, IRIS_MODEL, model, X))
    assert server.process.poll() is None
    assert triton.is_server_ready()


def test_second_server_on_the_same_grpc_port_fails_to_start(
    grpc_address: str, model_repository: ModelRepository, tmp_path: Path
) -> None:
    port = int(grpc_address.rsplit(":", 1)[1])
    with pytest.raises(RuntimeError, match="cannot listen for gRPC"):
        BerthServer.start(berth_binary(), model_repository.root, tmp_path / "berth.log", grpc_port=port)


# --- repository: load and unload, on a server of its own --------------------------------

RELOADABLE: Final = "iris_reloadable"


@pytest.fixture(scope="module")
def reload_server(model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    """A server whose repository holds iris as RELOADABLE, which the tests unload and load."""
    root = tmp_path_factory.mktemp("reload_repository")
    from train_models import model_config  # on sys.path once models is imported

    export_model(
        model_repository.model(IRIS_MODEL),
        root,
        config=model_config(model_repository.model(IRIS_MODEL), name=RELOADABLE),
    )
    log_path = tmp_path_factory.mktemp("reload_berth") / "berth.log"
    with BerthServer.start(berth_binary(), root, log_path) as server:
        yield server


@pytest.fixture(scope="module")
def reload_triton(reload_server: BerthServer) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(url=reload_server.grpc_address())
    yield client
    client.close()


def test_unload_and_load_over_grpc(
    reload_triton: grpcclient.InferenceServerClient, model_repository: ModelRepository
) -> None:
    model = model_repository.model(IRIS_MODEL)
    X = model.dataset.X_test[:4]
    assert reload_triton.is_model_ready(RELOADABLE)

    reload_triton.unload_model(RELOADABLE)
    assert not reload_triton.is_model_ready(RELOADABLE)
    assert RELOADABLE not in {entry.name for entry in reload_triton.get_model_repository_index().models}
    with pytest.raises(InferenceServerException) as raised:
        infer_raw(reload_triton, RELOADABLE, model, X)
    assert raised.value.status() == "StatusCode.NOT_FOUND"

    reload_triton.load_model(RELOADABLE)
    assert reload_triton.is_model_ready(RELOADABLE)
    index = reload_triton.get_model_repository_index(as_json=True)["models"]
    assert index == [{"name": RELOADABLE, "version": "1", "state": "READY"}]
    assert_outputs_match(model.sklearn_outputs(X), infer_raw(reload_triton, RELOADABLE, model, X))


def test_unload_and_load_over_rest(reload_server: BerthServer, reload_triton: grpcclient.InferenceServerClient) -> None:
    unload = requests.post(f"{reload_server.base_url}/v2/repository/models/{RELOADABLE}/unload", timeout=10)
    assert unload.status_code == 200, unload.text
    assert not reload_triton.is_model_ready(RELOADABLE)
    again = requests.post(f"{reload_server.base_url}/v2/repository/models/{RELOADABLE}/unload", timeout=10)
    assert again.status_code == 404
    assert RELOADABLE in again.json()["error"]
    load = requests.post(f"{reload_server.base_url}/v2/repository/models/{RELOADABLE}/load", timeout=10)
    assert load.status_code == 200, load.text
    assert reload_triton.is_model_ready(RELOADABLE)


def test_repository_errors(reload_triton: grpcclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as unknown_unload:
        reload_triton.unload_model("no_such_model")
    assert unknown_unload.value.status() == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException) as unknown_load:
        reload_triton.load_model("no_such_model")
    assert unknown_load.value.status() == "StatusCode.NOT_FOUND"
    # A malformed configuration override (test_load_parameters.py has the rest).
    with pytest.raises(InferenceServerException) as override:
        reload_triton.load_model(RELOADABLE, config='{"max_batch_size": "eight"}')
    assert override.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert f"failed to load '{RELOADABLE}'" in override.value.message()
    assert "'config'" in override.value.message()
    assert reload_triton.is_model_ready(RELOADABLE)


def test_grpc_can_be_disabled(model_repository: ModelRepository, tmp_path: Path) -> None:
    log_path = tmp_path / "berth.log"
    with BerthServer.start(berth_binary(), model_repository.root, log_path, grpc_port=-1) as server:
        assert requests.get(f"{server.base_url}/v2/health/ready", timeout=5).status_code == 200
    assert "gRPC front end listening" not in log_path.read_text()
    assert "HTTP front end listening" in log_path.read_text()
