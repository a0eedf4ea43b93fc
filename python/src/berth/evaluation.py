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


def _split_text(split: dict[str, Any]) -> str:
    return " and ".join(f"{v} ({w}%)" for v, w in sorted(split.items(), key=lambda kv: int(kv[0])))


def resolve_version(client: Client, name: str, selector: str | None) -> str | None:
    """The version number `selector` (a number, an alias, or None for the default) names now.

    Every batch is then sent to that number, so a promotion during the run
    cannot mix two versions in one score. An alias that splits its traffic is
    refused: its answers would come from several versions. None when there is
    no registry to ask (the first answer then pins the version).
    """
    if selector is not None and selector.isdigit():
        return selector
    try:
        model = client.registry_model(name)
    except ServerError:
        return None  # no registry, or no such model: the server's own answer says which
    alias = selector or "production"
    split = (model.get("splits") or {}).get(alias)
    if split:
        named = f"{name}@{alias}" if selector else f"{name} (its default, the alias production)"
        each = " and ".join(f"{name}:{v}" for v in sorted(split, key=int))
        raise BerthError(
            f"{named} splits its traffic over versions {_split_text(split)}: a score over it would mix "
            f"versions; evaluate each version on its own ({each})"
        )
    if selector is None:
        default = model.get("default_version")
        return None if default is None else str(default)
    version = (model.get("aliases") or {}).get(alias)
    if version is None:
        raise BerthError(f"model '{name}' has no alias '{alias}'")
    return str(version)


def evaluate(
    url: str, ref: str, holdout: Path, target: str, *, api_key: str | None = None, batches: Any = None,
    ca_file: str | None = None, cert: ClientCert | None = None,
) -> Evaluation:  # fmt: skip
    """Run `holdout` through the server's `ref` (NAME, NAME:VERSION, NAME@ALIAS) and compute the metrics.

    `batches` wraps the batch iterator (a progress bar); the identity when None.
    """
    name, selector = split_model_ref(ref)
    frame = data.read_csv(holdout, what="holdout")
    features, y = data.split_target(frame, target, holdout)
    assert y is not None
    with Client(url, api_key=api_key, ca_file=ca_file, cert=cert) as client:
        version = resolve_version(client, name, selector)
        model_meta = client.model_metadata(name, version or selector)
        inputs = model_meta.get("inputs", [])
        answered = ""
        outputs: dict[str, list[np.ndarray]] = {}
        starts: Iterable[int] = range(0, len(features), BATCH_ROWS)
        if batches is not None:
            starts = batches(starts, total=(len(features) + BATCH_ROWS - 1) // BATCH_ROWS)
        for start in starts:
            chunk = features.iloc[start : start + BATCH_ROWS]
            X: Any = chunk if len(inputs) > 1 else _single_input(chunk, inputs, client, name, version or selector)
            prediction = client.predict(name, X, version=version or selector)
            answered = prediction.model_version
            if version is None and answered:
                version = answered  # no registry: the first answer pins the version for the rest
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
