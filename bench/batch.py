#!/usr/bin/env python3
"""Batch scoring rows/s: `berth-py batch` (in process) and `berth.spark` against pandas + scikit-learn.

A classifier (StandardScaler + LogisticRegression, or a 100-tree random
forest with --model forest) on 20 numeric features is imported as
`berth-py import --repository` does, and the same --rows rows (default 1M)
are scored file to file by each contender, end to end (read, predict, write):

- pandas + scikit-learn: `pd.read_parquet`/`read_csv`, `predict` and
  `predict_proba`, `to_parquet`/`to_csv` (the whole file in memory);
- `berth-py batch` in process (`berth.batch.run_batch`, the CLI's code):
  streamed in chunks of --chunk-rows, checkpointed after each;
- `berth.spark.score` in `local[2]` mode, Parquet in and out (the session's
  start is not counted; it is printed apart).

Run it alone (a few minutes at 1M rows on 2 cores):

    .venv/bin/python bench/batch.py [--rows 1000000] [--model logreg|forest] [--no-spark]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from berth.batch import run_batch
from berth.importer import import_model
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REPO_ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sklearn_file(model: object, source: Path, output: Path) -> None:
    frame = pd.read_parquet(source) if source.suffix == ".parquet" else pd.read_csv(source)
    X = frame.drop(columns=["id"])
    out = pd.DataFrame({"id": frame["id"], "label": model.predict(X)})  # type: ignore[attr-defined]
    probabilities = model.predict_proba(X)  # type: ignore[attr-defined]
    for j in range(probabilities.shape[1]):
        out[f"probability_{j}"] = probabilities[:, j]
    if output.suffix == ".parquet":
        out.to_parquet(output, index=False)
    else:
        out.to_csv(output, index=False)


def spark_file(repository: Path, source: Path, output: Path) -> tuple[float, float]:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT / "python" / "src"), os.environ.get("PYTHONPATH")])
    )
    import berth.spark
    from pyspark.sql import SparkSession

    start = time.perf_counter()
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter() - start
    try:
        seconds = timed(
            lambda: (
                berth.spark.score(spark.read.parquet(str(source)), "bench", repository=str(repository), keep=["id"])
                .write.mode("overwrite")
                .parquet(str(output))
            )
        )
    finally:
        spark.stop()
    return started, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--model", choices=["logreg", "forest"], default="logreg")
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="berth-bench-batch-"))
    try:
        X, y = make_classification(n_samples=5000, n_features=args.features, n_informative=10, random_state=0)
        columns = [f"x{i}" for i in range(args.features)]
        train = pd.DataFrame(X, columns=columns)
        estimator = (LogisticRegression(max_iter=1000) if args.model == "logreg"
                     else RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0))  # fmt: skip
        model = make_pipeline(StandardScaler(), estimator).fit(train, y)
        joblib.dump(model, work / "model.joblib")
        train.assign(target=y).to_csv(work / "train.csv", index=False)
        (work / "repo").mkdir()
        import_model(work / "model.joblib", name="bench", url=None, repository=str(work / "repo"),
                     sample_data=str(work / "train.csv"), target="target")  # fmt: skip

        rng = np.random.default_rng(1)
        rows = pd.DataFrame(rng.normal(0, 2, (args.rows, args.features)), columns=columns)
        rows.insert(0, "id", np.arange(args.rows))
        rows.to_parquet(work / "in.parquet", index=False, row_group_size=100_000)
        rows.to_csv(work / "in.csv", index=False)
        del rows

        figures: dict[str, float] = {}
        for fmt in ("parquet", "csv"):
            source = work / f"in.{fmt}"
            start = time.perf_counter()
            sklearn_file(model, source, work / f"sk.{fmt}")
            figures[f"sklearn_{fmt}"] = time.perf_counter() - start
            start = time.perf_counter()
            run_batch("bench", source, work / f"berth.{fmt}", repository=work / "repo", keep=["id"],
                      chunk_rows=args.chunk_rows, overwrite=True)  # fmt: skip
            figures[f"berth_batch_{fmt}"] = time.perf_counter() - start
        if not args.no_spark:
            figures["spark_start"], figures["berth_spark_parquet"] = spark_file(
                work / "repo", work / "in.parquet", work / "spark.parquet"
            )

        print(f"{args.rows} rows, {args.features} features, {args.model}, chunks of {args.chunk_rows}, "
              f"{os.cpu_count()} cores")  # fmt: skip
        print(f"{'contender':<32}{'seconds':>10}{'rows/s':>14}")
        for key, seconds in figures.items():
            if key == "spark_start":
                print(f"{'(spark session start, not counted)':<32}{seconds:>10.2f}")
                continue
            print(f"{key:<32}{seconds:>10.2f}{args.rows / seconds:>14,.0f}")
        if args.json:
            print(json.dumps({"rows": args.rows, "model": args.model, "seconds": figures}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
