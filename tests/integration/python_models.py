"""Small models and data sets the Python-package tests train (scikit-learn's bundled data sets)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

warnings.filterwarnings("ignore", category=UserWarning)


def frame(loader: Any) -> tuple[pd.DataFrame, pd.Series]:
    data = loader(as_frame=True)
    X = data.data.copy()
    X.columns = [str(c).replace(" ", "_").replace("(", "").replace(")", "") for c in X.columns]
    return X, data.target


def iris() -> tuple[pd.DataFrame, pd.Series]:
    return frame(load_iris)


def breast_cancer() -> tuple[pd.DataFrame, pd.Series]:
    return frame(load_breast_cancer)


def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    return frame(load_diabetes)


def mixed_columns() -> tuple[pd.DataFrame, pd.Series]:
    """Iris with a string column (a colour that leaks the class, with noise)."""
    X, y = iris()
    rng = np.random.default_rng(0)
    colours = np.array(["red", "green", "blue"], dtype=object)
    noisy = np.where(rng.random(len(y)) < 0.3, rng.integers(0, 3, len(y)), y.to_numpy())
    X = X.assign(colour=colours[noisy])
    return X, y


def write_csv(path: Path, X: pd.DataFrame, y: pd.Series | None, target: str = "target") -> Path:
    (X if y is None else X.assign(**{target: y.to_numpy()})).to_csv(path, index=False)
    return path


def rows_near_thresholds(model: Any, X: pd.DataFrame, scaler: Any = None) -> pd.DataFrame:
    """Rows whose features sit on and just beside the trees' thresholds (in the scaler's input space)."""
    base = X.median().to_numpy()
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    trees = getattr(final, "estimators_", [final])
    rows = []
    for tree in trees:
        t = tree.tree_
        for feature, threshold in zip(t.feature, t.threshold, strict=True):
            if feature < 0:
                continue
            for delta in (-1e-7, 0.0, 1e-7):
                row = base.copy()
                value = threshold + delta
                row[feature] = value * scaler.scale_[feature] + scaler.mean_[feature] if scaler is not None else value
                rows.append(row)
    return pd.DataFrame(rows, columns=X.columns)
