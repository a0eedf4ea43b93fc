#!/usr/bin/env python3
"""Train the example models and export them as a Berth model repository.

    python examples/train_models.py --out examples/models

Each model is a small scikit-learn estimator trained on a dataset bundled with
scikit-learn (no network access), converted to ONNX with skl2onnx, checked
against onnxruntime on its held-out test split, and written as

    <out>/<name>/config.yaml
    <out>/<name>/1/model.onnx
    <out>/<name>/1/metadata.json
    <out>/<name>/example_request.json

The module is also a library: the integration tests (tests/integration) train
further models with `train` and write model directories with `export_model`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime
import skl2onnx
import sklearn
import yaml
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
from sklearn import datasets, metrics
from sklearn.base import BaseEstimator, is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

Array = npt.NDArray[Any]
InputDatatype = Literal["FP32", "FP64", "BYTES"]

RANDOM_STATE: Final = 0
TEST_SIZE: Final = 0.25
# Opsets every ONNX Runtime since 1.13 implements.
TARGET_OPSET: Final = {"": 17, "ai.onnx.ml": 3}
DEFAULT_MAX_BATCH_SIZE: Final = 64
DEFAULT_VERSION_POLICY: Final[Mapping[str, Any]] = {"latest": 1}
DEFAULT_ONNXRUNTIME_OPTIONS: Final[Mapping[str, Any]] = {
    "intra_op_threads": 1,
    "inter_op_threads": 1,
    "graph_optimization_level": "all",
}

# The ONNX graphs compute in float32, scikit-learn in float64: values agree to
# a few 1e-6 relative, and PARITY_RTOL leaves a margin. A relative bound cannot
# hold for values near zero (a probability of 1e-9 may come out as 0 or 3e-9 in
# float32), so PARITY_ATOL absorbs absolute differences that small.
PARITY_RTOL: Final = 1e-5
PARITY_ATOL: Final = 1e-6

# KServe v2 datatypes and the numpy dtypes that carry them.
V2_NUMPY_DTYPES: Final[Mapping[str, np.dtype[Any]]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}
_ONNX_V2_DATATYPES: Final[Mapping[int, str]] = {
    onnx.TensorProto.BOOL: "BOOL",
    onnx.TensorProto.UINT8: "UINT8",
    onnx.TensorProto.UINT16: "UINT16",
    onnx.TensorProto.UINT32: "UINT32",
    onnx.TensorProto.UINT64: "UINT64",
    onnx.TensorProto.INT8: "INT8",
    onnx.TensorProto.INT16: "INT16",
    onnx.TensorProto.INT32: "INT32",
    onnx.TensorProto.INT64: "INT64",
    onnx.TensorProto.FLOAT16: "FP16",
    onnx.TensorProto.FLOAT: "FP32",
    onnx.TensorProto.DOUBLE: "FP64",
    onnx.TensorProto.STRING: "BYTES",
}
_SKL2ONNX_TENSOR_TYPES: Final = {
    "FP32": FloatTensorType,
    "FP64": DoubleTensorType,
    "BYTES": StringTensorType,
}


# --- Data ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """A train/test split of a dataset bundled with scikit-learn."""

    name: str
    feature_names: tuple[str, ...]
    X_train: Array
    X_test: Array
    y_train: Array
    y_test: Array
    class_names: tuple[str, ...] = ()  # names of the integer classes 0, 1, ...


def as_float32_values(X: Array) -> Array:
    """Round to float32 precision, keeping float64.

    The served models take FP32 inputs; rounding the data once makes
    scikit-learn see exactly the numbers that reach the server.
    """
    return np.asarray(X, dtype=np.float32).astype(np.float64)


def split_dataset(
    name: str,
    X: Array,
    y: Array,
    feature_names: Sequence[str],
    *,
    stratify: bool,
    class_names: Sequence[str] = (),
) -> Dataset:
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=RANDOM_STATE, stratify=y if stratify else None
    )
    return Dataset(name, tuple(feature_names), X_train, X_test, y_train, y_test, tuple(class_names))


def load_bundled(name: Literal["iris", "breast_cancer", "wine", "diabetes"]) -> Dataset:
    """A scikit-learn toy dataset: classification, except for diabetes (regression)."""
    loaders: Mapping[str, Callable[[], Any]] = {
        "iris": datasets.load_iris,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "diabetes": datasets.load_diabetes,
    }
    bunch = loaders[name]()
    classification = name != "diabetes"
    return split_dataset(
        name,
        as_float32_values(bunch.data),
        bunch.target,
        bunch.feature_names,
        stratify=classification,
        class_names=bunch.target_names if classification else (),
    )


# --- Tensors and config.yaml --------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output as config.yaml and the metadata endpoint describe it."""

    name: str
    datatype: str
    shape: tuple[int, ...]  # -1 = variable

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def _tensor_specs(values: Sequence[onnx.ValueInfoProto]) -> tuple[TensorSpec, ...]:
    def spec(value: onnx.ValueInfoProto) -> TensorSpec:
        tensor_type = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim)
        return TensorSpec(value.name, _ONNX_V2_DATATYPES[tensor_type.elem_type], shape)

    return tuple(spec(value) for value in values)


