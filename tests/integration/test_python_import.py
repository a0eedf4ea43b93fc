"""The `berth` package end to end: import → register → serve through build/berth → predict with the client.

Models are trained here on scikit-learn's bundled data sets; every answer the
server gives is compared with the original framework's (labels identical,
values within 1e-5).
"""

from __future__ import annotations

import asyncio
import json
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import berth
import joblib
import numpy as np
import pandas as pd
import pytest
import requests
from berth.cli import main as berth_py
from berth_server import BerthServer, berth_binary
from python_models import breast_cancer, diabetes, iris, mixed_columns, rows_near_thresholds, write_csv
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    """Berth on an empty repository with its default SQLite registry: imports push to it."""
    root = tmp_path_factory.mktemp("python_import")
    (root / "models").mkdir()
    with BerthServer.start(berth_binary(), root / "models", root / "berth.log") as server:
        yield server


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = berth_py(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_matches(original: Any, X: Any, prediction: berth.Prediction) -> None:
    if hasattr(original, "predict_proba"):
        assert prediction.labels is not None and prediction.probabilities is not None
        np.testing.assert_array_equal(prediction.labels.reshape(-1), original.predict(X))
        np.testing.assert_allclose(prediction.probabilities, original.predict_proba(X), rtol=1e-5, atol=1e-5)
    else:
        assert prediction.values is not None
        np.testing.assert_allclose(prediction.values.reshape(-1), original.predict(X), rtol=1e-5, atol=1e-5)


def registered(server: BerthServer, name: str, version: int) -> dict[str, Any]:
    model = requests.get(f"{server.base_url}/v2/registry/models/{name}", timeout=10).json()
    entry = next(v for v in model["versions"] if v["version"] == version)
    metadata: dict[str, Any] = entry["metadata"]
    return metadata


CASES = {
    "iris_logreg": (iris, lambda: LogisticRegression(max_iter=1000)),
    "cancer_scaled_forest": (
        breast_cancer,
        lambda: make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0)),
    ),
    "diabetes_gbr": (diabetes, lambda: GradientBoostingRegressor(n_estimators=50, random_state=0)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_import_push_and_predict_over_rest_grpc_and_async(
    name: str, server: BerthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load, make = CASES[name]
    X, y = load()
    model = make().fit(X, y)
    joblib.dump(model, tmp_path / "model.joblib")
    sample = write_csv(tmp_path / "train.csv", X, y)

    code, out, err = run_cli(
        capsys,
        "import",
        str(tmp_path / "model.joblib"),
        "--name",
        name,
        "--url",
        server.base_url,
        "--sample-data",
        str(sample),
        "--target",
        "target",
    )
    assert code == 0, err
    version = int(out.strip().splitlines()[-1])  # the registered version, on the last line
    assert version == 1

    client = berth.Client(server.base_url)
    assert_matches(model, X, client.predict(name, X, version=version))
    assert_matches(model, X.head(5), client.predict(name, X.head(5).to_dict("records")))
    assert_matches(model, X.head(7), client.predict(name, X.head(7).to_numpy()))
    # A DataFrame's columns are put in the order the version recorded.
    assert_matches(model, X.head(8), client.predict(name, X.head(8)[list(reversed(X.columns))]))
    grpc = berth.Client(f"grpc://{server.grpc_address()}")
    assert_matches(model, X.head(9), grpc.predict(name, X.head(9)))

    async def async_predict() -> berth.Prediction:
        async with berth.AsyncClient(server.base_url) as async_client:
            return await async_client.predict(name, X.head(11)[list(reversed(X.columns))])

    assert_matches(model, X.head(11), asyncio.run(async_predict()))

    metadata = registered(server, name, version)
    assert metadata["parity"]["passed"] is True and metadata["parity"]["label_agreement"] == 1.0
    assert metadata["scan"]["trusted"] is False and metadata["scan"]["findings"] == []
    assert metadata["scan"]["scanner"] == "berth-allowlist+fickling"  # both scanners read the joblib file
    assert metadata["lineage"]["source_format"] == "joblib"
    assert metadata["lineage"]["source_digest"].startswith("sha256:")
    assert metadata["dataset"]["rows"] == len(X)
    assert metadata["feature_names"] == list(X.columns)
    assert metadata["baseline"]["format"] == "berth-baseline/1"


def test_column_transformer_with_string_columns(
    server: BerthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = mixed_columns()
    numeric = [c for c in X.columns if c != "colour"]
    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["colour"])]),
        LogisticRegression(max_iter=1000),
    ).fit(X, y)
    with (tmp_path / "model.pkl").open("wb") as f:
        pickle.dump(model, f, protocol=2)  # a plain pickle, not joblib; only allowed globals
    sample = write_csv(tmp_path / "train.csv", X, y)
    code, out, err = run_cli(
        capsys,
        "import",
        str(tmp_path / "model.pkl"),
        "--name",
        "mixed",
        "--url",
        server.base_url,
        "--sample-data",
        str(sample),
        "--target",
        "target",
    )
    assert code == 0, err
    metadata_inputs = berth.Client(server.base_url).model_metadata("mixed")["inputs"]
    assert {i["name"]: i["datatype"] for i in metadata_inputs}["colour"] == "BYTES"
    client = berth.Client(server.base_url)
    assert_matches(model, X, client.predict("mixed", X))
    assert_matches(model, X.head(3), client.predict("mixed", X.head(3).to_dict("records")))
    assert_matches(model, X.head(6), berth.Client(f"grpc://{server.grpc_address()}").predict("mixed", X.head(6)))
    baseline = registered(server, "mixed", int(out.split()[-1]))["baseline"]
    colour = next(f for f in baseline["features"] if f["name"] == "colour")
    assert colour["kind"] == "categorical" and colour["input"] == "colour" and colour["column"] == 0
    assert sum(colour["frequencies"].values()) == len(X)


