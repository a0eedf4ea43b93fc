"""The Python runtime (`backend: python`) end to end, with the real server:
a scikit-learn pipeline whose custom transformer skl2onnx cannot convert is
served from a trusted pickle and answers exactly as the Python object does,
through REST JSON, REST binary and gRPC; an untrusted pickle is refused at
load; a worker that crashes or hangs is replaced and the next request
succeeds; a model.py serves through its load()/predict() contract; and no
worker outlives its version or its server."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import berth_server
import custom_transformers
from berth_server import REPO_ROOT, BerthServer, berth_binary
from python_models import iris
from v2 import assert_error, infer_path

HERE: Final = Path(__file__).resolve().parent
TIMEOUT_MS: Final = 2000
# The worker must import this tree's berth package.
WORKER_ENV: Final = {"PYTHONPATH": str(REPO_ROOT / "python" / "src")}

MODEL_PY: Final = '''
import numpy as np

class Model:
    inputs = [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    outputs = [{"name": "length", "datatype": "INT64", "shape": [-1]},
               {"name": "upper", "datatype": "BYTES", "shape": [-1]}]

    def load(self, model_dir):
        with open(model_dir + "/suffix.txt") as f:
            self.suffix = f.read()

    def predict(self, inputs):
        words = [w.decode() for w in inputs["text"]]
        return {"length": np.array([len(w) for w in words], dtype=np.int64),
                "upper": np.array([(w.upper() + self.suffix).encode() for w in words], dtype=object)}
'''


def _config(name: str, trust: bool, extra: str = "") -> str:
    return f"""name: {name}
backend: python
{"trust: true" if trust else ""}
python:
  model_file: model.pkl
  timeout_ms: {TIMEOUT_MS}
inputs:
  - {{name: X, datatype: FP64, shape: [-1, 4]}}
