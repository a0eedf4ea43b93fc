"""The registry (issue #7): versions recorded with their digests, aliases that
requests may name at every door, promotion that never switches to a version
that does not load, rollback, the audit history, and all of it surviving a
restart."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from berth_server import BerthServer, berth_binary
from models import ALL_VERSIONS_MODEL, ModelRepository, model_config
from row_format import named_rows
from train_models import TrainedModel, assert_outputs_match, export_model
from v2 import V2Client, assert_error, decode_outputs, infer_ok

MODEL: Final = "churn"


def iris(model_repository: ModelRepository, version: int) -> TrainedModel:
    return model_repository.model(ALL_VERSIONS_MODEL, version)


@pytest.fixture
def repo(model_repository: ModelRepository, tmp_path: Path) -> Path:
    """Versions 1 and 2 (different models) under the default policy {latest: 1}."""
    root = tmp_path / "repo"
    for version in (1, 2):
        model = iris(model_repository, version)
        export_model(model, root, version=version, config=model_config(model, name=MODEL))
    return root


@pytest.fixture
def served(repo: Path, tmp_path: Path) -> Iterator[BerthServer]:
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server:
        yield server


def promote(client: V2Client, version: Any, **fields: Any) -> Any:
    return client.post(f"/v2/registry/models/{MODEL}/promote", {"version": version, **fields})


def served_version(client: V2Client, model_repository: ModelRepository, version: str | None = None) -> str:
    model = iris(model_repository, 1)
    body = infer_ok(client.infer(MODEL, model.infer_request(model.dataset.X_test[:2]), version=version))
    served: str = body["model_version"]
    return served


def test_directory_versions_are_registered_with_digests(served: BerthServer) -> None:
    with V2Client(served.base_url) as client:
        listing = client.get("/v2/registry/models").json()
        assert {
            "name": MODEL,
            "aliases": {},
            "splits": {},
            "sticky_keys": {},
            "versions": [2],
            "archived": [],
            "deleted": [],
        } in listing["models"]
        model = client.get(f"/v2/registry/models/{MODEL}").json()
        assert model["default_version"] == 2
        (version,) = model["versions"]
        assert version["state"] == "READY"
        assert version["digest"].startswith("sha256:") and len(version["digest"]) == 7 + 64
        assert version["size"] > 0 and version["format"] == "onnx" and version["source"] == "directory"


def test_promote_rollback_and_history(served: BerthServer, model_repository: ModelRepository) -> None:
    with V2Client(served.base_url) as client:
        assert served_version(client, model_repository) == "2"
        # Version 1 is outside {latest: 1}: promoting it loads it first.
        response = promote(client, 1, reason="v2 regressed on recall")
        assert response.status_code == 200, response.text
        assert response.json() == {"model": MODEL, "alias": "production", "version": 1, "previous": None}
        assert served_version(client, model_repository) == "1"
        assert served_version(client, model_repository, "production") == "1"
        assert served_version(client, model_repository, "2") == "2"

        assert promote(client, 2).json()["previous"] == 1
        assert served_version(client, model_repository) == "2"
        rollback = client.post(f"/v2/registry/models/{MODEL}/rollback")
        assert rollback.status_code == 200, rollback.text
        assert rollback.json() == {"model": MODEL, "alias": "production", "version": 1, "previous": 2}
        assert served_version(client, model_repository) == "1"

        history = client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]
        moves = [(h["action"], h["alias"], h["from"], h["to"]) for h in history if h["action"] != "register"]
        assert moves == [
            ("promote", "production", None, 1),
            ("promote", "production", 1, 2),
            ("rollback", "production", 2, 1),
        ]
        assert history[-3]["reason"] == "v2 regressed on recall"
        assert all(h["actor"] for h in history)
        # Nothing older than version 1 to go back to.
        assert_error(client.post(f"/v2/registry/models/{MODEL}/rollback"), 400)


def test_alias_in_the_version_slot_at_every_door(served: BerthServer, model_repository: ModelRepository) -> None:
    model = iris(model_repository, 1)
    x = model.dataset.X_test[:3].astype(np.float32)
    with V2Client(served.base_url) as client:
        assert promote(client, 1, alias="staging").status_code == 200
        body = infer_ok(client.infer(MODEL, model.infer_request(x), version="staging"))
        assert body["model_version"] == "1"
        assert_outputs_match(model.sklearn_outputs(x), decode_outputs(body))
        rows = client.post(f"/v2/models/{MODEL}/versions/staging/infer_rows", {"instances": named_rows(model, x)})
        assert rows.status_code == 200, rows.text
        assert rows.json()["model_version"] == "1"
        tf = client.post(f"/v1/models/{MODEL}/versions/staging:predict", {"instances": x.tolist()})
        assert tf.status_code == 200, tf.text
        assert_error(client.infer(MODEL, model.infer_request(x), version="canary"), 404)
        assert client.get(f"/v2/models/{MODEL}/versions/staging/ready").status_code == 200
    triton = grpcclient.InferenceServerClient(served.grpc_address())
    inputs = [grpcclient.InferInput("X", list(x.shape), "FP32")]
    inputs[0].set_data_from_numpy(x)
    result = triton.infer(MODEL, inputs, model_version="staging")
    assert result.get_response().model_version == "1"
    assert triton.is_model_ready(MODEL, "staging")
    with pytest.raises(InferenceServerException) as error:
        triton.infer(MODEL, inputs, model_version="canary")
    assert "NOT_FOUND" in str(error.value.status())


def test_a_version_that_does_not_load_is_never_switched_to(
    served: BerthServer, repo: Path, model_repository: ModelRepository
) -> None:
    (repo / MODEL / "3").mkdir()
    (repo / MODEL / "3" / "model.onnx").write_bytes(b"half written")
    with V2Client(served.base_url) as client:
        assert promote(client, 2).status_code == 200
        error = assert_error(promote(client, 3), 400)
        assert "alias 'production' is unchanged" in error
        assert str(repo) not in error
        assert served_version(client, model_repository) == "2"
        assert client.get(f"/v2/registry/models/{MODEL}").json()["aliases"] == {"production": 2}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"version": 9}, 404),
        ({"version": 0}, 400),
        ({"version": "01"}, 400),
        ({"version": True}, 400),
        ({"version": 1, "alias": "Prod"}, 400),
        ({"version": 1, "alias": "../x"}, 400),
        ({"version": 1, "bogus": 1}, 400),
        ({"alias": "production"}, 400),
        ([], 400),
    ],
)
def test_bad_promotions_are_refused_and_change_nothing(served: BerthServer, body: Any, status: int) -> None:
    with V2Client(served.base_url) as client:
        before = client.get(f"/v2/registry/models/{MODEL}/history").json()
        assert_error(client.post(f"/v2/registry/models/{MODEL}/promote", body), status)
        assert client.get(f"/v2/registry/models/{MODEL}/history").json() == before
        assert_error(client.post("/v2/registry/models/nope/promote", {"version": 1}), 404)
        assert_error(client.get("/v2/registry/models/nope"), 404)
        assert_error(client.get("/v2/registry/models/%00x"), 400)


def test_aliases_survive_a_restart(repo: Path, tmp_path: Path, model_repository: ModelRepository) -> None:
    with BerthServer.start(berth_binary(), repo, tmp_path / "first.log") as server, V2Client(server.base_url) as client:
        assert promote(client, 1).status_code == 200
    with BerthServer.start(berth_binary(), repo, tmp_path / "second.log") as server, V2Client(
        server.base_url
    ) as client:
        # {latest: 1} alone would serve version 2; production pins version 1.
        assert served_version(client, model_repository) == "1"
        assert client.get(f"/v2/registry/models/{MODEL}").json()["aliases"] == {"production": 1}
        assert (repo / ".berth" / "registry.db").is_file()
        index = {entry["name"] for entry in client.repository_index()}
        assert ".berth" not in index


def test_empty_or_missing_repository_is_live_and_ready(tmp_path: Path) -> None:
    with BerthServer.start(berth_binary(), tmp_path / "missing", tmp_path / "berth.log") as server, V2Client(
        server.base_url
    ) as client:
        assert client.get("/v2/health/ready").status_code == 200
        assert client.repository_index() == []
        assert client.get("/v2/registry/models").json() == {"models": []}


def test_without_a_store_the_registry_says_why(repo: Path, tmp_path: Path) -> None:
    with BerthServer.start(
        berth_binary(), repo, tmp_path / "berth.log", extra_args=["--registry", "none"]
    ) as server, V2Client(server.base_url) as client:
        error = assert_error(promote(client, 1), 503)
        assert "without a registry store" in error
        assert not (repo / ".berth").exists()


def test_promotion_under_load_fails_no_request(served: BerthServer, model_repository: ModelRepository) -> None:
    model = iris(model_repository, 1)
    body = model.infer_request(model.dataset.X_test[:4])
    failures: list[str] = []
    served_versions: set[str] = set()
    stop = threading.Event()

    def loop() -> None:
        with V2Client(served.base_url) as client:
            while not stop.is_set():
                response = client.infer(MODEL, body)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                else:
                    served_versions.add(response.json()["model_version"])

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        with V2Client(served.base_url) as admin:
            for cycle in range(10):
                assert promote(admin, 1 + cycle % 2).status_code == 200
                time.sleep(0.05)
            assert admin.post(f"/v2/registry/models/{MODEL}/rollback").status_code == 200
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert served_versions == {"1", "2"}


def split(client: V2Client, versions: dict[str, int], **fields: Any) -> Any:
    return client.post(f"/v2/registry/models/{MODEL}/split", {"versions": versions, **fields})


def test_a_90_10_split_lands_within_three_points_and_keys_stick(
    served: BerthServer, model_repository: ModelRepository
) -> None:
    model = iris(model_repository, 1)
    body = model.infer_request(model.dataset.X_test[:1])
    with V2Client(served.base_url) as client:
        response = split(client, {"1": 90, "2": 10}, reason="canary")
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 1
        shown = client.get(f"/v2/registry/models/{MODEL}").json()
        assert shown["splits"] == {"production": {"1": 90, "2": 10}}
        counts = {"1": 0, "2": 0}
        for _ in range(2000):
            answer = client.infer(MODEL, body)
            assert answer.status_code == 200, answer.text
            version = answer.json()["model_version"]
            assert answer.headers["Berth-Model-Version"] == version
            counts[version] += 1
        assert abs(counts["2"] / 2000 - 0.10) <= 0.03, counts
        for key in ("alice", "bob", "carol", "dave", "erin"):
            versions = {
                client.session.post(
                    f"{served.base_url}/v2/models/{MODEL}/infer", json=body, headers={"Berth-Routing-Key": key}
                ).json()["model_version"]
                for _ in range(20)
            }
            assert len(versions) == 1, (key, versions)
        # A promotion ends the split; the history shows both moves.
        assert promote(client, 2).status_code == 200
        assert client.get(f"/v2/registry/models/{MODEL}").json()["splits"] == {}
        assert {served_version(client, model_repository) for _ in range(20)} == {"2"}
        actions = [h["action"] for h in client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]]
        assert actions[-2:] == ["split", "promote"]


def test_a_rollback_after_a_canary_split_restores_the_version_alone(
    served: BerthServer, model_repository: ModelRepository
) -> None:
    model = iris(model_repository, 1)
    body = model.infer_request(model.dataset.X_test[:1])
    with V2Client(served.base_url) as client:
        assert promote(client, 2).status_code == 200  # the first promotion
        assert split(client, {"2": 90, "1": 10}, reason="canary").status_code == 200
        rollback = client.post(f"/v2/registry/models/{MODEL}/rollback", {"reason": "bad canary"})
        assert rollback.status_code == 200, rollback.text
        assert rollback.json() == {"model": MODEL, "alias": "production", "version": 2, "previous": 2}
        shown = client.get(f"/v2/registry/models/{MODEL}").json()
        assert shown["aliases"] == {"production": 2} and shown["splits"] == {}
        served_by = {infer_ok(client.infer(MODEL, body))["model_version"] for _ in range(1000)}
        assert served_by == {"2"}
        history = client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]
        moves = [(h["action"], h["to"], h["reason"]) for h in history if h["action"] != "register"]
        assert moves == [
            ("promote", 2, ""),
            ("split", 2, "1=10 2=90: canary"),
            ("rollback", 2, "bad canary"),
        ]
        # Rolling back a promotion that ended a split brings the split back.
        assert split(client, {"2": 90, "1": 10}).status_code == 200
        assert promote(client, 1).status_code == 200
        assert client.post(f"/v2/registry/models/{MODEL}/rollback").status_code == 200
        assert client.get(f"/v2/registry/models/{MODEL}").json()["splits"] == {"production": {"1": 10, "2": 90}}


def test_a_split_reaches_every_door_and_survives_a_restart(
    repo: Path, tmp_path: Path, model_repository: ModelRepository
) -> None:
    model = iris(model_repository, 1)
    x = model.dataset.X_test[:1].astype(np.float32)
    with BerthServer.start(berth_binary(), repo, tmp_path / "first.log") as server, V2Client(server.base_url) as client:
        assert split(client, {"1": 50, "2": 50}).status_code == 200
    with BerthServer.start(berth_binary(), repo, tmp_path / "second.log") as server, V2Client(
        server.base_url
    ) as client:
        assert client.get(f"/v2/registry/models/{MODEL}").json()["splits"] == {"production": {"1": 50, "2": 50}}
        seen_rows = {
            client.post(f"/v2/models/{MODEL}/infer_rows", {"instances": named_rows(model, x)}).json()["model_version"]
            for _ in range(60)
        }
        seen_tf = {
            client.post(f"/v1/models/{MODEL}:predict", {"instances": x.tolist()}).headers["Berth-Model-Version"]
            for _ in range(60)
        }
        assert seen_rows == {"1", "2"} and seen_tf == {"1", "2"}
        triton = grpcclient.InferenceServerClient(server.grpc_address())
        inputs = [grpcclient.InferInput("X", list(x.shape), "FP32")]
        inputs[0].set_data_from_numpy(x)
        seen_grpc = {triton.infer(MODEL, inputs).get_response().model_version for _ in range(60)}
        assert seen_grpc == {"1", "2"}
        sticky = {
            triton.infer(MODEL, inputs, headers={"berth-routing-key": "k-17"}).get_response().model_version
            for _ in range(20)
        }
        assert len(sticky) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"versions": {"1": 100}}, 400),
        ({"versions": {"1": 90, "9": 10}}, 404),
        ({"versions": {"1": 90, "2": 0}}, 400),
        ({"versions": {"1": 90, "02": 10}}, 400),
        ({"versions": {"1": 90, "2": "10"}}, 400),
        ({"versions": [1, 2]}, 400),
        ({"versions": {"1": 90, "2": 10}, "alias": "Bad"}, 400),
    ],
)
def test_bad_splits_are_refused_and_change_nothing(served: BerthServer, body: Any, status: int) -> None:
    with V2Client(served.base_url) as client:
        before = client.get(f"/v2/registry/models/{MODEL}/history").json()
        assert_error(client.post(f"/v2/registry/models/{MODEL}/split", body), status)
        assert client.get(f"/v2/registry/models/{MODEL}/history").json() == before


def push(client: V2Client, name: str, artifact: bytes, metadata: dict[str, Any] | None = None, query: str = "") -> Any:
    head = b"" if metadata is None else json.dumps(metadata).encode()
    headers = {"Content-Type": "application/octet-stream"}
    if metadata is not None:
        headers["Berth-Metadata-Length"] = str(len(head))
    return client.session.post(
        f"{client.base_url}/v2/registry/models/{name}/versions{query}", data=head + artifact, headers=headers
    )


def test_push_stores_a_new_version_with_its_metadata(
    served: BerthServer, repo: Path, model_repository: ModelRepository
) -> None:
    artifact = (repo / MODEL / "1" / "model.onnx").read_bytes()
    with V2Client(served.base_url) as client:
        assert promote(client, 2).status_code == 200  # production pins what serves
        metadata = {
            "metrics": {"f1": 0.91},
            "trained_at": "2026-11-01T00:00:00Z",
            "dataset": {"name": "iris", "digest": "sha256:" + "ab" * 32, "rows": 112},
        }
        response = push(client, MODEL, artifact, metadata)
        assert response.status_code == 200, response.text
        assert response.json() == {"model": MODEL, "version": 3}
        assert served_version(client, model_repository) == "2"  # not serving until promoted
        assert served_version(client, model_repository, "3") == "3"
        shown = {v["version"]: v for v in client.get(f"/v2/registry/models/{MODEL}").json()["versions"]}
        assert shown[3]["source"] == "push"
        assert shown[3]["metadata"] == metadata
        assert shown[3]["evaluations"] == []
        assert shown[3]["digest"] == "sha256:" + hashlib.sha256(artifact).hexdigest()
        assert shown[3]["created_by"] == "127.0.0.1"
        registered = [h for h in client.get(f"/v2/registry/models/{MODEL}/history").json()["history"] if h["to"] == 3]
        assert registered[0]["action"] == "register" and registered[0]["actor"] == "127.0.0.1"
        assert registered[0]["reason"] == "push"
        assert (repo / MODEL / "3" / "model.onnx").read_bytes() == artifact
        # A new model is created by its first push.
        created = push(client, "fresh_model", artifact)
        assert created.status_code == 200, created.text
        assert created.json()["version"] == 1
        assert client.get("/v2/models/fresh_model/ready").status_code == 200


def test_bad_pushes_store_nothing(served: BerthServer, repo: Path, model_repository: ModelRepository) -> None:
    other = model_repository.model("wine_scaled_logreg")  # 13 features, not iris's 4
    with V2Client(served.base_url) as client:
        before = sorted(p.name for p in (repo / MODEL).iterdir())
        error = assert_error(push(client, MODEL, b"not an onnx model"), 400)
        assert "was not stored" in error and str(repo) not in error
        assert_error(push(client, MODEL, b""), 400)
        bad_metadata = client.session.post(
            f"{served.base_url}/v2/registry/models/{MODEL}/versions",
            data=b"[1,2]" + b"x",
            headers={"Berth-Metadata-Length": "5"},
        )
        assert_error(bad_metadata, 400)
        assert_error(push(client, MODEL, b"x", query="?bogus=1"), 400)
        assert_error(push(client, "%00bad", b"x"), 400)
        # The model's config declares iris's input: the mismatch is named.
        wrong = assert_error(push(client, MODEL, other.onnx_model.SerializeToString()), 400)
        assert "was not stored" in wrong and "[-1, 13]" in wrong
        assert sorted(p.name for p in (repo / MODEL).iterdir()) == before
        # A failed first push creates no model, not even a hidden one.
        assert_error(push(client, "never_created", b"not an onnx model"), 400)
        assert not any("never_created" in p.name for p in repo.iterdir())
        assert_error(client.get("/v2/models/never_created"), 404)
        history = client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]
        assert all(h["to"] != 3 for h in history)


def shadow_counts(server: BerthServer, version: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in requests.get(f"{server.base_url}/metrics", timeout=5).text.splitlines():
        prefix = f'berth_shadow_requests_total{{model="{MODEL}",version="{version}",outcome="'
        if line.startswith(prefix):
            outcome = line[len(prefix) :].split('"', 1)[0]
            counts[outcome] = int(line.rsplit(" ", 1)[1])
    return counts


def metric(text: str, name: str) -> float:
    """The value of `name`'s series for version 1 of MODEL in a /metrics page."""
    prefix = f'{name}{{model="{MODEL}",version="1"}} '
    (line,) = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(line[len(prefix) :])