def test_baseline_profile_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = iris()
    model = LogisticRegression(max_iter=1000).fit(X, y)
    joblib.dump(model, tmp_path / "m.joblib")
    sample = write_csv(tmp_path / "train.csv", X, y)
    code, _, err = run_cli(
        capsys,
        "import",
        str(tmp_path / "m.joblib"),
        "--name",
        "iris",
        "--repository",
        str(tmp_path / "repo"),
        "--sample-data",
        str(sample),
        "--target",
        "target",
    )
    assert code == 0, err
    metadata = json.loads((tmp_path / "repo" / "iris" / "1" / "metadata.json").read_text())
    assert (tmp_path / "repo" / "iris" / "1" / "model.onnx").is_file()
    assert (tmp_path / "repo" / "iris" / "config.yaml").is_file()
    profile = metadata["baseline"]
    assert profile["rows"] == len(X)
    for i, feature in enumerate(profile["features"]):
        assert feature["name"] == X.columns[i] and feature["input"] == "X" and feature["column"] == i
        assert feature["kind"] == "numeric" and feature["count"] == len(X) and feature["missing"] == 0
        assert len(feature["quantiles"]) == 101
        assert feature["quantiles"][0] == feature["min"] and feature["quantiles"][100] == feature["max"]
        assert len(feature["bins"]) == len(feature["counts"]) + 1 and sum(feature["counts"]) == len(X)
        assert feature["bins"] == sorted(set(feature["bins"]))
        assert feature["mean"] == pytest.approx(X.iloc[:, i].mean())
        assert feature["std"] == pytest.approx(X.iloc[:, i].std(ddof=0))
    prediction = profile["prediction"]
    assert prediction["output"] == "label" and prediction["kind"] == "categorical"
    assert prediction["frequencies"] == {str(k): int(v) for k, v in pd.Series(model.predict(X)).value_counts().items()}
    # The directory serves, and the registry takes its metadata.json as the version's (the schema holds).
    with BerthServer.start(berth_binary(), tmp_path / "repo", tmp_path / "berth.log") as served:
        assert registered(served, "iris", 1) == metadata
        assert_matches(model, X, berth.Client(served.base_url).predict("iris", X))


def test_scaler_in_front_of_trees_keeps_parity_near_thresholds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """onnxruntime#4130 and skl2onnx#1183: neither all-float32 nor all-float64 reproduces these rows."""
    X, y = breast_cancer()
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0)).fit(
        X, y
    )
    joblib.dump(model, tmp_path / "m.joblib")
    rows = rows_near_thresholds(model, X, scaler=model.steps[0][1])
    sample = write_csv(tmp_path / "rows.csv", rows, None)
    repo = tmp_path / "repo"
    for precision in ("float32", "float64"):
        code, _, err = run_cli(
            capsys,
            "import",
            str(tmp_path / "m.joblib"),
            "--name",
            "c",
            "--repository",
            str(repo),
            "--sample-data",
            str(sample),
            "--precision",
            precision,
        )
        assert code == 2 and "parity failed, so nothing was registered" in err, err
    assert not (repo / "c" / "1").exists()
    code, _out, err = run_cli(
        capsys,
        "import",
        str(tmp_path / "m.joblib"),
        "--name",
        "c",
        "--repository",
        str(repo),
        "--sample-data",
        str(sample),
    )
    assert code == 0, err
    metadata = json.loads((repo / "c" / "1" / "metadata.json").read_text())
    assert metadata["parity"]["passed"] and metadata["extra"]["inputs"][0]["kind"] == "float64-float32"


