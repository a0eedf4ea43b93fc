"""`berth-py batch`: a registered version over CSV, JSON-lines and Parquet files, against scikit-learn's answers.

The version is imported into a real server; the batch run fetches its
artifact (in process), or sends the rows to the server (--through-server),
or reads the server's model repository and SQLite store directly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from berth.batch import checkpoint_path
from berth.cli import main as berth_py
from berth_server import REPO_ROOT, BerthServer, berth_binary
from python_models import breast_cancer, diabetes, mixed_columns, write_csv

# float32 inside the graph, float64 in scikit-learn: the import's parity tolerance.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    root = tmp_path_factory.mktemp("python_batch")
    (root / "models").mkdir()
    with BerthServer.start(berth_binary(), root / "models", root / "berth.log") as server:
        yield server


@pytest.fixture(scope="module")
def model(server: BerthServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A classifier registered as cancer version 1, promoted to `production`."""
    tmp = tmp_path_factory.mktemp("python_batch_model")
    X, y = breast_cancer()
    fitted = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    joblib.dump(fitted, tmp / "cancer.joblib")
    sample = write_csv(tmp / "train.csv", X, y)
    args = ["import", str(tmp / "cancer.joblib"), "--name", "cancer", "--url", server.base_url,
            "--sample-data", str(sample), "--target", "target"]  # fmt: skip
    assert berth_py(args) == 0
    promoted = requests.post(
        f"{server.base_url}/v2/registry/models/cancer/promote", json={"version": 1, "alias": "production"}, timeout=30
    )
    assert promoted.status_code == 200, promoted.text
    return fitted


def rows(n: int) -> pd.DataFrame:
    """`n` rows drawn from the data set with noise, and an id column to keep."""
    X, _ = breast_cancer()
    rng = np.random.default_rng(7)
    picked = X.iloc[rng.integers(0, len(X), n)].reset_index(drop=True)
    noisy = picked * rng.normal(1.0, 0.05, picked.shape)
    return noisy.assign(id=[f"r{i}" for i in range(n)])[["id", *X.columns]]


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, double_precision=15)
    else:
        frame.to_parquet(path, index=False)
    return path


def read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"id": str})
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype={"id": str})
    return pd.read_parquet(path)


def assert_matches_sklearn(out: pd.DataFrame, frame: pd.DataFrame, fitted: Any) -> None:
    X = frame.drop(columns=["id"])
    assert list(out.columns) == ["id", "label", "probability_0", "probability_1"]
    assert out["id"].tolist() == frame["id"].tolist()  # every row, once, in order
    np.testing.assert_array_equal(out["label"].to_numpy(), fitted.predict(X))
    np.testing.assert_allclose(out[["probability_0", "probability_1"]].to_numpy(), fitted.predict_proba(X),
                               atol=TOLERANCE, rtol=0)  # fmt: skip


