"""Row-format request bodies and responses: TF Serving, the row route, the cloud routes.

A row is one example. For a single-input model it can be that input's value
(TF Serving's bare form); otherwise it is an object {input name: value}.
Predictions come back one entry per row; `decode_predictions` turns them into
output arrays comparable with scikit-learn's (models.assert_outputs_match).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models import Array, TrainedModel, graph_outputs


def _row_value(column_block: Array, scalar: bool) -> Any:
    """One row of one input: a list, or its only element when `scalar`."""
    values = column_block.tolist()
    return values[0] if scalar and len(values) == 1 else values


def named_rows(model: TrainedModel, X: Array, *, scalar_columns: bool = False) -> list[dict[str, Any]]:
    """[{input: value}, ...] for dataset rows X; with `scalar_columns`, one-column inputs are scalars."""
    feeds = model.feeds(X)
    return [
        {name: _row_value(tensor[row], scalar_columns) for name, tensor in feeds.items()} for row in range(len(X))
    ]


def bare_rows(model: TrainedModel, X: Array) -> list[Any]:
    """[value, ...]: the only input's per-row values."""
    (tensor,) = model.feeds(X).values()
    return [row.tolist() for row in tensor]


def rows(model: TrainedModel, X: Array) -> list[Any]:
    """Bare rows for a single-input model, named rows otherwise (what a TF Serving client sends)."""
    return bare_rows(model, X) if len(model.inputs) == 1 else named_rows(model, X)


def output_names(model: TrainedModel) -> list[str]:
    return [spec.name for spec in graph_outputs(model.onnx_model)]


def decode_predictions(model: TrainedModel, predictions: list[Any], *, named: bool | None = None) -> dict[str, Array]:
    """Output arrays from one entry per row.

    Entries are objects {output: value} when `named` (default: when the model
    has several outputs, as TF Serving writes them), else the single output's value.
    """
    names = output_names(model)
    if named is None:
        named = len(names) > 1
    if not named:
        (name,) = names
        return {name: np.array(predictions)}
    for entry in predictions:
        assert isinstance(entry, dict) and sorted(entry) == sorted(names), entry
    return {name: np.array([entry[name] for entry in predictions]) for name in names}


def columns(model: TrainedModel, X: Array) -> Any:
    """TF Serving's columnar "inputs": the only input's tensor, or {input: tensor}."""
    feeds = {name: tensor.tolist() for name, tensor in model.feeds(X).items()}
    return next(iter(feeds.values())) if len(feeds) == 1 else feeds


def decode_columns(model: TrainedModel, outputs: Any) -> dict[str, Array]:
    """Output arrays from TF Serving's columnar "outputs"."""
    names = output_names(model)
    if len(names) == 1:
        return {names[0]: np.array(outputs)}
    assert isinstance(outputs, dict) and sorted(outputs) == sorted(names), outputs
    return {name: np.array(outputs[name]) for name in names}
