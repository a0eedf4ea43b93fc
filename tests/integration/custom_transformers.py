"""A scikit-learn transformer that skl2onnx cannot convert, for the Python runtime's tests.

The file is copied into the served version's directory: the worker puts
that directory on sys.path, so the pickle finds this module by name.
Magic inputs misbehave on purpose: -999 in the first feature kills the
worker, -777 makes it hang, below -5000 is refused as bad input.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

CRASH: float = -999.0
HANG: float = -777.0


class RatioFeatures(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Appends log1p(|x|) of every feature and the ratio of the first two."""

    def fit(self, X: Any, y: Any = None) -> RatioFeatures:
        return self

    def transform(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        first = X[:, 0]
        if np.any(first == CRASH):
            os._exit(3)
        if np.any(first == HANG):
            time.sleep(3600)
        if np.any(X < -5000):
            raise ValueError("feature values below -5000 are not measurements")
        ratio = X[:, [0]] / (np.abs(X[:, [1]]) + 1.0)
        return np.hstack([X, np.log1p(np.abs(X)), ratio])
