"""Pickle is code, and bad input gets a clear error: berth-py exits 2 with a message naming the problem."""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import joblib
import pytest
from berth.cli import main as berth_py
from python_models import diabetes, iris, mixed_columns, write_csv
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder


class _RunsACommand:
    """Unpickling this runs `touch <marker>`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = berth_py(list(args))
    _, err = capsys.readouterr()
    return code, err


@pytest.mark.parametrize("writer", ["pickle", "joblib", "inside-a-model", "joblib-inside-a-model"])
def test_malicious_pickle_is_refused_and_nothing_runs(
    writer: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    payload: object = _RunsACommand(marker)
    if writer.endswith("inside-a-model"):  # the payload hides in a fitted estimator's attribute
        X, y = iris()
        model = LogisticRegression(max_iter=1000).fit(X, y)
        model.extra_ = payload
        payload = model
    path = tmp_path / "model.pkl"
    if writer.startswith("joblib"):
        joblib.dump(payload, path)
    else:
        with path.open("wb") as f:
            pickle.dump(payload, f)
    code, err = run_cli(capsys, "import", str(path), "--name", "m", "--repository", str(tmp_path / "repo"))
    assert code == 2
    assert "posix.system" in err and "outside the allow-list" in err and "--trust" in err, err
    # The second scanner read it too (a joblib file's arrays taken out of its opcode stream).
    assert "fickling: `from posix import system`" in err, err
    assert not marker.exists(), "the pickle's command ran"
    assert not (tmp_path / "repo" / "m" / "1").exists()


def test_allowed_globals_import_without_trust(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = iris()
    model = LogisticRegression(max_iter=1000).fit(X, y)
    for protocol in (2, 4, 5):
        path = tmp_path / f"m{protocol}.pkl"
        with path.open("wb") as f:
            pickle.dump(model, f, protocol=protocol)
        code, err = run_cli(capsys, "import", str(path), "--name", "m", "--repository", str(tmp_path / "repo"))
        assert code == 0, err
    joblib.dump(model, tmp_path / "m.joblib.gz", compress=("gzip", 3))
    code, err = run_cli(
        capsys, "import", str(tmp_path / "m.joblib.gz"), "--name", "m", "--repository", str(tmp_path / "repo")
    )
    assert code == 0, err


@pytest.mark.parametrize("compress", [0, 3])
def test_both_scanners_read_a_fitted_joblib_file(
    compress: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every fitted scikit-learn joblib holds numpy arrays written between its opcodes: fickling reads it too."""
    X, y = diabetes()
    Xm, ym = mixed_columns()
    models = {
        "ridge": Ridge().fit(X, y),
        # OneHotEncoder's categories are object arrays: joblib writes them as nested pickles.
        "onehot": make_pipeline(
            ColumnTransformer([("c", OneHotEncoder(), ["colour"])], remainder="passthrough"),
            LogisticRegression(max_iter=1000),
        ).fit(Xm, ym),
    }
    for name, model in models.items():
        joblib.dump(model, tmp_path / f"{name}.joblib", compress=compress)
        code, err = run_cli(capsys, "import", str(tmp_path / f"{name}.joblib"), "--name", name,
                            "--repository", str(tmp_path / "repo"))  # fmt: skip
        assert code == 0, err
        metadata = json.loads((tmp_path / "repo" / name / "1" / "metadata.json").read_text())
        assert metadata["scan"]["scanner"] == "berth-allowlist+fickling", metadata["scan"]
        assert metadata["scan"]["findings"] == []
        assert metadata["lineage"]["source_format"] == "joblib"
        assert "joblib.numpy_pickle.NumpyArrayWrapper" in metadata["scan"]["globals"]


def test_skops_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    skops_io = pytest.importorskip("skops.io")
    X, y = iris()
    skops_io.dump(LogisticRegression(max_iter=1000).fit(X, y), tmp_path / "m.skops")
    code, err = run_cli(
        capsys, "import", str(tmp_path / "m.skops"), "--name", "m", "--repository", str(tmp_path / "repo")
    )
    assert code == 0, err


