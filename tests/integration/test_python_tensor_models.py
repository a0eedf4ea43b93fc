"""PyTorch and TensorFlow/Keras models end to end: trained here on digits, imported, served, predicted.

Every answer the server gives is compared with the original framework's
(labels identical, probabilities and values within 1e-5).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import berth
import numpy as np
import pandas as pd
import pytest
from berth.cli import main as berth_py
from berth_server import BerthServer, berth_binary
from python_models import diabetes, write_csv
from sklearn.datasets import load_digits
from sanitizer import plain_build_only

pytestmark = plain_build_only

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    root = tmp_path_factory.mktemp("tensor_models")
    (root / "models").mkdir()
    with BerthServer.start(berth_binary(), root / "models", root / "berth.log") as server:
        yield server


def digits() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return pd.DataFrame(X / 16.0, columns=[f"p{i}" for i in range(64)]), y


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = berth_py(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def push(server: BerthServer, capsys: pytest.CaptureFixture[str], name: str, path: Path, *extra: str) -> int:
    code, out, err = run_cli(capsys, "import", str(path), "--name", name, "--url", server.base_url, *extra)
    assert code == 0, err
    return int(out.strip().splitlines()[-1])


def registered(server: BerthServer, name: str, version: int) -> dict[str, Any]:
    import requests

    model = requests.get(f"{server.base_url}/v2/registry/models/{name}", timeout=10).json()
    metadata: dict[str, Any] = next(v for v in model["versions"] if v["version"] == version)["metadata"]
    return metadata


class MLP(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(torch.nn.Module):  # type: ignore[misc]
    """[N, 1, 8, 8] images: a convolution, pooling, and a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


def trained(module: Any, X: pd.DataFrame, y: np.ndarray, shape: tuple[int, ...], steps: int = 60) -> Any:
    torch.manual_seed(0)
    for p in module.parameters():  # a fixed start: the seed above is per process, the modules are made before
        torch.nn.init.normal_(p, std=0.1)
    inputs = torch.tensor(X.to_numpy(np.float32)).reshape(-1, *shape)
    targets = torch.tensor(y)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.01)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(module(inputs), targets).backward()
        optimizer.step()
    return module.eval()


