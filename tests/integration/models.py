"""The models the integration tests serve, trained once per test session.

Training, ONNX conversion and the model directory layout live in
examples/train_models.py; this module adds the test-only models and assembles
the test model repository.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Final

import numpy as np
from sklearn import datasets
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from berth_server import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "examples"))

from train_models import (
    BREAST_CANCER_RF,
    DIABETES_GBR,
    EXAMPLE_MODELS,
    IRIS_LOGREG,
    V2_NUMPY_DTYPES,
    Array,
    Dataset,
    InputBinding,
    ModelConfig,
    ModelSpec,
    TrainedModel,
    as_float32_values,
    assert_outputs_match,
    export_model,
    graph_inputs,
    graph_outputs,
    load_bundled,
    model_config,
    split_dataset,
    train,
    v2_datatype,
    v2_tensor,
)

__all__ = [  # what the tests use, including re-exports from train_models
    "ALL_VERSIONS_MODEL",
    "IRIS_MODEL",
    "LATEST_VERSION_MODEL",
    "PARITY_MODELS",
    "TEST_MAX_BATCH_SIZE",
    "V2_NUMPY_DTYPES",
    "Array",
    "ModelRepository",
    "TrainedModel",
    "assert_outputs_match",
    "build_model_repository",
    "export_model",
    "graph_inputs",
    "graph_outputs",
    "v2_datatype",
    "v2_tensor",
    "write_corrupt_model",
]

# Large enough for every test split (breast cancer: 143 rows) in one request.
TEST_MAX_BATCH_SIZE: Final = 256


def load_diabetes_with_sex_category() -> Dataset:
    """Diabetes as a binary task on mixed features.

    The sex column (coded 1/2) becomes the string category "sex_1"/"sex_2";
    the target is whether disease progression is above the median ("high") or
    not ("low"), so both an input and the labels are strings.
    """
    bunch = datasets.load_diabetes(scaled=False)
    sex_column = bunch.feature_names.index("sex")
    sex = np.where(bunch.data[:, sex_column] == 1, "sex_1", "sex_2")
    numeric = as_float32_values(np.delete(bunch.data, sex_column, axis=1))
    X = np.column_stack([sex.astype(object), numeric.astype(object)])
    y = np.where(bunch.target > np.median(bunch.target), "high", "low")
    numeric_names = [name for name in bunch.feature_names if name != "sex"]
    return split_dataset("diabetes (sex as string category)", X, y, ["sex", *numeric_names], stratify=True)


def _scaled_logistic_regression() -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("logreg", LogisticRegression(max_iter=1000))])


# Columns of load_diabetes_with_sex_category(): sex, then nine numeric features.
_SEX_COLUMNS: Final = slice(0, 1)
_NUMERIC_COLUMNS: Final = slice(1, 10)


def _one_hot_logistic_regression() -> Pipeline:
    columns = ColumnTransformer(
        [("sex", OneHotEncoder(), _SEX_COLUMNS), ("numeric", StandardScaler(), _NUMERIC_COLUMNS)]
    )
    return Pipeline([("columns", columns), ("logreg", LogisticRegression(max_iter=1000))])


WINE_SCALED_LOGREG: Final = ModelSpec(
    "wine_scaled_logreg", partial(load_bundled, "wine"), _scaled_logistic_regression
)
DIABETES_STRINGS: Final = ModelSpec(
    "diabetes_strings",
    load_diabetes_with_sex_category,
    _one_hot_logistic_regression,
    inputs=(
        InputBinding("sex", _SEX_COLUMNS, "BYTES"),
        InputBinding("X", _NUMERIC_COLUMNS, "FP32"),
    ),
)
# Version 2 of the multi-version models: iris with much stronger regularisation,
# so its probabilities differ clearly from version 1 (IRIS_LOGREG).
IRIS_LOGREG_V2: Final = replace(
    IRIS_LOGREG, make_estimator=partial(LogisticRegression, C=0.05, max_iter=1000)
)

PARITY_SPECS: Final = (IRIS_LOGREG, BREAST_CANCER_RF, WINE_SCALED_LOGREG, DIABETES_GBR, DIABETES_STRINGS)
PARITY_MODELS: Final = tuple(spec.name for spec in PARITY_SPECS)
IRIS_MODEL: Final = IRIS_LOGREG.name  # the model of tests that need just one
ALL_VERSIONS_MODEL: Final = "iris_all_versions"  # versions 1 and 2, policy {all: true}
LATEST_VERSION_MODEL: Final = "iris_latest_version"  # versions 1 and 2, policy {latest: 1}
_VERSION_POLICIES: Final[Mapping[str, Mapping[str, Any]]] = {
    ALL_VERSIONS_MODEL: {"all": True},
    LATEST_VERSION_MODEL: {"latest": 1},
}
_EXAMPLE_NAMES: Final = frozenset(spec.name for spec in EXAMPLE_MODELS)


@dataclass(frozen=True)
class ModelRepository:
    """A model repository on disk and the models in it, by name and version."""

    root: Path
    versions: Mapping[str, Mapping[int, TrainedModel]]

    def model(self, name: str, version: int = 1) -> TrainedModel:
        return self.versions[name][version]


def _test_config(name: str, model: TrainedModel) -> ModelConfig:
    # The example models spell out their inputs and outputs in config.yaml,
    # the others leave them to the server to read from the graph: both paths
    # are exercised.
    return model_config(
        model,
        name=name,
        max_batch_size=TEST_MAX_BATCH_SIZE,
        version_policy=_VERSION_POLICIES.get(name),
        declare_io=name in _EXAMPLE_NAMES,
    )


def build_model_repository(root: Path) -> ModelRepository:
    """Train every test model and write the repository at `root`."""
    trained = {spec.name: train(spec) for spec in PARITY_SPECS}
    iris_versions = {1: trained[IRIS_LOGREG.name], 2: train(IRIS_LOGREG_V2)}
    versions: dict[str, Mapping[int, TrainedModel]] = {name: {1: model} for name, model in trained.items()}
    versions.update(dict.fromkeys(_VERSION_POLICIES, iris_versions))
    for name, by_version in versions.items():
        for version, model in by_version.items():
            export_model(model, root, version=version, config=_test_config(name, model))
    return ModelRepository(root, versions)


def write_corrupt_model(root: Path, name: str) -> Path:
    """A model directory whose model.onnx is random bytes; returns the directory."""
    model_dir = root / name
    ModelConfig(name=name).write(model_dir)
    version_dir = model_dir / "1"
    version_dir.mkdir()
    (version_dir / "model.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    return model_dir
