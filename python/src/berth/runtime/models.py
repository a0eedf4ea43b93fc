"""What the worker can load: a model.py, a pickled estimator, an MLflow pyfunc (see docs/python.md)."""

from __future__ import annotations

import importlib.util
import inspect
import pickle
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from berth.runtime.framing import NUMPY_TYPES, Spec

# Output names that a pickled classifier answers with predict_proba; every
# other output name gets predict.
PROBABILITY_OUTPUTS = frozenset({"probabilities", "probability", "predict_proba", "proba"})


class BadInput(Exception):
    """The request does not suit the model: reported as INVALID_ARGUMENT."""


class Runnable(Protocol):
    def signature(self) -> tuple[list[Spec], list[Spec]]: ...

    def run(self, inputs: dict[str, np.ndarray], output_names: Sequence[str]) -> dict[str, np.ndarray]: ...


def _features(inputs: Mapping[str, np.ndarray]) -> Any:
    """One input is the feature matrix itself; several are the columns of a DataFrame, named after them."""
    if len(inputs) == 1:
        return next(iter(inputs.values()))
    import pandas as pd

    columns: dict[str, np.ndarray] = {}
    rows = None
    for name, array in inputs.items():
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise BadInput(f"input '{name}' has shape {list(array.shape)}: with several inputs each is one column, [N] or [N, 1]")
        if rows is not None and len(array) != rows:
            raise BadInput(f"input '{name}' has {len(array)} rows, the others {rows}")
        rows = len(array)
        columns[name] = array
    return pd.DataFrame(columns)


class EstimatorModel:
    """A pickled object with predict (and predict_proba), e.g. a scikit-learn Pipeline."""

    def __init__(self, estimator: Any) -> None:
        if not callable(getattr(estimator, "predict", None)):
            raise TypeError(f"the unpickled {type(estimator).__name__} has no predict method")
        self.estimator = estimator

    def signature(self) -> tuple[list[Spec], list[Spec]]:
        return [], []  # a pickle declares nothing: the config does

    def run(self, inputs: dict[str, np.ndarray], output_names: Sequence[str]) -> dict[str, np.ndarray]:
        X = _features(inputs)
        out: dict[str, np.ndarray] = {}
        for name in output_names:
            if name in PROBABILITY_OUTPUTS:
                if not callable(getattr(self.estimator, "predict_proba", None)):
                    raise BadInput(f"output '{name}' asks for probabilities, but the model has no predict_proba")
                out[name] = np.asarray(self.estimator.predict_proba(X))
            else:
                out[name] = np.asarray(self.estimator.predict(X))
        return out


def _specs(declared: object, what: str) -> list[Spec]:
    if declared is None:
        return []
    if not isinstance(declared, list | tuple):
        raise TypeError(f"the model class's '{what}' must be a list of {{name, datatype, shape}}")
    specs = []
    for d in declared:
        if not isinstance(d, Mapping) or d.get("datatype") not in {*NUMPY_TYPES, "BYTES"}:
            raise TypeError(f"the model class's '{what}' has an entry that is not {{name, datatype, shape}}: {d!r}")
        specs.append(Spec(str(d["name"]), str(d["datatype"]), tuple(int(x) for x in d.get("shape", [-1]))))
    return specs


class PythonFileModel:
    """model.py: a class with load(model_dir) and predict(inputs) (see docs/python.md)."""

    def __init__(self, path: Path) -> None:
        spec = importlib.util.spec_from_file_location("berth_user_model", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path.name}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["berth_user_model"] = module
        spec.loader.exec_module(module)
        cls = getattr(module, "Model", None)
        if cls is None:
            candidates = [
                c
                for _, c in inspect.getmembers(module, inspect.isclass)
                if c.__module__ == module.__name__ and callable(getattr(c, "predict", None))
            ]
            if len(candidates) != 1:
                raise TypeError(f"{path.name} must define a class named Model (or exactly one class with predict)")
            cls = candidates[0]
        self.model = cls()
        if callable(getattr(self.model, "load", None)):
            self.model.load(str(path.parent))

    def signature(self) -> tuple[list[Spec], list[Spec]]:
        return _specs(getattr(self.model, "inputs", None), "inputs"), _specs(getattr(self.model, "outputs", None), "outputs")

    def run(self, inputs: dict[str, np.ndarray], output_names: Sequence[str]) -> dict[str, np.ndarray]:
        result = self.model.predict(inputs)
        if not isinstance(result, Mapping):
            if len(output_names) != 1:
                raise TypeError("predict returned one array but several outputs were asked for: return a dict")
            return {output_names[0]: np.asarray(result)}
        missing = [n for n in output_names if n not in result]
        if missing:
            raise TypeError(f"predict returned no output {missing[0]!r} (it returned {sorted(result)})")
        return {n: np.asarray(result[n]) for n in output_names}


class MlflowModel:
    """An MLflow model directory (its MLmodel file), through mlflow.pyfunc."""

    def __init__(self, path: Path) -> None:
        try:
            import mlflow.pyfunc  # type: ignore[import-not-found]
        except ImportError as e:
            raise ImportError(
                "the model is an MLflow model: install mlflow in the worker's interpreter (pip install mlflow) to serve it"
            ) from e
        self.model = mlflow.pyfunc.load_model(str(path.parent))

    def signature(self) -> tuple[list[Spec], list[Spec]]:
        return [], []

    def run(self, inputs: dict[str, np.ndarray], output_names: Sequence[str]) -> dict[str, np.ndarray]:
        result = self.model.predict(_features(inputs))
        if isinstance(result, Mapping):
            return {n: np.asarray(result[n]) for n in output_names}
        if len(output_names) != 1:
            raise TypeError("the pyfunc returned one result but several outputs were asked for")
        return {output_names[0]: np.asarray(result)}


def load(path: Path) -> Runnable:
    """The model whose entry file is `path`; its directory becomes importable (modules shipped beside it)."""
    sys.path.insert(0, str(path.parent))
    name = path.name
    if name == "MLmodel":
        return MlflowModel(path)
    if name.endswith(".py"):
        return PythonFileModel(path)
    if name.endswith(".joblib"):
        import joblib

        return EstimatorModel(joblib.load(path))
    if name.endswith((".pkl", ".pickle")):
        with path.open("rb") as f:
            return EstimatorModel(pickle.load(f))
    raise ValueError(f"{name} is none of: a model.py, a pickle (.pkl, .pickle, .joblib), an MLflow MLmodel")
