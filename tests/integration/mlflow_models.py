"""A custom MLflow PythonModel for test_python_mlflow.py, shipped with the model (code_paths) as a user's would be."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np


class Score(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Arbitrary Python: a weighted sum of the named columns, then a tanh (no ONNX converter knows it)."""

    # No type hints: MLflow would read them as a schema.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        weights = {"sepal_length_cm": 0.5, "sepal_width_cm": -1.25, "petal_length_cm": 2.0, "petal_width_cm": 0.75}
        total = sum(w * model_input[c].to_numpy(dtype=np.float64) for c, w in weights.items())
        return np.tanh(total / 10.0)
