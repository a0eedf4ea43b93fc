"""Compressed request bodies (Content-Encoding gzip / deflate), as
tritonclient.http sends them with request_compression_algorithm."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
import requests
import tritonclient.http as httpclient

from berth_server import BerthServer
from models import IRIS_MODEL, ModelRepository, assert_outputs_match, graph_outputs
from test_tritonclient_http import triton_inputs
from v2 import infer_path


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
@pytest.mark.parametrize("binary", [False, True])
def test_tritonclient_compressed_requests_match_sklearn(
    server: BerthServer, model_repository: ModelRepository, algorithm: str, binary: bool
) -> None:
    model = model_repository.model(IRIS_MODEL)
    X = model.dataset.X_test
    names = [spec.name for spec in graph_outputs(model.onnx_model)]
    client = httpclient.InferenceServerClient(url=server.address)
    try:
        result = client.infer(
            IRIS_MODEL,
            triton_inputs(model.feeds(X), binary),
            outputs=[httpclient.InferRequestedOutput(name, binary_data=binary) for name in names],
            request_compression_algorithm=algorithm,
            response_compression_algorithm=algorithm,
        )
    finally:
        client.close()
    assert_outputs_match(model.sklearn_outputs(X), {name: result.as_numpy(name) for name in names})


def _post(server: BerthServer, body: bytes, encoding: str) -> requests.Response:
    headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
    return requests.post(server.base_url + infer_path(IRIS_MODEL), data=body, headers=headers, timeout=10)


def test_bad_compressed_bodies(server: BerthServer, model_repository: ModelRepository, max_request_bytes: int) -> None:
    model = model_repository.model(IRIS_MODEL)
    good = json.dumps(model.infer_request(model.dataset.X_test[:2])).encode()

    corrupt = _post(server, b"this is not gzip", "gzip")
    assert corrupt.status_code == 400
    assert "corrupt" in corrupt.json()["error"]

    truncated = _post(server, gzip.compress(good)[:-12], "gzip")
    assert truncated.status_code == 400

    unsupported = _post(server, good, "br")
    assert unsupported.status_code == 415
    assert "br" in unsupported.json()["error"]

    # A few KiB on the wire that would expand past --max-request-bytes.
    bomb = gzip.compress(b" " * (4 * max_request_bytes))
    assert len(bomb) < max_request_bytes
    too_big = _post(server, bomb, "gzip")
    assert too_big.status_code == 413
    assert too_big.json()["error"]

    # The server keeps serving, compressed or not.
    assert _post(server, zlib.compress(good), "deflate").status_code == 200
    assert _post(server, good, "identity").status_code == 200
