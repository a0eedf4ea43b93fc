"""Parity: the original model and its ONNX conversion, compared on the same rows.

Labels must agree on every row. Every floating-point output element must be
within `tolerance` of the original, measured as |onnx - original| /
max(1, |original|): absolute for small values, relative for large ones
(a regressor's 150.0 may differ in its 7th digit after float32 rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import pandas as pd

from berth.convert import Signature
from berth.errors import BerthError
from berth.sources import Source

DEFAULT_TOLERANCE = 1e-5
# max_rel_diff divides by max(|original|, this): a probability of 1e-300 would
# make any difference "relative" beyond meaning.
_REL_FLOOR = 1e-6


@dataclass
class Outputs:
    """A model's answers on some rows: labels and probabilities, or values."""

    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    values: np.ndarray | None = None


@dataclass
class Parity:
    rows: int
    label_agreement: float
    max_abs_diff: float
    max_rel_diff: float
    tolerance: float
    min_label_agreement: float = 1.0

    @property
    def passed(self) -> bool:
        return self.label_agreement >= self.min_label_agreement and self._worst <= self.tolerance

    _worst: float = 0.0

    def to_metadata(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "label_agreement": self.label_agreement,
            "max_abs_diff": self.max_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "tolerance": self.tolerance,
            "passed": self.passed,
        }

    def describe(self) -> str:
        return (
            f"{self.rows} rows, labels agree on {self.label_agreement:.2%}, "
            f"max abs diff {self.max_abs_diff:.3g}, max rel diff {self.max_rel_diff:.3g} (tolerance {self.tolerance:g})"
        )


def original_outputs(source: Source, signature: Signature, frame: pd.DataFrame) -> Outputs:
    """What the original framework answers for `frame`'s rows."""
    model = source.model
    signature.check_columns(frame)
    if source.kind == "lightgbm-booster":
        raw = np.asarray(model.predict(frame[signature.feature_names].to_numpy(np.float64)))
        if signature.task == "regression":
            return Outputs(values=raw.reshape(-1))
        two_d = np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw
        return Outputs(labels=two_d.argmax(axis=1), probabilities=two_d)
    features: Any = frame[signature.feature_names]
    if getattr(model, "feature_names_in_", None) is None:
        features = features.to_numpy()
    if signature.task == "classification":
        probabilities: np.ndarray | None = model.predict_proba(features) if hasattr(model, "predict_proba") else None
        return Outputs(labels=np.asarray(model.predict(features)), probabilities=probabilities)
    return Outputs(values=np.asarray(model.predict(features), dtype=np.float64).reshape(-1))


class OnnxModel:
    """An onnxruntime session over converted bytes (single-threaded, as the tests' reference)."""

    def __init__(self, model: onnx.ModelProto | bytes) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        data = model if isinstance(model, bytes) else model.SerializeToString()
        try:
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise BerthError(f"onnxruntime cannot load the converted model: {e}") from e

    def run(self, signature: Signature, frame: pd.DataFrame) -> Outputs:
        names = [o.name for o in self.session.get_outputs()]
        results = dict(zip(names, self.session.run(None, signature.feeds(frame)), strict=True))
        if signature.task == "classification":
            return Outputs(labels=results.get("label"), probabilities=results.get("probabilities"))
        return Outputs(values=np.asarray(results[names[0]], dtype=np.float64).reshape(-1))


def compare(original: Outputs, converted: Outputs, tolerance: float, *, min_label_agreement: float = 1.0) -> Parity:
    """Label agreement and the largest differences between two models' answers on the same rows."""
    rows = 0
    agreement = 1.0
    if original.labels is not None and converted.labels is not None:
        a = np.asarray(original.labels).reshape(-1)
        b = np.asarray(converted.labels).reshape(-1)
        rows = len(a)
        if a.dtype.kind in "OUS" or b.dtype.kind in "OUS":
            a, b = a.astype(str), b.astype(str)
        agreement = float(np.mean(a == b)) if rows else 1.0
    pairs = [(original.probabilities, converted.probabilities), (original.values, converted.values)]
    max_abs = max_rel = worst = 0.0
    for ref, got in pairs:
        if ref is None or got is None:
            continue
        ref64 = np.asarray(ref, dtype=np.float64)
        got64 = np.asarray(got, dtype=np.float64).reshape(ref64.shape)
        rows = max(rows, len(ref64))
        diff = np.abs(got64 - ref64)
        if diff.size:
            max_abs = max(max_abs, float(diff.max()))
            max_rel = max(max_rel, float((diff / np.maximum(np.abs(ref64), _REL_FLOOR)).max()))
            worst = max(worst, float((diff / np.maximum(np.abs(ref64), 1.0)).max()))
    parity = Parity(rows, agreement, max_abs, max_rel, tolerance, min_label_agreement)
    parity._worst = worst
    return parity
