"""Scoring a chunk of rows: checked row by row, run in process (onnxruntime) or through a server.

A chunk goes in as a DataFrame of the input's columns and comes out as the
rows that scored (kept columns, then the predictions) and the rows that did
not, each with its reason. A value the model cannot take (text in a numeric
column, an empty cell) fails its row before anything runs; a chunk the model
itself refuses is split in halves until the rows it refuses are alone, so
one bad row never costs its neighbours their predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from berth.batch.artifacts import Artifact, ModelRef
from berth.client import Client
from berth.convert import FLOAT32, InputSpec, Signature, signature_from, signature_from_v2
from berth.errors import BerthError, ServerError

SERVER_BATCH_ROWS = 1024  # rows per request through a server: well under its default body limit


@dataclass
class RowError:
    """A row that was not scored: its position in the input (0-based among the rows read), and why."""

    row: int
    reason: str
    values: dict[str, Any]


class RowRefused(Exception):
    """The model (or the server, with 400) refused the rows it was given: some row among them is at fault.

    Anything else a runner raises (the server unreachable or failing) stops the run, which resumes later.
    """


class Runner(Protocol):
    """Runs a model on feeds that passed the checks: every output, one row each."""

    def __call__(self, feeds: dict[str, np.ndarray], frame: pd.DataFrame) -> dict[str, np.ndarray]: ...


def with_features(signature: Signature, features: list[str] | None) -> Signature:
    """The signature with a single input's columns named by the user (`--features A,B,...`)."""
    if not features:
        return signature
    if len(signature.inputs) != 1:
        raise BerthError(
            f"--features names the columns of a one-input model; this one takes {len(signature.inputs)} inputs "
            f"({', '.join(s.name for s in signature.inputs)}), each fed from the column of its name"
        )
    spec = signature.inputs[0]
    if len(features) != len(spec.columns):
        raise BerthError(f"input '{spec.name}' takes {len(spec.columns)} columns; --features names {len(features)}")
    return Signature([InputSpec(spec.name, list(features), spec.kind)], signature.task, signature.class_labels)


def check_columns(signature: Signature, columns: list[str], path: str) -> None:
    """A clear error naming the feature columns the input lacks (before anything is scored)."""
    missing = [c for c in signature.feature_names if c not in columns]
    if missing:
        raise BerthError(
            f"the input {path} lacks the model's feature column(s) {', '.join(missing)} "
            f"(the model takes {', '.join(signature.feature_names)}; the input has {', '.join(columns)}"
            "; name a one-input model's columns with --features)"
        )


