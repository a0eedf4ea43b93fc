"""Evaluating a deployed version on a holdout: the server answers, not the Python object."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from berth import data, metrics
from berth.client import Client, ClientCert, split_model_ref
from berth.errors import BerthError, ServerError

BATCH_ROWS = 256


@dataclass
class Evaluation:
    name: str
    version: str
    task: str
    rows: int
    metrics: dict[str, float]
    dataset: dict[str, Any]

    def to_request(self) -> dict[str, Any]:
        """The body of POST /v2/registry/models/{m}/versions/{v}/evaluations."""
        return {"metrics": self.metrics, "dataset": self.dataset, "rows": self.rows}


def _registered_metadata(client: Client, name: str, version: str) -> dict[str, Any]:
    """The metadata the registry keeps for `version` ({} when there is no registry or no record)."""
    try:
        model = client.registry_model(name)
    except ServerError:
        return {}
    for entry in model.get("versions", []):
        if str(entry.get("version")) == version:
            found = entry.get("metadata")
            return found if isinstance(found, dict) else {}
    return {}


def evaluate(
    url: str, ref: str, holdout: Path, target: str, *, api_key: str | None = None, batches: Any = None,
    ca_file: str | None = None, cert: ClientCert | None = None,
) -> Evaluation:  # fmt: skip
    """Run `holdout` through the server's `ref` (NAME, NAME:VERSION, NAME@ALIAS) and compute the metrics.

    `batches` wraps the batch iterator (a progress bar); the identity when None.
    """
    name, version = split_model_ref(ref)
    frame = data.read_csv(holdout, what="holdout")
    features, y = data.split_target(frame, target, holdout)
    assert y is not None
    with Client(url, api_key=api_key, ca_file=ca_file, cert=cert) as client:
        model_meta = client.model_metadata(name, version)
        inputs = model_meta.get("inputs", [])
        answered = ""
        outputs: dict[str, list[np.ndarray]] = {}
        starts: Iterable[int] = range(0, len(features), BATCH_ROWS)
        if batches is not None:
            starts = batches(starts, total=(len(features) + BATCH_ROWS - 1) // BATCH_ROWS)
        for start in starts:
            chunk = features.iloc[start : start + BATCH_ROWS]
            X: Any = chunk if len(inputs) > 1 else _single_input(chunk, inputs, client, name, version)
            prediction = client.predict(name, X, version=version)
            answered = prediction.model_version
            for key, value in prediction.outputs.items():
                outputs.setdefault(key, []).append(value)
        merged = {k: np.concatenate(v) for k, v in outputs.items()}
        registered = _registered_metadata(client, name, answered)
    if "label" in merged:
        labels = merged["label"].reshape(-1)
        if labels.dtype == object:
            labels = np.asarray([v.decode() if isinstance(v, bytes) else v for v in labels])
        probabilities = merged.get("probabilities")
        seen = set(np.unique(labels).tolist()) | set(np.unique(y).tolist())
        class_labels = registered.get("class_labels") or sorted(seen)
        y_cmp = y
        if labels.dtype.kind in "iuf" and y.dtype.kind in "iuf":
            y_cmp = y.astype(labels.dtype)
        values = metrics.classification_metrics(y_cmp, labels, probabilities, list(class_labels))
        task = "classification"
    else:
        first = next(iter(merged.values()))
        try:
            y_num = y.astype(np.float64)
        except ValueError as e:
            raise BerthError(f"the target column '{target}' holds non-numbers, and the model is a regressor") from e
        values = metrics.regression_metrics(y_num, first.reshape(len(y), -1)[:, 0])
        task = "regression"
    return Evaluation(name, answered, task, len(features), values, data.dataset_record(holdout, len(features)))


def _single_input(chunk: Any, inputs: list[dict[str, Any]], client: Client, name: str, version: str | None) -> Any:
    if client.feature_names(name, version):
        return chunk  # the client orders the columns by the version's feature names
    shape = inputs[0].get("shape", []) if inputs else []
    if len(shape) == 2 and shape[1] not in (-1, chunk.shape[1]):
        raise BerthError(
            f"the model's input '{inputs[0]['name']}' takes {shape[1]} features per row; "
            f"the holdout has {chunk.shape[1]} columns besides the target ({', '.join(map(str, chunk.columns))})"
        )
    return chunk.to_numpy()