def batch(*args: str) -> int:
    return berth_py(["batch", *args])


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_file_round_trip_equals_sklearn(
    server: BerthServer, model: Any, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = rows(3000)
    source = write(frame, tmp_path / f"in{suffix}")
    output = tmp_path / f"out{suffix}"
    code = batch("--model", "cancer@production", "--url", server.base_url, "--input", str(source),
                 "--output", str(output), "--keep", "id", "--chunk-rows", "700")  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "cancer version 1 (in process): 3000 rows read, 3000 scored, 0 failed" in out
    assert_matches_sklearn(read(output), frame, model)
    assert not checkpoint_path(output).exists()
    assert not (tmp_path / f"out{suffix}.errors.jsonl").exists()


def test_through_server_store_and_repository_agree(
    server: BerthServer, model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = rows(1500)
    source = write(frame, tmp_path / "in.parquet")
    repository = server.log_path.parent / "models"
    doors = {
        "server": ["--url", server.base_url, "--through-server"],
        "store": ["--registry", f"sqlite:{repository / '.berth' / 'registry.db'}"],
        "repository": ["--repository", str(repository)],
    }
    for door, where in doors.items():
        output = tmp_path / f"{door}.csv"
        code = batch("--model", "cancer@production", *where, "--input", str(source), "--output", str(output),
                     "--keep", "id", "--chunk-rows", "400")  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 0, f"{door}: {err}"
        assert "1500 scored, 0 failed" in out, door
        assert_matches_sklearn(read(output), frame, model)


def test_an_interrupted_run_resumes_to_the_same_output(
    server: BerthServer, model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = rows(2000)
    source = write(frame, tmp_path / "in.csv")
    corrupt = source.read_text().splitlines()
    corrupt[500] += ",1.0"  # a ragged line, reported with the chunk whose block it was read in (the first)
    corrupt[1700] = corrupt[1700].replace(",", ",x", 3)  # text in numbers, a chunk after the stop
    source.write_text("\n".join(corrupt) + "\n")
    for suffix in (".csv", ".parquet", ".jsonl"):
        whole, resumed = tmp_path / f"whole{suffix}", tmp_path / f"resumed{suffix}"
        common = ["--model", "cancer:1", "--url", server.base_url, "--input", str(source), "--keep", "id",
                  "--chunk-rows", "300"]  # fmt: skip
        assert batch(*common, "--output", str(whole)) == 0
        # Stopped before its first chunk (as a kill while writing it would): a checkpoint of nothing done.
        assert batch(*common, "--output", str(resumed), "--max-chunks", "0") == 3
        assert json.loads(checkpoint_path(resumed).read_text())["chunks"] == 0
        if suffix != ".parquet":
            resumed.write_bytes(b"id,label,prob")  # the first chunk, half written
        assert batch(*common, "--output", str(resumed), "--max-chunks", "2") == 3
        out, _ = capsys.readouterr()
        assert "stopped after 2 chunk(s); the same command resumes it" in out
        state = json.loads(checkpoint_path(resumed).read_text())
        assert state["chunks"] == 2 and state["rows"] == 601  # 600 rows and the ragged line
        if suffix != ".parquet":
            # A chunk half written when the run died: the resumed run cuts it off.
            with resumed.open("ab") as f:
                f.write(b"r999,1,0.5")
        # Another run's arguments are refused, and the checkpoint stays.
        assert batch(*common[:-1], "200", "--output", str(resumed)) == 2
        assert "is of another run (chunk_rows was 300, now 200)" in capsys.readouterr().err
        assert batch(*common, "--output", str(resumed)) == 0
        out, _ = capsys.readouterr()
        assert "resumed after 2 chunk(s)): 2000 rows read, 1998 scored, 2 failed" in out
        assert resumed.read_bytes() == whole.read_bytes(), suffix
        errors = [json.loads(line) for line in (tmp_path / f"resumed{suffix}.errors.jsonl").read_text().splitlines()]
        assert errors == [
            json.loads(line) for line in (tmp_path / f"whole{suffix}.errors.jsonl").read_text().splitlines()
        ]
        assert len(errors) == 2
        got = read(resumed)
        assert got["id"].is_unique and len(got) == 1998


def test_a_killed_run_resumes_without_duplicates(server: BerthServer, model: Any, tmp_path: Path) -> None:
    frame = rows(40_000)
    source = write(frame, tmp_path / "in.jsonl")
    output = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "berth.cli", "batch", "--model", "cancer", "--url", server.base_url,
               "--input", str(source), "--output", str(output), "--keep", "id", "--chunk-rows", "500"]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "python" / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = checkpoint_path(output)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if marker.exists() and json.loads(marker.read_text() or "{}").get("chunks", 0) >= 3:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the run finished before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert marker.exists()
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after" in resumed.stdout
    out = read(output)
    assert out["id"].is_unique
    assert_matches_sklearn(out, frame, model)


def test_a_wrong_column_is_a_clear_error_and_writes_nothing(
    server: BerthServer, model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = rows(50).rename(columns={"mean_radius": "radius"})
    source = write(frame, tmp_path / "in.csv")
    output = tmp_path / "out.csv"
    assert batch("--model", "cancer", "--url", server.base_url, "--input", str(source), "--output", str(output)) == 2
    err = capsys.readouterr().err
    assert err.startswith("berth-py: error: the input") and "lacks the model's feature column(s) mean_radius" in err
    assert not output.exists() and not checkpoint_path(output).exists()
    # --keep of a column the file lacks, an unknown alias, a format it does not read: the same.
    cases = [
        (["--model", "cancer", "--keep", "nope"], "--keep names column(s) the input"),
        (["--model", "cancer@staging"], "has no alias 'staging'"),
    ]
    good = write(rows(10), tmp_path / "good.csv")
    for extra, message in cases:
        assert batch(*extra, "--url", server.base_url, "--input", str(good), "--output", str(output)) == 2
        assert message in capsys.readouterr().err
        assert not output.exists()
    assert (
        batch("--model", "cancer", "--url", server.base_url, "--input", str(good), "--output", str(tmp_path / "o.xlsx"))
        == 2
    )
    assert "is not .csv, .jsonl or .parquet" in capsys.readouterr().err
    # A store that cannot be reached (tests/integration/test_python_batch_postgres.py reads a real one).
    where = ["--registry", "postgresql://berth@127.0.0.1:1/registry"]
    assert batch("--model", "cancer", *where, "--input", str(good), "--output", str(output)) == 2
    assert "cannot connect to the registry store berth@127.0.0.1:1/registry" in capsys.readouterr().err
    assert not output.exists()
    # A finished output is not overwritten without --overwrite.
    assert batch("--model", "cancer", "--url", server.base_url, "--input", str(good), "--output", str(output)) == 0
    assert batch("--model", "cancer", "--url", server.base_url, "--input", str(good), "--output", str(output)) == 2
    assert "pass --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("through_server", [False, True])
def test_corrupt_rows_go_to_the_errors_file_and_nothing_is_lost(
    server: BerthServer, model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], through_server: bool
) -> None:
    frame = rows(400)
    source = write(frame, tmp_path / "in.csv")
    lines = source.read_text().splitlines()
    header = lines[0].split(",")
    bad_text = lines[11].split(",")
    bad_text[header.index("mean_area")] = "twelve"
    lines[11] = ",".join(bad_text)  # row id r10
    empty = lines[21].split(",")
    empty[header.index("worst_texture")] = ""
    lines[21] = ",".join(empty)  # row id r20
    lines[31] = lines[31] + ",7"  # ragged: line 32 of the file, row id r30
    source.write_text("\n".join(lines) + "\n")
    output, errors = tmp_path / "out.parquet", tmp_path / "failed.jsonl"
    where = ["--url", server.base_url] + (["--through-server"] if through_server else [])
    code = batch("--model", "cancer", *where, "--input", str(source), "--output", str(output),
                 "--errors", str(errors), "--keep", "id", "--chunk-rows", "128")  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "400 rows read, 397 scored, 3 failed" in out
    records = [json.loads(line) for line in errors.read_text().splitlines()]
    reasons = {r.get("values", {}).get("id") or r.get("text", "")[:3]: r["reason"] for r in records}
    assert reasons == {
        "r10": "column 'mean_area' holds 'twelve', which is not a finite number",
        "r20": "column 'worst_texture' is empty",
        "r30": f"the line has {len(header) + 1} fields; the header has {len(header)}",
    }
    assert next(r for r in records if "line" in r)["line"] == 32
    got = read(output)
    kept = frame[~frame["id"].isin(["r10", "r20", "r30"])].reset_index(drop=True)
    assert_matches_sklearn(got, kept, model)


@pytest.mark.parametrize("through_server", [False, True])
def test_one_input_per_column_and_a_regressor(
    server: BerthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], through_server: bool
) -> None:
    """A model fed one column per input (a string among them) and a regressor's `prediction`."""
    X, y = mixed_columns()
    numeric = [c for c in X.columns if c != "colour"]
    mixed = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["colour"])]),
        LogisticRegression(max_iter=1000),
    ).fit(X, y)
    Xd, yd = diabetes()
    regressor = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(Xd, yd)
    for name, fitted, data, target in (("mixed", mixed, X, y), ("sugar", regressor, Xd, yd)):
        if not (server.log_path.parent / "models" / name).exists():
            joblib.dump(fitted, tmp_path / f"{name}.joblib")
            sample = write_csv(tmp_path / f"{name}_train.csv", data, target)
            args = ["import", str(tmp_path / f"{name}.joblib"), "--name", name, "--url", server.base_url,
                    "--sample-data", str(sample), "--target", "target"]  # fmt: skip
            assert berth_py(args) == 0
    capsys.readouterr()
    where = ["--url", server.base_url] + (["--through-server"] if through_server else [])

    source = write(X.iloc[::-1].reset_index(drop=True), tmp_path / "mixed_in.jsonl")
    assert batch("--model", "mixed", *where, "--input", str(source), "--output", str(tmp_path / "mixed.csv")) == 0
    got = pd.read_csv(tmp_path / "mixed.csv")
    expected = X.iloc[::-1].reset_index(drop=True)
    assert list(got.columns) == ["label", "probability_0", "probability_1", "probability_2"]
    np.testing.assert_array_equal(got["label"].to_numpy(), mixed.predict(expected))
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(), mixed.predict_proba(expected), atol=TOLERANCE, rtol=0)

    source = write(Xd, tmp_path / "sugar_in.parquet")
    assert batch("--model", "sugar", *where, "--input", str(source), "--output", str(tmp_path / "sugar.parquet")) == 0
    got = pd.read_parquet(tmp_path / "sugar.parquet")
    assert list(got.columns) == ["prediction"]
    want = regressor.predict(Xd)
    np.testing.assert_allclose(got["prediction"].to_numpy(), want, rtol=TOLERANCE, atol=TOLERANCE * np.abs(want).max())


