"""Loading runs off the network threads (issue #7, "Source -> loader ->
manager"): a change that loads a model (here a repository load whose warm-up
runs many times, so that it takes seconds) runs on the server's loader, and
the front end's threads keep serving inference meanwhile, even with one
thread each (--http-threads 1, --grpc-threads 1). On a server that loaded on
the network thread, every inference sent during the load waited for it.

The tests compare the order in which answers arrive, never durations. Real
binary, real clients.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np
import onnx
import pytest
import requests
import tritonclient.grpc as grpcclient
import yaml
from onnx import TensorProto, helper, numpy_helper
from tritonclient.utils import InferenceServerException

from berth_server import BerthServer, berth_binary
from v2 import assert_error

FAST: Final = "fast"
SLOW: Final = "slow"
WIDTH: Final = 1024  # the slow model's MatMul: a 4 MiB weight
WARMUP_ROWS: Final = 64  # each warm-up run multiplies [64, 1024] by [1024, 1024]
WARMUP_RUNS: Final = 400
# The shutdown tests need the load still running HEAD_START_S * 2 after it
# began, on a fast idle core too (WARMUP_RUNS take about 0.5 s on one here):
# warm-up's most runs (1,000), each over 4x the rows.
SHUTDOWN_WARMUP: Final = (1000, 4 * WARMUP_ROWS)
INFERENCES: Final = 20
# Lets the slow change reach the server before the inferences are sent; a
# head start, not a bound on anything.
HEAD_START_S: Final = 0.5


def matmul_model(width: int, seed: int) -> onnx.ModelProto:
    weight = np.random.default_rng(seed).standard_normal((width, width)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "matmul",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, width])],
        [numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def write_model(root: Path, name: str, model: onnx.ModelProto, warmup: dict[str, object] | None) -> None:
    (root / name / "1").mkdir(parents=True)
    onnx.save_model(model, root / name / "1" / "model.onnx")
    config: dict[str, object] = {
        "name": name,
        "onnxruntime": {"intra_op_threads": 1, "inter_op_threads": 1},
    }
    if warmup is not None:
        config["warmup"] = warmup
    (root / name / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def add_slow_model(root: Path, runs: int = WARMUP_RUNS, rows: int = WARMUP_ROWS) -> None:
    """A model whose load takes seconds: its warm-up runs `runs` times over `rows` rows."""
    write_model(
        root,
        SLOW,
        matmul_model(WIDTH, seed=1),
        {"count": runs, "inputs": [{"name": "X", "datatype": "FP32", "shape": [rows, WIDTH]}]},
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    write_model(root, FAST, matmul_model(4, seed=0), None)
    return root


@pytest.fixture
def served(repo: Path, tmp_path: Path) -> Iterator[BerthServer]:
    args = ["--http-threads", "1", "--grpc-threads", "1"]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
        yield server


FAST_REQUEST: Final = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}


class Events:
    """The order in which answers arrived, across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.order: list[str] = []

    def add(self, event: str) -> None:
        with self._lock:
            self.order.append(event)


def assert_inferences_first(events: Events) -> None:
    assert events.order.count("infer") == INFERENCES, events.order
    assert events.order[-1] == "change", (
        "the inferences sent during the load waited for it: " + " ".join(events.order)
    )


def test_rest_inference_is_served_while_a_model_loads(served: BerthServer, repo: Path) -> None:
    add_slow_model(repo)
    events = Events()
    status: list[int] = []

    def load() -> None:
        r = requests.post(f"{served.base_url}/v2/repository/models/{SLOW}/load", timeout=300)
        status.append(r.status_code)
        events.add("change")

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(HEAD_START_S)
    for _ in range(INFERENCES):
        r = requests.post(f"{served.base_url}/v2/models/{FAST}/infer", json=FAST_REQUEST, timeout=300)
        assert r.status_code == 200, r.text
        events.add("infer")
    loader.join()
    assert status == [200]
    assert_inferences_first(events)
    # The loaded model serves.
    r = requests.get(f"{served.base_url}/v2/models/{SLOW}/ready", timeout=10)
    assert r.status_code == 200


def test_grpc_inference_is_served_while_a_model_loads(served: BerthServer, repo: Path) -> None:
    add_slow_model(repo)
    events = Events()
    errors: list[Exception] = []
    address = served.grpc_address()

    def load() -> None:
        client = grpcclient.InferenceServerClient(url=address)
        try:
            client.load_model(SLOW)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            client.close()
        events.add("change")

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(HEAD_START_S)
    client = grpcclient.InferenceServerClient(url=address)
    try:
        x = grpcclient.InferInput("X", [1, 4], "FP32")
        x.set_data_from_numpy(np.array([[1, 2, 3, 4]], dtype=np.float32))
        for _ in range(INFERENCES):
            result = client.infer(FAST, [x])
            assert result.as_numpy("Y").shape == (1, 4)
            events.add("infer")
    finally:
        client.close()
    loader.join()
    assert errors == []
    assert_inferences_first(events)


