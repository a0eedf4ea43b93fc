"""The KServe Python SDK's v2 clients (InferenceRESTClient, InferenceGRPCClient)
against Berth, unchanged. They run in a process of their own; see
kserve_client_run.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from berth_server import BerthServer
from models import PARITY_MODELS, ModelRepository, assert_outputs_match, graph_outputs
from v2 import as_text

RUNNER = Path(__file__).with_name("kserve_client_run.py")


def run_kserve(protocol: str, url: str, model: str, inputs: dict[str, np.ndarray], tmp: Path) -> dict[str, np.ndarray]:
    inputs_path, outputs_path = tmp / "inputs.npz", tmp / "outputs.npz"
    np.savez(inputs_path, **inputs, allow_pickle=True)
    done = subprocess.run(
        [sys.executable, str(RUNNER), protocol, url, model, str(inputs_path), str(outputs_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with np.load(outputs_path, allow_pickle=True) as npz:
        return {name: npz[name] for name in npz.files}


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
@pytest.mark.parametrize("name", PARITY_MODELS)
def test_kserve_client_matches_sklearn(
    server: BerthServer,
    grpc_address: str,
    model_repository: ModelRepository,
    tmp_path: Path,
    protocol: str,
    name: str,
) -> None:
    model = model_repository.model(name)
    X = model.dataset.X_test
    url = server.base_url if protocol == "rest" else grpc_address
    outputs = run_kserve(protocol, url, name, model.feeds(X), tmp_path)
    assert str(outputs.pop("__id__")) == f"kserve-{name}"
    assert set(outputs) == {spec.name for spec in graph_outputs(model.onnx_model)}
    assert_outputs_match(model.sklearn_outputs(X), {k: as_text(v) for k, v in outputs.items()})