@pytest.fixture
def iris_model(tmp_path: Path) -> Path:
    X, y = iris()
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), tmp_path / "m.joblib")
    write_csv(tmp_path / "train.csv", X, y)
    return tmp_path / "m.joblib"


def test_not_a_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.bin").write_bytes(b"hello, this is not a model\n")
    (tmp_path / "numbers.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    (tmp_path / "empty.pkl").write_bytes(b"")
    (tmp_path / "truncated.pkl").write_bytes(pickle.dumps(LogisticRegression())[:40])
    import zipfile

    with zipfile.ZipFile(tmp_path / "archive.zip", "w") as archive:
        archive.writestr("readme.txt", "a zip, not a model")
    for name in ("notes.bin", "numbers.pkl", "empty.pkl", "truncated.pkl", "missing.pkl", "archive.zip"):
        code, err = run_cli(capsys, "import", str(tmp_path / name), "--name", "m", "--repository", str(tmp_path))
        assert code == 2, (name, err)
        assert err.startswith("berth-py: error: ") and "Traceback" not in err
        assert "not a model" in err or "does not exist" in err, err


def test_wrong_target_column(iris_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(
        capsys,
        "import",
        str(iris_model),
        "--name",
        "m",
        "--repository",
        str(iris_model.parent / "r"),
        "--sample-data",
        str(iris_model.parent / "train.csv"),
        "--target",
        "label",
    )
    assert code == 2 and "target column 'label' is not in" in err and "sepal_length_cm" in err, err


def test_evaluate_bad_inputs(iris_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before anything is sent, so no server is needed: the URL is never reached."""
    url = "http://127.0.0.1:9"
    (tmp_path / "header_only.csv").write_text("a,b,target\n")
    code, err = run_cli(
        capsys, "evaluate", "--url", url, "m", "--data", str(tmp_path / "header_only.csv"), "--target", "target"
    )
    assert code == 2 and "has no rows" in err, err
    (tmp_path / "empty.csv").write_text("")
    code, err = run_cli(
        capsys, "evaluate", "--url", url, "m", "--data", str(tmp_path / "empty.csv"), "--target", "target"
    )
    assert code == 2 and "is empty" in err, err
    code, err = run_cli(
        capsys, "evaluate", "--url", url, "m", "--data", str(tmp_path / "train.csv"), "--target", "nope"
    )
    assert code == 2 and "target column 'nope'" in err, err


def test_mismatched_schema(iris_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = iris()
    write_csv(tmp_path / "narrow.csv", X.iloc[:, :3], y)
    code, err = run_cli(
        capsys,
        "import",
        str(iris_model),
        "--name",
        "m",
        "--repository",
        str(tmp_path / "r"),
        "--sample-data",
        str(tmp_path / "narrow.csv"),
        "--target",
        "target",
    )
    assert code == 2 and "lacks the model's feature column(s) petal_width_cm" in err, err
    joblib.dump(LogisticRegression(max_iter=1000).fit(X.to_numpy(), y), tmp_path / "unnamed.joblib")
    code, err = run_cli(capsys, "import", str(tmp_path / "unnamed.joblib"), "--name", "m", "--repository",
                        str(tmp_path / "r"), "--sample-data", str(tmp_path / "narrow.csv"), "--target", "target")  # fmt: skip
    assert code == 2 and "takes 4 features" in err and "has 3 columns besides the target" in err, err


def test_mlflow_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = iris()
    sk = tmp_path / "sk"
    sk.mkdir()
    with (sk / "model.pkl").open("wb") as f:
        pickle.dump(LogisticRegression(max_iter=1000).fit(X, y), f)
    (sk / "MLmodel").write_text(
        "artifact_path: model\nrun_id: abc123\nflavors:\n"
        "  python_function: {loader_module: mlflow.sklearn, model_path: model.pkl}\n"
        "  sklearn: {pickled_model: model.pkl, serialization_format: cloudpickle, sklearn_version: 1.7.2}\n"
    )
    code, err = run_cli(capsys, "import", str(sk), "--name", "m", "--repository", str(tmp_path / "repo"))
    assert code == 0, err
    pyfunc = tmp_path / "pyfunc"
    pyfunc.mkdir()
    (pyfunc / "MLmodel").write_text("flavors:\n  python_function: {loader_module: my_package.model}\n")
    code, err = run_cli(capsys, "import", str(pyfunc), "--name", "m", "--repository", str(tmp_path / "repo"))
    assert code == 2 and "Python runtime" in err and "my_package.model" in err, err


@pytest.mark.parametrize("missing", ["tensorflow", "tf2onnx", "torch"])
def test_frameworks_missing(
    missing: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where set-up could not install a framework, its files are refused saying so (a None module fails to import)."""
    monkeypatch.setitem(sys.modules, missing, None)
    name = "model.pt" if missing == "torch" else "model.keras"
    (tmp_path / name).write_bytes(b"PK\x03\x04")
    code, err = run_cli(capsys, "import", str(tmp_path / name), "--name", "m", "--repository", str(tmp_path))
    expected = "torch is not installed" if missing == "torch" else "TensorFlow is not installed"
    assert code == 2 and expected in err and "scripts/setup.sh installs" in err, err
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    if missing != "torch":
        code, err = run_cli(capsys, "import", str(saved), "--name", "m", "--repository", str(tmp_path))
        assert code == 2 and expected in err, err


def test_the_scanner_survives_mangled_pickles(tmp_path: Path) -> None:
    """Hostile bytes: every mutation of a model pickle is either scanned or refused with BerthError."""
    import random

    from berth.errors import BerthError
    from berth.pickle_scan import scan_bytes

    X, y = iris()
    marker = tmp_path / "pwned"
    model = LogisticRegression(max_iter=1000).fit(X, y)
    model.extra_ = _RunsACommand(marker)
    seeds = [pickle.dumps(model, protocol=p) for p in (0, 2, 4, 5)]
    for compress in (0, ("zlib", 3)):
        joblib.dump(model, tmp_path / "seed.joblib", compress=compress)
        seeds.append((tmp_path / "seed.joblib").read_bytes())
    rng = random.Random(0)
    for i in range(400):
        data = bytearray(seeds[i % len(seeds)])
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(data))
            data[position] = rng.randrange(256)
        if rng.random() < 0.2:
            del data[rng.randrange(len(data)) :]
        try:
            scan_bytes(bytes(data), tmp_path / "mangled.pkl")
        except BerthError:
            pass
    assert not marker.exists()


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("sklearn.linear_model._logistic.LogisticRegression", True),
        ("numpy._core.multiarray._reconstruct", True),
        ("numpy.log1p", True),  # a ufunc, as FunctionTransformer keeps it
        ("xgboost.sklearn.XGBClassifier", True),
        ("os.system", False),
        ("posix.system", False),
        ("builtins.eval", False),
        ("builtins.getattr", False),
        ("numpy.load", False),  # a function that reads files (and pickles)
        ("sklearn.datasets._openml.fetch_openml", False),  # the network
        ("xgboost.tracker.RabitTracker", False),  # opens a socket when constructed
        ("sklearn.utils.validation.check_array", False),  # a function, not a class
    ],
)
def test_allow_list(name: str, allowed: bool) -> None:
    from berth.pickle_scan import is_allowed

    assert is_allowed(name) is allowed


def test_concurrent_repository_imports_get_distinct_versions(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from berth.importer import write_repository_version

    def write(i: int) -> int:
        version, _ = write_repository_version(tmp_path, "m", f"artifact {i}".encode(), {"description": str(i)})
        return version

    with ThreadPoolExecutor(max_workers=4) as pool:
        versions = sorted(pool.map(write, range(24)))
    assert versions == list(range(1, 25))
    contents = {(tmp_path / "m" / str(v) / "model.onnx").read_bytes() for v in versions}
    assert len(contents) == 24  # no version overwritten
    assert [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".")] == []  # no staging left