def test_rest_inference_is_served_while_a_promotion_loads(repo: Path, tmp_path: Path) -> None:
    """The registry's routes too: promoting a version that is not loaded
    loads and warms it on the loader."""
    # Version 2 serves (latest: 1, warmed at start-up); version 1 loads on
    # promotion, with the model's warm-up.
    write_model(repo, SLOW, matmul_model(WIDTH, seed=1), None)
    (repo / SLOW / "2").mkdir()
    onnx.save_model(matmul_model(WIDTH, seed=2), repo / SLOW / "2" / "model.onnx")
    config = yaml.safe_load((repo / SLOW / "config.yaml").read_text())
    config["version_policy"] = {"latest": 1}
    config["warmup"] = {"count": WARMUP_RUNS, "inputs": [{"name": "X", "datatype": "FP32", "shape": [WARMUP_ROWS, WIDTH]}]}
    (repo / SLOW / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    args = ["--http-threads", "1"]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
        events = Events()
        answers: list[requests.Response] = []

        def promote() -> None:
            answers.append(
                requests.post(f"{server.base_url}/v2/registry/models/{SLOW}/promote", json={"version": 1}, timeout=300)
            )
            events.add("change")

        promoter = threading.Thread(target=promote)
        promoter.start()
        time.sleep(HEAD_START_S)
        for _ in range(INFERENCES):
            r = requests.post(f"{server.base_url}/v2/models/{FAST}/infer", json=FAST_REQUEST, timeout=300)
            assert r.status_code == 200, r.text
            events.add("infer")
        promoter.join()
        assert answers[0].status_code == 200, answers[0].text
        assert answers[0].json()["version"] == 1
        assert_inferences_first(events)
        history = requests.get(f"{server.base_url}/v2/registry/models/{SLOW}/history", timeout=10).json()
        assert history["history"][-1]["action"] == "promote"


def test_reads_are_served_while_a_model_loads(served: BerthServer, repo: Path) -> None:
    """Not only inference: the health, index and registry reads answer
    during a load on the one HTTP thread."""
    add_slow_model(repo)
    events = Events()

    def load() -> None:
        requests.post(f"{served.base_url}/v2/repository/models/{SLOW}/load", timeout=300)
        events.add("change")

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(HEAD_START_S)
    for path in ("/v2/health/ready", "/v2/registry/models", f"/v2/models/{FAST}"):
        assert requests.get(f"{served.base_url}{path}", timeout=300).status_code == 200
        events.add("read")
    assert requests.post(f"{served.base_url}/v2/repository/index", json={}, timeout=300).status_code == 200
    events.add("read")
    loader.join()
    assert events.order == ["read"] * 4 + ["change"], events.order


def test_shutdown_answers_waiting_changes_503_and_finishes_the_running_one(repo: Path, tmp_path: Path) -> None:
    """SIGTERM during a load: the changes queued behind it are answered 503
    with a JSON error at once; the running load finishes; the server exits 0."""
    args = ["--http-threads", "1", "--shutdown-grace-ms", "300000"]
    server = BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args)
    try:
        add_slow_model(repo, *SHUTDOWN_WARMUP)
        answers: dict[str, requests.Response] = {}

        def post(key: str, path: str) -> None:
            answers[key] = requests.post(f"{server.base_url}{path}", timeout=300)

        running = threading.Thread(target=post, args=("running", f"/v2/repository/models/{SLOW}/load"))
        running.start()
        time.sleep(HEAD_START_S)
        queued = threading.Thread(target=post, args=("queued", f"/v2/repository/models/{FAST}/unload"))
        queued.start()
        time.sleep(HEAD_START_S)
        server.process.terminate()
        queued.join()
        running.join()
        message = assert_error(answers["queued"], 503)
        assert "shutting down" in message
        assert answers["running"].status_code == 200, answers["running"].text
        assert server.process.wait(timeout=300) == 0
    finally:
        server.stop()


def test_grpc_shutdown_answers_waiting_changes_unavailable(repo: Path, tmp_path: Path) -> None:
    """The same over gRPC: a queued unload is answered UNAVAILABLE, the
    running load OK, and the server exits 0."""
    args = ["--grpc-threads", "1", "--shutdown-grace-ms", "300000"]
    server = BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args)
    try:
        add_slow_model(repo, *SHUTDOWN_WARMUP)
        address = server.grpc_address()
        outcomes: dict[str, str] = {}

        def call(key: str, change: str, model: str) -> None:
            client = grpcclient.InferenceServerClient(url=address)
            try:
                getattr(client, change)(model)
                outcomes[key] = "OK"
            except InferenceServerException as e:
                outcomes[key] = f"{e.status()}: {e.message()}"
            finally:
                client.close()

        running = threading.Thread(target=call, args=("running", "load_model", SLOW))
        running.start()
        time.sleep(HEAD_START_S)
        queued = threading.Thread(target=call, args=("queued", "unload_model", FAST))
        queued.start()
        time.sleep(HEAD_START_S)
        server.process.terminate()
        queued.join()
        running.join()
        assert outcomes["queued"].startswith("StatusCode.UNAVAILABLE"), outcomes
        assert "shutting down" in outcomes["queued"]
        assert outcomes["running"] == "OK", outcomes
        assert server.process.wait(timeout=300) == 0
    finally:
        server.stop()
