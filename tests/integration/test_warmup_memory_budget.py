"""Warm-up before promotion and --memory-budget (issue #7, scope 5).

Every version runs a warm-up request before it is published; a version that
fails it is never switched to. A load that would not fit --memory-budget is
refused with a clear error (REST 507, gRPC RESOURCE_EXHAUSTED) and what is
serving stays. Real binary, real SQLite store.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
import requests
import tritonclient.grpc as grpcclient
import yaml
from tritonclient.utils import InferenceServerException

from berth_server import BerthServer, berth_binary
from models import ALL_VERSIONS_MODEL, ModelRepository, model_config
from train_models import TrainedModel, export_model
from v2 import V2Client, assert_error, infer_ok

MODEL: Final = "churn"
# One iris row, as the model's one input [-1, 4] takes it.
IRIS_ROW: Final = [5.1, 3.5, 1.4, 0.2]


def iris(model_repository: ModelRepository, version: int) -> TrainedModel:
    return model_repository.model(ALL_VERSIONS_MODEL, version)


def write_repo(model_repository: ModelRepository, root: Path, policy: dict[str, Any]) -> Path:
    """Versions 1 and 2 (different models) of MODEL under `policy`."""
    for version in (1, 2):
        model = iris(model_repository, version)
        export_model(model, root, version=version, config=model_config(model, name=MODEL, version_policy=policy))
    return root


def set_warmup(root: Path, warmup: dict[str, Any]) -> None:
    path = root / MODEL / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["warmup"] = warmup
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def input_name(root: Path) -> str:
    """The model's one input (X for the iris models)."""
    config = yaml.safe_load((root / MODEL / "config.yaml").read_text())
    name: str = config["inputs"][0]["name"]
    return name


def served_version(client: V2Client, model_repository: ModelRepository) -> str:
    model = iris(model_repository, 1)
    body = infer_ok(client.infer(MODEL, model.infer_request(model.dataset.X_test[:2])))
    version: str = body["model_version"]
    return version


def metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert match, f"no {name}{labels} in /metrics"
    return float(match.group(1))


