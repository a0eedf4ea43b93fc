"""MLflow python_function models into the Python runtime, end to end: real pyfuncs saved by mlflow (a
scikit-learn model by mlflow.sklearn.save_model, and a custom mlflow.pyfunc.PythonModel), imported
by `berth-py import --repository DIR --trust`, or pushed to a running server by `berth-py import --url URL
--trust` (the directory with its config in one push), served by build/berth, predicted through berth.Client
over REST and gRPC: the answers equal mlflow.pyfunc.load_model(...).predict on the same rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
import yaml
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

import berth
import berth_server
from berth_server import BerthServer, berth_binary
from python_models import iris, write_csv

HERE = Path(__file__).resolve().parent
WORKER_ENV = {"PYTHONPATH": os.pathsep.join([str(HERE.parent.parent / "python" / "src"), *sys.path])}


def _import(path: Path, name: str, repository: Path | str, *flags: str) -> subprocess.CompletedProcess[str]:
    """`berth-py import` into `repository`, or to the server at `repository` when it is a URL."""
    where = ["--url", repository] if isinstance(repository, str) else ["--repository", str(repository)]
    command = [sys.executable, "-m", "berth.cli", "import", str(path), "--name", name, *where, *flags]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("mlflow")
    X, y = iris()
    model = LogisticRegression(max_iter=1000).fit(X, y)
    mlflow.sklearn.save_model(model, str(d / "sklearn"), signature=infer_signature(X, model.predict(X)))
    # No signature: the importer takes the inputs from --sample-data.
    mlflow.pyfunc.save_model(
        str(d / "custom"), python_model=mlflow_models_score(), code_paths=[str(HERE / "mlflow_models.py")]
    )
    write_csv(d / "sample.csv", X, y)
    return {"sklearn": d / "sklearn", "custom": d / "custom", "sample": d / "sample.csv"}


def mlflow_models_score() -> object:
    from mlflow_models import Score

    return Score()


@pytest.fixture(scope="module")
def repository(saved: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("repo")
    done = _import(saved["sklearn"], "mlflow_sklearn", repo, "--trust", "--python-runtime")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "1"
    done = _import(saved["custom"], "mlflow_custom", repo, "--trust", "--sample-data", str(saved["sample"]),
                   "--target", "target")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "not measured (nothing was converted" in done.stdout
    return repo


def _start(repository: Path, log: Path) -> BerthServer:
    saved_timeout = berth_server.STARTUP_TIMEOUT_S
    berth_server.STARTUP_TIMEOUT_S = 180.0  # type: ignore[misc]
    try:
        return BerthServer.start(
            berth_binary(), repository, log, extra_args=["--python", sys.executable], env=WORKER_ENV
        )  # fmt: skip
    finally:
        berth_server.STARTUP_TIMEOUT_S = saved_timeout  # type: ignore[misc]


@pytest.fixture(scope="module")
def served(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    with _start(repository, tmp_path_factory.mktemp("served") / "berth.log") as server:
        yield server


def _assert_answers_as_mlflow(server: BerthServer, name: str, saved_model: Path) -> None:
    X, _ = iris()
    rows = X.iloc[::3]
    expected = np.asarray(mlflow.pyfunc.load_model(str(saved_model)).predict(rows))
    for url in (server.base_url, f"grpc://{server.grpc_address()}"):
        with berth.Client(url) as client:
            # Columns reversed: each is its own input, matched by name.
            got = client.predict(name, rows[rows.columns[::-1]]).outputs["prediction"]
        assert got.tolist() == expected.tolist(), url


def test_the_repository_holds_the_mlflow_directory_and_a_python_config(repository: Path) -> None:
    config = yaml.safe_load((repository / "mlflow_custom" / "config.yaml").read_text())
    assert config["backend"] == "python" and config["trust"] is True
    assert config["python"] == {"model_file": "MLmodel"}
    assert [i["name"] for i in config["inputs"]] == list(iris()[0].columns)
    assert config["outputs"] == [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
    version = repository / "mlflow_custom" / "1"
    assert (version / "MLmodel").is_file() and (version / "python_model.pkl").is_file()
    assert (version / "code" / "mlflow_models.py").is_file()
    assert (version / "metadata.json").is_file()


@pytest.mark.parametrize("name", ["mlflow_sklearn", "mlflow_custom"])
def test_served_pyfunc_answers_as_mlflow_does(
    served: BerthServer, repository: Path, saved: dict[str, Path], name: str
) -> None:
    _assert_answers_as_mlflow(served, name, saved["sklearn" if name == "mlflow_sklearn" else "custom"])


def test_a_pyfunc_imported_over_url_is_pushed_with_its_config_and_answers_as_mlflow_does(
    saved: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    with _start(root, tmp_path / "berth.log") as server:
        sample = ["--sample-data", str(saved["sample"]), "--target", "target"]
        done = _import(saved["custom"], "pushed_custom", server.base_url, "--trust", *sample)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "1"
        done = _import(saved["sklearn"], "pushed_sklearn", server.base_url, "--trust", "--python-runtime")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "1"
        for name, model in (("pushed_custom", saved["custom"]), ("pushed_sklearn", saved["sklearn"])):
            _assert_answers_as_mlflow(server, name, model)
        # The server wrote the pushed config as the new model's, and recorded every file of the version.
        config = yaml.safe_load((root / "pushed_custom" / "config.yaml").read_text())
        assert config["backend"] == "python" and config["trust"] is True
        assert config["python"] == {"model_file": "MLmodel"}
        with berth.Client(server.base_url) as client:
            record = client.registry_model("pushed_custom")["versions"][0]
        assert {"MLmodel", "python_model.pkl", "code/mlflow_models.py"} <= {f["name"] for f in record["files"]}
        assert record["metadata"]["lineage"]["source_format"] == "mlflow:python_function"
        # The same import again: the same config, so a second version.
        done = _import(saved["custom"], "pushed_custom", server.base_url, "--trust", *sample)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "2"
        # Another pyfunc under that name has another signature, so another config: refused, nothing stored.
        done = _import(saved["sklearn"], "pushed_custom", server.base_url, "--trust", "--python-runtime")
        assert done.returncode != 0
        assert "the pushed config differs from model 'pushed_custom''s config" in done.stderr, done.stderr
        assert sorted(p.name for p in (root / "pushed_custom").iterdir() if p.name.isdigit()) == ["1", "2"]
        _assert_answers_as_mlflow(server, "pushed_custom", saved["custom"])


def test_a_pyfunc_over_url_needs_trust_and_nothing_is_pushed_without_it(
    saved: dict[str, Path], tmp_path: Path
) -> None:
    # Refused before anything is sent: no server listens at this URL.
    done = _import(saved["custom"], "m", "http://127.0.0.1:9", "--sample-data", str(saved["sample"]))
    assert done.returncode == 2
    assert "is a python_function model" in done.stderr and "Pass --trust" in done.stderr


def test_a_pyfunc_needs_trust_and_nothing_is_written_without_it(saved: dict[str, Path], tmp_path: Path) -> None:
    done = _import(saved["custom"], "m", tmp_path / "repo", "--sample-data", str(saved["sample"]), "--target", "target")
    assert done.returncode == 2
    assert "is a python_function model" in done.stderr and "Pass --trust" in done.stderr
    assert not (tmp_path / "repo").exists()


def test_a_pyfunc_without_a_signature_needs_sample_data(saved: dict[str, Path], tmp_path: Path) -> None:
    done = _import(saved["custom"], "m", tmp_path / "repo", "--trust")
    assert done.returncode == 2
    assert "has no column signature: give --sample-data" in done.stderr
