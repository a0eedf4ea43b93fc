"""Vertical scaling: throughput against a model's instance count, on a heavier model.

The iris model costs ONNX Runtime a microsecond, so instances cannot show
anything on it. This module trains a multi-layer perceptron (64 features,
two hidden layers of 2048, 10 classes; about 4.3 million multiply-adds a
row, so that one inference takes hundreds of microseconds and compute, not
HTTP, dominates a request) and serves it three times, as `bench_mlp_i1`,
`_i2` and `_i4`: the same artifact with dynamic batching and
`instance_count` 1, 2 and 4 (workers taking batches from the model's queue,
each running on the one thread-safe ONNX Runtime session, one intra-op
thread each). Every request carries one row.

Two servers hold the three models. The first runs on the server core like
every other row (`PINNED_ROWS`): on one core more instances cannot add
compute, only overlap a batch's queueing with another's run, so those rows
show what instances cost. The second is given every core
(`SPREAD_ROWS`, instance_count 1 and 2): there a second instance runs a
second batch on the second core, and the rows show the gain. The load
generator shares those cores, so the gain is below 2× even where compute
is everything; the server's CPU per request says how much work each row did.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import yaml

from verify import Answer, VerificationError

NAME: Final = "bench_mlp"
INSTANCES: Final = (1, 2, 4)  # the models the repository holds; the pinned server's rows
SPREAD_INSTANCES: Final = (1, 2)  # the rows of the server given every core
PINNED_ROWS: Final = tuple(f"Berth REST MLP, {n} instance{'s' if n > 1 else ''}" for n in INSTANCES)
SPREAD_ROWS: Final = tuple(
    f"Berth REST MLP, {n} instance{'s' if n > 1 else ''}, all cores" for n in SPREAD_INSTANCES
)
ROWS: Final = PINNED_ROWS + SPREAD_ROWS
FEATURES: Final = 64
HIDDEN: Final = (2048, 2048)
CLASSES: Final = 10
MAX_BATCH_SIZE: Final = 64
_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True)
class ScalingModel:
    """The MLP's repository (one model per instance count) and the one-row request body."""

    repository: Path
    body: Path

    def model_name(self, instances: int) -> str:
        return f"{NAME}_i{instances}"


def prepare(workdir: Path) -> ScalingModel:
    """Train the MLP, convert it to ONNX and write it under `workdir` once per instance count."""
    from onnxruntime import InferenceSession
    from skl2onnx import to_onnx
    from sklearn.datasets import make_classification
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, y = make_classification(n_samples=500, n_features=FEATURES, n_informative=32, n_classes=CLASSES,
                               random_state=0)  # fmt: skip
    X = X.astype(np.float32)
    with warnings.catch_warnings():
        # A few epochs on a few rows are enough (seconds for this width): the benchmark measures the
        # network's cost, not its accuracy.
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator = MLPClassifier(hidden_layer_sizes=HIDDEN, max_iter=3, random_state=0).fit(X, y)
    onnx_model = to_onnx(estimator, X[:1], options={id(estimator): {"zipmap": False}}, target_opset=17)
    session = InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    labels = session.run(None, {session.get_inputs()[0].name: X[:100]})[0]
    if not np.array_equal(np.asarray(labels), estimator.predict(X[:100])):
        raise RuntimeError("the MLP's ONNX conversion does not predict as scikit-learn does")
    input_name = session.get_inputs()[0].name

    repository = workdir / "scaling_repository"
    for instances in INSTANCES:
        name = f"{NAME}_i{instances}"
        (repository / name / "1").mkdir(parents=True, exist_ok=True)
        (repository / name / "1" / "model.onnx").write_bytes(onnx_model.SerializeToString())
        config = {
            "name": name,
            "backend": "onnx",
            "max_batch_size": MAX_BATCH_SIZE,
            "onnxruntime": {"intra_op_threads": 1, "inter_op_threads": 1, "graph_optimization_level": "all"},
            "dynamic_batching": {"max_queue_delay_microseconds": 100},
            "instance_count": instances,
        }
        (repository / name / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    body = workdir / "scaling_body.json"
    row = [float(v) for v in X[0]]
    body.write_bytes(_compact({"inputs": [{"name": input_name, "shape": [1, FEATURES], "datatype": "FP32",
                                           "data": row}]}))  # fmt: skip
    return ScalingModel(repository, body)


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def verify(url: str, body: Path) -> Answer:
    """POST the one-row body; VerificationError unless it answers 200 with a label for the row."""
    request = urllib.request.Request(url, data=body.read_bytes(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            answer = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise VerificationError(f"POST {url}: {error}") from None
    outputs = {output["name"]: output for output in json.loads(answer).get("outputs", [])}
    label = outputs.get("label")
    if label is None or label.get("shape") != [1] or not 0 <= int(label["data"][0]) < CLASSES:
        raise VerificationError(f"POST {url}: no label for the row in {answer[:300]!r}")
    return Answer(response_bytes=len(answer))