def graph_inputs(model: onnx.ModelProto) -> tuple[TensorSpec, ...]:
    return _tensor_specs(model.graph.input)


def graph_outputs(model: onnx.ModelProto) -> tuple[TensorSpec, ...]:
    return _tensor_specs(model.graph.output)


@dataclass(frozen=True)
class ModelConfig:
    """The config.yaml of a model directory (Berth rejects unknown keys)."""

    name: str  # must equal the directory name
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    version_policy: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_VERSION_POLICY))
    onnxruntime_options: Mapping[str, Any] | None = field(
        default_factory=lambda: dict(DEFAULT_ONNXRUNTIME_OPTIONS)
    )
    inputs: tuple[TensorSpec, ...] | None = None  # None: Berth reads them from the graph
    outputs: tuple[TensorSpec, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "name": self.name,
            "backend": "onnx",
            "max_batch_size": self.max_batch_size,
            "version_policy": dict(self.version_policy),
        }
        if self.onnxruntime_options is not None:
            config["onnxruntime"] = dict(self.onnxruntime_options)
        if self.inputs is not None:
            config["inputs"] = [tensor.as_dict() for tensor in self.inputs]
        if self.outputs is not None:
            config["outputs"] = [tensor.as_dict() for tensor in self.outputs]
        return config

    def write(self, model_dir: Path) -> Path:
        model_dir.mkdir(parents=True, exist_ok=True)
        path = model_dir / "config.yaml"
        path.write_text(yaml.safe_dump(self.as_dict(), sort_keys=False, default_flow_style=None))
        return path


# --- Models -------------------------------------------------------------------


@dataclass(frozen=True)
class InputBinding:
    """Feeds ONNX graph input `name` with the dataset columns `columns`."""

    name: str
    columns: slice = field(default_factory=lambda: slice(None))
    datatype: InputDatatype = "FP32"

    def tensor(self, X: Array) -> Array:
        block = X[:, self.columns]
        if self.datatype == "BYTES":
            return block.astype(str).astype(object)
        return block.astype(V2_NUMPY_DTYPES[self.datatype])

    def onnx_type(self, X: Array) -> FloatTensorType | DoubleTensorType | StringTensorType:
        return _SKL2ONNX_TENSOR_TYPES[self.datatype]([None, self.tensor(X[:1]).shape[1]])


@dataclass(frozen=True)
class ModelSpec:
    """How to train one model."""

    name: str
    load_dataset: Callable[[], Dataset]
    make_estimator: Callable[[], BaseEstimator]
    inputs: tuple[InputBinding, ...] = (InputBinding("X"),)


def v2_datatype(array: Array) -> str:
    for datatype, dtype in V2_NUMPY_DTYPES.items():
        if array.dtype == dtype:
            return datatype
    raise ValueError(f"no KServe v2 datatype for numpy dtype {array.dtype}")


def v2_tensor(name: str, array: Array) -> dict[str, Any]:
    """A tensor of a v2 inference request, with flat row-major data."""
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": v2_datatype(array),
        "data": array.ravel().tolist(),
    }


def describe(estimator: BaseEstimator) -> str:
    """A one-line name of an estimator, e.g. Pipeline(StandardScaler, LogisticRegression)."""
    if isinstance(estimator, Pipeline):
        parts = [describe(step) for _, step in estimator.steps]
    elif isinstance(estimator, ColumnTransformer):
        parts = [describe(transformer) for _, transformer, _ in estimator.transformers]
    else:
        return type(estimator).__name__
    return f"{type(estimator).__name__}({', '.join(parts)})"