outputs:
  - {{name: label, datatype: INT64, shape: [-1]}}
  - {{name: probabilities, datatype: FP64, shape: [-1, 3]}}
{extra}"""


def _write_pickle_model(root: Path, name: str, pipeline: Any, trust: bool, extra: str = "") -> None:
    version = root / name / "1"
    version.mkdir(parents=True)
    (root / name / "config.yaml").write_text(_config(name, trust, extra))
    with (version / "model.pkl").open("wb") as f:
        pickle.dump(pipeline, f)
    # The custom transformer's module ships with the pickle.
    shutil.copy(HERE / "custom_transformers.py", version / "custom_transformers.py")


@pytest.fixture(scope="module")
def pipeline() -> Any:
    X, y = iris()
    model = make_pipeline(custom_transformers.RatioFeatures(), StandardScaler(), LogisticRegression(max_iter=500))
    return model.fit(X.to_numpy(), y.to_numpy())


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory, pipeline: Any) -> Path:
    root = tmp_path_factory.mktemp("python_runtime")
    _write_pickle_model(root, "custom", pipeline, trust=True)
    _write_pickle_model(root, "untrusted", pipeline, trust=False)
    _write_pickle_model(
        root, "pair", pipeline, trust=True,
        extra="instance_count: 2\nmax_batch_size: 64\ndynamic_batching: {max_queue_delay_microseconds: 2000}\n",
    )  # fmt: skip
    text = root / "text" / "1"
    text.mkdir(parents=True)
    (root / "text" / "config.yaml").write_text("backend: python\npython: {model_file: model.py}\n")
    (text / "model.py").write_text(MODEL_PY)
    (text / "suffix.txt").write_text("!")
    pyfunc = root / "pyfunc" / "1"
    pyfunc.mkdir(parents=True)
    (pyfunc / "MLmodel").write_text("flavors:\n  python_function:\n    python_model: python_model.pkl\n")
    (root / "pyfunc" / "config.yaml").write_text(
        "backend: python\ntrust: true\npython: {model_file: MLmodel}\n"
        "inputs: [{name: X, datatype: FP64, shape: [-1, 4]}]\noutputs: [{name: y, datatype: FP64, shape: [-1]}]\n"
    )
    return root


def _start(repository: Path, log: Path) -> BerthServer:
    """The server on `repository`, waited for while its workers import scikit-learn (slow on a busy machine)."""
    saved = berth_server.STARTUP_TIMEOUT_S
    berth_server.STARTUP_TIMEOUT_S = 180.0  # type: ignore[misc]
    try:
        return BerthServer.start(
            berth_binary(), repository, log, extra_args=["--python", sys.executable, "--strict-readiness", "false"],
            env=WORKER_ENV,
        )  # fmt: skip
    finally:
        berth_server.STARTUP_TIMEOUT_S = saved  # type: ignore[misc]


@pytest.fixture(scope="module")
def server(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    with _start(repository, tmp_path_factory.mktemp("python_runtime_log") / "berth.log") as server:
        yield server


def _rows() -> np.ndarray:
    X, _ = iris()
    return X.to_numpy()[::15].astype(np.float64)


def _infer_json(server: BerthServer, model: str, x: np.ndarray) -> requests.Response:
    body = {"inputs": [{"name": "X", "datatype": "FP64", "shape": list(x.shape), "data": x.ravel().tolist()}]}
    return requests.post(server.base_url + infer_path(model), json=body, timeout=60)


def _outputs(response: requests.Response) -> dict[str, np.ndarray]:
    assert response.status_code == 200, response.text
    return {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in response.json()["outputs"]}


def _worker_pids(server: BerthServer, model: str) -> list[int]:
    return [int(p) for p in re.findall(rf"started a Python worker.*model={model}/\d+.*pid=(\d+)", server.log())]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead: it only waits to be reaped.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def _wait_dead(pids: list[int], seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def test_skl2onnx_cannot_convert_the_pipeline(pipeline: Any) -> None:
    from skl2onnx import to_onnx

    with pytest.raises(Exception, match=r"(?i)unable to find a shape calculator|RatioFeatures"):
        to_onnx(pipeline, _rows()[:1])


def test_predictions_equal_the_python_object_through_rest_json(server: BerthServer, pipeline: Any) -> None:
    x = _rows()
    out = _outputs(_infer_json(server, "custom", x))
    np.testing.assert_array_equal(out["label"], pipeline.predict(x))
    np.testing.assert_allclose(out["probabilities"], pipeline.predict_proba(x), rtol=0, atol=1e-12)


def test_predictions_through_rest_binary(server: BerthServer, pipeline: Any) -> None:
    x = _rows()
    header = json.dumps({
        "inputs": [{"name": "X", "datatype": "FP64", "shape": list(x.shape), "parameters": {"binary_data_size": x.nbytes}}],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
    }).encode()  # fmt: skip
    response = requests.post(
        server.base_url + infer_path("custom"), data=header + x.tobytes(), timeout=60,
        headers={"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    head_length = int(response.headers["Inference-Header-Content-Length"])
    raw = response.content[head_length:]
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<f8").reshape(-1, 3), pipeline.predict_proba(x))


def test_predictions_through_grpc(server: BerthServer, pipeline: Any) -> None:
    x = _rows()
    with grpcclient.InferenceServerClient(server.grpc_address()) as client:
        inp = grpcclient.InferInput("X", list(x.shape), "FP64")
        inp.set_data_from_numpy(x)
        result = client.infer("custom", [inp])
        np.testing.assert_array_equal(result.as_numpy("label"), pipeline.predict(x))
        np.testing.assert_array_equal(result.as_numpy("probabilities"), pipeline.predict_proba(x))
        bad = grpcclient.InferInput("X", [1, 4], "FP64")
        bad.set_data_from_numpy(np.full((1, 4), -6000.0))
        with pytest.raises(Exception, match="below -5000") as error:
            client.infer("custom", [bad])
        assert "INVALID_ARGUMENT" in str(error.value) or error.value.status() == "StatusCode.INVALID_ARGUMENT"


def test_an_untrusted_pickle_is_refused_at_load(server: BerthServer) -> None:
    index = requests.post(server.base_url + "/v2/repository/index", timeout=10).json()
    entry = next(e for e in index if e["name"] == "untrusted")
    assert entry["state"] == "UNAVAILABLE"
    assert "trust: true" in entry["reason"] and "pickle" in entry["reason"], entry
    response = _infer_json(server, "untrusted", _rows())
    assert "trust: true" in assert_error(response, response.status_code)
    assert response.status_code in (400, 503), response.text


def test_an_mlflow_model_needs_mlflow_in_the_workers_interpreter(server: BerthServer) -> None:
    try:
        import mlflow  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("mlflow is installed here: the refusal cannot be seen")
    index = requests.post(server.base_url + "/v2/repository/index", timeout=10).json()
    entry = next(e for e in index if e["name"] == "pyfunc")
    assert entry["state"] == "UNAVAILABLE"
    assert "install mlflow in the worker's interpreter" in entry["reason"], entry


def test_bad_inputs_get_clear_errors(server: BerthServer) -> None:
    # Refused by the server against the declared signature, before the worker.
    wrong_width = {"inputs": [{"name": "X", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}]}
    message = assert_error(requests.post(server.base_url + infer_path("custom"), json=wrong_width, timeout=10), 400)
    assert "shape" in message
    wrong_type = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    assert_error(requests.post(server.base_url + infer_path("custom"), json=wrong_type, timeout=10), 400)
    # Refused by the model's own code (a ValueError): 400, and the worker lives on.
    message = assert_error(_infer_json(server, "custom", np.full((1, 4), -6000.0)), 400)
    assert "below -5000" in message
    assert _infer_json(server, "custom", _rows()).status_code == 200


def test_a_crashing_worker_is_restarted(server: BerthServer, pipeline: Any) -> None:
    before = _worker_pids(server, "custom")
    crash = _rows()[:2].copy()
    crash[1, 0] = custom_transformers.CRASH
    message = assert_error(_infer_json(server, "custom", crash), 500)
    assert "exited with code 3" in message and "restarted" in message
    x = _rows()
    np.testing.assert_array_equal(_outputs(_infer_json(server, "custom", x))["label"], pipeline.predict(x))
    after = _worker_pids(server, "custom")
    assert len(after) == len(before) + 1
    assert not _alive(before[-1])
    metrics = requests.get(server.base_url + "/metrics", timeout=10).text
    assert 'berth_python_worker_restarts_total{model="custom",reason="crash"} 1' in metrics


def test_a_hanging_worker_is_cut_off_at_its_time_limit(server: BerthServer, pipeline: Any) -> None:
    before = _worker_pids(server, "custom")
    hang = _rows()[:1].copy()
    hang[0, 0] = custom_transformers.HANG
    message = assert_error(_infer_json(server, "custom", hang), 504)
    assert f"{TIMEOUT_MS} ms" in message and "python.timeout_ms" in message
    assert _wait_dead([before[-1]]) == []
    metrics = requests.get(server.base_url + "/metrics", timeout=10).text
    assert 'berth_python_worker_restarts_total{model="custom",reason="timeout"} 1' in metrics
    x = _rows()
    np.testing.assert_array_equal(_outputs(_infer_json(server, "custom", x))["label"], pipeline.predict(x))
    with grpcclient.InferenceServerClient(server.grpc_address()) as client:
        inp = grpcclient.InferInput("X", [1, 4], "FP64")
        inp.set_data_from_numpy(hang)
        with pytest.raises(Exception, match="python.timeout_ms") as error:
            client.infer("custom", [inp])
        assert "DEADLINE_EXCEEDED" in str(error.value.status())
    np.testing.assert_array_equal(_outputs(_infer_json(server, "custom", x))["label"], pipeline.predict(x))


def test_instance_count_workers_serve_batches_concurrently(server: BerthServer, pipeline: Any) -> None:
    """Two workers take the dynamic batcher's batches; every request gets its own rows' answers."""
    from concurrent.futures import ThreadPoolExecutor

    assert len(_worker_pids(server, "pair")) == 2
    rows = _rows()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: (i, _outputs(_infer_json(server, "pair", rows[i % 10 : i % 10 + 1 + i % 3]))), range(32)))
    for i, out in results:
        x = rows[i % 10 : i % 10 + 1 + i % 3]
        np.testing.assert_array_equal(out["label"], pipeline.predict(x))
        np.testing.assert_allclose(out["probabilities"], pipeline.predict_proba(x), rtol=0, atol=1e-12)


def test_model_py_contract_with_bytes(server: BerthServer) -> None:
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["ab", "xyz"]}]}
    response = requests.post(server.base_url + infer_path("text"), json=body, timeout=60)
    out = {o["name"]: o for o in response.json()["outputs"]} if response.status_code == 200 else response.text
    assert isinstance(out, dict), out
    assert out["length"]["data"] == [2, 3]
    assert out["upper"]["data"] == ["AB!", "XYZ!"]
    metadata = requests.get(server.base_url + "/v2/models/text", timeout=10).json()
    assert metadata["platform"] == "python"
    assert [i["name"] for i in metadata["inputs"]] == ["text"]


def test_unload_stops_the_workers(server: BerthServer) -> None:
    pids = _worker_pids(server, "text")
    assert pids
    response = requests.post(server.base_url + "/v2/repository/models/text/unload", timeout=30)
    assert response.status_code == 200, response.text
    assert _wait_dead(pids) == []


def test_no_worker_outlives_its_server(repository: Path, tmp_path: Path) -> None:
    for how in (signal.SIGTERM, signal.SIGKILL):
        log = tmp_path / f"berth-{how}.log"
        server = _start(repository, log)
        pids = [int(p) for p in re.findall(r"started a Python worker.*pid=(\d+)", server.log())]
        assert len(pids) >= 3
        server.process.send_signal(how)
        server.process.wait(timeout=30)
        assert _wait_dead(pids) == [], f"workers left after {how!r}"
