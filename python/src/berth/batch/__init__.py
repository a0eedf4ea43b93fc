"""Batch scoring: a registered version over a CSV, JSON-lines or Parquet file, in chunks, resumable.

`berth-py batch` (docs/python.md) is `run_batch`; `load_artifact` fetches a
version's ONNX bytes and metadata (from a server, a SQLite store or a model
repository), which `berth.spark` also uses.
"""

from __future__ import annotations

from berth.batch.artifacts import Artifact, ModelRef, load_artifact
from berth.batch.run import BatchResult, checkpoint_path, default_errors_path, run_batch
from berth.batch.scoring import RowError, Scorer, in_process, through_server

__all__ = [
    "Artifact",
    "BatchResult",
    "ModelRef",
    "RowError",
    "Scorer",
    "checkpoint_path",
    "default_errors_path",
    "in_process",
    "load_artifact",
    "run_batch",
    "through_server",
]
