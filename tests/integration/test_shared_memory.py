"""Triton's system shared-memory extension, driven by Triton's own clients.

tritonclient.utils.shared_memory creates the regions and writes the inputs;
tritonclient.http and tritonclient.grpc register them and name them in their
requests; the outputs are read back from shared memory with
get_contents_as_numpy. A server of its own: regions are process state, and
/metrics counts them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as shm
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException, serialize_byte_tensor, serialized_byte_size

from berth_server import BerthServer, berth_binary
from echo_model import ECHO_MODEL, write_echo_model
from models import IRIS_MODEL, ModelRepository, export_model, model_config

HELD: Final = "iris_held"
# A held request waits this long in the batcher's queue: long enough to
# unregister its region while it waits.
HELD_QUEUE_DELAY_S: Final = 1.5
ROWS: Final = 5


@pytest.fixture(scope="module")
def shm_server(model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    root = tmp_path_factory.mktemp("shm_repository")
    model = model_repository.model(IRIS_MODEL)
    export_model(model, root, config=model_config(model, name=IRIS_MODEL))
    held = export_model(model, root, config=model_config(model, name=HELD))
    with (held / "config.yaml").open("a") as config:
        config.write(f"dynamic_batching: {{max_queue_delay_microseconds: {int(HELD_QUEUE_DELAY_S * 1e6)}}}\n")
    write_echo_model(root, ECHO_MODEL)
    log = Path(tmp_path_factory.mktemp("berth_shm")) / "berth.log"
    with BerthServer.start(berth_binary(), root, log) as server:
        yield server


@pytest.fixture(scope="module")
def http_triton(shm_server: BerthServer) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(url=shm_server.address)
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc_triton(shm_server: BerthServer) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(url=shm_server.grpc_address())
    yield client
    client.close()


Client = Any  # tritonclient.http or tritonclient.grpc InferenceServerClient
CLIENTS: Final = ("http", "grpc")


@pytest.fixture(params=CLIENTS)
def triton(request: pytest.FixtureRequest, http_triton: Client, grpc_triton: Client) -> Iterator[Client]:
    """Each test runs once per door; no region outlives it."""
    client = http_triton if request.param == "http" else grpc_triton
    yield client
    client.unregister_system_shared_memory()


def module_of(client: Client) -> Any:
    return httpclient if isinstance(client, httpclient.InferenceServerClient) else grpcclient


class Regions:
    """The shared-memory objects a test creates, destroyed at its end."""

    def __init__(self) -> None:
        self.handles: list[Any] = []

    def create(self, name: str, byte_size: int) -> Any:
        key = f"/berth_test_{os.getpid()}_{name}_{len(self.handles)}"
        handle = shm.create_shared_memory_region(name, key, byte_size)
        self.handles.append(handle)
        return handle

    def close(self) -> None:
        for handle in self.handles:
            shm.destroy_shared_memory_region(handle)


@pytest.fixture
def regions() -> Iterator[Regions]:
    r = Regions()
    yield r
    r.close()


def key_of(handle: Any) -> str:
    return handle._shm_key  # what create_shared_memory_region opened


def iris_rows(model_repository: ModelRepository, rows: int = ROWS) -> np.ndarray:
    return np.asarray(model_repository.model(IRIS_MODEL).dataset.X_test[:rows], dtype=np.float32)


def outputs_of(client: Client, model: str) -> list[tuple[str, str]]:
    metadata = client.get_model_metadata(model)
    outputs = metadata["outputs"] if isinstance(metadata, dict) else [
        {"name": o.name, "datatype": o.datatype} for o in metadata.outputs
    ]
    return [(o["name"], o["datatype"]) for o in outputs]


def plain_infer(client: Client, model: str, x: np.ndarray) -> dict[str, np.ndarray]:
    mod = module_of(client)
    infer_input = mod.InferInput("X", list(x.shape), "FP32")
    infer_input.set_data_from_numpy(x)
    result = client.infer(model, [infer_input])
    return {name: result.as_numpy(name) for name, _ in outputs_of(client, model)}


def output_nbytes(expected: np.ndarray) -> int:
    return expected.nbytes


def shm_infer(
    client: Client, regions: Regions, model: str, x: np.ndarray, expected: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Infers with the input and every output in shared memory; returns the outputs read from it."""
    mod = module_of(client)
    input_region = regions.create("input", x.nbytes)
    shm.set_shared_memory_region(input_region, [x])
    client.register_system_shared_memory("input", key_of(input_region), x.nbytes)
    infer_input = mod.InferInput("X", list(x.shape), "FP32")
    infer_input.set_shared_memory("input", x.nbytes)
    # Every output in one region, one after the other.
    total = sum(output_nbytes(v) for v in expected.values())
    output_region = regions.create("output", total)
    client.register_system_shared_memory("output", key_of(output_region), total)
    requested, offset, offsets = [], 0, {}
    for name, value in expected.items():
        out = mod.InferRequestedOutput(name)
        out.set_shared_memory("output", value.nbytes, offset=offset)
        requested.append(out)
        offsets[name] = offset
        offset += value.nbytes
    result = client.infer(model, [infer_input], outputs=requested)
    got = {}
    for name, value in expected.items():
        output = result.get_output(name)
        params = output["parameters"] if isinstance(output, dict) else {
            k: v.int64_param or v.string_param for k, v in output.parameters.items()
        }
        assert params["shared_memory_region"] == "output"
        assert params["shared_memory_byte_size"] == value.nbytes
        got[name] = shm.get_contents_as_numpy(output_region, value.dtype, list(value.shape), offset=offsets[name])
    return got


