"""Model states: a corrupt model among good ones, and version policies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import numpy as np
import pytest

from berth_server import BerthServer, berth_binary
from models import (
    ALL_VERSIONS_MODEL,
    IRIS_MODEL,
    LATEST_VERSION_MODEL,
    ModelRepository,
    assert_outputs_match,
    export_model,
    write_corrupt_model,
)
from v2 import V2Client, assert_error, decode_outputs, infer_ok, infer_path, model_path

IRIS: Final = IRIS_MODEL
CORRUPT: Final = "corrupt_model"


@pytest.fixture(scope="module")
def mixed_client(
    model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[V2Client]:
    """A client of a second server whose repository holds IRIS and CORRUPT (model.onnx of random bytes)."""
    root = tmp_path_factory.mktemp("mixed_repository")
    export_model(model_repository.model(IRIS), root)
    write_corrupt_model(root, CORRUPT)
    log_path = tmp_path_factory.mktemp("mixed_berth") / "berth.log"
    with BerthServer.start(berth_binary(), root, log_path) as server, V2Client(server.base_url) as client:
        yield client


def test_corrupt_model_is_unavailable_with_reason(mixed_client: V2Client) -> None:
    index = {entry["name"]: entry for entry in mixed_client.repository_index()}
    assert set(index) == {IRIS, CORRUPT}
    assert index[IRIS]["state"] == "READY"
    assert index[CORRUPT]["state"] == "UNAVAILABLE"
    assert isinstance(index[CORRUPT]["reason"], str) and index[CORRUPT]["reason"]


def test_corrupt_model_is_not_ready(mixed_client: V2Client) -> None:
    response = mixed_client.get(f"{model_path(CORRUPT)}/ready")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["name"] == CORRUPT
    assert body["ready"] is False


def test_infer_on_corrupt_model_is_503(mixed_client: V2Client, model_repository: ModelRepository) -> None:
    iris = model_repository.model(IRIS)
    assert_error(mixed_client.infer(CORRUPT, iris.infer_request(iris.dataset.X_test[:2])), 503)


def test_good_model_next_to_corrupt_one_serves(
    mixed_client: V2Client, model_repository: ModelRepository
) -> None:
    assert mixed_client.get("/v2/health/live").status_code == 200
    assert mixed_client.get(f"{model_path(IRIS)}/ready").status_code == 200
    iris = model_repository.model(IRIS)
    X = iris.dataset.X_test
    assert_outputs_match(
        iris.sklearn_outputs(X), decode_outputs(infer_ok(mixed_client.infer(IRIS, iris.infer_request(X))))
    )


def test_model_versions_differ(model_repository: ModelRepository) -> None:
    """Precondition of the routing tests: versions 1 and 2 give different probabilities."""
    X = model_repository.model(ALL_VERSIONS_MODEL, 1).dataset.X_test
    v1, v2 = (model_repository.model(ALL_VERSIONS_MODEL, version).sklearn_outputs(X) for version in (1, 2))
    assert not np.allclose(v1["probabilities"], v2["probabilities"], rtol=1e-3)


@pytest.mark.parametrize(
    ("name", "versions"), [(ALL_VERSIONS_MODEL, ["1", "2"]), (LATEST_VERSION_MODEL, ["2"])]
)
def test_served_versions(client: V2Client, name: str, versions: list[str]) -> None:
    response = client.get(model_path(name))
    assert response.status_code == 200, response.text
    assert sorted(response.json()["versions"], key=int) == versions
    for version in versions:
        assert client.get(f"{model_path(name, version)}/ready").status_code == 200


@pytest.mark.parametrize(
    ("name", "version", "served_version"),
    [
        (ALL_VERSIONS_MODEL, 1, 1),
        (ALL_VERSIONS_MODEL, 2, 2),
        (ALL_VERSIONS_MODEL, None, 2),  # no version: the highest one
        (LATEST_VERSION_MODEL, 2, 2),
        (LATEST_VERSION_MODEL, None, 2),
    ],
)
def test_version_routing(
    client: V2Client, model_repository: ModelRepository, name: str, version: int | None, served_version: int
) -> None:
    model = model_repository.model(name, served_version)
    X = model.dataset.X_test
    body = infer_ok(client.infer(name, model.infer_request(X), version=version))
    assert body["model_name"] == name
    assert body["model_version"] == str(served_version)
    assert_outputs_match(model.sklearn_outputs(X), decode_outputs(body))


def test_version_outside_policy_is_not_served(client: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(LATEST_VERSION_MODEL, 1)
    response = client.post(infer_path(LATEST_VERSION_MODEL, 1), model.infer_request(model.dataset.X_test[:2]))
    # Unknown (404) or not ready (503) are both fair descriptions of a version the policy excludes.
    assert response.status_code in (404, 503), response.text
    assert_error(response, response.status_code)
