"""The binary tensor extension of the v2 REST protocol with hand-made bodies:
every output as binary, and malformed headers. (tritonclient.http with
binary_data=True is in test_tritonclient_http.py.)"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import requests

from berth_server import BerthServer
from models import IRIS_MODEL, ModelRepository, assert_outputs_match, v2_datatype
from v2 import infer_path

HEADER = "Inference-Header-Content-Length"


def _binary_body(header: dict[str, object], payload: bytes) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    return head + payload, {HEADER: str(len(head)), "Content-Type": "application/octet-stream"}


def test_binary_data_output_parameter_returns_every_output_raw(
    server: BerthServer, model_repository: ModelRepository
) -> None:
    model = model_repository.model(IRIS_MODEL)
    x = model.dataset.X_test[:3].astype(np.float32)
    body, headers = _binary_body(
        {
            "parameters": {"binary_data_output": True},
            "inputs": [
                {"name": "X", "datatype": "FP32", "shape": [3, 4], "parameters": {"binary_data_size": x.nbytes}}
            ],
        },
        x.tobytes(),
    )
    response = requests.post(server.base_url + infer_path(IRIS_MODEL), data=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/octet-stream"
    json_size = int(response.headers[HEADER])
    head = json.loads(response.content[:json_size])
    raw = response.content[json_size:]
    sizes = [o["parameters"]["binary_data_size"] for o in head["outputs"]]
    assert sum(sizes) == len(raw)
    expected = model.sklearn_outputs(x)
    offset = 0
    decoded = {}
    for output, size in zip(head["outputs"], sizes, strict=True):
        dtype = {"INT64": np.int64, "FP32": np.float32}[output["datatype"]]
        decoded[output["name"]] = np.frombuffer(raw[offset : offset + size], dtype=dtype).reshape(output["shape"])
        offset += size
    assert_outputs_match(expected, decoded)


def _x_header(size: object) -> dict[str, object]:
    return {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": size}}]}


ROW = struct.pack("<4f", 5.1, 3.5, 1.4, 0.2)

MALFORMED = {
    "header length past the body": (json.dumps(_x_header(16)).encode() + ROW, "100000"),
    "negative header length": (json.dumps(_x_header(16)).encode() + ROW, "-5"),
    "header length not a number": (json.dumps(_x_header(16)).encode() + ROW, "twelve"),
    "binary_data_size past the body": (json.dumps(_x_header(32)).encode() + ROW, None),
    "negative binary_data_size": (json.dumps(_x_header(-16)).encode() + ROW, None),
    "binary_data_size not a number": (json.dumps(_x_header("16")).encode() + ROW, None),
    "size disagrees with the shape": (json.dumps(_x_header(12)).encode() + ROW[:12], None),
    "unclaimed trailing bytes": (json.dumps(_x_header(16)).encode() + ROW + b"\0\0\0\0", None),
    "header length cuts the JSON": (json.dumps(_x_header(16)).encode() + ROW, "10"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_binary_requests_get_400(server: BerthServer, model_repository: ModelRepository, case: str) -> None:
    body, header_length = MALFORMED[case]
    if header_length is None:
        header_length = str(body.index(ROW[:4]) if case != "size disagrees with the shape" else len(body) - 12)
    response = requests.post(
        server.base_url + infer_path(IRIS_MODEL),
        data=body,
        headers={HEADER: header_length, "Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    # The server keeps serving.
    model = model_repository.model(IRIS_MODEL)
    x = model.dataset.X_test[:1].astype(np.float32)
    good, headers = _binary_body(_x_header(x.nbytes), x.tobytes())
    ok = requests.post(server.base_url + infer_path(IRIS_MODEL), data=good, headers=headers, timeout=10)
    assert ok.status_code == 200, ok.text


def test_bytes_length_prefix_past_the_end_gets_400(server: BerthServer, model_repository: ModelRepository) -> None:
    model = model_repository.model("diabetes_strings")
    feeds = model.feeds(model.dataset.X_test[:1])
    string_input = next(name for name, tensor in feeds.items() if v2_datatype(tensor) == "BYTES")
    inputs = []
    payload = b""
    for name, tensor in feeds.items():
        if name == string_input:
            raw = struct.pack("<I", 1000) + b"short"  # declares 1000 bytes, has 5
            inputs.append({"name": name, "datatype": "BYTES", "shape": list(tensor.shape),
                           "parameters": {"binary_data_size": len(raw)}})
            payload += raw
        else:
            inputs.append({"name": name, "datatype": v2_datatype(tensor), "shape": list(tensor.shape),
                           "data": tensor.flatten().tolist()})
    body, headers = _binary_body({"inputs": inputs}, payload)
    response = requests.post(server.base_url + infer_path(model.name), data=body, headers=headers, timeout=10)
    assert response.status_code == 400, response.text
    assert "BYTES" in response.json()["error"]
