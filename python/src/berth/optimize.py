"""`berth-py optimize`: a quantized copy of a registered version, gated like an import.

The version's ONNX artifact is fetched from the server
(GET /v2/registry/models/{m}/versions/{v}/artifact) or read from
`--artifact FILE`; either way its SHA-256 must equal the
digest the registry recorded for that version. It is quantized (dynamic
int8: weights of MatMul/Gemm in int8, activations quantized at run time),
then the original and the quantized graphs answer the same rows (the
`--sample-data` rows, else rows drawn from the version's stored baseline
profile, else rows generated from the signature) and, given a
holdout, are evaluated on it: the new version is pushed only when parity holds
within the tolerance and the holdout metric has not dropped by more than
`max_metric_drop`, unless `force`.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import onnx
import pandas as pd

from berth import baseline, convert, data, metrics, parity
from berth.client import Client, ClientCert
from berth.convert import signature_from
from berth.errors import BerthError, ServerError
from berth.importer import GENERATED_ROWS, ImportResult, generated_rows

QUANTIZATIONS = ("dynamic-int8",)
# int8 weights move a classifier's probabilities by a few hundredths on its
# training rows and up to ~0.14 on rows drawn from its baseline (measured on a
# StandardScaler + MLP(64, 64) on breast_cancer); a broken quantization flips
# labels, which the label agreement and the holdout metric catch.
DEFAULT_TOLERANCE = 0.15
DEFAULT_LABEL_AGREEMENT = 0.99
DEFAULT_METRIC_DROP = 0.01


def _version_record(client: Client, name: str, version: str) -> dict[str, Any]:
    for entry in client.registry_model(name).get("versions", []):
        if str(entry.get("version")) == version:
            return dict(entry)
    raise BerthError(f"model '{name}' has no version {version} in the registry")


def _artifact(client: Client, name: str, version: str, record: dict[str, Any], artifact: Path | None) -> bytes:
    if artifact is not None:
        if not artifact.is_file():
            raise BerthError(f"--artifact {artifact} does not exist")
        body = artifact.read_bytes()
    else:
        path = f"/v2/registry/models/{quote(name, safe='')}/versions/{quote(version, safe='')}/artifact"
        try:
            body = client.get_bytes(path)
        except ServerError as e:
            raise BerthError(
                f"cannot fetch version {version} of '{name}' from the server ({e}); "
                "give the version's model.onnx with --artifact FILE"
            ) from e
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if record.get("digest") and digest != record["digest"]:
        raise BerthError(
            f"the artifact's digest {digest} is not version {version}'s ({record['digest']}): "
            "that is another model's file"
        )
    return body


def _package_version(package: str) -> str:
    from importlib import metadata as importlib_metadata

    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def quantize_dynamic_int8(model: bytes) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="berth-quantize-") as tmp:
        source, target = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        source.write_bytes(model)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer advises pre-processing on the root logger
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        except Exception as e:
            raise BerthError(f"onnxruntime cannot quantize the model: {e}") from e
        finally:
            root.setLevel(level)
        return target.read_bytes()


def _holdout_metrics(
    model: parity.OnnxModel, signature: convert.Signature, frame: pd.DataFrame, y: np.ndarray
) -> dict[str, float]:
    out = model.run(signature, frame)
    if signature.task == "classification":
        assert out.labels is not None
        labels = signature.class_labels or sorted(set(np.unique(y).tolist()))
        return metrics.classification_metrics(y, out.labels, out.probabilities, labels)
    assert out.values is not None
    return metrics.regression_metrics(y, out.values)


def _parity_rows(
    signature: convert.Signature, metadata: dict[str, Any], sample_data: Path | None, version: str
) -> tuple[pd.DataFrame, str]:
    """The rows both graphs answer, and where they came from (printed, and stored with the new version).

    The user's sample data first; else rows drawn from the baseline profile
    stored with the version (the import's --sample-data statistics), so the
    check sees data like the training data; rows generated from the signature
    (numbers around 0) only when there is no usable baseline.
    """
    if sample_data is not None:
        return data.read_csv(sample_data, what="sample data"), f"the sample data {sample_data}"
    stored = metadata.get("baseline")
    drawn = baseline.sampled_rows(stored, signature, GENERATED_ROWS) if isinstance(stored, dict) else None
    if drawn is not None:
        return drawn, f"{GENERATED_ROWS} rows drawn from version {version}'s baseline profile"
    return (
        generated_rows(signature, None),
        f"{GENERATED_ROWS} rows generated from the signature (version {version} has no baseline profile; "
        "give --sample-data for a check on real rows)",
    )


def optimize(
    url: str,
    name: str,
    version: str,
    quantize: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    min_label_agreement: float = DEFAULT_LABEL_AGREEMENT,
    force: bool = False,
    artifact: Path | None = None,
    sample_data: Path | None = None,
    holdout: Path | None = None,
    target: str | None = None,
    max_metric_drop: float = DEFAULT_METRIC_DROP,
    api_key: str | None = None,
    ca_file: str | None = None,
    cert: ClientCert | None = None,
) -> ImportResult:
    if quantize not in QUANTIZATIONS:
        raise BerthError(f"unknown quantization '{quantize}' (known: {', '.join(QUANTIZATIONS)})")
    if (holdout is None) != (target is None):
        raise BerthError("--data and --target go together")
    with Client(url, api_key=api_key, ca_file=ca_file, cert=cert) as client:
        try:
            record = _version_record(client, name, version)
        except ServerError as e:
            raise BerthError(f"cannot read model '{name}' from the registry: {e}") from e
        original_bytes = _artifact(client, name, version, record, artifact)
        metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
        assert isinstance(metadata, dict)
        original_model = onnx.load_from_string(original_bytes)
        signature = signature_from(original_model, metadata)
        quantized_bytes = quantize_dynamic_int8(original_bytes)
        original, quantized = parity.OnnxModel(original_bytes), parity.OnnxModel(quantized_bytes)
        rows, rows_from = _parity_rows(signature, metadata, sample_data, version)
        figures = parity.compare(
            original.run(signature, rows),
            quantized.run(signature, rows),
            tolerance,
            min_label_agreement=min_label_agreement,
        )
        problems = [] if figures.passed else [f"parity: {figures.describe()}"]
        new_metrics: dict[str, float] = {}
        if holdout is not None and target is not None:
            frame, y = data.split_target(data.read_csv(holdout, what="holdout"), target, holdout)
            assert y is not None
            before = _holdout_metrics(original, signature, frame, y)
            new_metrics = _holdout_metrics(quantized, signature, frame, y)
            key, higher_better = ("accuracy", True) if signature.task == "classification" else ("rmse", False)
            drop = (
                (before[key] - new_metrics[key])
                if higher_better
                else (new_metrics[key] - before[key]) / max(abs(before[key]), 1e-12)
            )
            if drop > max_metric_drop:
                problems.append(f"{key} went from {before[key]:.4g} to {new_metrics[key]:.4g} on {holdout}")
        if problems and not force:
            raise BerthError(
                f"the quantized model was not registered: {'; '.join(problems)} (parity rows: {rows_from}). "
                "Pass --force to register it anyway."
            )
        new_metadata = {k: v for k, v in metadata.items() if k not in ("parity", "metrics", "scan", "lineage")}
        new_metadata["parity"] = figures.to_metadata()
        if new_metrics:
            new_metrics_named = {f"{k}": v for k, v in new_metrics.items()}
            new_metadata["metrics"] = new_metrics_named
        new_metadata["lineage"] = {
            "source_digest": record.get("digest") or "sha256:" + hashlib.sha256(original_bytes).hexdigest(),
            "source_format": "onnx",
            "converters": {"onnxruntime": _package_version("onnxruntime")},
        }
        if version.isdigit():
            new_metadata["lineage"]["parent_version"] = int(version)
        extra = dict(new_metadata.get("extra") or {})
        extra["optimized_from"] = {
            "version": int(version) if version.isdigit() else version,
            "quantize": quantize,
            "size_before": len(original_bytes),
            "size_after": len(quantized_bytes),
            "parity_rows": rows_from,
        }
        new_metadata["extra"] = extra
        new_version = client.push(name, quantized_bytes, new_metadata)
    return ImportResult(name, new_version, new_metadata, figures, url)
