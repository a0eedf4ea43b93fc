"""Scoring a Spark DataFrame with a registered version: `berth.spark.score(df, "churn@production", url=...)`.

The driver fetches the version's ONNX artifact once (from a server, a SQLite
store or a model repository, as `berth-py batch` does, digest checked) and
broadcasts its bytes; each executor's Python worker builds one onnxruntime
session per version (cached by digest, so the model loads once per worker
process, not per task or batch) and scores the partitions with
`mapInPandas`, Arrow batch by Arrow batch. Rows come back in the input's
order with the kept columns, the predictions (`label` and
`probability_<class>`, or `prediction`) and `error`: null for a scored row,
else the reason the row was not scored (its predictions null), so no row
is silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from berth.batch.artifacts import Artifact, load_artifact
from berth.batch.scoring import Scorer, check_columns, in_process
from berth.errors import BerthError

ERROR_COLUMN = "error"

# Per Python worker: digest → Scorer. A worker runs many tasks (spark.python.worker.reuse), so a
# version's session is built once per worker process.
_SCORERS: dict[tuple[str, tuple[str, ...], tuple[str, ...] | None, int], Scorer] = {}
sessions_built = 0  # in this process, for the test that the cache holds


def _scorer(artifact: Artifact, keep: list[str], features: list[str] | None, threads: int) -> Scorer:
    global sessions_built
    key = (artifact.digest, tuple(keep), tuple(features) if features else None, threads)
    if key not in _SCORERS:
        _SCORERS[key] = in_process(artifact, keep=keep, features=features, threads=threads)
        sessions_built += 1
    return _SCORERS[key]


def score_frame(scorer: Scorer, frame: pd.DataFrame) -> pd.DataFrame:
    """Every row of `frame`, in order: kept columns, predictions (null where the row failed) and `error`."""
    scored, errors = scorer.score(frame.reset_index(drop=True), 0)
    failed = {e.row: e.reason for e in errors}
    good = np.array([i not in failed for i in range(len(frame))], dtype=bool)
    names = [*scorer.keep, *scorer.column_names()]
    out = pd.DataFrame(index=range(len(frame)))
    textual = any(isinstance(c, str) for c in scorer.signature.class_labels)
    for name in names:
        if name in scorer.keep:
            out[name] = frame[name].reset_index(drop=True)
            continue
        values = scored[name].to_numpy() if name in scored else None
        if name == "label" and not textual:
            column: Any = pd.array([pd.NA] * len(frame), dtype="Int64")  # null where the row failed
        elif name == "label":
            column = np.full(len(frame), None, dtype=object)
        else:
            column = np.full(len(frame), np.nan)
        if values is not None and good.any():
            column[good] = values
        out[name] = column
    out[ERROR_COLUMN] = [failed.get(i) for i in range(len(frame))]
    return out


def _output_schema(df: Any, scorer: Scorer) -> Any:
    from pyspark.sql import types as T

    fields = [df.schema[name] for name in scorer.keep]
    if scorer.signature.task == "classification":
        labels = scorer.signature.class_labels
        textual = any(isinstance(c, str) for c in labels)
        fields.append(T.StructField("label", T.StringType() if textual else T.LongType(), True))
        fields += [T.StructField(f"probability_{c}", T.DoubleType(), True) for c in labels]
        if not labels:
            raise BerthError("the version records no class_labels: berth.spark needs them to name its columns")
    else:
        fields.append(T.StructField("prediction", T.DoubleType(), True))
    fields.append(T.StructField(ERROR_COLUMN, T.StringType(), True))
    return T.StructType(fields)


def score(
    df: Any,
    model: str,
    *,
    url: str | None = None,
    registry: str | None = None,
    repository: str | None = None,
    api_key: str | None = None,
    keep: list[str] | None = None,
    features: list[str] | None = None,
    threads: int = 1,
) -> Any:
    """`df` scored by the version `model` names (NAME, NAME:VERSION, NAME@ALIAS); a new DataFrame.

    Exactly one of `url` (a server: the artifact route, admin scope),
    `registry` (sqlite:PATH or postgresql://...) or `repository` (a directory) says where the
    version is. `threads` is onnxruntime's per task (Spark runs a task per
    core already). A column the model needs that `df` lacks is a BerthError
    here, on the driver, before any task runs.
    """
    artifact = load_artifact(model, url=url, registry=registry, repository=repository, api_key=api_key)
    keep = list(keep or [])
    scorer = in_process(artifact, keep=keep, features=features, threads=threads)
    check_columns(scorer.signature, list(df.columns), "DataFrame")
    missing = [c for c in keep if c not in df.columns]
    if missing:
        raise BerthError(f"keep names column(s) the DataFrame lacks: {', '.join(missing)}")
    schema = _output_schema(df, scorer)
    needed = list(dict.fromkeys([*scorer.signature.feature_names, *keep]))
    shared = df.sparkSession.sparkContext.broadcast(artifact)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        worker_scorer = _scorer(shared.value, keep, features, threads)
        for batch in batches:
            yield score_frame(worker_scorer, batch)

    from pyspark.sql import functions as F

    columns = [F.col("`" + c.replace("`", "``") + "`") for c in needed]  # quoted: names may hold dots or spaces
    return df.select(*columns).mapInPandas(run, schema)
