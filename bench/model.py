"""The benchmarked model: iris logistic regression, as ONNX for Berth and as a pickle for the peers.

Training and conversion reuse examples/train_models.py (the same code that
makes the example models), so the benchmark serves exactly what users get.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "examples"))

import train_models  # noqa: E402  (examples/ is not a package)

MODEL_NAME: Final = train_models.IRIS_LOGREG.name
# Explicit, whatever the example default becomes: one ONNX Runtime thread.
VERSIONS: Final = (1, 2)
BULK_ROWS: Final = 1000
BULK_NAME: Final = f"{MODEL_NAME}_rows"
ONNXRUNTIME_OPTIONS: Final = {"intra_op_threads": 1, "inter_op_threads": 1, "graph_optimization_level": "all"}


@dataclass(frozen=True)
class BenchModel:
    """Everything the servers and the load generators need about the model."""

    name: str
    repository: Path  # a Berth model repository holding only this model, as VERSIONS
    onnx_path: Path
    pickle_path: Path  # the fitted scikit-learn estimator
    row: tuple[float, ...]  # the one input row every request carries
    expected_label: int
    expected_probabilities: tuple[float, ...]
    bulk_name: str  # the same artifact with max_batch_size BULK_ROWS, for the 1,000-row rows (bench/bulk.py)
    bulk_rows: np.ndarray  # BULK_ROWS x 4 float32, the rows those requests carry
    rest_body: bytes  # the v2 JSON request body
    rest_response: bytes  # a v2 JSON response for that row, for the static (nginx) floor
    grpc_body: dict[str, Any]  # the ModelInferRequest as protobuf JSON, for ghz


def prepare(workdir: Path) -> BenchModel:
    """Train, convert and check the model; write the repository and the pickle under `workdir`."""
    trained = train_models.train(train_models.IRIS_LOGREG)
    # Versions 1 and 2 hold the same artifact, both loaded, so that Berth's
    # infer-by-alias and infer-by-split rows run the same model as infer-by-number.
    config = dataclasses.replace(
        train_models.model_config(trained, version_policy={"all": True}), onnxruntime_options=ONNXRUNTIME_OPTIONS
    )
    repository = workdir / "model_repository"
    for version in VERSIONS:
        model_dir = train_models.export_model(trained, repository, version=version, config=config)

    # The 1,000-row requests (JSON, binary extension, system shared memory)
    # need a max_batch_size that admits them: the same artifact under its own name.
    train_models.export_model(
        trained, repository, version=1,
        config=dataclasses.replace(config, name=BULK_NAME, max_batch_size=BULK_ROWS,
                                   version_policy={"latest": 1}),
    )  # fmt: skip
    test_rows = np.asarray(trained.feeds(trained.dataset.X_test)["X"], dtype=np.float32)
    bulk_rows = np.resize(test_rows, (BULK_ROWS, test_rows.shape[1])).astype(np.float32)

    pickle_path = workdir / "peers" / "model.pkl"
    pickle_path.parent.mkdir(parents=True, exist_ok=True)
    with pickle_path.open("wb") as file:
        # Protocol 4: at 5, numpy 2 pickles arrays through numpy._core.numeric, which the
        # peers' numpy 1.26 lacks; at 4 it uses numpy._core.multiarray, which 1.26 aliases.
        pickle.dump(trained.estimator, file, protocol=4)

    X = trained.dataset.X_test[:1]
    reference = trained.onnxruntime_outputs(X)
    label = int(reference["label"][0])
    probabilities = tuple(_float32_short(p) for p in reference["probabilities"][0])
    row = tuple(_float32_short(v) for v in trained.feeds(X)["X"][0])
    response = {
        "model_name": MODEL_NAME,
        "model_version": "1",
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [1], "data": [label]},
            {"name": "probabilities", "datatype": "FP32", "shape": [1, 3], "data": list(probabilities)},
        ],
    }
    grpc_body = {
        "model_name": MODEL_NAME,
        "inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "contents": {"fp32_contents": list(row)}}],
    }
    return BenchModel(
        name=MODEL_NAME,
        repository=repository,
        onnx_path=model_dir / "1" / "model.onnx",
        pickle_path=pickle_path,
        row=row,
        expected_label=label,
        expected_probabilities=probabilities,
        bulk_name=BULK_NAME,
        bulk_rows=bulk_rows,
        rest_body=_compact_json(
            {"inputs": [{"name": "X", "shape": [1, len(row)], "datatype": "FP32", "data": list(row)}]}
        ),
        rest_response=_compact_json(response),
        grpc_body=grpc_body,
    )


def _float32_short(value: Any) -> float:
    """The float whose repr is the shortest spelling of float32 `value` ("5.1", not "5.099999904632568").

    That is how a client types the row and how a C++ server writes float32
    outputs; parsed back to float32 it is the same value.
    """
    return float(str(np.float32(value)))


def _compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