def test_inputs_and_outputs_in_shared_memory(
    triton: Client, regions: Regions, model_repository: ModelRepository
) -> None:
    x = iris_rows(model_repository)
    expected = plain_infer(triton, IRIS_MODEL, x)
    got = shm_infer(triton, regions, IRIS_MODEL, x, expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value)


def test_input_in_shared_memory_output_in_the_reply(
    triton: Client, regions: Regions, model_repository: ModelRepository
) -> None:
    mod = module_of(triton)
    x = iris_rows(model_repository)
    expected = plain_infer(triton, IRIS_MODEL, x)
    # The input at an offset within a larger object, registered at an offset too.
    region = regions.create("in", 4096 + 64 + 16 + x.nbytes)
    shm.set_shared_memory_region(region, [x], offset=4096 + 64 + 16)
    triton.register_system_shared_memory("in", key_of(region), x.nbytes + 16, offset=4096 + 64)
    infer_input = mod.InferInput("X", list(x.shape), "FP32")
    infer_input.set_shared_memory("in", x.nbytes, offset=16)
    result = triton.infer(IRIS_MODEL, [infer_input])
    for name, value in expected.items():
        np.testing.assert_array_equal(result.as_numpy(name), value)


def test_bytes_and_bool_in_shared_memory(triton: Client, regions: Regions) -> None:
    mod = module_of(triton)
    texts = np.array([b"abc", b"", b"\xff\xfe not UTF-8"], dtype=np.object_)
    flags = np.array([True, False, True])
    serialized = serialize_byte_tensor(texts)
    text_size = serialized_byte_size(serialized)
    text_region = regions.create("text", text_size)
    shm.set_shared_memory_region(text_region, [serialized])
    flag_region = regions.create("flag", flags.nbytes)
    shm.set_shared_memory_region(flag_region, [flags])
    out_region = regions.create("text_out", text_size)
    triton.register_system_shared_memory("text", key_of(text_region), text_size)
    triton.register_system_shared_memory("flag", key_of(flag_region), flags.nbytes)
    triton.register_system_shared_memory("text_out", key_of(out_region), text_size)
    text = mod.InferInput("text", [3], "BYTES")
    text.set_shared_memory("text", text_size)
    flag = mod.InferInput("flag", [3], "BOOL")
    flag.set_shared_memory("flag", flags.nbytes)
    text_out = mod.InferRequestedOutput("text_out")
    text_out.set_shared_memory("text_out", text_size)
    flag_out = mod.InferRequestedOutput("flag_out")
    result = triton.infer(ECHO_MODEL, [text, flag], outputs=[text_out, flag_out])
    np.testing.assert_array_equal(result.as_numpy("flag_out"), flags)
    got = shm.get_contents_as_numpy(out_region, np.object_, [3])
    assert list(got) == list(texts)


