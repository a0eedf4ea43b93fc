"""The same bad request gets the same answer at every v2 door: REST JSON, REST binary and gRPC.

Each case is one neutral request (inputs, datatypes, shapes, values; requested
outputs) sent through each door it can be expressed in. The doors must agree
on the status class (HTTP 400 / gRPC INVALID_ARGUMENT, 404 / NOT_FOUND) and on
the message, word for word: the checks live once in the core
(core/request_validator, core/raw_tensor), not in each front end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import grpc
import numpy as np
import pytest
import requests
from tritonclient.grpc import service_pb2, service_pb2_grpc

from berth_server import BerthServer
from echo_model import ECHO_MODEL, raw_bytes, start_echo_server
from v2 import infer_path

HEADER: Final = "Inference-Header-Content-Length"
TIMEOUT_S: Final = 10.0

# The gRPC codes that stand for an HTTP status.
GRPC_CODE_OF: Final = {
    400: {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION},
    404: {grpc.StatusCode.NOT_FOUND},
}


@dataclass
class Input:
    name: str
    datatype: str
    shape: list[int]
    values: list[Any]
    # The raw form for the binary doors, when it is not the encoding of `values`.
    raw: bytes | None = None

    def raw_data(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.datatype == "BYTES":
            return raw_bytes([v.encode() if isinstance(v, str) else v for v in self.values])
        dtype = {"BOOL": np.bool_, "INT32": np.int32, "FP32": np.float32}[self.datatype]
        return np.array(self.values, dtype=dtype).tobytes()


@dataclass
class Case:
    id: str
    inputs: list[Input]
    outputs: list[dict[str, Any]] = field(default_factory=list)
    model: str = ECHO_MODEL
    status: int = 400
    message: str = ""  # what every door answers
    binary_only: bool = False  # the bad part exists only in the raw form (REST binary, gRPC)


def text(values: list[str] | None = None, **kwargs: Any) -> Input:
    values = ["a", "b"] if values is None else values
    return Input("text", "BYTES", [len(values)], values, **kwargs)


def flag(values: list[bool] | None = None, **kwargs: Any) -> Input:
    values = [True, False] if values is None else values
    return Input("flag", "BOOL", [len(values)], values, **kwargs)


CASES: Final = [
    Case("unknown_model", [text(), flag()], model="no_such_model", status=404,
         message="Request for unknown model: 'no_such_model' is not found (model 'no_such_model' is not in the repository)"),
    Case("unknown_input", [text(), flag(), Input("nope", "FP32", [1], [1.0])],
         message="model 'echo' has no input 'nope' (inputs: 'text', 'flag')"),
    Case("input_given_twice", [text(), flag(), flag()], message="input 'flag' is given more than once"),
    Case("missing_input", [text()], message="missing input 'flag' (BOOL [-1])"),
    Case("wrong_datatype", [Input("text", "INT32", [2], [1, 2]), flag()],
         message="input 'text' has datatype INT32, expected BYTES"),
    Case("wrong_rank", [Input("text", "BYTES", [2, 1], ["a", "b"]), flag()],
         message="input 'text' has shape [2, 1], expected [-1]"),
    Case("unknown_output", [text(), flag()], outputs=[{"name": "nope"}],
         message="model 'echo' has no output 'nope'"),
    Case("output_requested_twice", [text(), flag()], outputs=[{"name": "pick"}, {"name": "pick"}],
         message="output 'pick' is requested more than once"),
    Case("binary_data_not_a_boolean", [text(), flag()],
         outputs=[{"name": "pick", "parameters": {"binary_data": "yes"}}],
         message="parameter 'binary_data' in 'outputs[0].parameters' must be a boolean (true or false)"),
    Case("classification_negative", [text(), flag()],
         outputs=[{"name": "pick", "parameters": {"classification": -1}}],
         message="parameter 'classification' in 'outputs[0].parameters' must be a non-negative integer"),
    Case("bool_byte_other_than_0_or_1", [text(), flag(raw=b"\x01\x02")], binary_only=True,
         message="input 'flag' holds byte 2 at flat index 1; a raw BOOL element must be 0 or 1"),
    Case("bool_data_short", [text(), flag(raw=b"\x01")], binary_only=True,
         message="input 'flag': shape [2] of BOOL needs 2 bytes of binary data, got 1"),
    Case("bytes_length_past_the_end", [text(raw=raw_bytes([b"a"]) + (100).to_bytes(4, "little") + b"xyz"), flag()],
         binary_only=True, message="input 'text': BYTES element 1 declares 100 bytes but only 3 remain"),
    Case("bytes_elements_missing", [text(raw=raw_bytes([b"abcdefgh"])), flag()], binary_only=True,
         message="input 'text': binary BYTES data ends before element 1 of 2"),
    Case("bytes_left_over", [text(raw=raw_bytes([b"a", b"b", b""])), flag()], binary_only=True,
         message="input 'text': 4 bytes of binary data left after the last BYTES element"),
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    with start_echo_server(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def stub(server: BerthServer) -> Iterator[service_pb2_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(server.grpc_address()) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def rest_json(server: BerthServer, case: Case) -> tuple[int, str]:
    body = {
        "inputs": [{"name": i.name, "datatype": i.datatype, "shape": i.shape, "data": i.values} for i in case.inputs],
        "outputs": case.outputs,
    }
    response = requests.post(server.base_url + infer_path(case.model), json=body, timeout=TIMEOUT_S)
    return response.status_code, response.json()["error"]


def rest_binary(server: BerthServer, case: Case) -> tuple[int, str]:
    inputs = []
    payload = b""
    for i in case.inputs:
        raw = i.raw_data()
        inputs.append({"name": i.name, "datatype": i.datatype, "shape": i.shape,
                       "parameters": {"binary_data_size": len(raw)}})  # fmt: skip
        payload += raw
    head = json.dumps({"inputs": inputs, "outputs": case.outputs}).encode()
    headers = {HEADER: str(len(head)), "Content-Type": "application/octet-stream"}
    response = requests.post(
        server.base_url + infer_path(case.model), data=head + payload, headers=headers, timeout=TIMEOUT_S
    )
    return response.status_code, response.json()["error"]


def set_parameter(parameter: Any, value: Any) -> None:
    if isinstance(value, bool):
        parameter.bool_param = value
    elif isinstance(value, int):
        parameter.int64_param = value
    elif isinstance(value, float):
        parameter.double_param = value
    else:
        parameter.string_param = value


def grpc_raw(stub: service_pb2_grpc.GRPCInferenceServiceStub, case: Case) -> tuple[grpc.StatusCode, str]:
    request = service_pb2.ModelInferRequest(model_name=case.model)
    for i in case.inputs:
        request.inputs.add(name=i.name, datatype=i.datatype, shape=i.shape)
        request.raw_input_contents.append(i.raw_data())
    for o in case.outputs:
        requested = request.outputs.add(name=o["name"])
        for key, value in o.get("parameters", {}).items():
            set_parameter(requested.parameters[key], value)
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request, timeout=TIMEOUT_S)
    error: Any = raised.value
    return error.code(), error.details()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_door_gives_the_same_answer(
    server: BerthServer, stub: service_pb2_grpc.GRPCInferenceServiceStub, case: Case
) -> None:
    binary_status, binary_message = rest_binary(server, case)
    grpc_code, grpc_message = grpc_raw(stub, case)
    assert binary_status == case.status, binary_message
    assert grpc_code in GRPC_CODE_OF[case.status], grpc_message
    assert binary_message == case.message
    assert grpc_message == case.message

    if not case.binary_only:
        json_status, json_message = rest_json(server, case)
        assert json_status == case.status, json_message
        assert json_message == case.message


def test_json_bool_that_is_not_a_boolean_is_refused(server: BerthServer) -> None:
    """The JSON form of a BOOL byte 2: a number where true/false belongs."""
    case = Case("json_bool_2", [text(), Input("flag", "BOOL", [2], [True, 2])])
    status, message = rest_json(server, case)
    assert status == 400
    assert "input 'flag'" in message and "BOOL" in message, message


def test_server_keeps_serving_after_the_bad_requests(
    server: BerthServer, stub: service_pb2_grpc.GRPCInferenceServiceStub
) -> None:
    good = Case("good", [text(["x", "y"]), flag()], outputs=[{"name": "text_out"}])
    body = {
        "inputs": [{"name": i.name, "datatype": i.datatype, "shape": i.shape, "data": i.values} for i in good.inputs],
        "outputs": good.outputs,
    }
    response = requests.post(server.base_url + infer_path(ECHO_MODEL), json=body, timeout=TIMEOUT_S)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == ["x", "y"]


# --- metadata, readiness and the index: assembled once (core/model_metadata) ----------------


def test_model_metadata_is_the_same_at_both_doors(
    server: BerthServer, stub: service_pb2_grpc.GRPCInferenceServiceStub
) -> None:
    for version in ("", "1"):
        path = f"/v2/models/{ECHO_MODEL}" + (f"/versions/{version}" if version else "")
        rest = requests.get(server.base_url + path, timeout=TIMEOUT_S).json()
        reply = stub.ModelMetadata(service_pb2.ModelMetadataRequest(name=ECHO_MODEL, version=version))
        rpc = {
            "name": reply.name,
            "versions": list(reply.versions),
            "platform": reply.platform,
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in reply.inputs],
            "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in reply.outputs],
        }
        assert rest == rpc
        assert rest["versions"] == ["1"]
        assert [t["name"] for t in rest["inputs"]] == ["text", "flag"]


def test_model_metadata_errors_are_the_same_at_both_doors(
    server: BerthServer, stub: service_pb2_grpc.GRPCInferenceServiceStub
) -> None:
    for name, version, status in [("no_such_model", "", 404), (ECHO_MODEL, "7", 404), ("n" * 201, "", 400)]:
        path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "")
        response = requests.get(server.base_url + path, timeout=TIMEOUT_S)
        assert response.status_code == status, response.text
        with pytest.raises(grpc.RpcError) as raised:
            stub.ModelMetadata(service_pb2.ModelMetadataRequest(name=name, version=version))
        error: Any = raised.value
        assert error.code() in GRPC_CODE_OF[status]
        assert error.details() == response.json()["error"]


def test_repository_index_is_the_same_at_both_doors(
    server: BerthServer, stub: service_pb2_grpc.GRPCInferenceServiceStub
) -> None:
    for ready in (False, True):
        rest = requests.post(server.base_url + "/v2/repository/index", json={"ready": ready}, timeout=TIMEOUT_S).json()
        reply = stub.RepositoryIndex(service_pb2.RepositoryIndexRequest(ready=ready))
        rpc = [{"name": m.name, "version": m.version, "state": m.state, "reason": m.reason} for m in reply.models]
        assert rest == rpc == [{"name": ECHO_MODEL, "version": "1", "state": "READY", "reason": ""}]
