"""The baseline profile ("berth-baseline/1") the server's drift monitor compares live traffic with.

The format is specified in docs/python.md; this module is its one writer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from berth.convert import Signature

FORMAT = "berth-baseline/1"
QUANTILES = np.linspace(0.0, 1.0, 101)
DECILES = np.linspace(0.0, 1.0, 11)


def _number(x: float) -> float:
    return float(x)


def numeric_stats(values: np.ndarray) -> dict[str, Any]:
    """count, missing, mean, std, min, max, 101 quantiles, decile bins and their counts."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    present = values[~np.isnan(values)]
    stats: dict[str, Any] = {"kind": "numeric", "count": int(present.size), "missing": int(values.size - present.size)}
    if present.size == 0:
        stats.update(mean=None, std=None, min=None, max=None, quantiles=[], bins=[], counts=[])
        return stats
    edges = np.unique(np.quantile(present, DECILES))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    counts, _ = np.histogram(present, bins=edges)
    stats.update(
        mean=_number(present.mean()),
        std=_number(present.std()),
        min=_number(present.min()),
        max=_number(present.max()),
        quantiles=[_number(q) for q in np.quantile(present, QUANTILES)],
        bins=[_number(e) for e in edges],
        counts=[int(c) for c in counts],
    )
    return stats


def categorical_stats(values: pd.Series | np.ndarray) -> dict[str, Any]:
    series = pd.Series(np.asarray(values, dtype=object).reshape(-1))
    missing = series.isna()
    frequencies = series[~missing].map(_category).value_counts()
    return {
        "kind": "categorical",
        "count": int((~missing).sum()),
        "missing": int(missing.sum()),
        "frequencies": {str(k): int(v) for k, v in frequencies.items()},
    }


def _category(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def profile(signature: Signature, frame: pd.DataFrame, predictions: dict[str, np.ndarray]) -> dict[str, Any]:
    """The baseline of `frame` (the training sample) and the model's answers on it.

    `predictions` maps output names to the converted model's outputs on
    `frame`: `label` for a classifier (categorical), else the first output
    (numeric).
    """
    features: list[dict[str, Any]] = []
    for spec in signature.inputs:
        for column_index, column in enumerate(spec.columns):
            head = {"name": column, "input": spec.name, "column": column_index}
            if spec.kind == "string":
                features.append({**head, **categorical_stats(frame[column].to_numpy())})
            else:
                numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
                features.append({**head, **numeric_stats(numbers)})
    if signature.task == "classification" and "label" in predictions:
        prediction = {"name": "label", "output": "label", "column": 0, **categorical_stats(predictions["label"])}
    else:
        output, values = next(iter(predictions.items()))
        prediction = {"name": output, "output": output, "column": 0, **numeric_stats(values)}
    return {"format": FORMAT, "rows": len(frame), "features": features, "prediction": prediction}


def sampled_rows(baseline: dict[str, Any], signature: Signature, rows: int) -> pd.DataFrame | None:
    """`rows` rows drawn from a stored baseline's per-feature distributions (None if it lacks a feature).

    A numeric feature is drawn through its 101 quantiles (inverse CDF, linear
    between them), else around its mean and std; a categorical one by its
    frequencies. Missing values are not drawn: the rows are for comparing
    two graphs on data like the training data, not for probing NaN handling.
    """
    if baseline.get("format") != FORMAT:
        return None
    by_name = {f.get("name"): f for f in baseline.get("features", []) if isinstance(f, dict)}
    rng = np.random.default_rng(0)
    columns: dict[str, Any] = {}
    for spec in signature.inputs:
        for column in spec.columns:
            feature = by_name.get(column)
            if feature is None:
                return None
            drawn = _draw(feature, spec.kind == "string", rng, rows)
            if drawn is None:
                return None
            columns[column] = drawn
    return pd.DataFrame(columns)


def _draw(feature: dict[str, Any], string: bool, rng: np.random.Generator, rows: int) -> np.ndarray | None:
    if feature.get("kind") == "categorical":
        frequencies = feature.get("frequencies") or {}
        if not frequencies:
            return None
        counts = np.asarray(list(frequencies.values()), dtype=np.float64)
        values = np.asarray(list(frequencies), dtype=object)
        drawn = rng.choice(values, size=rows, p=counts / counts.sum())
        return drawn if string else pd.to_numeric(pd.Series(drawn), errors="coerce").to_numpy(np.float64)
    if string:
        return None
    quantiles = feature.get("quantiles") or []
    if len(quantiles) == len(QUANTILES):
        return np.interp(rng.random(rows), QUANTILES, np.asarray(quantiles, dtype=np.float64))
    if feature.get("mean") is None:
        return None
    return rng.normal(float(feature["mean"]), float(feature.get("std") or 0.0), size=rows)