def test_status_and_unregister(triton: Client, regions: Regions, shm_server: BerthServer) -> None:
    a = regions.create("a", 64)
    b = regions.create("b", 8192)
    triton.register_system_shared_memory("a", key_of(a), 64)
    triton.register_system_shared_memory("b", key_of(b), 100, offset=4096)
    if module_of(triton) is httpclient:
        status = {r["name"]: r for r in triton.get_system_shared_memory_status()}
        assert status["b"] == {"name": "b", "key": key_of(b), "offset": 4096, "byte_size": 100}
        assert triton.get_system_shared_memory_status("a") == [
            {"name": "a", "key": key_of(a), "offset": 0, "byte_size": 64}
        ]
    else:
        regions_status = triton.get_system_shared_memory_status().regions
        assert set(regions_status) == {"a", "b"}
        assert (regions_status["b"].key, regions_status["b"].offset, regions_status["b"].byte_size) == (
            key_of(b), 4096, 100,
        )  # fmt: skip
    assert metric(shm_server, "berth_shared_memory_regions") == 2
    assert metric(shm_server, "berth_shared_memory_bytes") == 164
    triton.unregister_system_shared_memory("a")
    with pytest.raises(InferenceServerException, match="Unable to find system shared memory region: 'a'"):
        triton.get_system_shared_memory_status("a")
    triton.unregister_system_shared_memory("a")  # as Triton: not an error
    triton.unregister_system_shared_memory()
    assert metric(shm_server, "berth_shared_memory_regions") == 0
    assert metric(shm_server, "berth_shared_memory_bytes") == 0