def torch_answers(module: Any, X: pd.DataFrame, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        logits = module(torch.tensor(X.to_numpy(np.float32)).reshape(-1, *shape))
    return logits.argmax(dim=1).numpy(), torch.softmax(logits, dim=1).numpy()


def assert_served_like(server: BerthServer, name: str, X: pd.DataFrame, labels: np.ndarray, probs: np.ndarray) -> None:
    for url in (server.base_url, f"grpc://{server.grpc_address()}"):
        with berth.Client(url) as client:
            prediction = client.predict(name, X)
        assert prediction.labels is not None and prediction.probabilities is not None
        np.testing.assert_array_equal(prediction.labels.reshape(-1), labels)
        np.testing.assert_allclose(prediction.probabilities, probs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_torchscript_module_imported_served_and_predicted(
    kind: str, server: BerthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = digits()
    shape = (64,) if kind == "mlp" else (1, 8, 8)
    module = trained(MLP() if kind == "mlp" else SmallCNN(), X, y, shape)
    torch.jit.script(module).save(str(tmp_path / "m.pt"))
    sample = write_csv(tmp_path / "digits.csv", X, pd.Series(y))
    example = "1,64" if kind == "mlp" else "1,1,8,8:float32"
    version = push(
        server, capsys, f"torch_{kind}", tmp_path / "m.pt", "--sample-data", str(sample), "--target", "target",
        "--example-input", example,
    )  # fmt: skip
    metadata = registered(server, f"torch_{kind}", version)
    assert metadata["framework"] == "pytorch" and metadata["task"] == "classification"
    assert metadata["lineage"]["source_format"] == "torchscript" and "torch" in metadata["lineage"]["converters"]
    assert metadata["parity"]["passed"] and metadata["parity"]["rows"] == len(X)
    assert metadata["class_labels"] == list(range(10)) and metadata["extra"]["input_shape"] == [-1, *shape]
    assert metadata["baseline"]["rows"] == len(X)
    labels, probs = torch_answers(module, X, shape)
    assert (labels == y).mean() > 0.8  # it learned something: the comparison is not between two constants
    assert_served_like(server, f"torch_{kind}", X, labels, probs)
    code, out, err = run_cli(
        capsys, "evaluate", "--url", server.base_url, f"torch_{kind}", "--data", str(sample), "--target", "target",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["metrics"]["accuracy"] == pytest.approx((labels == y).mean())


def test_pickled_module_needs_trust(server: BerthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = digits()
    module = trained(MLP(), X, y, (64,), steps=30)
    torch.save(module, tmp_path / "m.pth")  # the whole module: a pickle naming this file's MLP class
    code, _, err = run_cli(
        capsys, "import", str(tmp_path / "m.pth"), "--name", "torch_pickled", "--url", server.base_url,
        "--example-input", "1,64",
    )  # fmt: skip
    assert code == 2 and "refusing to load" in err and "outside the allow-list" in err and "--trust" in err, err
    assert "MLP" in err, err
    version = push(server, capsys, "torch_pickled", tmp_path / "m.pth", "--example-input", "1,64", "--trust")
    metadata = registered(server, "torch_pickled", version)
    assert metadata["scan"]["trusted"] is True and metadata["lineage"]["source_format"] == "torch-pickle"
    assert metadata["feature_names"] == [f"f{i}" for i in range(64)] and metadata["parity"]["rows"] == 256
    labels, probs = torch_answers(module, X, (64,))
    assert_served_like(server, "torch_pickled", X.set_axis([f"f{i}" for i in range(64)], axis=1), labels, probs)


class _Payload:
    """What a hostile torch.save archive holds: unpickling it would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def test_malicious_torch_archive_is_refused_and_nothing_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    torch.save({"weights": torch.zeros(3), "extra": _Payload(marker)}, tmp_path / "evil.pt")
    code, _, err = run_cli(capsys, "import", str(tmp_path / "evil.pt"), "--name", "e", "--repository", str(tmp_path))
    assert code == 2 and "posix.system" in err and "refusing to load" in err, err
    assert not marker.exists()


def test_torch_regressor(server: BerthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = diabetes()
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    inputs, targets = torch.tensor(X.to_numpy(np.float32)), torch.tensor(y.to_numpy(np.float32)).reshape(-1, 1)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(100):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(module(inputs), targets).backward()
        optimizer.step()
    torch.jit.trace(module.eval(), inputs[:2]).save(str(tmp_path / "r.pt"))
    sample = write_csv(tmp_path / "d.csv", X, y)
    version = push(server, capsys, "torch_reg", tmp_path / "r.pt", "--sample-data", str(sample), "--target", "target")
    assert registered(server, "torch_reg", version)["task"] == "regression"
    with torch.no_grad():
        expected = module(inputs).numpy().reshape(-1)
    with berth.Client(server.base_url) as client:
        prediction = client.predict("torch_reg", X)
    assert prediction.values is not None
    np.testing.assert_allclose(prediction.values.reshape(-1), expected, rtol=1e-5, atol=1e-5)


def test_torch_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = MLP().eval()
    torch.save(module.state_dict(), tmp_path / "weights.pt")
    repo = str(tmp_path / "repo")
    code, _, err = run_cli(capsys, "import", str(tmp_path / "weights.pt"), "--name", "w", "--repository", repo)
    assert code == 2 and "weights without the module's code" in err, err
    torch.jit.script(module).save(str(tmp_path / "m.pt"))
    code, _, err = run_cli(capsys, "import", str(tmp_path / "m.pt"), "--name", "w", "--repository", repo)
    assert code == 2 and "--example-input" in err, err
    for bad in ("64", "1,a", "1,64:int8"):
        code, _, err = run_cli(
            capsys, "import", str(tmp_path / "m.pt"), "--name", "w", "--repository", repo, "--example-input", bad
        )
        assert code == 2 and "--example-input" in err, err
    code, _, err = run_cli(
        capsys, "import", str(tmp_path / "m.pt"), "--name", "w", "--repository", repo, "--example-input", "1,63"
    )
    assert code == 2 and ("cannot export" in err or "fails on the rows" in err), err
    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = run_cli(capsys, "import", str(tmp_path / "junk.pt"), "--name", "w", "--repository", repo)
    assert code == 2 and "not a model file" in err, err
    assert not (tmp_path / "repo" / "w").exists() or not any((tmp_path / "repo" / "w").glob("[0-9]*"))


# ---------------------------------------------------------------- TensorFlow / Keras


def keras_model() -> tuple[Any, pd.DataFrame, np.ndarray]:
    keras = pytest.importorskip("keras")
    pytest.importorskip("tf2onnx")
    X, y = digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X.to_numpy(np.float32), y, epochs=3, verbose=0)
    return model, X, y


def test_keras_savedmodel_and_keras_file(
    server: BerthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, X, y = keras_model()
    model.export(str(tmp_path / "saved"), verbose=False)
    model.save(tmp_path / "m.keras")
    probs = np.asarray(model(X.to_numpy(np.float32), training=False))
    labels = probs.argmax(axis=1)
    assert (labels == y).mean() > 0.8
    sample = write_csv(tmp_path / "digits.csv", X, pd.Series(y))
    files = [("tf_saved", tmp_path / "saved", "savedmodel"), ("keras_file", tmp_path / "m.keras", "keras")]
    mlflow = tmp_path / "mlflow"  # an MLflow model directory as mlflow.tensorflow.log_model writes one
    (mlflow / "data").mkdir(parents=True)
    model.save(mlflow / "data" / "model.keras")
    (mlflow / "MLmodel").write_text(
        "run_id: r1\nflavors:\n  python_function: {loader_module: mlflow.tensorflow}\n"
        "  tensorflow: {data: data, keras_version: 3.15.1, save_format: keras}\n"
    )
    files.append(("tf_mlflow", mlflow, "mlflow:tensorflow/keras"))
    for name, path, fmt in files:
        version = push(server, capsys, name, path, "--sample-data", str(sample), "--target", "target")
        metadata = registered(server, name, version)
        assert metadata["lineage"]["source_format"] == fmt and metadata["task"] == "classification"
        assert metadata["parity"]["passed"] and "tf2onnx" in metadata["lineage"]["converters"]
        assert_served_like(server, name, X, labels, probs)


def test_keras_lambda_layer_needs_trust(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keras = pytest.importorskip("keras")
    pytest.importorskip("tf2onnx")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2.0), keras.layers.Dense(2)])
    model.save(tmp_path / "lambda.keras")
    repo = str(tmp_path / "repo")
    code, _, err = run_cli(capsys, "import", str(tmp_path / "lambda.keras"), "--name", "l", "--repository", repo)
    assert code == 2 and "refusing to load" in err and "--trust" in err, err
    code, out, err = run_cli(
        capsys, "import", str(tmp_path / "lambda.keras"), "--name", "l", "--repository", repo, "--trust"
    )
    assert code == 0, err
    metadata = json.loads((tmp_path / "repo" / "l" / out.strip().splitlines()[-1] / "metadata.json").read_text())
    assert metadata["parity"]["passed"] and metadata["framework"] == "keras"
    code, _, err = run_cli(
        capsys, "import", str(tmp_path / "lambda.keras"), "--name", "l", "--repository", repo, "--trust",
        "--example-input", "1,5",
    )  # fmt: skip
    assert code == 2 and "differs from the model's own [4]" in err, err
