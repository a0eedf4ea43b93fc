"""KServe (issue #11, item 3): deploy/kserve's ClusterServingRuntime and
InferenceService validated against KServe's own CRD schemas (the
github.com/kserve/kserve module's config/crd/full, with the API server's
validator in deploy/validate), and `berth serve` run with the runtime's own
arguments on the layouts KServe's storage initializer leaves in /mnt/models.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
import requests
import yaml

from berth_server import HOST, REPO_ROOT, BerthServer, berth_binary, free_port
from deploy_tools import DeployTools, deploy_tools
from models import IRIS_MODEL, ModelRepository

KSERVE: Final = REPO_ROOT / "deploy" / "kserve"
RUNTIME: Final = KSERVE / "cluster-serving-runtime.yaml"
INFERENCE_SERVICE: Final = KSERVE / "inference-service.yaml"
IRIS_ROW: Final = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def tools() -> DeployTools:
    return deploy_tools()


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def test_manifests_match_kserves_crds(tools: DeployTools) -> None:
    checked = tools.check(RUNTIME, INFERENCE_SERVICE, crds=True)
    assert checked.returncode == 0, checked.stderr
    assert "2 manifests checked, 0 invalid" in checked.stdout


@pytest.mark.parametrize(
    ("good", "bad", "expected"),
    [
        ("protocolVersions:", "protocolVersion:", 'unknown field "spec.protocolVersion"'),
        ("autoSelect: true", 'autoSelect: "yes"', "must be of type boolean"),
        ("      runtime: kserve-berth", "      runtme: kserve-berth", 'unknown field "spec.predictor.model.runtme"'),
    ],
)
def test_a_misspelt_kserve_manifest_is_refused(
    tools: DeployTools, tmp_path: Path, good: str, bad: str, expected: str
) -> None:
    source = RUNTIME if good in RUNTIME.read_text() else INFERENCE_SERVICE
    broken = tmp_path / "broken.yaml"
    broken.write_text(source.read_text().replace(good, bad, 1))
    checked = tools.check(broken, crds=True)
    assert checked.returncode == 1, f"{bad} was accepted"
    assert expected in checked.stderr


def test_runtime_declares_formats_protocols_and_prometheus() -> None:
    spec = load(RUNTIME)["spec"]
    assert {f["name"] for f in spec["supportedModelFormats"]} == {"onnx", "sklearn"}
    assert spec["protocolVersions"] == ["v2", "grpc-v2"]
    assert spec["annotations"]["prometheus.kserve.io/path"] == "/metrics"
    args = spec["containers"][0]["args"]
    assert "--model-repository=/mnt/models" in args and "--model-name={{.Name}}" in args
    port = next(a for a in args if a.startswith("--http-port=")).split("=")[1]
    assert spec["annotations"]["prometheus.kserve.io/port"] == port
    service = load(INFERENCE_SERVICE)
    assert service["spec"]["predictor"]["model"]["runtime"] == load(RUNTIME)["metadata"]["name"]


def runtime_args(mnt_models: Path, name: str, http_port: int) -> list[str]:
    """The runtime's container args as KServe fills them in, on this machine's paths and ports."""
    args = []
    for arg in load(RUNTIME)["spec"]["containers"][0]["args"]:
        arg = arg.replace("{{.Name}}", name).replace("/mnt/models", str(mnt_models))
        if arg.startswith("--host="):
            arg = f"--host={HOST}"
        elif arg.startswith("--http-port="):
            arg = f"--http-port={http_port}"
        elif arg.startswith("--grpc-port="):
            arg = "--grpc-port=0"
        args.append(arg)
    return args


def serve(mnt_models: Path, name: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = tmp_path / "berth.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(berth_binary()), "serve", *runtime_args(mnt_models, name, port)], stdout=out, stderr=subprocess.STDOUT
        )
    return process, f"http://{HOST}:{port}", log


def read_only(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def assert_serves(process: subprocess.Popen[bytes], url: str, log: Path, name: str) -> None:
    server = BerthServer(process, int(url.rsplit(":", 1)[1]), log)
    try:
        server._wait_until_loaded()
        assert requests.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
        assert requests.get(f"{url}/v2/models/{name}", timeout=5).json()["name"] == name
        body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": IRIS_ROW}]}
        answer = requests.post(f"{url}/v2/models/{name}/infer", json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_name"] == name
    finally:
        assert server.stop() == 0, log.read_text()


def test_serves_a_lone_model_onnx_under_the_inference_services_name(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    mnt_models = tmp_path / "mnt" / "models"
    mnt_models.mkdir(parents=True)
    shutil.copy(model_repository.root / IRIS_MODEL / "1" / "model.onnx", mnt_models / "model.onnx")
    read_only(mnt_models)  # KServe mounts it read-only in the serving container
    try:
        assert_serves(*serve(mnt_models, "iris-isvc", tmp_path), "iris-isvc")
        assert sorted(os.listdir(mnt_models)) == ["model.onnx"], "berth wrote into /mnt/models"
    finally:
        mnt_models.chmod(0o755)


def test_serves_a_model_directory_with_config_and_versions(model_repository: ModelRepository, tmp_path: Path) -> None:
    mnt_models = tmp_path / "mnt" / "models"
    shutil.copytree(model_repository.root / IRIS_MODEL, mnt_models)
    config = mnt_models / "config.yaml"
    # The directory was the model IRIS_MODEL; under KServe it is named after the InferenceService.
    config.write_text("\n".join(l for l in config.read_text().splitlines() if not l.startswith("name:")) + "\n")
    assert_serves(*serve(mnt_models, "iris", tmp_path), "iris")


def test_a_layout_it_cannot_serve_is_a_clear_start_up_error(tmp_path: Path) -> None:
    mnt_models = tmp_path / "mnt" / "models"
    mnt_models.mkdir(parents=True)
    (mnt_models / "README").write_text("no model here")
    process, _, log = serve(mnt_models, "iris", tmp_path)
    assert process.wait(timeout=30) == 1
    assert "exactly one .onnx file (found 0)" in log.read_text()
    bad_name = subprocess.run(
        [str(berth_binary()), "serve", "--model-repository", str(mnt_models), "--model-name", "../x"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert bad_name.returncode == 2
    assert "--model-name" in bad_name.stderr
