"""Limits that keep one client from taking the server (issue #10): a model's
queue limit (503 + Retry-After / UNAVAILABLE), request deadlines (504 /
DEADLINE_EXCEEDED for work still queued), the header size cap (431), slow
clients (slowloris, slow body) cut off while others are served, and ONNX
external data that would leave its version directory.

A model whose dynamic batcher holds each request for HELD_QUEUE_DELAY_S (far
longer than any test runs) keeps requests queued for as long as a test needs
them there: only a deadline, a full queue or the shutdown's flush answers
them. Nothing here asserts a latency."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Final

import numpy as np
import onnx
import pytest
import requests
import tritonclient.grpc as grpcclient
from onnx import TensorProto, helper
from tritonclient.utils import InferenceServerException

from berth_server import HOST, BerthServer, berth_binary
from models import IRIS_MODEL, ModelRepository
from test_http_transport import GOOD_REQUEST, INFER_PATH, Connection, assert_infer_ok
from train_models import ModelConfig, export_model, model_config
from v2 import assert_error, infer_path

HELD: Final = "iris_held"
HELD_QUEUE_DELAY_S: Final = 600
MAX_QUEUE_SIZE: Final = 2
# Bounds on waits for answers that must come, not measurements.
ANSWER_TIMEOUT_S: Final = 60.0
SETTLE_TIMEOUT_S: Final = 20.0


def metrics(server: BerthServer) -> str:
    response = requests.get(server.base_url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def metric(server: BerthServer, name: str, **labels: str) -> float:
    """The value of one sample of /metrics; 0 if it is absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", metrics(server), re.M)
    return float(match.group(1)) if match else 0.0


def wait_for_metric(server: BerthServer, value: float, name: str, **labels: str) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while metric(server, name, **labels) != value:
        assert time.monotonic() < deadline, f"{name}{labels} never reached {value}:\n{metrics(server)}"
        time.sleep(0.05)


def executions(server: BerthServer) -> float:
    return metric(server, "berth_inference_requests_success_total", model=HELD, version="1")