@dataclass(frozen=True)
class TrainedModel:
    """A fitted estimator together with its ONNX conversion and data."""

    name: str
    estimator: BaseEstimator
    dataset: Dataset
    inputs: tuple[InputBinding, ...]
    onnx_model: onnx.ModelProto

    @property
    def is_classifier(self) -> bool:
        return bool(is_classifier(self.estimator))

    def feeds(self, X: Array) -> dict[str, Array]:
        """The ONNX input tensors for dataset rows X."""
        return {binding.name: binding.tensor(X) for binding in self.inputs}

    def infer_request(self, X: Array, **fields: Any) -> dict[str, Any]:
        """A v2 inference request body for dataset rows X, plus extra top-level fields."""
        return {**fields, "inputs": [v2_tensor(name, tensor) for name, tensor in self.feeds(X).items()]}

    def sklearn_outputs(self, X: Array) -> dict[str, Array]:
        """scikit-learn's predictions, keyed by the matching ONNX output names."""
        if self.is_classifier:
            return {"label": self.estimator.predict(X), "probabilities": self.estimator.predict_proba(X)}
        return {"variable": self.estimator.predict(X).reshape(-1, 1)}

    def onnxruntime_outputs(self, X: Array) -> dict[str, Array]:
        session = onnxruntime.InferenceSession(
            self.onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        names = [output.name for output in session.get_outputs()]
        return dict(zip(names, session.run(names, self.feeds(X)), strict=True))

    def check_onnx_parity(self) -> None:
        """Raise AssertionError unless onnxruntime reproduces scikit-learn on the test split."""
        X = self.dataset.X_test
        assert_outputs_match(self.sklearn_outputs(X), self.onnxruntime_outputs(X))

    def metrics(self) -> dict[str, float]:
        """Scores on the held-out test split."""
        X, y_true = self.dataset.X_test, self.dataset.y_test
        y_pred = self.estimator.predict(X)
        if not self.is_classifier:
            scores = {
                "rmse": metrics.root_mean_squared_error(y_true, y_pred),
                "mae": metrics.mean_absolute_error(y_true, y_pred),
                "r2": metrics.r2_score(y_true, y_pred),
            }
        else:
            classes = self.estimator.classes_
            proba = self.estimator.predict_proba(X)
            if len(classes) == 2:
                roc_auc = metrics.roc_auc_score(y_true == classes[1], proba[:, 1])
            else:
                roc_auc = metrics.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
            scores = {
                "accuracy": metrics.accuracy_score(y_true, y_pred),
                "f1_macro": metrics.f1_score(y_true, y_pred, average="macro"),
                "precision_macro": metrics.precision_score(y_true, y_pred, average="macro"),
                "recall_macro": metrics.recall_score(y_true, y_pred, average="macro"),
                "roc_auc": roc_auc,
            }
        return {name: round(float(value), 6) for name, value in scores.items()}

    def metadata(self) -> dict[str, Any]:
        """The content of metadata.json."""
        # The registry's version-metadata schema (docs/registry.md).
        metadata: dict[str, Any] = {
            "framework": "scikit-learn",
            "estimator": describe(self.estimator),
            "task": "classification" if self.is_classifier else "regression",
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "dataset": {"name": self.dataset.name, "rows": len(self.dataset.X_train)},
            "feature_names": list(self.dataset.feature_names),
            "metrics": self.metrics(),
            "lineage": {
                "source_format": "scikit-learn",
                "converters": {"scikit-learn": sklearn.__version__, "skl2onnx": skl2onnx.__version__},
            },
            "extra": {
                "onnx_opsets": {domain or "ai.onnx": version for domain, version in TARGET_OPSET.items()},
                "test_rows": len(self.dataset.X_test),
            },
        }
        if self.is_classifier:
            metadata["class_labels"] = self.estimator.classes_.tolist()
            if self.dataset.class_names:
                metadata["class_names"] = list(self.dataset.class_names)
        return metadata


def assert_outputs_match(expected: Mapping[str, Array], actual: Mapping[str, Array]) -> None:
    """Labels must be identical, numbers equal within PARITY_RTOL/PARITY_ATOL."""
    if set(actual) != set(expected):
        raise AssertionError(f"outputs {sorted(actual)} != expected {sorted(expected)}")
    for name, want in expected.items():
        got = np.asarray(actual[name])
        if got.shape != want.shape:
            raise AssertionError(f"output {name!r}: shape {got.shape} != expected {want.shape}")
        if want.dtype.kind in "fc":
            np.testing.assert_allclose(got, want, rtol=PARITY_RTOL, atol=PARITY_ATOL, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)


def to_onnx(estimator: BaseEstimator, inputs: Sequence[InputBinding], X_sample: Array) -> onnx.ModelProto:
    """Convert a fitted estimator; classifiers output `label` [N] and `probabilities` [N, C]."""
    final_estimator = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    options = {id(final_estimator): {"zipmap": False}} if is_classifier(estimator) else None
    model = skl2onnx.to_onnx(
        estimator,
        initial_types=[(binding.name, binding.onnx_type(X_sample)) for binding in inputs],
        options=options,
        target_opset=dict(TARGET_OPSET),
    )
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"skl2onnx returned {type(model).__name__}, not an ONNX model")
    return model


