"""A model repository written for Triton (config.pbtxt) serves as it is, and answers
as the same model configured for Berth does; what Berth cannot honour is named.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

from berth_server import BerthServer, berth_binary
from models import IRIS_MODEL, ModelRepository, assert_outputs_match

TRITON_CONFIG = """
# As Triton's own ONNX examples write it.
name: "iris_triton"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [
  {
    name: "X"
    data_type: TYPE_FP32
    dims: [ 4 ]
  }
]
output [
  {
    name: "label"
    data_type: TYPE_INT64
    dims: [ ]
  },
  {
    name: "probabilities"
    data_type: TYPE_FP32
    dims: [ 3 ]
  }
]
dynamic_batching {
  max_queue_delay_microseconds: 100
  default_queue_policy { max_queue_size: 32 }
}
instance_group [ { count: 1, kind: KIND_CPU } ]
response_cache { enable: true }
model_warmup [ { name: "zeros", batch_size: 1, inputs { key: "X" value: { data_type: TYPE_FP32, dims: [ 4 ], zero_data: true } } } ]
"""


def iris_warmup(name: str, dims: str, data: str) -> str:
    """The iris model's Triton config with one model_warmup sample."""
    return f"""
name: "{name}"
max_batch_size: 8
input [ {{ name: "X" data_type: TYPE_FP32 dims: [ 4 ] }} ]
model_warmup [ {{
  name: "sample"
  batch_size: 2
  count: 2
  inputs {{ key: "X" value: {{ data_type: TYPE_FP32 dims: [ {dims} ] {data} }} }}
}} ]
"""


EXTRA_CONFIGS = {
    "random_warmup_triton": iris_warmup("random_warmup_triton", "4", "random_data: true"),
    # Warm-up of the wrong shape: the version cannot answer it, so it is never published.
    "wrong_warmup_triton": iris_warmup("wrong_warmup_triton", "5", "zero_data: true"),
    "file_warmup_triton": iris_warmup("file_warmup_triton", "4", 'input_data_file: "raw_X"'),
    # A syntax error on line 3: an unterminated list.
    "malformed_triton": (
        'name: "malformed_triton"\nmax_batch_size: 8\ninput [ { name: "X" data_type: TYPE_FP32 dims: [ 4 }\n'
    ),
}


