"""Dynamic batching with the real ONNX Runtime backend: many concurrent
requests of different sizes are gathered into shared backend calls, and each
client still gets exactly the rows it sent, matching scikit-learn."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import pytest

from berth_server import BerthServer, berth_binary
from models import IRIS_MODEL, ModelRepository
from train_models import assert_outputs_match, export_model, model_config
from v2 import V2Client, decode_outputs

BATCHED: Final = "iris_batched"
CLIENTS: Final = 16
REQUESTS_PER_CLIENT: Final = 25


@pytest.fixture(scope="module")
def batched_server(
    model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BerthServer]:
    root = tmp_path_factory.mktemp("batched_repository")
    model = model_repository.model(IRIS_MODEL)
    model_dir = export_model(model, root, config=model_config(model, name=BATCHED, max_batch_size=32))
    with (model_dir / "config.yaml").open("a") as config:
        # A long delay, so that concurrent requests really do meet in the queue.
        config.write("dynamic_batching: {max_queue_delay_microseconds: 5000}\ninstance_count: 2\n")
    log = Path(tmp_path_factory.mktemp("berth_batched")) / "berth.log"
    with BerthServer.start(
        berth_binary(), root, log, grpc_port=-1, extra_args=["--http-threads", str(CLIENTS)]
    ) as server:
        yield server


def test_concurrent_requests_get_their_own_rows(
    batched_server: BerthServer, model_repository: ModelRepository
) -> None:
    model = model_repository.model(IRIS_MODEL)
    x_test = model.dataset.X_test

    def client_run(seed: int) -> int:
        rng = random.Random(seed)
        checked = 0
        with V2Client(batched_server.base_url) as client:
            for _ in range(REQUESTS_PER_CLIENT):
                rows = sorted(rng.sample(range(len(x_test)), rng.randint(1, 5)))
                x = x_test[rows]
                response = client.infer(BATCHED, model.infer_request(x, id=f"{seed}-{rows}"))
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["id"] == f"{seed}-{rows}"
                assert_outputs_match(model.sklearn_outputs(x), decode_outputs(body))
                checked += 1
        return checked

    with ThreadPoolExecutor(CLIENTS) as pool:
        assert sum(pool.map(client_run, range(CLIENTS))) == CLIENTS * REQUESTS_PER_CLIENT


def test_batch_over_max_is_refused(batched_server: BerthServer, model_repository: ModelRepository) -> None:
    model = model_repository.model(IRIS_MODEL)
    x = model.dataset.X_test[:33]
    with V2Client(batched_server.base_url) as client:
        response = client.infer(BATCHED, model.infer_request(x))
    assert response.status_code == 400
    assert "max_batch_size" in response.json()["error"]
