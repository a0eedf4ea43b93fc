"""Version metadata as a checked schema (issue #7 item 2): what a push or a
directory's metadata.json may record, refused field by field when wrong, and
evaluations recorded beside an immutable version afterwards."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from berth_server import BerthServer, berth_binary
from models import ModelRepository, model_config
from test_registry import MODEL, iris, push
from train_models import export_model
from v2 import V2Client, assert_error

DIGEST: Final = "sha256:" + "0123456789abcdef" * 4
METADATA: Final[dict[str, Any]] = {
    "description": "churn, weekly retrain",
    "tags": {"team": "growth"},
    "task": "classification",
    "framework": "scikit-learn",
    "estimator": "LogisticRegression",
    "trained_at": "2026-11-30T08:00:00Z",
    "dataset": {"name": "churn-2026-11", "digest": DIGEST, "uri": "s3://data/churn.parquet", "rows": 112},
    "feature_names": ["a", "b", "c", "d"],
    "class_labels": [0, 1, 2],
    "metrics": {"accuracy": 0.96, "f1": 0.95, "roc_auc": 0.99, "log_loss": 0.12},
    "parity": {"rows": 38, "label_agreement": 1.0, "max_abs_diff": 2e-7, "max_rel_diff": 1e-6, "tolerance": 1e-5, "passed": True},
    "lineage": {"source_digest": DIGEST, "source_format": "joblib", "converters": {"skl2onnx": "1.20.0"}},
    "extra": {"notebook": "churn.ipynb"},
}


@pytest.fixture
def repo(model_repository: ModelRepository, tmp_path: Path) -> Path:
    """Version 1 with a good metadata.json, version 2 with one the schema refuses."""
    root = tmp_path / "repo"
    for version in (1, 2):
        model = iris(model_repository, version)
        export_model(model, root, version=version, config=model_config(model, name=MODEL, version_policy={"all": True}))
    (root / MODEL / "1" / "metadata.json").write_text(json.dumps(METADATA, indent=2))
    (root / MODEL / "2" / "metadata.json").write_text(json.dumps({"accuracy": 0.9}))
    return root


@pytest.fixture
def served(repo: Path, tmp_path: Path) -> Iterator[BerthServer]:
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server:
        yield server


def versions(client: V2Client) -> dict[int, Any]:
    return {v["version"]: v for v in client.get(f"/v2/registry/models/{MODEL}").json()["versions"]}


def test_a_directorys_metadata_json_is_registered_and_a_bad_one_is_named_in_the_log(
    served: BerthServer, tmp_path: Path
) -> None:
    with V2Client(served.base_url) as client:
        shown = versions(client)
    assert sorted(shown) == [1, 2], shown
    assert shown[1]["signature"] == {
        "inputs": [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ],
    }
    assert shown[1]["metadata"] == METADATA
    assert shown[2]["metadata"] == {}
    log = (tmp_path / "berth.log").read_text()
    assert "ignoring a version's metadata.json" in log
    assert "metadata has an unknown field 'accuracy'" in log


def test_the_example_models_metadata_fits_the_schema(model_repository: ModelRepository, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    model = iris(model_repository, 1)
    export_model(model, root, version=1, config=model_config(model, name=MODEL))
    with BerthServer.start(berth_binary(), root, tmp_path / "berth.log") as server, V2Client(server.base_url) as client:
        metadata = versions(client)[1]["metadata"]
    assert metadata["dataset"]["rows"] == len(model.dataset.X_train)
    assert metadata["metrics"]["accuracy"] > 0.8 and metadata["task"] == "classification"
    assert "ignoring" not in (tmp_path / "berth.log").read_text()


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"f1": 0.9}, "metadata has an unknown field 'f1'"),
        ({"metrics": {"accuracy": 97}}, "metadata.metrics.accuracy must be a number in [0, 1]"),
        ({"trained_at": "last tuesday"}, "metadata.trained_at must be an RFC 3339 time"),
        ({"dataset": {"digest": "md5:1"}}, "metadata.dataset.digest must be"),
        ({"parity": {"passed": 1}}, "metadata.parity.passed must be true or false"),
        ({"baseline": {"format": "v0"}}, "metadata.baseline.format must be"),
    ],
)
def test_a_push_with_metadata_outside_the_schema_is_refused_and_stores_nothing(
    served: BerthServer, repo: Path, metadata: dict[str, Any], message: str
) -> None:
    artifact = (repo / MODEL / "1" / "model.onnx").read_bytes()
    files_before = sorted(p.name for p in (repo / MODEL).iterdir())
    with V2Client(served.base_url) as client:
        before = client.get(f"/v2/registry/models/{MODEL}/history").json()
        assert message in assert_error(push(client, MODEL, artifact, metadata), 400)
        assert client.get(f"/v2/registry/models/{MODEL}/history").json() == before
    assert sorted(p.name for p in (repo / MODEL).iterdir()) == files_before


def test_a_push_with_the_whole_schema_is_shown_as_sent(served: BerthServer, repo: Path) -> None:
    artifact = (repo / MODEL / "1" / "model.onnx").read_bytes()
    with V2Client(served.base_url) as client:
        response = push(client, MODEL, artifact, METADATA)
        assert response.status_code == 200, response.text
        assert versions(client)[3]["metadata"] == METADATA


def evaluate(client: V2Client, version: Any, body: Any) -> Any:
    return client.post(f"/v2/registry/models/{MODEL}/versions/{version}/evaluations", body)


def test_evaluations_accumulate_beside_the_version_are_audited_and_survive_a_restart(
    repo: Path, tmp_path: Path
) -> None:
    holdout = {"metrics": {"accuracy": 0.93, "f1": 0.92}, "dataset": {"name": "holdout-12"}, "rows": 38}
    later = {"metrics": {"accuracy": 0.88}}
    with BerthServer.start(berth_binary(), repo, tmp_path / "a.log") as server, V2Client(server.base_url) as client:
        response = evaluate(client, 1, holdout)
        assert response.status_code == 200, response.text
        assert response.json() == {"model": MODEL, "version": 1}
        assert evaluate(client, 1, later).status_code == 200
        history = client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]
        evaluated = [h for h in history if h["action"] == "evaluate"]
        assert [(h["to"], h["actor"]) for h in evaluated] == [(1, "127.0.0.1"), (1, "127.0.0.1")]
    with BerthServer.start(berth_binary(), repo, tmp_path / "b.log") as server, V2Client(server.base_url) as client:
        shown = versions(client)
        assert [e["evaluation"] for e in shown[1]["evaluations"]] == [holdout, later]
        assert all(e["by"] == "127.0.0.1" and e["at"].endswith("Z") for e in shown[1]["evaluations"])
        assert shown[1]["metadata"] == METADATA  # the version itself is untouched
        assert shown[2]["evaluations"] == []


@pytest.mark.parametrize(
    ("version", "body", "status", "message"),
    [
        (1, {"rows": 3}, 400, 'evaluation needs "metrics"'),
        (1, {"metrics": {"f1": 1.2}}, 400, "evaluation.metrics.f1 must be a number in [0, 1]"),
        (1, {"metrics": {}, "at": "now"}, 400, "evaluation has an unknown field 'at'"),
        (1, [1], 400, "evaluation must be a JSON object"),
        (9, {"metrics": {}}, 404, "version 9 of model 'churn' is not registered"),
        ("x", {"metrics": {}}, 400, "version"),
    ],
)
def test_bad_evaluations_are_refused_and_record_nothing(
    served: BerthServer, version: Any, body: Any, status: int, message: str
) -> None:
    with V2Client(served.base_url) as client:
        before = client.get(f"/v2/registry/models/{MODEL}/history").json()
        assert message in assert_error(evaluate(client, version, body), status)
        assert client.get(f"/v2/registry/models/{MODEL}/history").json() == before
        bad_json = client.session.post(
            f"{served.base_url}/v2/registry/models/{MODEL}/versions/1/evaluations", data=b"{not json"
        )
        assert "evaluation is not valid JSON" in assert_error(bad_json, 400)


def test_without_a_store_evaluations_say_why(repo: Path, tmp_path: Path) -> None:
    with BerthServer.start(berth_binary(), repo, tmp_path / "b.log", extra_args=["--registry", "none"]) as server:
        with V2Client(server.base_url) as client:
            assert "without a registry store" in assert_error(evaluate(client, 1, {"metrics": {}}), 503)


def test_a_versions_artifact_is_fetched_as_registered(served: BerthServer, repo: Path) -> None:
    with V2Client(served.base_url) as client:
        fetched = client.session.get(f"{served.base_url}/v2/registry/models/{MODEL}/versions/2/artifact")
        assert fetched.status_code == 200
        assert fetched.headers["Content-Type"] == "application/octet-stream"
        assert fetched.content == (repo / MODEL / "2" / "model.onnx").read_bytes()
        assert versions(client)[2]["digest"] == "sha256:" + hashlib.sha256(fetched.content).hexdigest()
        for path, status in ((f"{MODEL}/versions/9", 404), ("nobody/versions/1", 404), (f"{MODEL}/versions/x", 400)):
            assert_error(client.session.get(f"{served.base_url}/v2/registry/models/{path}/artifact"), status)
        # Changed on disk behind the registry's back: refused, not served as the version.
        (repo / MODEL / "2" / "model.onnx").write_bytes(b"tampered")
        assert "changed on disk" in assert_error(
            client.session.get(f"{served.base_url}/v2/registry/models/{MODEL}/versions/2/artifact"), 500
        )
