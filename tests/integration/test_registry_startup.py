"""A registry store that will not open stops the server at start (issue #11):
a schema from a newer Berth, a corrupt file, a wrong PostgreSQL password.
Serving without the store would drop its aliases and statuses and serve the
highest version directory instead of the promoted one. Only a default store
that does not exist and cannot be created (a read-only repository) leaves the
server serving the directories alone."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Final

import psycopg
import pytest

from berth_server import BerthServer, berth_binary, free_port
from models import ALL_VERSIONS_MODEL, ModelRepository, model_config
from test_registry_postgres import SCRIPT, Postgres, postgres  # noqa: F401 (the module's fixture)
from train_models import export_model
from v2 import V2Client

MODEL: Final = "churn"
START_TIMEOUT_S: Final = 30  # an old berth served on; this one exits at once
FUTURE_SCHEMA: Final = 999


@pytest.fixture
def repo(model_repository: ModelRepository, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for version in (1, 2):
        model = model_repository.model(ALL_VERSIONS_MODEL, version)
        export_model(model, root, version=version, config=model_config(model, name=MODEL))
    return root


def refused_start(repo: Path, *extra: str) -> str:
    """`berth serve` exits non-zero before serving; its output."""
    done = subprocess.run(
        [str(berth_binary()), "serve", "--model-repository", str(repo), "--host", "127.0.0.1",
         "--http-port", str(free_port()), "--grpc-port", "0", "--log-format", "text", *extra],
        capture_output=True, text=True, check=False, timeout=START_TIMEOUT_S,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0, f"berth served without its registry store:\n{output}"
    assert "berth is serving" not in output
    return output


def error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if "cannot start" in line]
    assert len(lines) == 1, output
    return lines[0]


def future_sqlite_schema(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        db.execute("INSERT INTO schema_migrations VALUES (?, '2030-01-01T00:00:00Z')", (FUTURE_SCHEMA,))
    db.close()


def test_a_default_store_from_a_newer_berth_stops_the_start(repo: Path) -> None:
    db = repo / ".berth" / "registry.db"
    future_sqlite_schema(db)
    line = error_line(refused_start(repo))
    assert f"version {FUTURE_SCHEMA}) is newer than this berth understands" in line
    assert str(db) in line


def test_a_corrupt_default_store_stops_the_start(repo: Path) -> None:
    db = repo / ".berth" / "registry.db"
    db.parent.mkdir()
    db.write_bytes(b"not a database, " * 512)
    line = error_line(refused_start(repo))
    assert str(db) in line and "not a database" in line
    assert db.read_bytes() == b"not a database, " * 512, "berth changed the file it could not read"


def test_an_explicit_sqlite_store_from_a_newer_berth_stops_the_start(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "registry.db"
    future_sqlite_schema(db)
    line = error_line(refused_start(repo, "--registry", f"sqlite:{db}"))
    assert f"version {FUTURE_SCHEMA}) is newer than this berth understands" in line


def test_a_default_store_that_cannot_be_created_serves_the_directories(repo: Path, tmp_path: Path) -> None:
    # A file where .berth/ would go: the store cannot be created (as on a
    # read-only repository, which root, running these tests, cannot make).
    (repo / ".berth").write_text("in the way")
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server, V2Client(
        server.base_url
    ) as client:
        assert client.get(f"/v2/models/{MODEL}/ready").status_code == 200
        assert "running without a registry store" in server.log()


def test_a_postgres_store_from_a_newer_berth_stops_the_start(
    postgres: Postgres, repo: Path, tmp_path: Path  # noqa: F811
) -> None:
    url = postgres.createdb()
    with BerthServer.start(berth_binary(), tmp_path / "first", tmp_path / "first.log", extra_args=["--registry", url]):
        pass  # the current schema, migrated
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO schema_migrations(version, applied_at) VALUES (%s, '2030-01-01T00:00:00Z')", (FUTURE_SCHEMA,)
        )
    line = error_line(refused_start(repo, "--registry", url))
    assert f"version {FUTURE_SCHEMA}) is newer than this berth understands" in line


def test_a_wrong_postgres_password_stops_the_start_without_echoing_it(
    postgres: Postgres, repo: Path  # noqa: F811
) -> None:
    right, wrong = "the-right-one", "wr0ng-s3cret-pw"
    made = subprocess.run(
        [str(SCRIPT), "password", str(postgres.directory), "replica", right],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    url = postgres.createdb()
    assert "//berth@" in url
    output = refused_start(repo, "--registry", url.replace("//berth@", f"//replica:{wrong}@"))
    line = error_line(output)
    assert "password authentication failed" in line, line
    assert wrong not in output
    # The right password is let in: the refusal was the password's.
    with psycopg.connect(url.replace("//berth@", f"//replica:{right}@")) as connection:
        assert connection.execute("SELECT current_user").fetchone() == ("replica",)
