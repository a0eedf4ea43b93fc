#!/usr/bin/env python3
"""Import time of the bundled examples: `berth-py import` of examples/train_models.py's three estimators.

Each estimator is trained as the example script trains it, dumped with
joblib, and imported into a temporary model repository, with its training
rows as --sample-data (parity on them and the baseline profile). The time is
the command's wall time, Python's start-up and imports included, the median
of --repeat runs. Not part of bench/run.py's serving comparison; run it alone:

    .venv/bin/python bench/python_import.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

EXAMPLES = {
    "iris_logreg": (load_iris, lambda: LogisticRegression(max_iter=1000)),
    "breast_cancer_rf": (
        load_breast_cancer,
        lambda: make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0)),
    ),
    "diabetes_gbr": (load_diabetes, lambda: GradientBoostingRegressor(random_state=0)),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| model | rows | import (median wall time) |\n| --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="berth-import-bench-") as tmp:
        root = Path(tmp)
        for name, (load, make) in EXAMPLES.items():
            data = load(as_frame=True)
            X = data.data.rename(columns=lambda c: str(c).replace(" ", "_"))
            joblib.dump(make().fit(X, data.target), root / f"{name}.joblib")
            X.assign(target=data.target).to_csv(root / f"{name}.csv", index=False)
            times = []
            for i in range(args.repeat):
                start = time.perf_counter()
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "berth.cli",
                        "import",
                        str(root / f"{name}.joblib"),
                        "--name",
                        name,
                        "--repository",
                        str(root / f"repo{i}"),
                        "--sample-data",
                        str(root / f"{name}.csv"),
                        "--target",
                        "target",
                    ],
                    check=True,
                    capture_output=True,
                )
                times.append(time.perf_counter() - start)
            print(f"| {name} | {len(X)} | {statistics.median(times):.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
