"""SIGTERM: stop accepting, flush the dynamic batchers, answer every request in flight, exit 0.

A model whose dynamic batcher would hold each request for HELD_QUEUE_DELAY_S
(far longer than any test runs) makes a request reliably in flight when the
signal arrives; only the shutdown's flush, or the front end's own 503 /
UNAVAILABLE at the end of the grace period, can answer it."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import pytest
import requests

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from berth_server import BerthServer, berth_binary
from models import IRIS_MODEL, ModelRepository
from train_models import assert_outputs_match, export_model, model_config
from v2 import decode_outputs, infer_path

HELD: Final = "iris_held"
HELD_QUEUE_DELAY_S: Final = 600
SHUTTING_DOWN: Final = "the server is shutting down"
# Long enough for both clients' requests to reach the batcher's queue.
QUEUEING_S: Final = 1.0
# A bound on the waits for answers and for the exit, not a measurement: with
# the flush, both come within about the grace period.
EXIT_TIMEOUT_S: Final = 60.0


@pytest.fixture
def held_repository(model_repository: ModelRepository, tmp_path: Path) -> Path:
    model = model_repository.model(IRIS_MODEL)
    model_dir = export_model(model, tmp_path / "repo", config=model_config(model, name=HELD))
    delay_us = int(HELD_QUEUE_DELAY_S * 1e6)
    with (model_dir / "config.yaml").open("a") as config:
        config.write(f"dynamic_batching: {{max_queue_delay_microseconds: {delay_us}}}\n")
    return tmp_path / "repo"


def start(repository: Path, tmp_path: Path, *, grpc_port: int, grace_ms: int | None = None) -> BerthServer:
    extra_args = [] if grace_ms is None else ["--shutdown-grace-ms", str(grace_ms)]
    return BerthServer.start(
        berth_binary(), repository, tmp_path / "berth.log", grpc_port=grpc_port, extra_args=extra_args
    )


def kill_if_running(server: BerthServer) -> None:
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


def test_sigterm_flushes_the_batcher_for_a_rest_request_and_exits_0(
    held_repository: Path, model_repository: ModelRepository, tmp_path: Path
) -> None:
    model = model_repository.model(IRIS_MODEL)
    x = model.dataset.X_test[:2]
    server = start(held_repository, tmp_path, grpc_port=-1)  # the default grace: 10 s
    try:
        url = server.base_url + infer_path(HELD)
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(requests.post, url, json=model.infer_request(x), timeout=EXIT_TIMEOUT_S)
            time.sleep(QUEUEING_S)  # the request now waits in the batcher's queue
            assert not in_flight.done()
            server.process.send_signal(signal.SIGTERM)
            # The batch runs at once, and the request completes normally.
            response = in_flight.result()
        assert response.status_code == 200, response.text
        assert_outputs_match(model.sklearn_outputs(x), decode_outputs(response.json()))
        assert server.process.wait(EXIT_TIMEOUT_S) == 0, server.log()
    finally:
        kill_if_running(server)


def test_sigterm_flushes_the_batcher_for_a_grpc_call_and_exits_0(
    held_repository: Path, model_repository: ModelRepository, tmp_path: Path
) -> None:
    model = model_repository.model(IRIS_MODEL)
    x = model.dataset.X_test[:2].astype(np.float32)
    server = start(held_repository, tmp_path, grpc_port=0)
    try:
        client = grpcclient.InferenceServerClient(server.grpc_address())
        infer_input = grpcclient.InferInput("X", list(x.shape), "FP32")
        infer_input.set_data_from_numpy(x)
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(client.infer, HELD, [infer_input], client_timeout=EXIT_TIMEOUT_S)
            time.sleep(QUEUEING_S)
            assert not in_flight.done()
            server.process.send_signal(signal.SIGTERM)
            result = in_flight.result()
        assert_outputs_match(
            model.sklearn_outputs(x), {name: result.as_numpy(name) for name in ("label", "probabilities")}
        )
        assert server.process.wait(EXIT_TIMEOUT_S) == 0, server.log()
    finally:
        kill_if_running(server)


@pytest.mark.parametrize("grace_ms", [0, 200])
def test_sigterm_with_a_short_grace_answers_every_client_and_exits_0(
    held_repository: Path, model_repository: ModelRepository, tmp_path: Path, grace_ms: int
) -> None:
    """Each client gets an answer (the flushed batch's, or 503/UNAVAILABLE), never a closed connection.

    With no grace at all the flushed batch and the front ends' 503/UNAVAILABLE
    race; either answer is right, a dropped connection or a crash is not.
    """
    model = model_repository.model(IRIS_MODEL)
    x = model.dataset.X_test[:2].astype(np.float32)
    server = start(held_repository, tmp_path, grpc_port=0, grace_ms=grace_ms)
    try:
        client = grpcclient.InferenceServerClient(server.grpc_address())
        infer_input = grpcclient.InferInput("X", list(x.shape), "FP32")
        infer_input.set_data_from_numpy(x)

        def grpc_infer() -> grpcclient.InferResult | InferenceServerException:
            try:
                return client.infer(HELD, [infer_input], client_timeout=EXIT_TIMEOUT_S)
            except InferenceServerException as e:
                return e

        with ThreadPoolExecutor(2) as pool:
            rest = pool.submit(
                requests.post, server.base_url + infer_path(HELD), json=model.infer_request(x), timeout=EXIT_TIMEOUT_S
            )
            grpc_call = pool.submit(grpc_infer)
            time.sleep(QUEUEING_S)  # both requests now wait in the batcher's queue
            assert not rest.done() and not grpc_call.done()
            server.process.send_signal(signal.SIGTERM)
            response = rest.result()
            result = grpc_call.result()
        exit_code = server.process.wait(EXIT_TIMEOUT_S)

        if response.status_code == 200:
            assert_outputs_match(model.sklearn_outputs(x), decode_outputs(response.json()))
        else:
            assert response.status_code == 503, response.text
            assert response.json()["error"] == SHUTTING_DOWN
        if isinstance(result, InferenceServerException):
            # A dropped connection is UNAVAILABLE too, but with another message.
            assert result.status() == "StatusCode.UNAVAILABLE", result
            assert result.message() == SHUTTING_DOWN, result
        else:
            assert_outputs_match(
                model.sklearn_outputs(x), {name: result.as_numpy(name) for name in ("label", "probabilities")}
            )
        assert exit_code == 0, server.log()
    finally:
        kill_if_running(server)