def test_shadow_traffic_is_compared_and_never_returned(
    served: BerthServer, model_repository: ModelRepository
) -> None:
    model = iris(model_repository, 1)
    body = model.infer_request(model.dataset.X_test[:5])
    with V2Client(served.base_url) as client:
        assert promote(client, 2).status_code == 200
        response = client.post(f"/v2/registry/models/{MODEL}/shadow", {"version": 1, "percent": 100})
        assert response.status_code == 200, response.text
        assert response.json() == {"model": MODEL, "version": 1, "percent": 100, "previous": None}
        before = client.get(f"/v2/registry/models/{MODEL}").json()["shadow"]
        assert before == {
            "version": 1,
            "percent": 100,
            "requests": 0,
            "agree": 0,
            "differ": 0,
            "failed": 0,
            "agreement_rate": None,
            "compared_elements": 0,
            "mean_abs_difference": None,
            "mean_latency_seconds": None,
        }
        for _ in range(50):
            assert infer_ok(client.infer(MODEL, body))["model_version"] == "2"  # the shadow never answers
        deadline = time.monotonic() + 10
        while sum(shadow_counts(served, "1").values()) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        counts = shadow_counts(served, "1")
        assert sum(counts.values()) == 50, counts
        assert counts["failed"] == 0
        # Versions 1 and 2 are different models: some answers differ.
        assert counts["differ"] > 0
        text = requests.get(f"{served.base_url}/metrics", timeout=5).text
        assert f'berth_shadow_compared_elements_total{{model="{MODEL}",version="1"}}' in text
        # The version's status shows the same comparison.
        status = client.get(f"/v2/registry/models/{MODEL}").json()["shadow"]
        assert status["version"] == 1 and status["percent"] == 100
        assert (status["requests"], status["agree"], status["differ"], status["failed"]) == (
            50,
            counts["agree"],
            counts["differ"],
            0,
        )
        assert status["agreement_rate"] == pytest.approx(counts["agree"] / 50)
        elements = int(metric(text, "berth_shadow_compared_elements_total"))
        assert status["compared_elements"] == elements > 0
        assert status["mean_abs_difference"] == pytest.approx(
            metric(text, "berth_shadow_abs_difference_sum") / elements, rel=1e-6
        )
        assert status["mean_abs_difference"] > 0
        assert status["mean_latency_seconds"] == pytest.approx(
            metric(text, "berth_shadow_duration_seconds_sum") / 50, rel=1e-3, abs=1e-9
        )
        assert status["mean_latency_seconds"] > 0

        off = client.post(f"/v2/registry/models/{MODEL}/shadow", {"percent": 0})
        assert off.status_code == 200, off.text
        assert client.get(f"/v2/registry/models/{MODEL}").json()["shadow"] is None
        infer_ok(client.infer(MODEL, body))
        assert shadow_counts(served, "1") == {}  # the series leaves with the shadow
        actions = [h["action"] for h in client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]]
        assert actions[-2:] == ["shadow", "shadow"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"version": 9, "percent": 10}, 404),
        ({"version": 1, "percent": 101}, 400),
        ({"version": 1}, 400),
        ({"percent": 10}, 400),
        ({"version": 1, "percent": 0}, 400),
        ({"version": "1", "percent": 10}, 400),
    ],
)
def test_bad_shadows_are_refused(served: BerthServer, body: Any, status: int) -> None:
    with V2Client(served.base_url) as client:
        assert_error(client.post(f"/v2/registry/models/{MODEL}/shadow", body), status)
        assert client.get(f"/v2/registry/models/{MODEL}").json()["shadow"] is None