def train(spec: ModelSpec) -> TrainedModel:
    """Fit, convert and check one model (deterministic: fixed split and random_state)."""
    dataset = spec.load_dataset()
    estimator = spec.make_estimator().fit(dataset.X_train, dataset.y_train)
    model = TrainedModel(
        spec.name, estimator, dataset, spec.inputs, to_onnx(estimator, spec.inputs, dataset.X_train)
    )
    model.check_onnx_parity()
    return model


def model_config(
    model: TrainedModel,
    *,
    name: str | None = None,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    version_policy: Mapping[str, Any] | None = None,
    declare_io: bool = True,
) -> ModelConfig:
    """A config for `model`; with declare_io, inputs and outputs are spelled out from the graph."""
    return ModelConfig(
        name=name or model.name,
        max_batch_size=max_batch_size,
        version_policy=dict(version_policy or DEFAULT_VERSION_POLICY),
        inputs=graph_inputs(model.onnx_model) if declare_io else None,
        outputs=graph_outputs(model.onnx_model) if declare_io else None,
    )


def _write_json(path: Path, content: Any) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n")


def export_model(
    model: TrainedModel, repository: Path, *, version: int = 1, config: ModelConfig | None = None
) -> Path:
    """Write `model` as `version` of directory `config.name` in `repository`; return that directory."""
    config = config or model_config(model)
    model_dir = repository / config.name
    version_dir = model_dir / str(version)
    version_dir.mkdir(parents=True, exist_ok=True)
    config.write(model_dir)
    onnx.save_model(model.onnx_model, version_dir / "model.onnx")
    _write_json(version_dir / "metadata.json", model.metadata())
    _write_json(model_dir / "example_request.json", model.infer_request(model.dataset.X_test[:2]))
    return model_dir


# --- The example models ------------------------------------------------------


def _scaled_random_forest() -> Pipeline:
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("forest", RandomForestClassifier(n_estimators=50, max_depth=6, random_state=RANDOM_STATE)),
        ]
    )


IRIS_LOGREG: Final = ModelSpec(
    "iris_logreg", partial(load_bundled, "iris"), partial(LogisticRegression, max_iter=1000)
)
# FP64 input: skl2onnx rounds the scaler's mean and scale to float32 in a
# float32 graph, which moves a few scaled features across a tree threshold.
BREAST_CANCER_RF: Final = ModelSpec(
    "breast_cancer_rf",
    partial(load_bundled, "breast_cancer"),
    _scaled_random_forest,
    inputs=(InputBinding("X", datatype="FP64"),),
)
DIABETES_GBR: Final = ModelSpec(
    "diabetes_gbr",
    partial(load_bundled, "diabetes"),
    partial(
        GradientBoostingRegressor,
        n_estimators=100,
        max_depth=2,
        learning_rate=0.05,
        random_state=RANDOM_STATE,
    ),
)
EXAMPLE_MODELS: Final = (IRIS_LOGREG, BREAST_CANCER_RF, DIABETES_GBR)


def summary(model: TrainedModel, model_dir: Path) -> str:
    scores = " ".join(f"{name}={value:.4g}" for name, value in model.metrics().items())
    data = model.dataset
    return (
        f"{model.name}: {describe(model.estimator)} on {data.name} "
        f"(train {len(data.X_train)}, test {len(data.X_test)}) {scores} -> {model_dir}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "models",
        help="model repository to write (default: examples/models)",
    )
    args = parser.parse_args(argv)
    for spec in EXAMPLE_MODELS:
        model = train(spec)
        print(summary(model, export_model(model, args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
