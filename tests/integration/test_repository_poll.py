"""--repository-poll-secs: new versions and models go live without a restart,
removed models are unloaded, and a broken upload never takes a serving model
down."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pytest

from berth_server import BerthServer, berth_binary
from models import ALL_VERSIONS_MODEL, IRIS_MODEL, ModelRepository, model_config
from train_models import TrainedModel, assert_outputs_match, export_model
from v2 import V2Client, decode_outputs, model_path

POLLED: Final = "iris_polled"
ADDED: Final = "iris_added"
POLL_SECS: Final = 1
WAIT_S: Final = 10.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {WAIT_S} s: {what}")


@pytest.fixture
def polled(model_repository: ModelRepository, tmp_path: Path) -> Iterator[tuple[BerthServer, Path]]:
    root = tmp_path / "repo"
    v1 = model_repository.model(ALL_VERSIONS_MODEL, 1)
    export_model(v1, root, version=1, config=model_config(v1, name=POLLED))
    with BerthServer.start(
        berth_binary(),
        root,
        tmp_path / "berth.log",
        grpc_port=-1,
        extra_args=["--repository-poll-secs", str(POLL_SECS)],
    ) as server:
        yield server, root


def served_version(client: V2Client, name: str, model: TrainedModel) -> str | None:
    x = model.dataset.X_test[:4]
    response = client.infer(name, model.infer_request(x))
    if response.status_code != 200:
        return None
    version: str = response.json()["model_version"]
    return version


def version_state(client: V2Client, model: str, version: str) -> str | None:
    for entry in client.post("/v2/repository/index").json():
        if entry["name"] == model and entry.get("version") == version:
            state: str = entry["state"]
            return state
    return None


def test_polling_follows_the_directory(polled: tuple[BerthServer, Path], model_repository: ModelRepository) -> None:
    server, root = polled
    v1 = model_repository.model(ALL_VERSIONS_MODEL, 1)
    v2 = model_repository.model(ALL_VERSIONS_MODEL, 2)
    x = model_repository.model(IRIS_MODEL).dataset.X_test[:4]
    with V2Client(server.base_url) as client:
        assert served_version(client, POLLED, v1) == "1"

        # A new version is picked up and, under {latest: 1}, replaces version 1.
        export_model(v2, root, version=2, config=model_config(v2, name=POLLED))
        wait_for(lambda: served_version(client, POLLED, v1) == "2", "version 2 serves")
        response = client.infer(POLLED, v1.infer_request(x))
        assert_outputs_match(v2.sklearn_outputs(x), decode_outputs(response.json()))

        # A broken (half-written) version 3 does not hide version 2: under
        # {latest: 1} the newest version that loads serves, and the index
        # shows version 3's failure with its reason.
        (root / POLLED / "3").mkdir()
        (root / POLLED / "3" / "model.onnx").write_bytes(b"not an onnx model")
        wait_for(lambda: version_state(client, POLLED, "3") == "UNAVAILABLE", "version 3 is listed as failed")
        assert served_version(client, POLLED, v1) == "2"
        assert version_state(client, POLLED, "2") == "READY"
        reason = next(e["reason"] for e in client.post("/v2/repository/index").json() if e.get("version") == "3")
        assert f"{POLLED}/3/model.onnx" in reason
        assert str(root) not in reason
        load = client.post(f"/v2/repository/models/{POLLED}/load")
        assert load.status_code == 200
        assert served_version(client, POLLED, v1) == "2"

        # With no version that loads, the reload is refused and the serving
        # version stays.
        for version in ("1", "2"):
            (root / POLLED / version / "model.onnx").write_bytes(b"truncated")
        wait_for(lambda: "keeping the serving one" in server.log(), "the failed reload is logged")
        assert served_version(client, POLLED, v1) == "2"
        load = client.post(f"/v2/repository/models/{POLLED}/load")
        assert load.status_code == 400
        assert "version 2 keeps serving" in load.json()["error"]

        # A new model directory goes live; removing it unloads it.
        export_model(v1, root, version=1, config=model_config(v1, name=ADDED))
        wait_for(lambda: served_version(client, ADDED, v1) == "1", "the added model serves")
        shutil.rmtree(root / ADDED)
        wait_for(lambda: client.get(model_path(ADDED)).status_code == 404, "the removed model is gone")
        assert served_version(client, POLLED, v1) == "2"
