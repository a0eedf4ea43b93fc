"""Archive, restore and delete of versions, and sticky split keys (issue #7).

An archived version is unloaded and never chosen, stays recorded and can be
restored; a deleted one loses its files for good but keeps its record, so its
number is never used again. Neither comes back with a repository poll or a
restart. A version an alias, a split or the shadow uses is refused with 409
naming the user, and so is the model's last serving version without force. A
split with a sticky key keeps each value of that header (gRPC metadata key)
on one version, at every door.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient

from berth_server import BerthServer, berth_binary
from models import ALL_VERSIONS_MODEL, ModelRepository, model_config
from row_format import named_rows
from train_models import TrainedModel, export_model
from v2 import V2Client, assert_error, infer_ok

MODEL: Final = "churn"


def iris(model_repository: ModelRepository, version: int) -> TrainedModel:
    return model_repository.model(ALL_VERSIONS_MODEL, version)


def write_versions(root: Path, model_repository: ModelRepository, versions: tuple[int, ...]) -> Path:
    """`versions` of MODEL under the default policy {latest: 1}; odd ones are iris v1, even ones v2."""
    for version in versions:
        model = iris(model_repository, 1 if version % 2 else 2)
        export_model(model, root, version=version, config=model_config(model, name=MODEL))
    return root


@pytest.fixture
def repo(model_repository: ModelRepository, tmp_path: Path) -> Path:
    return write_versions(tmp_path / "repo", model_repository, (1, 2, 3))


@pytest.fixture
def served(repo: Path, tmp_path: Path) -> Iterator[BerthServer]:
    with BerthServer.start(
        berth_binary(), repo, tmp_path / "berth.log", extra_args=["--repository-poll-secs", "1"]
    ) as server:
        yield server


def infer_body(model_repository: ModelRepository) -> Any:
    model = iris(model_repository, 1)
    return model.infer_request(model.dataset.X_test[:1])


def served_version(client: V2Client, body: Any, version: str | None = None) -> str:
    served: str = infer_ok(client.infer(MODEL, body, version=version))["model_version"]
    return served


def archive(client: V2Client, version: Any, **fields: Any) -> requests.Response:
    return client.post(f"/v2/registry/models/{MODEL}/versions/{version}/archive", fields or None)


def restore(client: V2Client, version: Any, **fields: Any) -> requests.Response:
    return client.post(f"/v2/registry/models/{MODEL}/versions/{version}/restore", fields or None)


def delete(client: V2Client, version: Any, **fields: Any) -> requests.Response:
    return client.session.delete(
        f"{client.base_url}/v2/registry/models/{MODEL}/versions/{version}", json=fields or None, timeout=30
    )


def shown(client: V2Client) -> dict[str, Any]:
    response = client.get(f"/v2/registry/models/{MODEL}")
    assert response.status_code == 200, response.text
    model: dict[str, Any] = response.json()
    return model


def states(client: V2Client) -> dict[int, str]:
    return {v["version"]: v["state"] for v in shown(client)["versions"]}


def listed(client: V2Client) -> dict[str, Any]:
    (entry,) = [m for m in client.get("/v2/registry/models").json()["models"] if m["name"] == MODEL]
    return dict(entry)


def history(client: V2Client) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]
    return records


def wait_for_poll(server: BerthServer) -> None:
    """Two poll periods: the poller has looked at the repository at least once since now."""
    time.sleep(2.5)
    assert server.process.poll() is None


def test_archive_unloads_and_restore_brings_back(
    served: BerthServer, repo: Path, tmp_path: Path, model_repository: ModelRepository
) -> None:
    body = infer_body(model_repository)
    with V2Client(served.base_url) as client:
        assert served_version(client, body) == "3"
        response = archive(client, 3, reason="drifted")
        assert response.status_code == 200, response.text
        assert response.json() == {"model": MODEL, "version": 3, "state": "ARCHIVED"}
        # Not served, not the default; the latest active version serves.
        assert served_version(client, body) == "2"
        assert_error(client.infer(MODEL, body, version=3), 404)
        assert states(client)[3] == "ARCHIVED"
        assert listed(client)["archived"] == [3] and 3 not in listed(client)["versions"]
        assert (repo / MODEL / "3" / "model.onnx").is_file()  # kept on disk
        record = history(client)[-1]
        assert (record["action"], record["to"], record["actor"], record["reason"]) == (
            "archive",
            3,
            "127.0.0.1",
            "drifted",
        )
        # A changed file makes the poller reload the model: still archived.
        (repo / MODEL / "3" / "touched").write_text("x")
        wait_for_poll(served)
        assert served_version(client, body) == "2"
        assert states(client)[3] == "ARCHIVED"
    served.stop()
    with BerthServer.start(berth_binary(), repo, tmp_path / "restarted.log") as server, V2Client(
        server.base_url
    ) as client:
        assert served_version(client, body) == "2"
        assert states(client)[3] == "ARCHIVED"
        # Nor can an archived version be promoted, split to or shadowed.
        for action, move in (
            ("promote", {"version": 3}),
            ("split", {"versions": {"2": 50, "3": 50}}),
            ("shadow", {"version": 3, "percent": 10}),
        ):
            assert "archived" in assert_error(client.post(f"/v2/registry/models/{MODEL}/{action}", move), 409)
        response = restore(client, 3, reason="false alarm")
        assert response.status_code == 200, response.text
        assert response.json() == {"model": MODEL, "version": 3, "state": "READY"}
        assert served_version(client, body) == "3"
        assert listed(client)["archived"] == []
        assert [h["action"] for h in history(client)][-2:] == ["archive", "restore"]


def test_delete_removes_the_files_and_the_number_is_never_reused(
    served: BerthServer, repo: Path, tmp_path: Path, model_repository: ModelRepository
) -> None:
    body = infer_body(model_repository)
    artifact = (repo / MODEL / "3" / "model.onnx").read_bytes()
    with V2Client(served.base_url) as client:
        response = delete(client, 3, reason="trained on leaked data")
        assert response.status_code == 200, response.text
        assert response.json() == {"model": MODEL, "version": 3, "state": "DELETED"}
        assert not (repo / MODEL / "3").exists()
        assert not [p.name for p in (repo / MODEL).iterdir() if p.name.startswith(".")]
        assert served_version(client, body) == "2"
        version = {v["version"]: v for v in shown(client)["versions"]}[3]
        assert version["state"] == "DELETED"
        assert version["digest"] == "sha256:" + hashlib.sha256(artifact).hexdigest()  # the tombstone
        assert listed(client)["deleted"] == [3]
        # An archived version can be deleted too; a deleted one never comes back.
        assert archive(client, 1).status_code == 200
        assert delete(client, 1).status_code == 200
        assert not (repo / MODEL / "1").exists()
        assert "deleted" in assert_error(restore(client, 3), 409)
        assert "deleted" in assert_error(delete(client, 3), 409)
        pushed = client.session.post(
            f"{served.base_url}/v2/registry/models/{MODEL}/versions",
            data=artifact,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["version"] == 4
        actions = [(h["action"], h["to"]) for h in history(client) if h["action"] == "delete"]
        assert actions == [("delete", 3), ("delete", 1)]
    served.stop()
    with BerthServer.start(berth_binary(), repo, tmp_path / "restarted.log") as server, V2Client(
        server.base_url
    ) as client:
        assert states(client) == {1: "DELETED", 2: "REGISTERED", 3: "DELETED", 4: "READY"}
        assert_error(client.infer(MODEL, body, version=3), 404)


def test_versions_in_use_are_refused_with_409_naming_the_user(served: BerthServer, repo: Path) -> None:
    with V2Client(served.base_url) as client:
        assert client.post(f"/v2/registry/models/{MODEL}/promote", {"version": 2}).status_code == 200
        split = {"versions": {"1": 90, "3": 10}, "alias": "canary"}
        assert client.post(f"/v2/registry/models/{MODEL}/split", split).status_code == 200
        before = history(client)
        error = assert_error(archive(client, 2), 409)
        assert "'production'" in error, error
        error = assert_error(delete(client, 1, force=True), 409)
        assert "'canary'" in error, error
        assert client.post(f"/v2/registry/models/{MODEL}/promote", {"version": 3, "alias": "canary"}).status_code == 200
        assert client.post(f"/v2/registry/models/{MODEL}/shadow", {"version": 1, "percent": 10}).status_code == 200
        before = history(client)
        assert "shadow" in assert_error(archive(client, 1), 409)
        assert history(client) == before
        assert (repo / MODEL / "1").is_dir()
        assert states(client)[1] == "READY"


def test_the_last_serving_version_needs_force(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    repo = write_versions(tmp_path / "repo", model_repository, (1,))
    body = infer_body(model_repository)
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server, V2Client(
        server.base_url
    ) as client:
        error = assert_error(archive(client, 1), 409)
        assert "force" in error, error
        assert served_version(client, body) == "1"
        response = archive(client, 1, force=True, reason="retire the model")
        assert response.status_code == 200, response.text
        # The model is out of service but recorded; the server stays ready.
        assert_error(client.infer(MODEL, body), 404)
        assert client.get("/v2/health/ready").status_code == 200
        assert listed(client)["archived"] == [1]
        assert states(client) == {1: "ARCHIVED"}
        assert restore(client, 1).status_code == 200
        assert served_version(client, body) == "1"


def test_a_push_is_recorded_even_when_the_policy_does_not_load_it(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    """Else a pushed version's record, and so its number, would depend on its serving."""
    repo = tmp_path / "repo"
    model = iris(model_repository, 1)
    export_model(model, repo, version=1, config=model_config(model, name=MODEL, version_policy={"specific": [1]}))
    artifact = (repo / MODEL / "1" / "model.onnx").read_bytes()
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server, V2Client(server.base_url) as client:
        pushed = client.session.post(
            f"{server.base_url}/v2/registry/models/{MODEL}/versions",
            data=artifact,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert pushed.status_code == 200, pushed.text
        version = {v["version"]: v for v in shown(client)["versions"]}[2]
        assert version["state"] == "REGISTERED" and version["source"] == "push", version
        assert version["digest"] == "sha256:" + hashlib.sha256(artifact).hexdigest()
        assert delete(client, 2).status_code == 200
        assert not (repo / MODEL / "2").exists()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", f"/v2/registry/models/{MODEL}/versions/9/archive", None, 404),
        ("POST", "/v2/registry/models/nosuchmodel/versions/1/archive", None, 404),
        ("POST", f"/v2/registry/models/{MODEL}/versions/01/archive", None, 400),
        ("POST", f"/v2/registry/models/{MODEL}/versions/0/archive", None, 400),
        ("POST", f"/v2/registry/models/{MODEL}/versions/latest/archive", None, 400),
        ("POST", f"/v2/registry/models/{MODEL}/versions/1/archive", b"{", 400),
        ("POST", f"/v2/registry/models/{MODEL}/versions/1/archive", {"force": "yes"}, 400),
        ("POST", f"/v2/registry/models/{MODEL}/versions/1/archive", {"bogus": 1}, 400),
        ("POST", f"/v2/registry/models/{MODEL}/versions/1/archive", {"reason": "x" * 2000}, 400),
        ("POST", f"/v2/registry/models/{MODEL}/versions/1/restore", {"force": True}, 400),
        ("POST", f"/v2/registry/models/{MODEL}/versions/1/restore", None, 409),
        ("DELETE", f"/v2/registry/models/{MODEL}/versions/9", None, 404),
        ("DELETE", f"/v2/registry/models/{MODEL}/versions/1", [1], 400),
        ("DELETE", "/v2/registry/models/%00bad/versions/1", None, 400),
        ("POST", f"/v2/registry/models/{'m' * 300}/versions/1/archive", None, 400),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(
    served: BerthServer, repo: Path, method: str, path: str, body: Any, status: int
) -> None:
    files = sorted(p.name for p in (repo / MODEL).iterdir())
    with V2Client(served.base_url) as client:
        before = history(client)
        data = body if isinstance(body, bytes) else None
        json = None if isinstance(body, bytes) else body
        response = client.session.request(method, f"{served.base_url}{path}", data=data, json=json, timeout=30)
        assert_error(response, status)
        assert history(client) == before
        assert sorted(p.name for p in (repo / MODEL).iterdir()) == files


def test_remote_clients_may_not_archive_or_delete(repo: Path, tmp_path: Path) -> None:
    """The same admin check as every registry change: loopback only, unless --allow-remote-admin."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent
            address: str = probe.getsockname()[0]
    except OSError:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    if address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=["--host", "0.0.0.0"]) as server:
        url = f"http://{address}:{server.http_port}/v2/registry/models/{MODEL}/versions/1"
        assert "--allow-remote-admin" in assert_error(requests.post(f"{url}/archive", timeout=30), 403)
        assert_error(requests.post(f"{url}/restore", timeout=30), 403)
        assert_error(requests.delete(url, timeout=30), 403)
        assert (repo / MODEL / "1").is_dir()


# --- Sticky split keys ---------------------------------------------------------


def grpc_version(triton: grpcclient.InferenceServerClient, x: np.ndarray, headers: dict[str, str]) -> str:
    inputs = [grpcclient.InferInput("X", list(x.shape), "FP32")]
    inputs[0].set_data_from_numpy(x)
    version: str = triton.infer(MODEL, inputs, headers=headers).get_response().model_version
    return version


def test_a_sticky_key_keeps_each_value_on_one_version_at_every_door(
    repo: Path, tmp_path: Path, model_repository: ModelRepository
) -> None:
    model = iris(model_repository, 1)
    x = model.dataset.X_test[:1].astype(np.float32)
    body = model.infer_request(x)
    with BerthServer.start(berth_binary(), repo, tmp_path / "first.log") as server, V2Client(server.base_url) as client:
        split = {"versions": {"1": 50, "2": 50}, "sticky_key": "X-User-Id", "reason": "a/b"}
        response = client.post(f"/v2/registry/models/{MODEL}/split", split)
        assert response.status_code == 200, response.text
        assert shown(client)["sticky_keys"] == {"production": "x-user-id"}
        assert listed(client)["sticky_keys"] == {"production": "x-user-id"}
        assert listed(client)["splits"] == {"production": {"1": 50, "2": 50}}
        assert history(client)[-1]["reason"] == "1=50 2=50 sticky-key=x-user-id: a/b"
    # The key is stored with the split: it survives a restart.
    with BerthServer.start(berth_binary(), repo, tmp_path / "second.log") as server, V2Client(
        server.base_url
    ) as client:
        triton = grpcclient.InferenceServerClient(server.grpc_address())
        by_user: dict[str, str] = {}
        for n in range(40):
            user = f"user-{n}"
            # The header's name in any case; Berth-Routing-Key is not what this split reads.
            rest = {
                client.session.post(
                    f"{server.base_url}/v2/models/{MODEL}/infer",
                    json=body,
                    headers={"X-USER-ID" if n % 2 else "x-user-id": user, "Berth-Routing-Key": str(k)},
                ).json()["model_version"]
                for k in range(4)
            }
            assert len(rest) == 1, (user, rest)
            (by_user[user],) = rest
            headers = {"X-User-Id": user}
            rows = client.session.post(
                f"{server.base_url}/v2/models/{MODEL}/infer_rows",
                json={"instances": named_rows(model, x)},
                headers=headers,
            )
            tf = client.session.post(
                f"{server.base_url}/v1/models/{MODEL}:predict", json={"instances": x.tolist()}, headers=headers
            )
            assert rows.json()["model_version"] == by_user[user]
            assert tf.headers["Berth-Model-Version"] == by_user[user]
            assert grpc_version(triton, x, {"x-user-id": user}) == by_user[user]
        # Different keys spread over both versions.
        assert set(by_user.values()) == {"1", "2"}, by_user
        # Without the header the draw is random: both versions answer.
        assert {served_version(client, body) for _ in range(60)} == {"1", "2"}
        # A promotion ends the split and its key.
        assert client.post(f"/v2/registry/models/{MODEL}/promote", {"version": 2}).status_code == 200
        assert shown(client)["sticky_keys"] == {}


@pytest.mark.parametrize("key", ["", "a b", "x:y", "grpc-status", "x-bin", "é", "k" * 65, 7])
def test_bad_sticky_keys_are_refused(served: BerthServer, key: Any) -> None:
    with V2Client(served.base_url) as client:
        before = history(client)
        split = {"versions": {"1": 50, "2": 50}, "sticky_key": key}
        assert_error(client.post(f"/v2/registry/models/{MODEL}/split", split), 400)
        assert history(client) == before
