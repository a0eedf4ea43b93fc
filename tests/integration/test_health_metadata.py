"""Health, server metadata, model metadata and readiness endpoints."""

from __future__ import annotations

import pytest

from models import (
    IRIS_MODEL,
    LATEST_VERSION_MODEL,
    PARITY_MODELS,
    ModelRepository,
    graph_inputs,
    graph_outputs,
)
from v2 import V2Client, assert_error, model_path

VERSIONS = pytest.mark.parametrize("version", [None, 1], ids=["latest", "v1"])


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready"])
def test_health(client: V2Client, path: str) -> None:
    assert client.get(path).status_code == 200


def test_server_metadata(client: V2Client) -> None:
    response = client.get("/v2")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "berth"
    assert isinstance(body["version"], str) and body["version"]
    assert isinstance(body["extensions"], list)
    assert all(isinstance(extension, str) for extension in body["extensions"])


@pytest.mark.parametrize("name", PARITY_MODELS)
@VERSIONS
def test_model_metadata(
    client: V2Client, model_repository: ModelRepository, name: str, version: int | None
) -> None:
    model = model_repository.model(name)
    response = client.get(model_path(name, version))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == name
    assert body["versions"] == ["1"]
    assert body["platform"] == "onnxruntime_onnx"
    assert body["inputs"] == [spec.as_dict() for spec in graph_inputs(model.onnx_model)]
    assert body["outputs"] == [spec.as_dict() for spec in graph_outputs(model.onnx_model)]


@pytest.mark.parametrize("name", PARITY_MODELS)
@VERSIONS
def test_model_ready(client: V2Client, name: str, version: int | None) -> None:
    response = client.get(f"{model_path(name, version)}/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == name
    assert body["ready"] is True


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/no_such_model",
        "/v2/models/no_such_model/ready",
        "/v2/models/no_such_model/versions/1",
        f"/v2/models/{IRIS_MODEL}/versions/7",
        f"/v2/models/{IRIS_MODEL}/versions/7/ready",
        "/v2/no_such_endpoint",
    ],
)
def test_unknown_path_is_404(client: V2Client, path: str) -> None:
    assert_error(client.get(path), 404)


def test_repository_index_lists_every_version_ready(
    client: V2Client, model_repository: ModelRepository
) -> None:
    states = {(entry["name"], entry["version"]): entry["state"] for entry in client.repository_index()}
    # Version 1 of the {latest: 1} model is on disk but not served; how the
    # index reports it is not specified.
    states.pop((LATEST_VERSION_MODEL, "1"), None)
    expected = {
        (name, str(version)): "READY"
        for name, versions in model_repository.versions.items()
        for version in versions
        if (name, version) != (LATEST_VERSION_MODEL, 1)
    }
    assert states == expected
