"""Triton's repository load parameters: `config` (a model configuration in JSON that
overrides the model's own for the load) and `file:<version>/<path>` (the model's files
sent in the request), through tritonclient and plain REST.

Every failure says Triton's "failed to load '<model>'" and leaves the serving version
serving, with its configuration and its files.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from berth_server import BerthServer, berth_binary
from models import ALL_VERSIONS_MODEL, IRIS_MODEL, ModelRepository, export_model, model_config
from v2 import assert_error

MODEL: Final = "iris_load"
MAX_REQUEST_BYTES: Final = 1 << 20


@pytest.fixture
def root(model_repository: ModelRepository, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    model = model_repository.model(IRIS_MODEL)
    export_model(model, root, config=model_config(model, name=MODEL, max_batch_size=16))
    return root


@pytest.fixture
def served(root: Path, tmp_path: Path) -> Iterator[BerthServer]:
    with BerthServer.start(
        berth_binary(), root, tmp_path / "berth.log", max_request_bytes=MAX_REQUEST_BYTES
    ) as server:
        yield server


@pytest.fixture
def http(served: BerthServer) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(url=served.address)
    yield client
    client.close()


@pytest.fixture
def grpc(served: BerthServer) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(url=served.grpc_address())
    yield client
    client.close()


def rows(model_repository: ModelRepository, n: int) -> np.ndarray:
    return np.asarray(model_repository.model(IRIS_MODEL).dataset.X_test[:n], dtype=np.float32)


def infer(http: httpclient.InferenceServerClient, x: np.ndarray) -> Any:
    i = httpclient.InferInput("X", list(x.shape), "FP32")
    i.set_data_from_numpy(x)
    return http.infer(MODEL, [i])


def onnx_bytes(model_repository: ModelRepository, version: int = 2) -> bytes:
    """Version `version` of the two-version iris model: answers differently from IRIS_MODEL."""
    return bytes(model_repository.model(ALL_VERSIONS_MODEL, version).onnx_model.SerializeToString())


def load_error(client: Any, **kwargs: Any) -> str:
    with pytest.raises(InferenceServerException) as raised:
        client.load_model(MODEL, **kwargs)
    return str(raised.value)


def test_config_override_applies_until_a_plain_load(
    http: httpclient.InferenceServerClient, grpc: grpcclient.InferenceServerClient, model_repository: ModelRepository
) -> None:
    config = http.get_model_config(MODEL)
    assert config["max_batch_size"] == 16
    config["max_batch_size"] = 4
    http.load_model(MODEL, config=json.dumps(config))
    assert http.get_model_config(MODEL)["max_batch_size"] == 4
    with pytest.raises(InferenceServerException, match="over the model's max_batch_size 4"):
        infer(http, rows(model_repository, 5))
    # gRPC carries the same parameter.
    config["max_batch_size"] = 8
    grpc.load_model(MODEL, config=json.dumps(config))
    assert grpc.get_model_config(MODEL, as_json=True)["config"]["max_batch_size"] == 8
    # A load without it goes back to the model's own configuration.
    http.load_model(MODEL)
    assert http.get_model_config(MODEL)["max_batch_size"] == 16
    infer(http, rows(model_repository, 5))


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ("{not json", "not a valid Triton model configuration in JSON"),
        ('{"max_batch_size": "many"}', "not a valid Triton model configuration in JSON"),
        ('{"no_such_field": 1}', "no_such_field"),
        ('{"platform": "tensorflow_savedmodel"}', "platform 'tensorflow_savedmodel' is not supported"),
        ('{"name": "other"}', "names model 'other'"),
        # Valid JSON, but the graph has no such input: the version does not load.
        (
            '{"input": [{"name": "nope", "data_type": "TYPE_FP32", "dims": [4]}]}',
            "keeps serving",
        ),
    ],
)
def test_a_bad_config_leaves_the_serving_version_alone(
    http: httpclient.InferenceServerClient,
    grpc: grpcclient.InferenceServerClient,
    model_repository: ModelRepository,
    config: str,
    fragment: str,
) -> None:
    x = rows(model_repository, 3)
    outputs = [o["name"] for o in http.get_model_metadata(MODEL)["outputs"]]
    before = infer(http, x)
    for client in (http, grpc):
        message = load_error(client, config=config)
        assert f"failed to load '{MODEL}'" in message, message
        assert fragment in message, message
    assert http.is_model_ready(MODEL)
    assert http.get_model_config(MODEL)["max_batch_size"] == 16
    after = infer(http, x)
    for name in outputs:
        np.testing.assert_array_equal(after.as_numpy(name), before.as_numpy(name))


def test_files_add_a_version(
    grpc: grpcclient.InferenceServerClient, http: httpclient.InferenceServerClient, root: Path,
    model_repository: ModelRepository,
) -> None:  # fmt: skip
    config = http.get_model_config(MODEL)
    grpc.load_model(MODEL, config=json.dumps(config), files={"file:2/model.onnx": onnx_bytes(model_repository)})
    assert (root / MODEL / "2" / "model.onnx").read_bytes() == onnx_bytes(model_repository)
    assert http.get_model_metadata(MODEL)["versions"] == ["2"]
    assert not [p.name for p in (root / MODEL).iterdir() if p.name.startswith(".")]


def test_files_over_rest_are_base64(served: BerthServer, http: httpclient.InferenceServerClient, root: Path,
                                    model_repository: ModelRepository) -> None:  # fmt: skip
    config = json.dumps(http.get_model_config(MODEL))
    url = f"{served.base_url}/v2/repository/models/{MODEL}/load"
    body = {"parameters": {"config": config, "file:3/model.onnx": base64.b64encode(onnx_bytes(model_repository)).decode()}}
    response = requests.post(url, json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert http.get_model_metadata(MODEL)["versions"] == ["3"]
    message = assert_error(requests.post(url, json={"parameters": {"config": config, "file:3/model.onnx": "!!"}}, timeout=60), 400)
    assert "must be base64" in message


@pytest.mark.parametrize(
    "name",
    ["file:2/../../escape.onnx", "file:../escape.onnx", "file:/etc/escape", "file:2//model.onnx", "file:2/./x",
     "file:0/model.onnx", "file:two/model.onnx", "file:2/a\\b"],
)  # fmt: skip
def test_file_names_are_confined(
    served: BerthServer, http: httpclient.InferenceServerClient, root: Path, name: str
) -> None:
    config = json.dumps(http.get_model_config(MODEL))
    before = sorted(str(p.relative_to(root.parent)) for p in root.parent.rglob("*"))
    url = f"{served.base_url}/v2/repository/models/{MODEL}/load"
    body = {"parameters": {"config": config, name: base64.b64encode(b"not a model").decode()}}
    message = assert_error(requests.post(url, json=body, timeout=60), 400)
    assert f"failed to load '{MODEL}'" in message and "file:" in message, message
    assert sorted(str(p.relative_to(root.parent)) for p in root.parent.rglob("*")) == before
    assert http.is_model_ready(MODEL)


def test_files_that_do_not_load_are_taken_back(
    grpc: grpcclient.InferenceServerClient, http: httpclient.InferenceServerClient, root: Path,
    model_repository: ModelRepository,
) -> None:  # fmt: skip
    config = json.dumps(http.get_model_config(MODEL))
    original = (root / MODEL / "1" / "model.onnx").read_bytes()
    # A version the registry recorded is immutable.
    message = load_error(grpc, config=config, files={"file:1/model.onnx": onnx_bytes(model_repository)})
    assert f"failed to load '{MODEL}'" in message and "is recorded in the registry" in message, message
    assert (root / MODEL / "1" / "model.onnx").read_bytes() == original
    # One version per load.
    message = load_error(grpc, config=config, files={"file:6/model.onnx": b"x", "file:7/model.onnx": b"y"})
    assert "send one version per load" in message, message
    # A new version that does not load is not left behind.
    message = load_error(grpc, config=config, files={"file:5/model.onnx": b"not a model"})
    assert "version 5 sent with the request did not load" in message or "keeps serving" in message, message
    assert not (root / MODEL / "5").exists()
    assert not [p.name for p in (root / MODEL).iterdir() if p.name.startswith(".")]
    assert http.get_model_metadata(MODEL)["versions"] == ["1"]
    assert http.is_model_ready(MODEL)


def test_files_need_config(grpc: grpcclient.InferenceServerClient, served: BerthServer) -> None:
    message = load_error(grpc, files={"file:1/model.onnx": b"x"})
    assert "'file:' parameters need the 'config' parameter too" in message
    url = f"{served.base_url}/v2/repository/models/{MODEL}/load"
    assert "unknown load parameter 'bogus'" in assert_error(
        requests.post(url, json={"parameters": {"bogus": "x"}}, timeout=10), 400
    )
    assert "must be a string" in assert_error(requests.post(url, json={"parameters": {"config": {}}}, timeout=10), 400)


def test_oversized_files_are_refused(
    grpc: grpcclient.InferenceServerClient, http: httpclient.InferenceServerClient, served: BerthServer
) -> None:
    config = json.dumps(http.get_model_config(MODEL))
    big = b"\0" * (MAX_REQUEST_BYTES + 1)
    with pytest.raises(InferenceServerException) as raised:
        grpc.load_model(MODEL, config=config, files={"file:2/model.onnx": big})
    assert "RESOURCE_EXHAUSTED" in str(raised.value.status())
    url = f"{served.base_url}/v2/repository/models/{MODEL}/load"
    body = {"parameters": {"config": config, "file:2/model.onnx": base64.b64encode(big).decode()}}
    assert_error(requests.post(url, json=body, timeout=60), 413)
    assert http.get_model_metadata(MODEL)["versions"] == ["1"]


def test_a_new_model_from_files(
    grpc: grpcclient.InferenceServerClient, http: httpclient.InferenceServerClient, root: Path,
    model_repository: ModelRepository,
) -> None:  # fmt: skip
    config = http.get_model_config(MODEL)
    config["name"] = "sent"
    grpc.load_model("sent", config=json.dumps(config), files={"file:1/model.onnx": onnx_bytes(model_repository, 1)})
    assert http.is_model_ready("sent")
    assert (root / "sent" / "config.pbtxt").is_file()
    # A new model whose files do not load leaves nothing behind.
    config["name"] = "broken"
    with pytest.raises(InferenceServerException, match="failed to load 'broken'"):
        grpc.load_model("broken", config=json.dumps(config), files={"file:1/model.onnx": b"junk"})
    assert not (root / "broken").exists()
    assert not [p.name for p in root.iterdir() if p.name.startswith(".load")]
    assert "broken" not in [m["name"] for m in http.get_model_repository_index()]


def test_load_parameters_only_from_loopback(root: Path, tmp_path: Path) -> None:
    from test_repository_hardening import _non_loopback_address

    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    with BerthServer.start(berth_binary(), root, tmp_path / "remote.log", extra_args=["--host", "0.0.0.0"]) as server:
        url = f"http://{address}:{server.http_port}/v2/repository/models/{MODEL}/load"
        body = {"parameters": {"config": "{}", "file:2/model.onnx": base64.b64encode(b"x").decode()}}
        assert "--allow-remote-admin" in assert_error(requests.post(url, json=body, timeout=10), 403)
        assert not (root / MODEL / "2").exists()