def test_trees_fed_doubles_are_converted_in_float32(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """skl2onnx#1183: a forest compares float32; an all-double graph splits rows on a threshold differently."""
    X, y = breast_cancer()
    model = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(X, y)
    joblib.dump(model, tmp_path / "m.joblib")
    sample = write_csv(tmp_path / "rows.csv", rows_near_thresholds(model, X), None)
    args = [
        "import",
        str(tmp_path / "m.joblib"),
        "--name",
        "f",
        "--repository",
        str(tmp_path / "repo"),
        "--sample-data",
        str(sample),
    ]
    code, _, err = run_cli(capsys, *args, "--precision", "float64")
    assert code == 2 and "parity failed" in err
    code, _, err = run_cli(capsys, *args, "--precision", "float64", "--force")
    assert code == 0, err
    forced = json.loads((tmp_path / "repo" / "f" / "1" / "metadata.json").read_text())
    assert forced["parity"]["passed"] is False  # the figures are stored with a forced version
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    assert json.loads((tmp_path / "repo" / "f" / "2" / "metadata.json").read_text())["parity"]["passed"]


def test_evaluate_through_the_server(server: BerthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = iris()
    model = LogisticRegression(max_iter=1000).fit(X, y)
    joblib.dump(model, tmp_path / "m.joblib")
    code, out, err = run_cli(
        capsys, "import", str(tmp_path / "m.joblib"), "--name", "iris_eval", "--url", server.base_url
    )
    assert code == 0, err
    holdout = write_csv(tmp_path / "holdout.csv", X, y, target="species")
    code, out, err = run_cli(
        capsys,
        "evaluate",
        "--url",
        server.base_url,
        "iris_eval:1",
        "--data",
        str(holdout),
        "--target",
        "species",
        "--json",
        "--store",
    )
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    stored = next(
        v
        for v in requests.get(f"{server.base_url}/v2/registry/models/iris_eval", timeout=10).json()["versions"]
        if v["version"] == 1
    )["evaluations"]
    assert [e["evaluation"]["metrics"] for e in stored] == [result["metrics"]]
    assert stored[0]["evaluation"]["rows"] == len(X)

    # A holdout whose columns do not fit the served model: a clear error, nothing stored.
    narrow = write_csv(tmp_path / "narrow.csv", X.iloc[:, :3], y, target="species")
    code, _, err = run_cli(capsys, "evaluate", "--url", server.base_url, "iris_eval", "--data", str(narrow),
                           "--target", "species", "--store")  # fmt: skip
    assert code == 2 and "the data lacks petal_width_cm" in err, err
    code, _, err = run_cli(capsys, "evaluate", "--url", server.base_url, "no_such_model", "--data", str(holdout),
                           "--target", "species")  # fmt: skip
    assert code == 2 and "404" in err and "no_such_model" in err, err
    from sklearn.metrics import accuracy_score, log_loss

    assert result["metrics"]["accuracy"] == pytest.approx(accuracy_score(y, model.predict(X)))
    assert result["metrics"]["log_loss"] == pytest.approx(log_loss(y, model.predict_proba(X)), rel=1e-4)
    assert set(result["metrics"]) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    assert result["rows"] == len(X) and result["dataset"]["digest"].startswith("sha256:")


def test_cross_validation_on_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = diabetes()
    joblib.dump(GradientBoostingRegressor(n_estimators=20, random_state=0).fit(X, y), tmp_path / "m.joblib")
    sample = write_csv(tmp_path / "train.csv", X, y)
    code, _out, err = run_cli(
        capsys,
        "import",
        str(tmp_path / "m.joblib"),
        "--name",
        "d",
        "--repository",
        str(tmp_path / "repo"),
        "--sample-data",
        str(sample),
        "--target",
        "target",
        "--cv",
        "3",
    )
    assert code == 0, err
    metrics = json.loads((tmp_path / "repo" / "d" / "1" / "metadata.json").read_text())["metrics"]
    assert set(metrics) >= {"cv_rmse", "cv_mae", "cv_r2", "cv_r2_std"} and metrics["cv_rmse"] > 0


def test_the_installed_command_prints_the_version_last(tmp_path: Path) -> None:
    X, y = iris()
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), tmp_path / "m.joblib")
    for expected in (1, 2):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "berth.cli",
                "import",
                str(tmp_path / "m.joblib"),
                "--name",
                "iris",
                "--repository",
                str(tmp_path / "repo"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == str(expected)
        assert "\r" not in done.stderr  # no progress bar in a pipe


def test_an_onnx_file_is_registered_as_it_is(server: BerthServer, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from skl2onnx import to_onnx

    X, y = iris()
    model = LogisticRegression(max_iter=1000).fit(X.to_numpy(np.float32), y)
    onnx_model = to_onnx(model, X.to_numpy(np.float32)[:1], options={id(model): {"zipmap": False}})
    (tmp_path / "m.onnx").write_bytes(onnx_model.SerializeToString())
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07not a graph")
    sample = write_csv(tmp_path / "train.csv", X, y)
    code, _, err = run_cli(capsys, "import", str(tmp_path / "broken.onnx"), "--name", "onnx_in", "--url",
                           server.base_url)  # fmt: skip
    assert code == 2 and "not a valid ONNX model" in err, err
    code, out, err = run_cli(capsys, "import", str(tmp_path / "m.onnx"), "--name", "onnx_in", "--url",
                             server.base_url, "--sample-data", str(sample), "--target", "target")  # fmt: skip
    assert code == 0, err
    metadata = registered(server, "onnx_in", int(out.split()[-1]))
    assert metadata["lineage"]["source_format"] == "onnx" and "parity" not in metadata
    assert metadata["feature_names"] == list(X.columns) and metadata["baseline"]["rows"] == len(X)
    assert_matches(model, X.to_numpy(np.float32), berth.Client(server.base_url).predict("onnx_in", X))
