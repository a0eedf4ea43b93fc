"""`berth-py batch --registry postgresql://...`: the store replicas share, read directly (read-only).

A real server on a private PostgreSQL store (scripts/private_postgres.sh)
registers two versions of a classifier and moves aliases; the batch run
then reads the records and the artifact from the database alone, and must
score as the server does, by number, by alias and by default. A wrong URL
or password, an unreachable database, an unknown model or alias and a
schema newer than this berth-py are one-line errors that write nothing.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import psycopg
import pytest
import requests
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import berth.spark
from berth.batch import checkpoint_path, default_errors_path
from berth.batch.postgres import SCHEMA_VERSION
from berth.cli import main as berth_py
from berth_server import REPO_ROOT, BerthServer, berth_binary, free_port
from python_models import breast_cancer, write_csv
from sanitizer import plain_build_only
from test_python_spark import spark  # noqa: F401 (the fixture)
from test_registry_postgres import SCRIPT, Postgres, postgres  # noqa: F401 (the fixture)

READER, READER_PASSWORD = "batch_reader", "s3cret-Pw"


def batch(*args: str) -> int:
    return berth_py(["batch", *args])


@pytest.fixture(scope="module")
def store(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, BerthServer]]:
    """A server on a new database: cancer 1 (production) and 2 (staging), weights far apart."""
    url = postgres.createdb()
    root = tmp_path_factory.mktemp("python_batch_postgres")
    (root / "models").mkdir()
    X, y = breast_cancer()
    sample = write_csv(root / "train.csv", X, y)
    with BerthServer.start(
        berth_binary(), root / "models", root / "berth.log", extra_args=["--registry", url]
    ) as server:
        for c in (1.0, 0.001):  # version 1, then 2
            fitted = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(X, y)
            joblib.dump(fitted, root / "cancer.joblib")
            args = ["import", str(root / "cancer.joblib"), "--name", "cancer", "--url", server.base_url,
                    "--sample-data", str(sample), "--target", "target"]  # fmt: skip
            assert berth_py(args) == 0
        for version, alias in ((1, "production"), (2, "staging")):
            moved = requests.post(
                f"{server.base_url}/v2/registry/models/cancer/promote",
                json={"version": version, "alias": alias},
                timeout=30,
            )
            assert moved.status_code == 200, moved.text
        yield url, server


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    X, _ = breast_cancer()
    rng = np.random.default_rng(11)
    picked = X.iloc[rng.integers(0, len(X), 800)].reset_index(drop=True)
    frame = (picked * rng.normal(1.0, 0.05, picked.shape)).assign(id=[f"r{i}" for i in range(800)])
    path = tmp_path_factory.mktemp("python_batch_postgres_in") / "in.csv"
    frame[["id", *X.columns]].to_csv(path, index=False)
    return path


def with_password(url: str, password: str | None, user: str = READER) -> str:
    """`url` (postgresql://berth@HOST:PORT/DB) for `user`, with `password` in it when given."""
    userinfo = user + (f":{password}" if password else "")
    return re.sub(r"^postgresql://[^@]*@", f"postgresql://{userinfo}@", url)


def test_the_store_scores_as_the_server_by_version_alias_and_default(
    store: tuple[str, BerthServer], source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, server = store
    answers = {}
    for ref, version in (("cancer:1", 1), ("cancer:2", 2), ("cancer@production", 1), ("cancer@staging", 2),
                         ("cancer", 1)):  # fmt: skip
        outputs = {}
        for door, where in (("store", ["--registry", url]), ("server", ["--url", server.base_url, "--through-server"])):
            output = tmp_path / f"{ref.replace('@', '_').replace(':', '_')}-{door}.csv"
            code = batch("--model", ref, *where, "--input", str(source), "--output", str(output), "--keep", "id",
                         "--chunk-rows", "300")  # fmt: skip
            out, err = capsys.readouterr()
            assert code == 0, f"{ref} {door}: {err}"
            assert f"cancer version {version} (" in out and "800 scored, 0 failed" in out, out
            outputs[door] = pd.read_csv(output, dtype={"id": str})
        assert list(outputs["store"].columns) == ["id", "label", "probability_0", "probability_1"]
        pd.testing.assert_frame_equal(outputs["store"], outputs["server"], check_exact=False, atol=1e-6, rtol=0)
        answers[ref] = outputs["store"]
    # The two versions answer differently, so the version each reference named is the one that scored.
    assert not np.allclose(answers["cancer:1"]["probability_1"], answers["cancer:2"]["probability_1"], atol=1e-3)


def test_the_password_comes_from_the_url_pgpassword_or_pgpass(
    store: tuple[str, BerthServer],
    postgres: Postgres,  # noqa: F811 (the fixture)
    source: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = store
    made = subprocess.run([str(SCRIPT), "password", str(postgres.directory), READER, READER_PASSWORD],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "absent.pgpass"))

    def run(registry: str, name: str) -> tuple[int, str, Path]:
        output = tmp_path / f"{name}.csv"
        code = batch("--model", "cancer@staging", "--registry", registry, "--input", str(source),
                     "--output", str(output))  # fmt: skip
        return code, capsys.readouterr().err, output

    code, err, _ = run(with_password(url, READER_PASSWORD), "in-url")
    assert code == 0, err
    # A wrong password: one line that says so, without the password, and no output.
    code, err, output = run(with_password(url, "not-the-pw"), "wrong")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("berth-py: error: cannot connect to the registry store"), err
    assert "password authentication failed" in err and "not-the-pw" not in err
    assert not output.exists() and not checkpoint_path(output).exists()
    # No password anywhere: refused too.
    code, err, _ = run(with_password(url, None), "none")
    assert code == 2 and "password" in err, err
    # From the environment, as libpq reads it.
    monkeypatch.setenv("PGPASSWORD", READER_PASSWORD)
    code, err, _ = run(with_password(url, None), "pgpassword")
    assert code == 0, err
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"*:*:*:{READER}:{READER_PASSWORD}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    code, err, _ = run(with_password(url, None), "pgpass")
    assert code == 0, err


def test_bad_stores_and_references_are_one_line_errors_that_write_nothing(
    store: tuple[str, BerthServer],
    postgres: Postgres,  # noqa: F811 (the fixture)
    source: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = store
    newer = postgres.createdb()
    with psycopg.connect(newer, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES (%s, 'later')", (SCHEMA_VERSION + 1,))
    empty = postgres.createdb()
    cases = [
        ("cancer", "postgresql://berth:pw@[::1", "is not a usable PostgreSQL URL"),
        ("cancer", f"postgresql://berth@127.0.0.1:{free_port()}/berth", "cannot connect to the registry store"),
        ("cancer", url.rsplit("/", 1)[0] + "/no_such_db", 'database "no_such_db" does not exist'),
        ("cancer", newer, f"has schema version {SCHEMA_VERSION + 1}, newer than this berth-py understands"),
        ("cancer", empty, "is not a Berth registry store"),
        ("nosuch", url, "model 'nosuch' has no active version"),
        ("cancer@canary", url, "model 'cancer' has no alias 'canary'"),
        ("cancer:9", url, "model 'cancer' has no active version 9"),
    ]
    for model, registry, message in cases:
        output = tmp_path / f"out-{uuid.uuid4().hex[:8]}.parquet"
        code = batch("--model", model, "--registry", registry, "--input", str(source), "--output", str(output))
        err = capsys.readouterr().err
        assert code == 2, (model, registry, err)
        assert err.startswith("berth-py: error: ") and err.count("\n") == 1 and message in err, err
        assert "pw@" not in err
        assert not output.exists() and not checkpoint_path(output).exists()
        assert not default_errors_path(output).exists()


def test_this_berth_py_reads_the_schema_the_server_writes() -> None:
    """berth.batch.postgres.SCHEMA_VERSION is the number of migrations the server applies."""
    schema = (REPO_ROOT / "src" / "registry" / "postgres_schema.cc").read_text()
    assert schema.count('R"sql(') == SCHEMA_VERSION, "a new PostgreSQL migration: check berth.batch.postgres reads it"


@plain_build_only
def test_spark_scores_from_the_store(
    store: tuple[str, BerthServer], spark: Any, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, server = store
    rows = pd.read_csv(source, dtype={"id": str})
    scored = berth.spark.score(spark.createDataFrame(rows).repartition(2), "cancer@staging", registry=url, keep=["id"])
    got = scored.toPandas().sort_values("id").reset_index(drop=True)
    output = tmp_path / "server.csv"
    code = batch("--model", "cancer:2", "--url", server.base_url, "--through-server", "--input", str(source),
                 "--output", str(output), "--keep", "id")  # fmt: skip
    assert code == 0, capsys.readouterr().err
    expected = pd.read_csv(output, dtype={"id": str}).sort_values("id").reset_index(drop=True)
    assert got["error"].isna().all()
    np.testing.assert_array_equal(got["label"].to_numpy(dtype=np.int64), expected["label"].to_numpy())
    np.testing.assert_allclose(got[["probability_0", "probability_1"]].to_numpy(),
                               expected[["probability_0", "probability_1"]].to_numpy(), atol=1e-6, rtol=0)  # fmt: skip
