"""A split keyed by an input's value (issue #7 item 4: "optionally sticky by a
request key: header Berth-Routing-Key or a named input"). The same value
reaches the same version at every door: v2 JSON and binary, gRPC, rows, TF
Serving and a cloud container route, whether the door decodes before or
after it resolves the version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from berth_server import BerthServer, berth_binary
from models import ModelRepository
from row_format import named_rows
from test_registry import MODEL, iris, repo, split  # noqa: F401  (repo is a fixture)
from v2 import V2Client, assert_error

KEYS = 24  # distinct first-feature values; each is one user's key


def keyed_rows(model_repository: ModelRepository) -> np.ndarray:
    """KEYS rows, alike but for the first feature (the key)."""
    base = iris(model_repository, 1).dataset.X_test[:1].astype(np.float32)
    rows = np.repeat(base, KEYS, axis=0)
    rows[:, 0] = 4.0 + 0.1 * np.arange(KEYS, dtype=np.float32)
    return rows


@pytest.fixture
def served(repo: Path, tmp_path: Path) -> Iterator[BerthServer]:  # noqa: F811
    with BerthServer.start(
        berth_binary(), repo, tmp_path / "berth.log", extra_args=["--platform", "sagemaker", "--default-model", MODEL]
    ) as server:
        with V2Client(server.base_url) as client:
            response = split(client, {"1": 50, "2": 50}, sticky_key="input:X")
            assert response.status_code == 200, response.text
            assert client.get(f"/v2/registry/models/{MODEL}").json()["sticky_keys"] == {"production": "input:X"}
        yield server


def versions_by_door(server: BerthServer, model_repository: ModelRepository, x: np.ndarray) -> dict[str, set[str]]:
    """The version each door answered for row x (a [1, 4] array), several times each."""
    model = iris(model_repository, 1)
    seen: dict[str, set[str]] = {}
    with V2Client(server.base_url) as client:
        for i in range(3):
            # A routing-key header is ignored: this split keys on the input.
            headers = {"Berth-Routing-Key": f"header-{i}"}
            json_body = model.infer_request(x)
            answer = client.session.post(f"{server.base_url}/v2/models/{MODEL}/infer", json=json_body, headers=headers)
            seen.setdefault("v2 json", set()).add(answer.json()["model_version"])
            rows = client.post(f"/v2/models/{MODEL}/infer_rows", {"instances": named_rows(model, x)})
            seen.setdefault("rows", set()).add(rows.json()["model_version"])
            tf = client.post(f"/v1/models/{MODEL}:predict", {"instances": x.tolist()})
            seen.setdefault("tf serving", set()).add(tf.headers["Berth-Model-Version"])
            cloud = client.session.post(f"{server.base_url}/invocations", json={"instances": x.tolist()})
            assert cloud.status_code == 200, cloud.text
            seen.setdefault("sagemaker", set()).add(cloud.headers["Berth-Model-Version"])
    http = httpclient.InferenceServerClient(server.base_url.removeprefix("http://"))
    binary = httpclient.InferInput("X", list(x.shape), "FP32")
    binary.set_data_from_numpy(x, binary_data=True)
    grpc = grpcclient.InferenceServerClient(server.grpc_address())
    grpc_input = grpcclient.InferInput("X", list(x.shape), "FP32")
    grpc_input.set_data_from_numpy(x)
    for i in range(3):
        answer = http.infer(MODEL, [binary], headers={"Berth-Routing-Key": f"h{i}"})
        seen.setdefault("v2 binary", set()).add(answer.get_response()["model_version"])
        reply = grpc.infer(MODEL, [grpc_input], headers={"berth-routing-key": f"h{i}"})
        seen.setdefault("grpc", set()).add(reply.get_response().model_version)
    return seen


def test_one_value_reaches_one_version_at_every_door(served: BerthServer, model_repository: ModelRepository) -> None:
    chosen: list[str] = []
    for row in keyed_rows(model_repository):
        seen = versions_by_door(served, model_repository, row[np.newaxis, :])
        answers = set().union(*seen.values())
        assert len(answers) == 1, (row[0], seen)
        chosen.append(answers.pop())
    # Distinct values spread over both versions (all 24 on one: 2^-23).
    assert set(chosen) == {"1", "2"}, chosen


@pytest.mark.parametrize(
    ("sticky_key", "message"),
    [
        ("input:nope", "has no input 'nope' (its inputs: X)"),
        ("input:", "'input:' must be followed by an input's name"),
        ("input:has space", "'input:' must be followed by an input's name"),
    ],
)
def test_a_split_keyed_by_an_input_the_model_lacks_is_refused(
    repo: Path, tmp_path: Path, sticky_key: str, message: str  # noqa: F811
) -> None:
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server, V2Client(server.base_url) as client:
        before: Any = client.get(f"/v2/registry/models/{MODEL}").json()
        assert message in assert_error(split(client, {"1": 50, "2": 50}, sticky_key=sticky_key), 400)
        assert client.get(f"/v2/registry/models/{MODEL}").json() == before
