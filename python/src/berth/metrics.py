"""The evaluation metrics Berth reports and stores, by task."""

from __future__ import annotations

from typing import Any

import numpy as np

CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION = ("rmse", "mae", "r2")


def classification_metrics(
    y_true: np.ndarray, labels: np.ndarray, probabilities: np.ndarray | None, class_labels: list[Any]
) -> dict[str, float]:
    """Accuracy; precision, recall, F1 (binary for two classes, else macro); ROC-AUC, log loss from probabilities."""
    from sklearn import metrics as m

    y_true = np.asarray(y_true)
    labels = np.asarray(labels)
    if y_true.dtype.kind in "OUS" or labels.dtype.kind in "OUS":
        y_true, labels = y_true.astype(str), labels.astype(str)
        class_labels = [str(c) for c in class_labels]
    binary = len(class_labels) == 2
    average = "binary" if binary else "macro"
    pos = {"pos_label": class_labels[1]} if binary else {}
    out = {
        "accuracy": float(m.accuracy_score(y_true, labels)),
        "precision": float(m.precision_score(y_true, labels, average=average, zero_division=0, **pos)),
        "recall": float(m.recall_score(y_true, labels, average=average, zero_division=0, **pos)),
        "f1": float(m.f1_score(y_true, labels, average=average, zero_division=0, **pos)),
    }
    if probabilities is not None and len(class_labels) == probabilities.shape[1]:
        present = set(np.unique(y_true).tolist())
        try:
            if binary:
                out["roc_auc"] = float(m.roc_auc_score(y_true == class_labels[1], probabilities[:, 1]))
            elif present == set(class_labels):
                out["roc_auc"] = float(m.roc_auc_score(y_true, probabilities, multi_class="ovr", labels=class_labels))
        except ValueError:
            pass  # one class only in the holdout: ROC-AUC is undefined
        out["log_loss"] = float(m.log_loss(y_true, np.clip(probabilities, 1e-15, 1.0), labels=class_labels))
    return finite(out)


def finite(values: dict[str, float]) -> dict[str, float]:
    """The metrics that are numbers (JSON has no NaN: an undefined metric is left out)."""
    return {k: v for k, v in values.items() if np.isfinite(v)}


def regression_metrics(y_true: np.ndarray, values: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as m

    y_true = np.asarray(y_true, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    out = {
        "rmse": float(np.sqrt(m.mean_squared_error(y_true, values))),
        "mae": float(m.mean_absolute_error(y_true, values)),
    }
    if len(y_true) > 1:
        out["r2"] = float(m.r2_score(y_true, values))
    return finite(out)


def cross_validate(model: Any, features: Any, target: np.ndarray, folds: int, task: str) -> dict[str, float]:
    """k-fold cross-validation of a scikit-learn estimator: cv_<metric> (mean) and cv_<metric>_std."""
    from sklearn.base import clone
    from sklearn.model_selection import cross_validate as sk_cross_validate

    scoring = (
        {"accuracy": "accuracy", "f1": "f1_macro", "precision": "precision_macro", "recall": "recall_macro"}
        if task == "classification"
        else {"rmse": "neg_root_mean_squared_error", "mae": "neg_mean_absolute_error", "r2": "r2"}
    )
    scores = sk_cross_validate(clone(model), features, target, cv=folds, scoring=scoring)
    out: dict[str, float] = {}
    for name in scoring:
        values = np.asarray(scores[f"test_{name}"], dtype=np.float64)
        if name in ("rmse", "mae"):
            values = -values
        out[f"cv_{name}"] = float(values.mean())
        out[f"cv_{name}_std"] = float(values.std())
    return finite(out)
