"""`berth-py optimize --quantize dynamic-int8`: a new version, gated by parity and a holdout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
import requests
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import berth
from berth.cli import main as berth_py
from berth_server import BerthServer, berth_binary
from python_models import breast_cancer, write_csv


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    root = tmp_path_factory.mktemp("python_optimize")
    (root / "models").mkdir()
    with BerthServer.start(berth_binary(), root / "models", root / "berth.log") as server:
        yield server


def test_quantized_version_is_registered_when_it_keeps_parity(
    server: BerthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = breast_cancer()
    model = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=300, random_state=0)
    ).fit(X, y)
    joblib.dump(model, tmp_path / "mlp.joblib")
    sample = write_csv(tmp_path / "train.csv", X, y)
    assert (
        berth_py(
            [
                "import",
                str(tmp_path / "mlp.joblib"),
                "--name",
                "mlp",
                "--url",
                server.base_url,
                "--sample-data",
                str(sample),
                "--target",
                "target",
            ]
        )
        == 0
    )
    capsys.readouterr()
    artifact = server.log_path.parent / "models" / "mlp" / "1" / "model.onnx"
    args = ["optimize", "--url", server.base_url, "mlp", "1", "--quantize", "dynamic-int8"]

    # Another model's file: refused, nothing pushed.
    (tmp_path / "other.onnx").write_bytes(artifact.read_bytes() + b"\0")
    assert berth_py([*args, "--artifact", str(tmp_path / "other.onnx")]) == 2
    assert "is not version 1's" in capsys.readouterr().err
    # A gate that cannot hold: refused (the artifact fetched from the server).
    assert berth_py([*args, "--tolerance", "1e-12", "--min-label-agreement", "1"]) == 2
    assert "was not registered" in capsys.readouterr().err

    # The form, the artifact fetched from the registry.
    code = berth_py(
        [
            *args,
            "--sample-data",
            str(tmp_path / "train.csv"),
            "--data",
            str(sample),
            "--target",
            "target",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "2"
    versions = requests.get(f"{server.base_url}/v2/registry/models/mlp", timeout=10).json()["versions"]
    metadata = next(v for v in versions if v["version"] == 2)["metadata"]
    assert metadata["extra"]["optimized_from"]["size_after"] < metadata["extra"]["optimized_from"]["size_before"]
    assert metadata["parity"]["passed"] and metadata["metrics"]["accuracy"] > 0.9
    assert metadata["lineage"]["parent_version"] == 1
    assert metadata["baseline"]["format"] == "berth-baseline/1"  # kept from version 1
    # Version 2 serves now (the default policy keeps the latest); it is close to the original model.
    after = berth.Client(server.base_url).predict("mlp", X, version=2)
    assert after.labels is not None and after.probabilities is not None
    assert np.mean(after.labels == model.predict(X)) >= 0.99
    assert np.abs(after.probabilities - model.predict_proba(X)).max() <= 0.05
    assert json.dumps(metadata)  # stored as JSON the registry hands back


def trained_mlp(tmp_path: Path) -> Path:
    X, y = breast_cancer()
    model = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=300, random_state=0)
    ).fit(X, y)
    joblib.dump(model, tmp_path / "mlp.joblib")
    write_csv(tmp_path / "train.csv", X, y)
    return tmp_path / "mlp.joblib"


def test_the_plain_form_checks_parity_on_rows_like_the_baseline(
    server: BerthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --sample-data: the parity rows come from version 1's stored baseline, not from the signature.

    Rows around 0 in the raw feature space sit far outside breast_cancer's
    ranges (areas in the hundreds), where the scaled MLP saturates and int8
    rounding flips labels: such a check refused a quantization that is sound
    on real data.
    """
    path = trained_mlp(tmp_path)
    imported = berth_py(["import", str(path), "--name", "mlp_plain", "--url", server.base_url,
                         "--sample-data", str(tmp_path / "train.csv"), "--target", "target"])  # fmt: skip
    assert imported == 0
    capsys.readouterr()

    code = berth_py(["optimize", "--url", server.base_url, "mlp_plain", "1", "--quantize", "dynamic-int8"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "parity rows: 256 rows drawn from version 1's baseline profile" in out
    assert out.strip().splitlines()[-1] == "2"
    versions = requests.get(f"{server.base_url}/v2/registry/models/mlp_plain", timeout=10).json()["versions"]
    metadata = next(v for v in versions if v["version"] == 2)["metadata"]
    assert metadata["parity"]["passed"] and metadata["parity"]["rows"] == 256
    assert "baseline profile" in metadata["extra"]["optimized_from"]["parity_rows"]

    # The gate still refuses what it should on those rows.
    code = berth_py(["optimize", "--url", server.base_url, "mlp_plain", "1", "--quantize", "dynamic-int8",
                     "--tolerance", "1e-12", "--min-label-agreement", "1"])  # fmt: skip
    assert code == 2
    assert "was not registered" in (err := capsys.readouterr().err) and "baseline profile" in err, err


def test_without_a_baseline_the_rows_come_from_the_signature_and_the_output_says_so(
    server: BerthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = trained_mlp(tmp_path)
    assert berth_py(["import", str(path), "--name", "mlp_bare", "--url", server.base_url]) == 0
    capsys.readouterr()
    code = berth_py(["optimize", "--url", server.base_url, "mlp_bare", "1", "--quantize", "dynamic-int8"])
    out, err = capsys.readouterr()
    assert "rows generated from the signature (version 1 has no baseline profile" in out + err, (out, err)