def _numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, which rows hold nothing or something that is not a number)."""
    if column.dtype.kind in "fiub":
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        try:
            values = np.asarray(column.to_numpy(), dtype=np.float64)  # C speed when every cell parses
        except (ValueError, TypeError):
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return values, ~np.isfinite(values)


class Scorer:
    """Checks, runs and names the predictions of one model version on chunks of rows."""

    def __init__(self, signature: Signature, runner: Runner, *, version: int, keep: list[str] | None = None) -> None:
        self.signature = signature
        self.version = version
        self.keep = list(keep or [])
        self._run = runner

    def check(self, frame: pd.DataFrame, first_row: int) -> tuple[dict[str, np.ndarray], np.ndarray, list[RowError]]:
        """The feeds of the rows that can be scored, which rows those are, and the others' reasons."""
        bad = np.zeros(len(frame), dtype=bool)
        reasons: dict[int, str] = {}
        feeds: dict[str, np.ndarray] = {}
        for spec in self.signature.inputs:
            if spec.kind == "string":
                block = frame[spec.columns]
                empty = block.isna().to_numpy()
                for j, column in enumerate(spec.columns):
                    for i in np.flatnonzero(empty[:, j] & ~bad):
                        reasons[int(i)] = f"column '{column}' is empty"
                    bad |= empty[:, j]
                feeds[spec.name] = block.astype(str).to_numpy().reshape(-1, len(spec.columns))
                continue
            matrix = np.empty((len(frame), len(spec.columns)), dtype=np.float64)
            for j, column in enumerate(spec.columns):
                values, wrong = _numbers(frame[column])
                matrix[:, j] = values
                for i in np.flatnonzero(wrong & ~bad):
                    raw = frame[column].iloc[int(i)]
                    reasons[int(i)] = (
                        f"column '{column}' is empty"
                        if raw is None or (isinstance(raw, float) and np.isnan(raw)) or str(raw).strip() == ""
                        else f"column '{column}' holds {str(raw)[:80]!r}, which is not a finite number"
                    )
                bad |= wrong
            feeds[spec.name] = matrix if spec.kind != FLOAT32 else matrix.astype(np.float32)
        good = ~bad
        errors = [RowError(first_row + i, reasons[i], _values(frame, i)) for i in sorted(reasons)]
        return {k: v[good] for k, v in feeds.items()}, good, errors

    def score(self, frame: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, list[RowError]]:
        """The scored rows (kept columns, predictions) and the rows that failed, in input order."""
        feeds, good, errors = self.check(frame, first_row)
        rows = frame[good]
        positions = np.flatnonzero(good)
        outputs, failed = self._run_isolating(feeds, rows, positions)
        if failed:
            errors += [RowError(first_row + p, reason, _values(frame, p)) for p, reason in failed]
            errors.sort(key=lambda e: e.row)
            ok = np.ones(len(rows), dtype=bool)
            ok[[list(positions).index(p) for p, _ in failed]] = False
            rows = rows[ok]
        kept = rows[self.keep].reset_index(drop=True) if self.keep else pd.DataFrame(index=range(len(rows)))
        return pd.concat([kept, self.columns(outputs, len(rows))], axis=1), errors

    def _run_isolating(
        self, feeds: dict[str, np.ndarray], rows: pd.DataFrame, positions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], list[tuple[int, str]]]:
        if len(rows) == 0:
            return {}, []
        try:
            return self._run(feeds, rows), []
        except RowRefused as e:
            if len(rows) == 1:
                return {}, [(int(positions[0]), f"the model refused the row: {_short(e)}")]
        half = len(rows) // 2
        parts = [slice(0, half), slice(half, len(rows))]
        merged: dict[str, list[np.ndarray]] = {}
        failed: list[tuple[int, str]] = []
        for part in parts:
            sub = {k: v[part] for k, v in feeds.items()}
            outputs, bad = self._run_isolating(sub, rows.iloc[part], positions[part])
            failed += bad
            for k, v in outputs.items():
                merged.setdefault(k, []).append(v)
        return {k: np.concatenate(v) for k, v in merged.items()}, failed

    def columns(self, outputs: dict[str, np.ndarray], n: int) -> pd.DataFrame:
        """The predictions as columns: `label` and `probability_<class>`, or `prediction`, or each output."""
        if n == 0 or not outputs:
            return pd.DataFrame(index=range(n), columns=self.column_names(), dtype=np.float64)
        columns: dict[str, Any] = {}
        if "label" in outputs and "probabilities" in outputs:
            columns["label"] = _plain(np.asarray(outputs["label"]).reshape(n))
            probabilities = np.asarray(outputs["probabilities"]).reshape(n, -1)
            for j, name in enumerate(self._class_names(probabilities.shape[1])):
                columns[f"probability_{name}"] = probabilities[:, j].astype(np.float64)
        elif self.signature.task == "regression" and len(outputs) == 1:
            columns["prediction"] = np.asarray(next(iter(outputs.values()))).reshape(n, -1)[:, 0].astype(np.float64)
        else:
            for key, value in outputs.items():
                value = np.asarray(value).reshape(n, -1)
                if value.shape[1] == 1:
                    columns[key] = _plain(value[:, 0])
                else:
                    for j in range(value.shape[1]):
                        columns[f"{key}_{j}"] = _plain(value[:, j])
        return pd.DataFrame(columns)

    def column_names(self) -> list[str]:
        if self.signature.task == "classification":
            labels = self.signature.class_labels
            return ["label", *(f"probability_{c}" for c in labels)]
        return ["prediction"]

    def _class_names(self, k: int) -> list[str]:
        labels = self.signature.class_labels
        return [str(c) for c in labels] if len(labels) == k else [str(j) for j in range(k)]