def metric(server: BerthServer, name: str) -> float:
    text = requests.get(f"{server.base_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"no {name} in /metrics")


def test_bad_registrations(triton: Client, regions: Regions) -> None:
    region = regions.create("r", 64)
    with pytest.raises(InferenceServerException, match="Unable to open shared memory region: '/berth_no_such_key'"):
        triton.register_system_shared_memory("r", "/berth_no_such_key", 64)
    with pytest.raises(InferenceServerException, match="runs past the end"):
        triton.register_system_shared_memory("r", key_of(region), 64, offset=1)
    with pytest.raises(InferenceServerException, match="not a valid POSIX shared memory name"):
        triton.register_system_shared_memory("r", "/../etc/passwd", 64)
    triton.register_system_shared_memory("r", key_of(region), 64)
    with pytest.raises(InferenceServerException, match="shared memory region 'r' already in manager"):
        triton.register_system_shared_memory("r", key_of(region), 32)


def infer_error(client: Client, model: str, inputs: list[Any], outputs: list[Any] | None = None) -> str:
    with pytest.raises(InferenceServerException) as raised:
        client.infer(model, inputs, outputs=outputs)
    return str(raised.value)


def test_bad_inference_requests(triton: Client, regions: Regions, model_repository: ModelRepository) -> None:
    mod = module_of(triton)
    x = iris_rows(model_repository)
    region = regions.create("in", x.nbytes)
    shm.set_shared_memory_region(region, [x])
    triton.register_system_shared_memory("in", key_of(region), x.nbytes)

    def shm_input(name: str, byte_size: int, offset: int = 0, shape: list[int] | None = None) -> Any:
        i = mod.InferInput("X", shape or list(x.shape), "FP32")
        i.set_shared_memory(name, byte_size, offset=offset)
        return i

    assert "Unable to find shared memory region: 'nope'" in infer_error(
        triton, IRIS_MODEL, [shm_input("nope", x.nbytes)]
    )
    assert "Invalid offset + byte size for shared memory region: 'in'" in infer_error(
        triton, IRIS_MODEL, [shm_input("in", x.nbytes, offset=4)]
    )
    assert "Invalid offset + byte size for shared memory region: 'in'" in infer_error(
        triton, IRIS_MODEL, [shm_input("in", 4, offset=x.nbytes + 4)]
    )
    message = infer_error(triton, IRIS_MODEL, [shm_input("in", x.nbytes - 16, shape=list(x.shape))])
    assert f"needs {x.nbytes} bytes of binary data, got {x.nbytes - 16}" in message
    # An output that does not fit its region.
    out_region = regions.create("out", 8)
    triton.register_system_shared_memory("out", key_of(out_region), 8)
    outputs = []
    for name, _ in outputs_of(triton, IRIS_MODEL):
        out = mod.InferRequestedOutput(name)
        out.set_shared_memory("out", 8)
        outputs.append(out)
    assert "should be at least" in infer_error(triton, IRIS_MODEL, [shm_input("in", x.nbytes)], outputs)
    # The server keeps serving, and the region is intact.
    assert triton.is_server_live()
    plain_infer(triton, IRIS_MODEL, x)


def test_region_unregistered_mid_request(
    triton: Client, regions: Regions, model_repository: ModelRepository, shm_server: BerthServer
) -> None:
    """The request holds its regions: unregistered while it waits in the batcher, it still completes."""
    mod = module_of(triton)
    x = iris_rows(model_repository, 1)
    expected = plain_infer(triton, IRIS_MODEL, x)
    in_region = regions.create("held_in", x.nbytes)
    shm.set_shared_memory_region(in_region, [x])
    name, _ = outputs_of(triton, HELD)[0]
    value = expected[name]
    out_region = regions.create("held_out", value.nbytes)
    triton.register_system_shared_memory("held_in", key_of(in_region), x.nbytes)
    triton.register_system_shared_memory("held_out", key_of(out_region), value.nbytes)
    infer_input = mod.InferInput("X", list(x.shape), "FP32")
    infer_input.set_shared_memory("held_in", x.nbytes)
    out = mod.InferRequestedOutput(name)
    out.set_shared_memory("held_out", value.nbytes)
    outcome: dict[str, Any] = {}

    def run() -> None:
        # A client of its own: tritonclient.http's may not be used from two threads.
        url = shm_server.address if mod is httpclient else shm_server.grpc_address()
        client = mod.InferenceServerClient(url=url)
        try:
            outcome["result"] = client.infer(HELD, [infer_input], outputs=[out])
        except Exception as e:  # reported below
            outcome["error"] = e
        finally:
            client.close()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(HELD_QUEUE_DELAY_S / 3)  # the request is in the batcher's queue
    triton.unregister_system_shared_memory()
    assert metric(shm_server, "berth_shared_memory_regions") == 0
    thread.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    np.testing.assert_array_equal(shm.get_contents_as_numpy(out_region, value.dtype, list(value.shape)), value)
    # A new request naming the region is refused.
    assert "Unable to find shared memory region: 'held_in'" in infer_error(triton, HELD, [infer_input])


def test_cuda_shared_memory_is_not_supported(http_triton: Client, grpc_triton: Client) -> None:
    with pytest.raises(InferenceServerException, match="GPUs not supported"):
        http_triton.get_cuda_shared_memory_status()
    with pytest.raises(InferenceServerException, match="CUDA shared memory region 'c' is not supported"):
        http_triton.register_cuda_shared_memory("c", "aGFuZGxl", 0, 64)
    with pytest.raises(InferenceServerException, match="GPUs not supported"):
        grpc_triton.register_cuda_shared_memory("c", "aGFuZGxl", 0, 64)
    with pytest.raises(InferenceServerException) as raised:
        grpc_triton.get_cuda_shared_memory_status()
    assert raised.value.status() == "StatusCode.INVALID_ARGUMENT"


def test_extension_is_listed(http_triton: Client, grpc_triton: Client) -> None:
    assert "system_shared_memory" in http_triton.get_server_metadata()["extensions"]
    assert "system_shared_memory" in grpc_triton.get_server_metadata().extensions


def test_register_body_is_checked(shm_server: BerthServer) -> None:
    url = f"{shm_server.base_url}/v2/systemsharedmemory/region/r/register"
    for body, message in (
        ("[]", "must be a JSON object"),
        ('{"key": "/k"}', "needs 'byte_size'"),
        ('{"key": "/k", "byte_size": -1}', "'byte_size' must be a non-negative integer"),
        ('{"key": "/k", "byte_size": 4, "size": 4}', "size"),
    ):
        response = requests.post(url, data=body, timeout=10)
        assert response.status_code == 400, (body, response.text)
        assert message in response.json()["error"], (body, response.text)


def test_grpc_status_of_unknown_region(grpc_triton: Client) -> None:
    with pytest.raises(InferenceServerException) as raised:
        grpc_triton.get_system_shared_memory_status("missing")
    assert raised.value.status() == str(grpc.StatusCode.NOT_FOUND)


def test_registrations_only_from_loopback(model_repository: ModelRepository, tmp_path: Path) -> None:
    """A registration lets requests read and write that memory: loopback only, unless --allow-remote-admin."""
    from test_repository_hardening import _non_loopback_address

    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    model = model_repository.model(IRIS_MODEL)
    export_model(model, tmp_path / "repo", config=model_config(model, name=IRIS_MODEL))
    with BerthServer.start(berth_binary(), tmp_path / "repo", tmp_path / "berth.log", extra_args=["--host", "0.0.0.0"]) as server:
        remote = f"http://{address}:{server.http_port}/v2/systemsharedmemory"
        response = requests.post(f"{remote}/region/r/register", json={"key": "/k", "byte_size": 4}, timeout=5)
        assert response.status_code == 403, response.text
        assert "admin requests (changes to what is served, API keys) are accepted only from this machine" in (
            response.json()["error"]
        )
        assert requests.post(f"{remote}/unregister", timeout=5).status_code == 403
        grpc_port = server.grpc_address().rsplit(":", 1)[1]
        triton = grpcclient.InferenceServerClient(f"{address}:{grpc_port}")
        with pytest.raises(InferenceServerException) as error:
            triton.register_system_shared_memory("r", "/k", 4)
        assert "PERMISSION_DENIED" in str(error.value.status())


def test_regions_are_unregistered_at_shutdown(
    model_repository: ModelRepository, tmp_path: Path, regions: Regions
) -> None:
    """SIGTERM lets go of every registered region (the server says how many), and exits cleanly."""
    model = model_repository.model(IRIS_MODEL)
    export_model(model, tmp_path / "repository", config=model_config(model, name=IRIS_MODEL))
    a, b = regions.create("a", 64), regions.create("b", 8192)
    with BerthServer.start(berth_binary(), tmp_path / "repository", tmp_path / "berth.log") as server:
        http = httpclient.InferenceServerClient(url=server.address)
        grpc_client = grpcclient.InferenceServerClient(url=server.grpc_address())
        try:
            http.register_system_shared_memory("a", key_of(a), 64)
            grpc_client.register_system_shared_memory("b", key_of(b), 100, offset=4096)
        finally:
            http.close()
            grpc_client.close()
        # Registered regions are mapped in the server.
        maps = Path(f"/proc/{server.process.pid}/maps").read_text()
        assert f"/dev/shm{key_of(a)}" in maps and f"/dev/shm{key_of(b)}" in maps
        assert metric(server, "berth_shared_memory_regions") == 2
        assert server.stop() == 0
    lines = [line for line in server.log().splitlines() if "unregistered at shutdown" in line]
    assert len(lines) == 1, server.log()
    assert "system shared memory regions unregistered at shutdown" in lines[0] and "regions=2" in lines[0], lines[0]
