"""`berth.spark.score`: a Spark DataFrame scored by a registered version in real PySpark (local[2]).

The version is imported into a real server; the driver fetches its artifact
there, the executors' Python workers score with onnxruntime. Answers must be
scikit-learn's, row for row; a row the model cannot take comes back with its
reason in `error`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

import berth.spark
from berth.cli import main as berth_py
from berth.errors import BerthError
from berth_server import REPO_ROOT, BerthServer, berth_binary
from python_models import iris, write_csv
from sanitizer import plain_build_only

pytestmark = plain_build_only


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    root = tmp_path_factory.mktemp("python_spark")
    (root / "models").mkdir()
    with BerthServer.start(berth_binary(), root / "models", root / "berth.log") as server:
        yield server


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as env:
        # The executors' Python workers: this interpreter, importing this checkout's berth package.
        env.setenv("PYSPARK_PYTHON", sys.executable)
        env.setenv("PYTHONPATH", str(REPO_ROOT / "python" / "src"), prepend=os.pathsep)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("berth-spark-test")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.driver.memory", "1g")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        gateway = SparkContext._gateway
        try:
            yield session
        finally:
            session.stop()
            # The JVM would otherwise live as long as pytest does.
            process = getattr(gateway, "proc", None)
            gateway.shutdown()
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
            SparkContext._gateway = SparkContext._jvm = None


def test_spark_scores_equal_sklearn(server: BerthServer, spark: Any, tmp_path: Path) -> None:
    X, y = iris()
    fitted = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    joblib.dump(fitted, tmp_path / "iris.joblib")
    sample = write_csv(tmp_path / "train.csv", X, y)
    assert berth_py(["import", str(tmp_path / "iris.joblib"), "--name", "iris", "--url", server.base_url,
                     "--sample-data", str(sample), "--target", "target"]) == 0  # fmt: skip

    rng = np.random.default_rng(3)
    rows = X.iloc[rng.integers(0, len(X), 5000)].reset_index(drop=True) * rng.normal(1.0, 0.03, (5000, X.shape[1]))
    rows = rows.assign(id=np.arange(len(rows)))
    rows.loc[17, "petal_length_cm"] = np.nan  # a row the model cannot take
    frame = spark.createDataFrame(rows).repartition(4)

    scored = berth.spark.score(frame, "iris:1", url=server.base_url, keep=["id"])
    got = scored.toPandas().sort_values("id").reset_index(drop=True)
    assert list(got.columns) == ["id", "label", "probability_0", "probability_1", "probability_2", "error"]
    assert len(got) == len(rows) and got["id"].is_unique

    assert got.loc[17, "error"] == "column 'petal_length_cm' is empty"
    assert pd.isna(got.loc[17, "label"]) and np.isnan(got.loc[17, "probability_0"])
    ok = got.drop(index=17)
    assert ok["error"].isna().all()
    expected = rows.drop(index=17).drop(columns=["id"])
    np.testing.assert_array_equal(ok["label"].to_numpy(dtype=np.int64), fitted.predict(expected))
    np.testing.assert_allclose(ok[["probability_0", "probability_1", "probability_2"]].to_numpy(),
                               fitted.predict_proba(expected), atol=1e-5, rtol=0)  # fmt: skip

    # One session per Python worker, however many tasks and batches it ran: the workers (reused, as
    # Spark does by default) report how many they built.
    tasks = frame.rdd.getNumPartitions()

    def probe(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for _ in batches:
            yield pd.DataFrame({"pid": [os.getpid()], "built": [berth.spark.sessions_built]})

    # A job of the same kind (Arrow batches to pandas), so it draws on the same pool of workers.
    found = spark.range(0, 16, numPartitions=16).mapInPandas(probe, "pid long, built long").distinct().collect()
    built = [(row.pid, row.built) for row in found]
    assert all(n <= 1 for _, n in built), built  # never a second session in one worker
    assert any(n == 1 for _, n in built), built  # a worker that scored is still there, its session with it
    assert sum(n for _, n in built) < tasks, (built, tasks)

    # A column the model needs and the frame lacks: refused on the driver, before any task runs.
    with pytest.raises(BerthError, match="lacks the model's feature column"):
        berth.spark.score(frame.drop("sepal_width_cm"), "iris", url=server.base_url)
