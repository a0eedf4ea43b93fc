"""Bad requests get the right 4xx status and a JSON {"error": "..."} body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import pytest
import requests

from berth_server import BerthServer
from models import IRIS_MODEL, TEST_MAX_BATCH_SIZE
from v2 import V2Client, assert_error, infer_ok, infer_path

MODEL: Final = IRIS_MODEL  # input X: FP32 [-1, 4]
ROWS: Final = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
DATA: Final = [value for row in ROWS for value in row]


def x_input(**fields: Any) -> dict[str, Any]:
    """A correct input tensor for MODEL, with `fields` replaced."""
    return {"name": "X", "datatype": "FP32", "shape": [2, 4], "data": DATA, **fields}


def request(*inputs: dict[str, Any], **fields: Any) -> bytes:
    # Note: json.dumps writes float("nan") and float("inf") as the non-JSON
    # literals NaN and Infinity, as a careless client would.
    return json.dumps({"inputs": list(inputs), **fields}).encode()


GOOD_REQUEST: Final = request(x_input())


@dataclass(frozen=True)
class BadRequest:
    id: str
    body: bytes
    status: int = 400
    path: str = infer_path(MODEL)


BAD_REQUESTS: Final = [
    BadRequest("malformed-json", b'{"inputs": [{name: "X"}]}'),
    BadRequest("truncated-json", GOOD_REQUEST[: len(GOOD_REQUEST) // 2]),
    BadRequest("empty-body", b""),
    BadRequest("body-not-an-object", b"[1, 2, 3]"),
    BadRequest("inputs-missing", b"{}"),
    BadRequest("inputs-not-a-list", json.dumps({"inputs": x_input()}).encode()),
    BadRequest("inputs-empty", request()),
    BadRequest("unknown-input", request(x_input(name="Y"))),
    BadRequest("data-count-not-shape-product", request(x_input(data=DATA[:-1]))),
    BadRequest("wrong-feature-count", request(x_input(shape=[2, 3], data=DATA[:6]))),
    BadRequest("wrong-rank", request(x_input(shape=[8]))),
    BadRequest("fp64-for-fp32-input", request(x_input(datatype="FP64"))),
    BadRequest("unknown-datatype", request(x_input(datatype="FLOAT32"))),
    BadRequest("string-data-for-fp32", request(x_input(data=[str(value) for value in DATA]))),
    BadRequest("nan", request(x_input(data=[float("nan"), *DATA[1:]]))),
    BadRequest("infinity", request(x_input(data=[float("inf"), *DATA[1:]]))),
    BadRequest("negative-infinity", request(x_input(data=[*DATA[:-1], float("-inf")]))),
    BadRequest("unknown-output", request(x_input(), outputs=[{"name": "no_such_output"}])),
    BadRequest(
        "batch-over-max-batch-size",
        request(x_input(shape=[TEST_MAX_BATCH_SIZE + 1, 4], data=ROWS[0] * (TEST_MAX_BATCH_SIZE + 1))),
    ),
    BadRequest("unknown-model", GOOD_REQUEST, 404, infer_path("no_such_model")),
    BadRequest("unknown-version", GOOD_REQUEST, 404, infer_path(MODEL, 99)),
]


def test_nan_case_sends_a_nan_literal() -> None:
    assert b"[NaN, " in next(case.body for case in BAD_REQUESTS if case.id == "nan")


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=lambda case: case.id)
def test_bad_request_is_refused(client: V2Client, case: BadRequest) -> None:
    assert_error(client.post_raw(case.path, case.body), case.status)


def test_good_request_is_accepted(client: V2Client) -> None:
    infer_ok(client.post_raw(infer_path(MODEL), GOOD_REQUEST))


def test_body_over_max_request_bytes_is_413(server: BerthServer, max_request_bytes: int) -> None:
    # Valid JSON, only too long: leading whitespace pads it past the limit.
    body = b" " * max_request_bytes + GOOD_REQUEST
    response = requests.post(
        server.base_url + infer_path(MODEL),
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_error(response, 413)
    with V2Client(server.base_url) as client:
        infer_ok(client.post_raw(infer_path(MODEL), GOOD_REQUEST))


def test_rapid_bad_requests_on_one_keep_alive_connection(server: BerthServer) -> None:
    with V2Client(server.base_url) as client:
        for i in range(1000):
            case = BAD_REQUESTS[i % len(BAD_REQUESTS)]
            assert_error(client.post_raw(case.path, case.body), case.status)
        infer_ok(client.post_raw(infer_path(MODEL), GOOD_REQUEST))
        assert client.connections_opened() == 1, "the server closed the keep-alive connection"


@dataclass(frozen=True)
class StrictCase:
    """A request that every door must refuse with 400 and a message naming the problem (issue #6)."""

    id: str
    path: str
    body: bytes
    message: str  # a substring of the error message
    headers: tuple[tuple[str, str], ...] = ()


def _raw_bool_request(raw: bytes) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """A binary-extension request with one BOOL input of the bytes `raw`."""
    tensor = {"name": "X", "datatype": "BOOL", "shape": [1, len(raw)], "parameters": {"binary_data_size": len(raw)}}
    head = json.dumps({"inputs": [tensor]}).encode()
    return head + raw, (("Inference-Header-Content-Length", str(len(head))),)


_RAW_BOOL_BODY, _RAW_BOOL_HEADERS = _raw_bool_request(b"\x00\x01\x02\x00")
_TFSERVING: Final = f"/v1/models/{MODEL}:predict"
_ROWS: Final = f"/v2/models/{MODEL}/infer_rows"

STRICT_CASES: Final = [
    StrictCase(
        "ragged-nesting",
        infer_path(MODEL),
        request(x_input(data=[[1, 2, 3], [4, 5, 6, 7, 8]])),
        "data does not match shape [2, 4]: data[0] has 3 entries where 4 are expected",
    ),
    StrictCase(
        "nesting-of-another-shape",
        infer_path(MODEL),
        request(x_input(data=[[1, 2], [3, 4], [5, 6], [7, 8]])),
        "data does not match shape [2, 4]",
    ),
    StrictCase(
        "nested-data-before-the-shape",
        infer_path(MODEL),
        request({"data": [[1, 2, 3], [4, 5, 6, 7, 8]], "name": "X", "datatype": "FP32", "shape": [2, 4]}),
        "data does not match shape [2, 4]",
    ),
    StrictCase(
        "duplicate-key-v2",
        infer_path(MODEL),
        b'{"inputs": [], ' + GOOD_REQUEST[1:],
        "duplicate key 'inputs'",
    ),
    StrictCase(
        "duplicate-key-in-an-input",
        infer_path(MODEL),
        request({**x_input(), "datatype": "FP32"}).replace(b'"data":', b'"datatype": "FP64", "data":'),
        "duplicate key 'datatype'",
    ),
    StrictCase(
        "duplicate-key-tfserving",
        _TFSERVING,
        json.dumps({"instances": ROWS}).encode()[:-1] + b', "instances": []}',
        "duplicate key 'instances'",
    ),
    StrictCase(
        "duplicate-key-rows",
        _ROWS,
        b'{"instances": [{"X": [1, 2, 3, 4], "X": [5, 6, 7, 8]}]}',
        "duplicate key 'X'",
    ),
    StrictCase("duplicate-key-repository-index", "/v2/repository/index", b'{"ready": true, "ready": false}', ""),
    StrictCase(
        "binary-data-output-not-a-boolean",
        infer_path(MODEL),
        request(x_input(), parameters={"binary_data_output": 1}),
        "parameter 'binary_data_output' in 'parameters' must be a boolean",
    ),
    StrictCase(
        "binary-data-not-a-boolean",
        infer_path(MODEL),
        request(x_input(), outputs=[{"name": "label", "parameters": {"binary_data": "true"}}]),
        "parameter 'binary_data' in 'outputs[0].parameters' must be a boolean",
    ),
    StrictCase(
        "classification-not-an-integer",
        infer_path(MODEL),
        request(x_input(), outputs=[{"name": "label", "parameters": {"classification": "2"}}]),
        "parameter 'classification' in 'outputs[0].parameters' must be a non-negative integer",
    ),
    StrictCase(
        "raw-bool-byte-not-0-or-1",
        infer_path(MODEL),
        _RAW_BOOL_BODY,
        "holds byte 2 at flat index 2; a raw BOOL element must be 0 or 1",
        _RAW_BOOL_HEADERS,
    ),
]


@pytest.mark.parametrize("case", STRICT_CASES, ids=lambda case: case.id)
def test_strict_case_is_refused_with_its_reason(server: BerthServer, case: StrictCase) -> None:
    response = requests.post(
        server.base_url + case.path,
        data=case.body,
        headers={"Content-Type": "application/json", **dict(case.headers)},
        timeout=10,
    )
    assert case.message in assert_error(response, 400)


def test_flat_data_of_the_right_count_is_still_accepted(client: V2Client) -> None:
    # KServe v2: flat data need not follow the shape's nesting.
    infer_ok(client.post_raw(infer_path(MODEL), request(x_input(data=DATA))))
    infer_ok(client.post_raw(infer_path(MODEL), request(x_input(data=ROWS))))