def test_a_config_warmup_runs_and_the_version_serves(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    root = write_repo(model_repository, tmp_path / "repo", {"latest": 1})
    name = input_name(root)
    set_warmup(root, {"count": 3, "inputs": [{"name": name, "datatype": "FP32", "shape": [1, 4], "data": IRIS_ROW}]})
    with BerthServer.start(berth_binary(), root, tmp_path / "berth.log") as server, V2Client(server.base_url) as client:
        assert client.get(f"/v2/models/{MODEL}/ready").status_code == 200
        assert served_version(client, model_repository) == "2"


def test_a_version_failing_its_warmup_is_never_promoted(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    root = write_repo(model_repository, tmp_path / "repo", {"all": True})
    with BerthServer.start(berth_binary(), root, tmp_path / "berth.log") as server, V2Client(server.base_url) as client:
        promoted = client.post(f"/v2/registry/models/{MODEL}/promote", {"version": 1})
        assert promoted.status_code == 200, promoted.text
        # A warm-up input of the wrong shape: every version loaded under this
        # config fails it.
        set_warmup(root, {"inputs": [{"name": input_name(root), "datatype": "FP32", "shape": [1, 3]}]})
        for action, body in (
            ("promote", {"version": 2}),
            ("split", {"versions": {"1": 90, "2": 10}}),
            ("shadow", {"version": 2, "percent": 20}),
        ):
            message = assert_error(client.post(f"/v2/registry/models/{MODEL}/{action}", body), 400)
            # A split names the first of its versions that failed.
            which = 1 if action == "split" else 2
            assert message.startswith(f"version {which} of model '{MODEL}' failed its warm-up request: "), message
            assert "input 'X' has shape [1, 3], expected [-1, 4]" in message, message
            assert "unchanged" in message, message
        shown = client.get(f"/v2/registry/models/{MODEL}").json()
        assert shown["aliases"] == {"production": 1}
        assert shown.get("shadow") is None
        assert served_version(client, model_repository) == "1"
        # The change that went nowhere is not in the audit history.
        history = client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]
        assert [entry["action"] for entry in history if entry["action"] != "register"] == ["promote"]


def test_a_model_whose_warmup_fails_at_start_is_unavailable_with_the_reason(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    root = write_repo(model_repository, tmp_path / "repo", {"latest": 1})
    set_warmup(root, {"inputs": [{"name": "nonexistent", "datatype": "FP32", "shape": [1, 4]}]})
    with BerthServer.start(
        berth_binary(), root, tmp_path / "berth.log", extra_args=["--strict-readiness", "false"]
    ) as server, V2Client(server.base_url) as client:
        assert client.get(f"/v2/models/{MODEL}/ready").status_code != 200
        message = assert_error(client.infer(MODEL, iris(model_repository, 1).infer_request(
            iris(model_repository, 1).dataset.X_test[:1])), 503)
        assert "failed its warm-up request" in message and "nonexistent" in message, message


def test_a_bad_warmup_config_is_refused_with_the_field(model_repository: ModelRepository, tmp_path: Path) -> None:
    root = write_repo(model_repository, tmp_path / "repo", {"latest": 1})
    set_warmup(root, {"count": 2, "requests": 3})
    with BerthServer.start(
        berth_binary(), root, tmp_path / "berth.log", extra_args=["--strict-readiness", "false"]
    ) as server, V2Client(server.base_url) as client:
        index = client.post("/v2/repository/index", {}).json()
        (entry,) = [e for e in index if e["name"] == MODEL]
        assert "unknown field 'requests' in warmup (allowed: count, inputs)" in entry["reason"], entry


def test_a_promotion_over_the_memory_budget_is_refused_and_serving_goes_on(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    root = write_repo(model_repository, tmp_path / "repo", {"latest": 1})
    size_1 = (root / MODEL / "1" / "model.onnx").stat().st_size
    size_2 = (root / MODEL / "2" / "model.onnx").stat().st_size
    # Exactly what version 2 is estimated to need (factor 2): it loads, then
    # holds what its load measured, at least its artifact's bytes, so that
    # less than version 1's estimate is left.
    assert 2 * size_1 > size_2
    budget = 2 * size_2
    with BerthServer.start(
        berth_binary(), root, tmp_path / "berth.log", extra_args=["--memory-budget", str(budget)]
    ) as server, V2Client(server.base_url) as client:
        assert served_version(client, model_repository) == "2"
        metrics = client.get("/metrics").text
        assert metric(metrics, "berth_memory_budget_bytes") == budget
        reserved = metric(metrics, "berth_memory_reserved_bytes")
        # Measured: may exceed the estimate the budget admitted it on.
        assert reserved >= size_2
        assert metric(metrics, "berth_model_memory_bytes", f'{{model="{MODEL}",version="2"}}') == reserved
        (shown,) = client.get(f"/v2/registry/models/{MODEL}").json()["versions"]
        assert shown["memory_bytes"] == reserved

        message = assert_error(client.post(f"/v2/registry/models/{MODEL}/promote", {"version": 1}), 507)
        assert message.startswith(f"version 1 of model '{MODEL}' needs "), message
        assert "memory budget is free" in message and "alias 'production' is unchanged" in message, message
        assert client.get(f"/v2/registry/models/{MODEL}").json()["aliases"] == {}
        assert served_version(client, model_repository) == "2"
        assert metric(client.get("/metrics").text, "berth_memory_reserved_bytes") == reserved
        assert server.process.poll() is None


def test_loads_over_the_memory_budget_answer_507_and_resource_exhausted(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    root = write_repo(model_repository, tmp_path / "repo", {"latest": 1})
    with BerthServer.start(
        berth_binary(), root, tmp_path / "berth.log",
        extra_args=["--memory-budget", "1K", "--strict-readiness", "false"],
    ) as server, V2Client(server.base_url) as client:
        assert client.get("/v2/health/live").status_code == 200
        message = assert_error(client.post(f"/v2/repository/models/{MODEL}/load", {}), 507)
        assert f"version 2 of model '{MODEL}' needs" in message and "1.0 KiB memory budget" in message, message
        triton = grpcclient.InferenceServerClient(server.grpc_address())
        with pytest.raises(InferenceServerException) as raised:
            triton.load_model(MODEL)
        assert "RESOURCE_EXHAUSTED" in str(raised.value.status()), raised.value
        assert "memory budget" in str(raised.value.message())
        metrics = client.get("/metrics").text
        assert metric(metrics, "berth_memory_budget_bytes") == 1024
        assert metric(metrics, "berth_memory_reserved_bytes") == 0
        push = requests.post(
            f"{server.base_url}/v2/registry/models/{MODEL}/versions",
            data=(root / MODEL / "1" / "model.onnx").read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
            timeout=30,
        )
        message = assert_error(push, 507)
        assert message.startswith(f"version 3 of model '{MODEL}' was not stored: "), message
        assert not (root / MODEL / "3").exists()


@pytest.mark.parametrize("value", ["", "12X", "-1", "1.5", "99999999999999999999"])
def test_a_bad_memory_budget_flag_is_refused(tmp_path: Path, value: str) -> None:
    done = subprocess.run(
        [str(berth_binary()), "serve", "--model-repository", str(tmp_path), "--memory-budget", value],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2, done
    assert "--memory-budget" in done.stderr and "is not a size" in done.stderr, done.stderr