@pytest.fixture(scope="module")
def held_repository(model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = model_repository.model(IRIS_MODEL)
    root = tmp_path_factory.mktemp("held_repository")
    model_dir = export_model(model, root, config=model_config(model, name=HELD))
    delay_us = int(HELD_QUEUE_DELAY_S * 1e6)
    with (model_dir / "config.yaml").open("a") as config:
        config.write(
            f"dynamic_batching: {{max_queue_delay_microseconds: {delay_us}, max_queue_size: {MAX_QUEUE_SIZE}}}\n"
        )
    export_model(model, root)  # IRIS_MODEL beside it, served at once
    return root


def start_held(repository: Path, tmp_path: Path, *args: str) -> BerthServer:
    return BerthServer.start(berth_binary(), repository, tmp_path / "berth.log", grpc_port=0, extra_args=args)


def iris_rows(model_repository: ModelRepository) -> np.ndarray:
    rows: np.ndarray = model_repository.model(IRIS_MODEL).dataset.X_test[:1].astype(np.float32)
    return rows


# ---- the queue limit --------------------------------------------------------


def test_a_full_queue_is_refused_at_every_door_with_retry_after(
    held_repository: Path, model_repository: ModelRepository, tmp_path: Path
) -> None:
    model = model_repository.model(IRIS_MODEL)
    x = iris_rows(model_repository)
    with start_held(held_repository, tmp_path) as server, ThreadPoolExecutor(MAX_QUEUE_SIZE) as pool:
        url = server.base_url + infer_path(HELD)
        held = [
            pool.submit(requests.post, url, json=model.infer_request(x), timeout=ANSWER_TIMEOUT_S)
            for _ in range(MAX_QUEUE_SIZE)
        ]
        wait_for_metric(server, MAX_QUEUE_SIZE, "berth_inference_requests_in_flight", model=HELD, version="1")

        refused = requests.post(url, json=model.infer_request(x), timeout=ANSWER_TIMEOUT_S)
        assert "is full" in assert_error(refused, 503)
        assert refused.headers["Retry-After"] == "1"

        tfs = requests.post(
            f"{server.base_url}/v1/models/{HELD}:predict", json={"instances": x.tolist()}, timeout=ANSWER_TIMEOUT_S
        )
        assert "is full" in assert_error(tfs, 503)
        assert tfs.headers["Retry-After"] == "1"

        client = grpcclient.InferenceServerClient(server.grpc_address())
        infer_input = grpcclient.InferInput("X", list(x.shape), "FP32")
        infer_input.set_data_from_numpy(x)
        with pytest.raises(InferenceServerException) as grpc_error:
            client.infer(HELD, [infer_input], client_timeout=ANSWER_TIMEOUT_S)
        assert grpc_error.value.status() == "StatusCode.UNAVAILABLE"
        assert "is full" in grpc_error.value.message()

        assert metric(server, "berth_inference_queue_full_total", model=HELD, version="1") == 3
        assert (
            metric(server, "berth_inference_requests_failure_total", model=HELD, version="1", reason="UNAVAILABLE")
            == 3
        )
        # The other model is not affected, and the held requests are still queued.
        assert requests.post(
            server.base_url + infer_path(IRIS_MODEL), json=model.infer_request(x), timeout=ANSWER_TIMEOUT_S
        ).ok
        assert not any(f.done() for f in held)
        server.stop()  # the shutdown's flush answers the held requests
        for f in held:
            assert f.result().status_code == 200


# ---- deadlines --------------------------------------------------------------


def test_a_rest_timeout_parameter_expires_a_queued_request_without_running_it(
    held_repository: Path, model_repository: ModelRepository, tmp_path: Path
) -> None:
    model = model_repository.model(IRIS_MODEL)
    x = iris_rows(model_repository)
    with start_held(held_repository, tmp_path) as server:
        body = model.infer_request(x, parameters={"timeout": 200_000})  # microseconds, as Triton's
        response = requests.post(server.base_url + infer_path(HELD), json=body, timeout=ANSWER_TIMEOUT_S)
        assert "deadline" in assert_error(response, 504)
        assert "Retry-After" not in response.headers
        assert (
            metric(
                server, "berth_inference_requests_failure_total", model=HELD, version="1", reason="DEADLINE_EXCEEDED"
            )
            == 1
        )
        assert executions(server) == 0
        # A timeout of the wrong type is refused as it is decoded.
        bad = requests.post(
            server.base_url + infer_path(HELD),
            json=model.infer_request(x, parameters={"timeout": "soon"}),
            timeout=ANSWER_TIMEOUT_S,
        )
        assert "timeout" in assert_error(bad, 400)


def test_the_request_timeout_flag_expires_queued_requests_at_every_door(
    held_repository: Path, model_repository: ModelRepository, tmp_path: Path
) -> None:
    model = model_repository.model(IRIS_MODEL)
    x = iris_rows(model_repository)
    with start_held(held_repository, tmp_path, "--request-timeout", "300") as server:
        rest = requests.post(server.base_url + infer_path(HELD), json=model.infer_request(x), timeout=ANSWER_TIMEOUT_S)
        assert "deadline" in assert_error(rest, 504)
        tfs = requests.post(
            f"{server.base_url}/v1/models/{HELD}:predict", json={"instances": x.tolist()}, timeout=ANSWER_TIMEOUT_S
        )
        assert "deadline" in assert_error(tfs, 504)
        client = grpcclient.InferenceServerClient(server.grpc_address())
        infer_input = grpcclient.InferInput("X", list(x.shape), "FP32")
        infer_input.set_data_from_numpy(x)
        with pytest.raises(InferenceServerException) as grpc_error:
            client.infer(HELD, [infer_input], client_timeout=ANSWER_TIMEOUT_S)
        assert grpc_error.value.status() == "StatusCode.DEADLINE_EXCEEDED"
        assert "deadline" in grpc_error.value.message()
        assert (
            metric(
                server, "berth_inference_requests_failure_total", model=HELD, version="1", reason="DEADLINE_EXCEEDED"
            )
            == 3
        )
        assert executions(server) == 0
        # A model that answers at once is not affected.
        assert requests.post(
            server.base_url + infer_path(IRIS_MODEL), json=model.infer_request(x), timeout=ANSWER_TIMEOUT_S
        ).ok


def test_a_grpc_deadline_takes_a_queued_request_out_of_the_queue(
    held_repository: Path, model_repository: ModelRepository, tmp_path: Path
) -> None:
    x = iris_rows(model_repository)
    with start_held(held_repository, tmp_path) as server:
        client = grpcclient.InferenceServerClient(server.grpc_address())
        infer_input = grpcclient.InferInput("X", list(x.shape), "FP32")
        infer_input.set_data_from_numpy(x)
        with pytest.raises(InferenceServerException) as grpc_error:
            client.infer(HELD, [infer_input], client_timeout=0.5)
        assert grpc_error.value.status() == "StatusCode.DEADLINE_EXCEEDED"
        # The server saw the same deadline: the request left the queue
        # (counted), it did not wait there for the batch delay.
        wait_for_metric(
            server, 1, "berth_inference_requests_failure_total", model=HELD, version="1", reason="DEADLINE_EXCEEDED"
        )
        wait_for_metric(server, 0, "berth_inference_requests_in_flight", model=HELD, version="1")
        assert executions(server) == 0


# ---- header size, slow clients ---------------------------------------------

HEADER_TIMEOUT_S: Final = 2
MIN_BODY_RATE: Final = 1000
SLOW_CONNECTIONS: Final = 500
# How long the slow clients trickle, several header timeouts.
SLOW_FOR_S: Final = 4 * HEADER_TIMEOUT_S
# How much a normal client's median latency may grow beside the slow clients.
NORMAL_SLOWDOWN: Final = 5
NORMAL_SLOWDOWN_FLOOR_S: Final = 0.005


@pytest.fixture(scope="module")
def guarded_server(model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    log_path = tmp_path_factory.mktemp("guarded_berth") / "berth.log"
    args = ["--header-timeout-secs", str(HEADER_TIMEOUT_S), "--min-body-rate", str(MIN_BODY_RATE)]
    with BerthServer.start(berth_binary(), model_repository.root, log_path, grpc_port=-1, extra_args=args) as server:
        yield server


def test_a_header_over_the_limit_is_431_and_one_under_it_is_served(guarded_server: BerthServer) -> None:
    url = guarded_server.base_url + INFER_PATH
    # Over Beast's own default of 8 KiB, under Berth's 16 KiB.
    ok = requests.post(url, data=GOOD_REQUEST, headers={"X-Pad": "a" * 12_000}, timeout=10)
    assert ok.status_code == 200, ok.text
    connection = Connection(guarded_server.http_port)
    try:
        response = connection.request("POST", INFER_PATH, GOOD_REQUEST, headers=f"X-Pad: {'a' * 20_000}\r\n")
        assert response is not None and response.status == 431, response
        assert "header" in response.json_error()
        assert connection.closed_by_server()
    finally:
        connection.close()
    assert metric(guarded_server, "berth_http_connections_cut_total", reason="header_too_large") >= 1


def test_a_keep_alive_connection_may_idle_longer_than_the_header_timeout(guarded_server: BerthServer) -> None:
    connection = Connection(guarded_server.http_port)
    try:
        assert_infer_ok(connection.request("POST", INFER_PATH, GOOD_REQUEST))
        time.sleep(HEADER_TIMEOUT_S + 1)  # idle, within --idle-timeout-secs
        assert_infer_ok(connection.request("POST", INFER_PATH, GOOD_REQUEST))
    finally:
        connection.close()


async def _trickle(port: int, data: bytes, per_second: int, seconds: float) -> bool:
    """Sends `data` `per_second` bytes a second for up to `seconds`; True if the server closed the connection first."""
    reader, writer = await asyncio.open_connection(HOST, port)
    closed = False
    try:
        end = asyncio.get_running_loop().time() + seconds
        for i in range(0, len(data), per_second):
            if asyncio.get_running_loop().time() >= end:
                break
            writer.write(data[i : i + per_second])
            await writer.drain()
            try:
                # A closed connection reads EOF at once; an open one times out.
                if await asyncio.wait_for(reader.read(65536), timeout=1.0) == b"":
                    closed = True
                    break
            except asyncio.TimeoutError:
                pass
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionResetError, BrokenPipeError):
            pass
    return closed


def _normal_client(port: int, stop: list[bool]) -> list[float]:
    """Infers over fresh connections until told to stop; returns the latencies (s), failing on any error."""
    latencies: list[float] = []
    while not stop[0]:
        connection = Connection(port)
        try:
            start = time.perf_counter()
            assert_infer_ok(connection.request("POST", INFER_PATH, GOOD_REQUEST))
            latencies.append(time.perf_counter() - start)
        finally:
            connection.close()
    return latencies


def _summary(latencies: list[float]) -> str:
    ms = np.array(latencies) * 1e3
    return f"{len(ms)} requests, p50 {np.median(ms):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms"


def _normal_client_alone(port: int, seconds: float) -> list[float]:
    stop = [False]
    with ThreadPoolExecutor(1) as pool:
        normal = pool.submit(_normal_client, port, stop)
        time.sleep(seconds)
        stop[0] = True
        return normal.result()


def _under_slow_clients(port: int, data: bytes, per_second: int) -> tuple[list[bool], list[float]]:
    stop = [False]
    with ThreadPoolExecutor(1) as pool:
        normal: Future[list[float]] = pool.submit(_normal_client, port, stop)

        async def all_slow() -> list[bool]:
            return list(
                await asyncio.gather(*(_trickle(port, data, per_second, SLOW_FOR_S) for _ in range(SLOW_CONNECTIONS)))
            )

        try:
            closed = asyncio.run(all_slow())
        finally:
            stop[0] = True
        return closed, normal.result()


def test_slowloris_connections_are_closed_while_a_normal_client_keeps_its_latency(
    guarded_server: BerthServer,
) -> None:
    """500 connections send a header byte a second while a normal client infers over fresh connections.

    The normal client's latency is measured alone first, then under the
    attack, and compared (a relative check, not a stopwatch): its median may
    grow by at most NORMAL_SLOWDOWN times plus NORMAL_SLOWDOWN_FLOOR_S (the
    attack's 500 connections share this process's GIL and the machine's
    cores with it), and none of its requests may fail. The client sends one
    request at a time, so a stall shows as one slow request among fast ones
    (the median hides it): no request may take longer than half a header
    timeout beyond ten times its p99 alone. A server that held a thread per
    slow connection, or waited on one, stalls for about a header timeout.
    """
    alone = _normal_client_alone(guarded_server.http_port, SLOW_FOR_S / 2)
    header = f"POST {INFER_PATH} HTTP/1.1\r\nHost: {HOST}\r\n" + "X-Slow: " + "a" * 200 + "\r\n"
    closed, attacked = _under_slow_clients(guarded_server.http_port, header.encode(), per_second=1)
    print(f"normal client alone: {_summary(alone)}; beside {SLOW_CONNECTIONS} slowloris connections: {_summary(attacked)}")
    assert all(closed), f"{closed.count(False)} of {SLOW_CONNECTIONS} slow connections were left open"
    assert len(alone) >= 10 and len(attacked) >= 10, (len(alone), len(attacked))
    limit = NORMAL_SLOWDOWN * float(np.median(alone)) + NORMAL_SLOWDOWN_FLOOR_S
    assert float(np.median(attacked)) <= limit, (
        f"the normal client slowed down under the attack: alone {_summary(alone)}; attacked {_summary(attacked)}"
    )
    stall_limit = HEADER_TIMEOUT_S / 2 + 10 * float(np.percentile(alone, 99))
    assert max(attacked) <= stall_limit, (
        f"the normal client stalled under the attack: alone {_summary(alone)}; attacked {_summary(attacked)}"
    )
    cut = metric(guarded_server, "berth_http_connections_cut_total", reason="header_timeout")
    assert cut >= SLOW_CONNECTIONS
    after = Connection(guarded_server.http_port)
    try:
        assert_infer_ok(after.request("POST", INFER_PATH, GOOD_REQUEST))
    finally:
        after.close()


def test_a_slow_body_is_closed_while_a_normal_client_is_served(guarded_server: BerthServer) -> None:
    length = 100_000
    head = (
        f"POST {INFER_PATH} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    connection = Connection(guarded_server.http_port)
    try:
        connection.send(head)
        # 100 bytes a second, a tenth of --min-body-rate: cut off after the grace.
        closed, served = False, []
        stop = [False]
        with ThreadPoolExecutor(1) as pool:
            normal = pool.submit(_normal_client, guarded_server.http_port, stop)
            try:
                deadline = time.monotonic() + SLOW_FOR_S + SETTLE_TIMEOUT_S
                connection.sock.settimeout(1.0)
                while time.monotonic() < deadline:
                    try:
                        connection.send(b" " * 100)
                        if connection.sock.recv(65536) == b"":
                            closed = True
                            break
                    except TimeoutError:
                        continue
                    except (ConnectionResetError, BrokenPipeError):
                        closed = True
                        break
            finally:
                stop[0] = True
            served = normal.result()
        assert closed, "a body at a tenth of the minimum rate was not cut off"
        assert served, "the normal client was not served beside the slow body"
        assert metric(guarded_server, "berth_http_connections_cut_total", reason="slow_body") >= 1
    finally:
        connection.close()


# ---- ONNX external data ---------------------------------------------------


def _external_data_model(location: str) -> onnx.ModelProto:
    """y = x + w, FP32 [2], with w's 8 bytes in the file `location`."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [2], [0.0, 0.0])
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "8")):
        w.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "add_external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _write_external_model(root: Path, name: str, location: str) -> Path:
    model_dir = root / name
    ModelConfig(name=name, max_batch_size=0, onnxruntime_options=None).write(model_dir)
    version_dir = model_dir / "1"
    version_dir.mkdir()
    (version_dir / "model.onnx").write_bytes(_external_data_model(location).SerializeToString())
    return version_dir


@pytest.fixture(scope="module")
def external_data_server(
    model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[BerthServer, Path]]:
    root = tmp_path_factory.mktemp("external_data_repository")
    secret = root.parent / "secret.bin"
    secret.write_bytes(np.array([1000.0, 2000.0], dtype=np.float32).tobytes())
    export_model(model_repository.model(IRIS_MODEL), root)
    inside = _write_external_model(root, "external_inside", "weights.bin")
    (inside / "weights.bin").write_bytes(np.array([10.0, 20.0], dtype=np.float32).tobytes())
    _write_external_model(root, "external_dotdot", "../../../secret.bin")
    _write_external_model(root, "external_absolute", str(secret))
    link_dir = _write_external_model(root, "external_symlink", "weights.bin")
    (link_dir / "weights.bin").symlink_to(secret)
    log_path = tmp_path_factory.mktemp("external_data_berth") / "berth.log"
    with BerthServer.start(berth_binary(), root, log_path, grpc_port=-1) as server:
        yield server, secret


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("external_dotdot", "climbs out with '..'"),
        ("external_absolute", "an absolute path"),
        ("external_symlink", "through a symlink"),
    ],
)
def test_external_data_outside_the_version_directory_is_refused_with_the_reason(
    external_data_server: tuple[BerthServer, Path], name: str, why: str
) -> None:
    server, _ = external_data_server
    index = requests.post(server.base_url + "/v2/repository/index", timeout=10).json()
    entry = next(e for e in index if e["name"] == name)
    assert entry["state"] == "UNAVAILABLE"
    assert why in entry["reason"] and "tensor 'w'" in entry["reason"], entry
    response = requests.post(
        server.base_url + infer_path(name),
        json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1, 2]}]},
        timeout=10,
    )
    assert response.status_code in (400, 404, 503), response.text


def test_external_data_inside_the_version_directory_serves_beside_the_refused_ones(
    external_data_server: tuple[BerthServer, Path], model_repository: ModelRepository
) -> None:
    server, _ = external_data_server
    response = requests.post(
        server.base_url + infer_path("external_inside"),
        json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1, 2]}]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [11.0, 22.0]
    iris = requests.post(server.base_url + INFER_PATH, data=GOOD_REQUEST, timeout=10)
    assert iris.status_code == 200, iris.text


def test_a_push_with_external_data_outside_its_directory_is_refused_and_nothing_is_stored(
    external_data_server: tuple[BerthServer, Path],
) -> None:
    server, _ = external_data_server
    artifact = _external_data_model("../../../secret.bin").SerializeToString()
    response = requests.post(
        server.base_url + "/v2/registry/models/pushed_external/versions",
        data=artifact,
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert "climbs out with '..'" in assert_error(response, 400)
    index = requests.post(server.base_url + "/v2/repository/index", timeout=10).json()
    assert all(e["name"] != "pushed_external" for e in index), index
    assert requests.post(server.base_url + INFER_PATH, data=GOOD_REQUEST, timeout=10).status_code == 200


@pytest.mark.parametrize(
    "flag",
    [
        ["--header-timeout-secs", "0"],
        ["--min-body-rate", "-1"],
        ["--max-header-bytes", "100"],
        ["--max-header-bytes", "x"],
        ["--request-timeout", "-5"],
        ["--grpc-max-connections", "-1"],
        ["--grpc-max-connections", "x"],
    ],
    ids=lambda f: " ".join(f),
)
def test_bad_limit_flags_stop_the_server_with_the_reason(model_repository: ModelRepository, flag: list[str]) -> None:
    out = subprocess.run(
        [str(berth_binary()), "serve", "--model-repository", str(model_repository.root), *flag],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2, out.stderr
    assert flag[0] in out.stderr


def test_a_new_version_with_external_data_outside_leaves_the_serving_version_untouched(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    v1 = _write_external_model(root, "external_versions", "weights.bin")
    (v1 / "weights.bin").write_bytes(np.array([10.0, 20.0], dtype=np.float32).tobytes())
    with BerthServer.start(berth_binary(), root, tmp_path / "berth.log", grpc_port=-1) as server:
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1, 2]}]}
        url = server.base_url + infer_path("external_versions")
        assert requests.post(url, json=body, timeout=10).json()["outputs"][0]["data"] == [11.0, 22.0]
        v2 = root / "external_versions" / "2"
        v2.mkdir()
        (v2 / "model.onnx").write_bytes(_external_data_model("../1/../../secret.bin").SerializeToString())
        load = requests.post(f"{server.base_url}/v2/repository/models/external_versions/load", timeout=30)
        assert load.status_code in (200, 400), load.text
        index = requests.post(server.base_url + "/v2/repository/index", timeout=10).json()
        states = {e["version"]: e for e in index if e["name"] == "external_versions"}
        assert states["2"]["state"] == "UNAVAILABLE" and "'..'" in states["2"]["reason"], states
        # Version 1 still answers, by default and by number.
        assert requests.post(url, json=body, timeout=10).json()["outputs"][0]["data"] == [11.0, 22.0]
        versioned = requests.post(server.base_url + infer_path("external_versions", 1), json=body, timeout=10)
        assert versioned.status_code == 200, versioned.text
