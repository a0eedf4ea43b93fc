"""SIGTERM: stop accepting, finish the requests in flight, exit 0.

A model whose dynamic batcher holds each request for QUEUE_DELAY_S makes a
request reliably in flight when the signal arrives."""

from __future__ import annotations

import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import pytest
import requests

import numpy as np
import tritonclient.grpc as grpcclient

from berth_server import HOST, SHUTDOWN_TIMEOUT_S, BerthServer, berth_binary
from models import IRIS_MODEL, ModelRepository
from train_models import assert_outputs_match, export_model, model_config
from v2 import decode_outputs, infer_path

SLOW: Final = "iris_slow"
QUEUE_DELAY_S: Final = 1.5


@pytest.fixture
def slow_repository(model_repository: ModelRepository, tmp_path: Path) -> Path:
    model = model_repository.model(IRIS_MODEL)
    model_dir = export_model(model, tmp_path / "repo", config=model_config(model, name=SLOW))
    delay_us = int(QUEUE_DELAY_S * 1e6)
    with (model_dir / "config.yaml").open("a") as config:
        config.write(f"dynamic_batching: {{max_queue_delay_microseconds: {delay_us}}}\n")
    return tmp_path / "repo"


def test_sigterm_finishes_in_flight_requests_and_exits_0(
    slow_repository: Path, model_repository: ModelRepository, tmp_path: Path
) -> None:
    model = model_repository.model(IRIS_MODEL)
    x = model.dataset.X_test[:2]
    server = BerthServer.start(berth_binary(), slow_repository, tmp_path / "berth.log", grpc_port=-1)
    try:
        url = server.base_url + infer_path(SLOW)
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            in_flight = pool.submit(requests.post, url, json=model.infer_request(x), timeout=30)
            time.sleep(QUEUE_DELAY_S / 3)  # the request now waits in the batcher's queue
            assert not in_flight.done()
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            # The listener is closed at once: new connections are refused...
            with pytest.raises(ConnectionRefusedError), socket.create_connection((HOST, server.http_port), 1):
                pass
            # ...while the request in flight completes normally.
            response = in_flight.result()
        assert response.status_code == 200, response.text
        assert time.monotonic() - started >= QUEUE_DELAY_S * 0.9
        assert_outputs_match(model.sklearn_outputs(x), decode_outputs(response.json()))
        assert server.process.wait(SHUTDOWN_TIMEOUT_S) == 0, server.log()
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def test_sigterm_finishes_in_flight_grpc_calls_and_exits_0(
    slow_repository: Path, model_repository: ModelRepository, tmp_path: Path
) -> None:
    model = model_repository.model(IRIS_MODEL)
    x = model.dataset.X_test[:2].astype(np.float32)
    server = BerthServer.start(berth_binary(), slow_repository, tmp_path / "berth.log", grpc_port=0)
    try:
        client = grpcclient.InferenceServerClient(server.grpc_address())
        infer_input = grpcclient.InferInput("X", list(x.shape), "FP32")
        infer_input.set_data_from_numpy(x)
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            in_flight = pool.submit(client.infer, SLOW, [infer_input])
            time.sleep(QUEUE_DELAY_S / 3)
            assert not in_flight.done()
            server.process.send_signal(signal.SIGTERM)
            result = in_flight.result(timeout=30)
        assert time.monotonic() - started >= QUEUE_DELAY_S * 0.9
        assert_outputs_match(
            model.sklearn_outputs(x), {name: result.as_numpy(name) for name in ("label", "probabilities")}
        )
        assert server.process.wait(SHUTDOWN_TIMEOUT_S) == 0, server.log()
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