def test_a_resumed_run_keeps_the_version_it_started_with(
    server: BerthServer, model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(rows(900), tmp_path / "in.csv")
    output = tmp_path / "out.csv"
    common = ["--model", "cancer@production", "--url", server.base_url, "--input", str(source), "--output",
              str(output), "--chunk-rows", "300"]  # fmt: skip
    assert batch(*common, "--max-chunks", "1") == 3
    assert "cancer version 1 (in process)" in capsys.readouterr().out
    # production moves to a version 2 while the run is stopped.
    joblib.dump(model, tmp_path / "cancer.joblib")
    assert berth_py(["import", str(tmp_path / "cancer.joblib"), "--name", "cancer", "--url", server.base_url]) == 0
    promote = f"{server.base_url}/v2/registry/models/cancer/promote"
    try:
        assert requests.post(promote, json={"version": 2, "alias": "production"}, timeout=30).status_code == 200
        capsys.readouterr()
        assert batch(*common) == 0
        assert "cancer version 1 (in process, resumed after 1 chunk(s)): 900 rows read" in capsys.readouterr().out
    finally:
        requests.post(promote, json={"version": 1, "alias": "production"}, timeout=30)


def test_a_server_that_goes_away_stops_the_run_and_it_resumes_through_another(
    server: BerthServer, model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repository = tmp_path / "models"
    # Version 1 only (the policy would serve the latest): the same model on another server.
    only_one = shutil.ignore_patterns("[2-9]*")
    shutil.copytree(server.log_path.parent / "models" / "cancer", repository / "cancer", ignore=only_one)
    frame = rows(1200)
    source = write(frame, tmp_path / "in.csv")
    output = tmp_path / "out.csv"

    def run(url: str, *extra: str) -> int:
        return batch("--model", "cancer:1", "--url", url, "--through-server", "--input", str(source), "--output",
                     str(output), "--keep", "id", "--chunk-rows", "400", *extra)  # fmt: skip

    with BerthServer.start(berth_binary(), repository, tmp_path / "first.log") as first:
        assert run(first.base_url, "--max-chunks", "1") == 3
        gone = first.base_url
    capsys.readouterr()
    assert run(gone) == 2
    assert "cannot reach the Berth server" in capsys.readouterr().err
    assert json.loads(checkpoint_path(output).read_text())["chunks"] == 1  # nothing lost, nothing counted twice
    with BerthServer.start(berth_binary(), repository, tmp_path / "second.log") as second:
        assert run(second.base_url) == 0
    assert "cancer version 1 (through the server, resumed after 1 chunk(s)): 1200 rows read" in capsys.readouterr().out
    assert_matches_sklearn(read(output), frame, model)
