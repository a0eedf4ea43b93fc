"""Zero-downtime hot swap: a new version dropped into the repository and loaded
with POST /v2/repository/models/{m}/load replaces the old one while clients
keep sending requests; none of them fails, and each answer is the right one
for the version that served it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from berth_server import BerthServer, berth_binary
from models import ALL_VERSIONS_MODEL, IRIS_MODEL, ModelRepository, model_config
from train_models import assert_outputs_match, export_model
from v2 import V2Client, decode_outputs

SWAPPED: Final = "iris_swapped"
CLIENTS: Final = 4


@pytest.fixture
def swap_server(
    model_repository: ModelRepository, tmp_path: Path
) -> Iterator[tuple[BerthServer, Path]]:
    root = tmp_path / "repo"
    v1 = model_repository.model(ALL_VERSIONS_MODEL, 1)
    export_model(v1, root, version=1, config=model_config(v1, name=SWAPPED))
    with BerthServer.start(
        berth_binary(), root, tmp_path / "berth.log", grpc_port=-1, extra_args=["--http-threads", "4"]
    ) as server:
        yield server, root


def test_new_version_replaces_old_without_a_failed_request(
    swap_server: tuple[BerthServer, Path], model_repository: ModelRepository
) -> None:
    server, root = swap_server
    versions = {v: model_repository.model(ALL_VERSIONS_MODEL, v) for v in (1, 2)}
    x = model_repository.model(IRIS_MODEL).dataset.X_test[:5]
    expected = {str(v): m.sklearn_outputs(x) for v, m in versions.items()}
    stop = threading.Event()
    failures: list[str] = []
    served: dict[str, int] = {"1": 0, "2": 0}
    lock = threading.Lock()

    def client_loop() -> None:
        with V2Client(server.base_url) as client:
            while not stop.is_set():
                response = client.infer(SWAPPED, versions[1].infer_request(x))
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                    continue
                body = response.json()
                version = body["model_version"]
                try:
                    assert_outputs_match(expected[version], decode_outputs(body))
                except AssertionError as error:
                    failures.append(f"version {version}: {error}")
                with lock:
                    served[version] += 1

    threads = [threading.Thread(target=client_loop) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        # Version 2 arrives on disk, then is loaded; the default policy serves the latest.
        export_model(versions[2], root, version=2, config=model_config(versions[2], name=SWAPPED))
        with V2Client(server.base_url) as admin:
            load = admin.post(f"/v2/repository/models/{SWAPPED}/load")
            assert load.status_code == 200, load.text
            with lock:
                served_before_swap = dict(served)
            time.sleep(0.3)
            metadata = admin.get(f"/v2/models/{SWAPPED}").json()
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert failures == []
    assert metadata["versions"] == ["2"]
    assert served_before_swap["1"] > 0
    assert served["2"] > served_before_swap["2"]