def _plain(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        return np.asarray([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
    return values


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def _values(frame: pd.DataFrame, i: int) -> dict[str, Any]:
    row = frame.iloc[int(i)]
    return {
        str(k): (None if v is None or (isinstance(v, float) and np.isnan(v)) else _jsonable(v)) for k, v in row.items()
    }


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    return v if isinstance(v, (str, int, float, bool)) else str(v)


# Runners -----------------------------------------------------------------


class OnnxRunner:
    """onnxruntime in this process, over the artifact's bytes."""

    def __init__(self, body: bytes, *, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (the machine's cores)
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(body, options, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise BerthError(f"onnxruntime cannot load the model: {_short(e)}") from e
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, feeds: dict[str, np.ndarray], frame: pd.DataFrame) -> dict[str, np.ndarray]:
        try:
            results = self.session.run(None, feeds)
        except Exception as e:  # onnxruntime raises its own exception types for bad values
            raise RowRefused(_short(e)) from e
        return dict(zip(self.outputs, results, strict=True))


class ServerRunner:
    """A Berth server's inference route (the existing `berth.Client`), in requests of `batch_rows`."""

    def __init__(self, client: Client, name: str, version: int, signature: Signature, batch_rows: int) -> None:
        self.client, self.name, self.version, self.signature = client, name, version, signature
        self.batch_rows = batch_rows

    def __call__(self, feeds: dict[str, np.ndarray], frame: pd.DataFrame) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {}
        n = len(next(iter(feeds.values())))
        for start in range(0, n, self.batch_rows):
            piece = {k: v[start : start + self.batch_rows] for k, v in feeds.items()}
            if len(self.signature.inputs) == 1:
                X: Any = next(iter(piece.values()))
            else:
                X = pd.DataFrame({spec.name: piece[spec.name].reshape(-1) for spec in self.signature.inputs})
            try:
                prediction = self.client.predict(self.name, X, version=self.version)
            except ServerError as e:
                if e.status == 400:
                    raise RowRefused(str(e)) from e
                raise BerthError(f"the server failed to score a chunk ({e}); run the same command to resume") from e
            for key, value in prediction.outputs.items():
                parts.setdefault(key, []).append(value)
        return {k: np.concatenate(v) for k, v in parts.items()}


def in_process(artifact: Artifact, *, keep: list[str] | None = None, features: list[str] | None = None,
               threads: int = 0) -> Scorer:  # fmt: skip
    """A scorer running `artifact` with onnxruntime in this process."""
    import onnx

    try:
        graph = onnx.load_from_string(artifact.body)
    except Exception as e:
        raise BerthError(f"version {artifact.version} of '{artifact.name}' is not an ONNX model: {_short(e)}") from e
    signature = with_features(signature_from(graph, artifact.metadata), features)
    return Scorer(signature, OnnxRunner(artifact.body, threads=threads), version=artifact.version, keep=keep)


def through_server(
    client: Client, ref: ModelRef, *, pin: int | None = None, keep: list[str] | None = None,
    features: list[str] | None = None, batch_rows: int = SERVER_BATCH_ROWS,
) -> Scorer:  # fmt: skip
    """A scorer sending rows to the server's version `ref` names (pinned to the version that first answered)."""
    version = str(pin) if pin is not None else ref.version
    model_metadata = client.model_metadata(ref.name, version)
    number = pin if pin is not None else _answering_version(client, ref, model_metadata)
    metadata: dict[str, Any] = {}
    try:
        for entry in client.registry_model(ref.name).get("versions", []):
            if int(entry.get("version", 0)) == number and isinstance(entry.get("metadata"), dict):
                metadata = entry["metadata"]
    except ServerError:
        pass  # no registry (503): the inputs' names and --features say it all
    signature = with_features(signature_from_v2(model_metadata, metadata), features)
    runner = ServerRunner(client, ref.name, number, signature, batch_rows)
    return Scorer(signature, runner, version=number, keep=keep)


def _answering_version(client: Client, ref: ModelRef, model_metadata: dict[str, Any]) -> int:
    versions = [str(v) for v in model_metadata.get("versions", [])]
    if ref.version is not None and ref.version.isdigit():
        return int(ref.version)
    if len(versions) == 1 and versions[0].isdigit():
        return int(versions[0])
    # An alias or the default over several loaded versions: resolve it through the registry.
    try:
        model = client.registry_model(ref.name)
    except ServerError as e:
        raise BerthError(f"cannot tell which version of '{ref.name}' {ref} names: {e}") from e
    aliases = model.get("aliases") or {}
    target = aliases.get(ref.version) if ref.version is not None else model.get("default_version")
    if target is None:
        raise BerthError(f"the registry does not say which version {ref} names")
    return int(target)


__all__ = ["RowError", "Scorer", "check_columns", "in_process", "through_server"]
