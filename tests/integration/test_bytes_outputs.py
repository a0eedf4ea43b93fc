"""BYTES outputs that are not valid UTF-8, at every door that answers in JSON.

A JSON string holds only UTF-8 text; written raw, such bytes would make the
whole response invalid JSON. Each door does what its clients expect:

- v2 JSON (`data`): refused with a 400 that says to ask for the output as
  binary data (`binary_data_output`, or the output's `binary_data`), as
  Triton's clients do for binary outputs; binary output and gRPC carry them.
- TF Serving `:predict`: {"b64": "<base64>"}, TF Serving's own convention.
- infer_rows and the cloud routes (SageMaker here): refused like v2 JSON,
  pointing at the v2 and gRPC doors, since row formats have no binary form.

Text that is valid UTF-8 comes back unchanged everywhere.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any, Final

import grpc
import numpy as np
import pytest
import requests
from tritonclient.grpc import service_pb2, service_pb2_grpc

from berth_server import BerthServer
from echo_model import ECHO_MODEL, NOT_UTF8, raw_bytes, start_echo_server
from v2 import infer_path

HEADER: Final = "Inference-Header-Content-Length"
TIMEOUT_S: Final = 10.0
TEXTS: Final = ["héllo", "日本語", "tab\tand \"quotes\"", "🙂", ""]
NOT_UTF8_B64: Final = {"b64": base64.b64encode(NOT_UTF8).decode()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    """The echo model, with the SageMaker routes on as well as v2, rows and TF Serving."""
    with start_echo_server(tmp_path_factory, extra_args=["--platform", "sagemaker"]) as server:
        yield server


def post(server: BerthServer, path: str, body: Any) -> requests.Response:
    return requests.post(server.base_url + path, json=body, timeout=TIMEOUT_S)


def assert_refused_as_not_utf8(response: requests.Response, remedy: str) -> None:
    assert response.status_code == 400, response.text
    message = json.loads(response.content.decode("utf-8"))["error"]  # valid UTF-8 and valid JSON
    assert "output 'pick' holds a BYTES element that is not valid UTF-8" in message, message
    assert remedy in message, message


def v2_body(texts: list[str], flags: list[bool], **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts},
            {"name": "flag", "datatype": "BOOL", "shape": [len(flags)], "data": flags},
        ],
        **extra,
    }


def binary_request(values: list[bytes], **extra: Any) -> tuple[bytes, dict[str, str]]:
    """`values` as the text input, sent raw; flag all true, so pick = text."""
    raw = raw_bytes(values)
    flags = bytes([1] * len(values))
    head = json.dumps({
        "inputs": [
            {"name": "text", "datatype": "BYTES", "shape": [len(values)], "parameters": {"binary_data_size": len(raw)}},
            {"name": "flag", "datatype": "BOOL", "shape": [len(values)], "parameters": {"binary_data_size": len(flags)}},
        ],
        **extra,
    }).encode()  # fmt: skip
    return head + raw + flags, {HEADER: str(len(head)), "Content-Type": "application/octet-stream"}


# --- v2 JSON --------------------------------------------------------------------------------


def test_v2_json_refuses_bytes_that_are_not_utf8(server: BerthServer) -> None:
    response = post(server, infer_path(ECHO_MODEL), v2_body(["ok"], [False]))
    assert_refused_as_not_utf8(response, "binary_data_output")


def test_v2_json_refuses_raw_input_echoed_back_as_json(server: BerthServer) -> None:
    body, headers = binary_request([b"ok", b"\x80\x81"], outputs=[{"name": "text_out"}])
    response = requests.post(server.base_url + infer_path(ECHO_MODEL), data=body, headers=headers, timeout=TIMEOUT_S)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert "output 'text_out' holds a BYTES element that is not valid UTF-8 (flat index 1)" in message
    assert "binary_data" in message


@pytest.mark.parametrize(
    "extra",
    [
        {"parameters": {"binary_data_output": True}},
        {"outputs": [{"name": "pick", "parameters": {"binary_data": True}}, {"name": "text_out"}]},
    ],
    ids=["binary_data_output", "binary_data"],
)
def test_v2_binary_output_carries_bytes_that_are_not_utf8(server: BerthServer, extra: dict[str, Any]) -> None:
    response = post(server, infer_path(ECHO_MODEL), v2_body(["ok", "fine"], [False, True], **extra))
    assert response.status_code == 200, response.text
    json_size = int(response.headers[HEADER])
    head = json.loads(response.content[:json_size])
    outputs = {o["name"]: o for o in head["outputs"]}
    assert "data" not in outputs["pick"]
    offset = json_size
    for o in head["outputs"]:  # binary outputs follow the JSON in the order of the outputs
        size = o.get("parameters", {}).get("binary_data_size")
        if size is None:
            continue
        if o["name"] == "pick":
            assert response.content[offset : offset + size] == raw_bytes([NOT_UTF8, b"fine"])
        offset += size
    assert offset == len(response.content)
    if "text_out" in outputs and "data" in outputs["text_out"]:
        assert outputs["text_out"]["data"] == ["ok", "fine"]


def test_v2_json_round_trips_utf8_text_unchanged(server: BerthServer) -> None:
    response = post(server, infer_path(ECHO_MODEL), v2_body(TEXTS, [True] * len(TEXTS)))
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
    assert outputs["text_out"] == TEXTS
    assert outputs["pick"] == TEXTS


def test_grpc_carries_bytes_that_are_not_utf8(server: BerthServer) -> None:
    values = [NOT_UTF8, b"\x00\xff", "héllo".encode()]
    request = service_pb2.ModelInferRequest(model_name=ECHO_MODEL)
    request.inputs.add(name="text", datatype="BYTES", shape=[len(values)])
    request.inputs.add(name="flag", datatype="BOOL", shape=[len(values)])
    request.raw_input_contents.append(raw_bytes(values))
    request.raw_input_contents.append(np.ones(len(values), np.bool_).tobytes())
    request.outputs.add(name="text_out")
    with grpc.insecure_channel(server.grpc_address()) as channel:
        response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=TIMEOUT_S)
    assert response.raw_output_contents[0] == raw_bytes(values)


# --- TF Serving -------------------------------------------------------------------------------


def test_tfserving_rows_write_bytes_that_are_not_utf8_as_b64(server: BerthServer) -> None:
    instances = [{"text": "ok", "flag": False}, *({"text": t, "flag": True} for t in TEXTS)]
    response = post(server, f"/v1/models/{ECHO_MODEL}:predict", {"instances": instances})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert predictions[0] == {"text_out": "ok", "flag_out": False, "pick": NOT_UTF8_B64}
    assert [p["pick"] for p in predictions[1:]] == TEXTS
    assert [p["text_out"] for p in predictions[1:]] == TEXTS


def test_tfserving_columns_write_bytes_that_are_not_utf8_as_b64(server: BerthServer) -> None:
    body = {"inputs": {"text": ["ok", "日本語"], "flag": [False, True]}}
    response = post(server, f"/v1/models/{ECHO_MODEL}:predict", body)
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert outputs["pick"] == [NOT_UTF8_B64, "日本語"]
    assert outputs["text_out"] == ["ok", "日本語"]


# --- infer_rows and the cloud routes ----------------------------------------------------------


ROW_DOORS: Final = [f"/v2/models/{ECHO_MODEL}/infer_rows", "/invocations"]


@pytest.mark.parametrize("path", ROW_DOORS, ids=["infer_rows", "sagemaker"])
def test_row_doors_refuse_bytes_that_are_not_utf8(server: BerthServer, path: str) -> None:
    response = post(server, path, {"instances": [{"text": "ok", "flag": True}, {"text": "ok", "flag": False}]})
    assert_refused_as_not_utf8(response, "POST /v2/models/{model}/infer")


@pytest.mark.parametrize("path", ROW_DOORS, ids=["infer_rows", "sagemaker"])
def test_row_doors_round_trip_utf8_text_unchanged(server: BerthServer, path: str) -> None:
    response = post(server, path, {"instances": [{"text": t, "flag": True} for t in TEXTS]})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["pick"] for p in predictions] == TEXTS
    assert [p["text_out"] for p in predictions] == TEXTS