@pytest.fixture(scope="module")
def triton_server(model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    root = tmp_path_factory.mktemp("triton_repository")
    model_dir = root / "iris_triton"
    (model_dir / "1").mkdir(parents=True)
    shutil.copy(model_repository.root / IRIS_MODEL / "1" / "model.onnx", model_dir / "1" / "model.onnx")
    (model_dir / "config.pbtxt").write_text(TRITON_CONFIG)
    broken = root / "broken_triton"
    (broken / "1").mkdir(parents=True)
    shutil.copy(model_repository.root / IRIS_MODEL / "1" / "model.onnx", broken / "1" / "model.onnx")
    (broken / "config.pbtxt").write_text('name: "broken_triton"\nsequence_batching { }\n')
    for name, config in EXTRA_CONFIGS.items():
        (root / name / "1").mkdir(parents=True)
        shutil.copy(model_repository.root / IRIS_MODEL / "1" / "model.onnx", root / name / "1" / "model.onnx")
        (root / name / "config.pbtxt").write_text(config)
    log = tmp_path_factory.mktemp("triton_server") / "berth.log"
    with BerthServer.start(berth_binary(), root, log) as server:
        yield server


def test_a_triton_config_serves_and_answers_as_berths_config_does(
    triton_server: BerthServer, server: BerthServer, model_repository: ModelRepository
) -> None:
    model = model_repository.model(IRIS_MODEL)
    X = model.dataset.X_test.astype(np.float32)
    answers = {}
    for srv, name in ((triton_server, "iris_triton"), (server, IRIS_MODEL)):
        client = httpclient.InferenceServerClient(srv.address)
        try:
            metadata = client.get_model_metadata(name)
            x = httpclient.InferInput("X", list(X.shape), "FP32")
            x.set_data_from_numpy(X, binary_data=True)
            result = client.infer(name, [x])
            answers[name] = {o: result.as_numpy(o) for o in ("label", "probabilities")}
        finally:
            client.close()
        if name == "iris_triton":
            # Triton's dims without the batch dimension became Berth's [-1, ...].
            assert metadata["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
    assert_outputs_match(model.sklearn_outputs(X), answers["iris_triton"])
    np.testing.assert_array_equal(answers["iris_triton"]["label"], answers[IRIS_MODEL]["label"])
    np.testing.assert_allclose(answers["iris_triton"]["probabilities"], answers[IRIS_MODEL]["probabilities"])


def test_what_berth_ignores_is_named_in_the_log(triton_server: BerthServer) -> None:
    log = triton_server.log()
    assert "iris_triton/config.pbtxt" in log
    assert "'response_cache' is not supported by Berth and is ignored" in log
    # model_warmup is read (test_model_warmup_is_the_versions_warm_up_request), not ignored.
    assert "'model_warmup' is not supported" not in log


def model_index(server: BerthServer) -> dict[str, dict[str, str]]:
    client = httpclient.InferenceServerClient(server.address)
    try:
        return {m["name"]: m for m in client.get_model_repository_index()}
    finally:
        client.close()


def test_model_warmup_is_the_versions_warm_up_request(triton_server: BerthServer) -> None:
    index = model_index(triton_server)
    assert index["iris_triton"]["state"] == "READY"  # zero_data, batch_size 1
    assert index["random_warmup_triton"]["state"] == "READY"
    # The sample is sent as the version's warm-up request: [batch_size] + dims, which
    # the model refuses, so the version is never published.
    wrong = index["wrong_warmup_triton"]
    assert wrong["state"] == "UNAVAILABLE"
    assert "[2, 5]" in wrong["reason"], wrong
    # Data from files is refused by name.
    refused = index["file_warmup_triton"]
    assert refused["state"] == "UNAVAILABLE"
    assert "file_warmup_triton/config.pbtxt" in refused["reason"]
    assert "input_data_file is not supported by Berth" in refused["reason"]


def test_a_malformed_config_pbtxt_names_its_file_and_line(triton_server: BerthServer) -> None:
    entry = model_index(triton_server)["malformed_triton"]
    assert entry["state"] == "UNAVAILABLE"
    assert "malformed_triton/config.pbtxt" in entry["reason"] and "line 3" in entry["reason"], entry
    # The other models keep serving.
    client = httpclient.InferenceServerClient(triton_server.address)
    try:
        x = httpclient.InferInput("X", [1, 4], "FP32")
        x.set_data_from_numpy(np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32))
        assert client.infer("iris_triton", [x]).as_numpy("label").shape == (1,)
        assert client.is_server_live()
    finally:
        client.close()


def test_a_field_berth_cannot_honour_makes_the_model_unavailable_with_the_reason(
    triton_server: BerthServer,
) -> None:
    client = httpclient.InferenceServerClient(triton_server.address)
    try:
        index = {m["name"]: m for m in client.get_model_repository_index()}
        assert index["broken_triton"]["state"] == "UNAVAILABLE"
        assert "'sequence_batching' is not supported" in index["broken_triton"]["reason"]
        assert index["iris_triton"]["state"] == "READY"
        assert client.is_server_live()
    finally:
        client.close()


def test_both_a_berth_and_a_triton_config_is_refused(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    model_dir = tmp_path / "twice"
    (model_dir / "1").mkdir(parents=True)
    shutil.copy(model_repository.root / IRIS_MODEL / "1" / "model.onnx", model_dir / "1" / "model.onnx")
    (model_dir / "config.pbtxt").write_text('platform: "onnxruntime_onnx"\n')
    (model_dir / "config.yaml").write_text("backend: onnx\n")
    with BerthServer.start(berth_binary(), tmp_path, tmp_path / "berth.log") as server:
        client = httpclient.InferenceServerClient(server.address)
        try:
            (entry,) = [m for m in client.get_model_repository_index() if m["name"] == "twice"]
            assert entry["state"] == "UNAVAILABLE"
            assert "both config.yaml and config.pbtxt exist" in entry["reason"]
        finally:
            client.close()


def test_model_config_extension_over_http_and_grpc(triton_server: BerthServer) -> None:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    http = httpclient.InferenceServerClient(triton_server.address)
    grpc = grpcclient.InferenceServerClient(triton_server.grpc_address())
    try:
        rest = http.get_model_config("iris_triton")
        assert rest["name"] == "iris_triton"
        assert rest["platform"] == "onnxruntime_onnx" and rest["backend"] == "onnxruntime"
        assert rest["max_batch_size"] == 64
        # As Triton shows them: dims without the batch dimension, as numbers.
        assert [(i["name"], i["data_type"], i["dims"]) for i in rest["input"]] == [("X", "TYPE_FP32", [4])]
        assert [(o["name"], o["dims"]) for o in rest["output"]] == [("label", []), ("probabilities", [3])]
        assert rest["dynamic_batching"]["max_queue_delay_microseconds"] == 100
        assert rest["dynamic_batching"]["default_queue_policy"]["max_queue_size"] == 32
        assert rest["instance_group"][0]["kind"] == "KIND_CPU"
        assert http.get_model_config("iris_triton", model_version="1") == rest
        # tritonclient.grpc decodes the reply with Triton's own ModelConfig message.
        config = grpc.get_model_config("iris_triton", as_json=True)["config"]
        assert config["name"] == "iris_triton" and config["max_batch_size"] == 64
        assert [(i["name"], i["data_type"], i["dims"]) for i in config["input"]] == [("X", "TYPE_FP32", ["4"])]
        assert config["dynamic_batching"]["default_queue_policy"]["max_queue_size"] == 32
        with pytest.raises(InferenceServerException, match="not in the repository"):
            http.get_model_config("no_such_model")
        with pytest.raises(InferenceServerException, match="not in the repository"):
            grpc.get_model_config("no_such_model")
    finally:
        http.close()
        grpc.close()


def test_error_texts_start_with_tritons_words(triton_server: BerthServer) -> None:
    """Tools written for Triton match on its messages; Berth's detail follows them."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    x_http = httpclient.InferInput("X", [1, 4], "FP32")
    x_http.set_data_from_numpy(np.zeros((1, 4), dtype=np.float32))
    x_grpc = grpcclient.InferInput("X", [1, 4], "FP32")
    x_grpc.set_data_from_numpy(np.zeros((1, 4), dtype=np.float32))
    http = httpclient.InferenceServerClient(triton_server.address)
    grpc = grpcclient.InferenceServerClient(triton_server.grpc_address())
    try:
        for client, x in ((http, x_http), (grpc, x_grpc)):
            with pytest.raises(InferenceServerException) as unknown:
                client.infer("no_such_model", [x])
            assert "Request for unknown model: 'no_such_model' is not found" in str(unknown.value)
            with pytest.raises(InferenceServerException) as version:
                client.infer("iris_triton", [x], model_version="7")
            assert "Request for unknown model: 'iris_triton' version 7 is not found" in str(version.value)
            with pytest.raises(InferenceServerException) as load:
                client.load_model("broken_triton")
            assert "failed to load 'broken_triton'" in str(load.value)
            assert "'sequence_batching' is not supported" in str(load.value)
    finally:
        http.close()
        grpc.close()
