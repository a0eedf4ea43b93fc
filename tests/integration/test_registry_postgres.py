"""Registry replicas on one PostgreSQL (issue #7): Berth servers with their
own, empty model repositories and no shared disk share versions (artifacts
included), aliases, splits, shadows and the audit log through a real
PostgreSQL server, and each serves what another pushed and moved within 5 s.

The PostgreSQL server is private to this module: scripts/private_postgres.sh
runs initdb/pg_ctl on a free port as a non-root user, and every test gets a
new database.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, TypeVar

import pytest

from berth_server import REPO_ROOT, BerthServer, berth_binary, free_port
from models import ALL_VERSIONS_MODEL, ModelRepository
from train_models import export_model, model_config
from v2 import V2Client

MODEL: Final = "churn"
SCRIPT: Final = REPO_ROOT / "scripts" / "private_postgres.sh"
# The promise: a move on one replica is served by the others within 5 s.
SYNC_DEADLINE_S: Final = 5.0
T = TypeVar("T")


class Postgres:
    """A private PostgreSQL server started by scripts/private_postgres.sh."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def createdb(self) -> str:
        """A new, empty database; its postgresql:// URL."""
        name = "it_" + uuid.uuid4().hex[:12]
        done = subprocess.run(
            [str(SCRIPT), "createdb", str(self.directory), name], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    directory = tmp_path_factory.mktemp("postgres")
    started = subprocess.run([str(SCRIPT), "start", str(directory)], capture_output=True, text=True, check=False)
    try:
        assert started.returncode == 0, f"cannot start PostgreSQL:\n{started.stderr}"
        skip = directory / "skip"
        if skip.exists():
            pytest.skip(skip.read_text().strip())
        yield Postgres(directory)
    finally:
        subprocess.run([str(SCRIPT), "stop", str(directory)], check=False)
        shutil.rmtree(directory, ignore_errors=True)


def artifact(model_repository: ModelRepository, version: int) -> bytes:
    """The ONNX bytes of the iris model's version 1 or 2 (same signature, other weights)."""
    model = model_repository.model(ALL_VERSIONS_MODEL, version)
    with tempfile.TemporaryDirectory() as tmp:
        export_model(model, Path(tmp), version=1, config=model_config(model, name=MODEL))
        return (Path(tmp) / MODEL / "1" / "model.onnx").read_bytes()


def start(tmp_path: Path, name: str, url: str) -> BerthServer:
    """A server on its own new, empty repository, on the store at `url`."""
    return BerthServer.start(
        berth_binary(), tmp_path / f"repo-{name}", tmp_path / f"berth-{name}.log", extra_args=["--registry", url]
    )


def push(client: V2Client, data: bytes) -> int:
    response = client.session.post(
        f"{client.base_url}/v2/registry/models/{MODEL}/versions",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    version: int = response.json()["version"]
    return version


def move(client: V2Client, verb: str, body: dict[str, Any] | None = None) -> Any:
    response = client.post(f"/v2/registry/models/{MODEL}/{verb}", body)
    assert response.status_code == 200, response.text
    return response.json()


def served_version(client: V2Client, model_repository: ModelRepository) -> str | None:
    """The version that answers a request naming none, or None while the model is not served."""
    model = model_repository.model(ALL_VERSIONS_MODEL, 1)
    response = client.infer(MODEL, model.infer_request(model.dataset.X_test[:2]))
    if response.status_code != 200:
        return None
    header: str = response.headers["Berth-Model-Version"]
    assert response.json()["model_version"] == header
    return header


def within_deadline(probe: Callable[[], T], expected: T, what: str) -> None:
    """`probe()` returns `expected` within SYNC_DEADLINE_S."""
    deadline = time.monotonic() + SYNC_DEADLINE_S
    seen = probe()
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = probe()
    assert seen == expected, f"{what}: {seen!r} instead of {expected!r} after {SYNC_DEADLINE_S} s"


def registry(client: V2Client) -> Any:
    response = client.get(f"/v2/registry/models/{MODEL}")
    return response.json() if response.status_code == 200 else None


def history(client: V2Client) -> Any:
    return client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]


def test_replicas_share_pushes_moves_and_history(
    postgres: Postgres, model_repository: ModelRepository, tmp_path: Path
) -> None:
    url = postgres.createdb()
    v1, v2 = artifact(model_repository, 1), artifact(model_repository, 2)
    with start(tmp_path, "a", url) as a, start(tmp_path, "b", url) as b, V2Client(a.base_url) as ca, V2Client(
        b.base_url
    ) as cb:
        assert push(ca, v1) == 1
        assert push(ca, v2) == 2
        # B had nothing: it fetches both versions from the store and serves
        # the latest, as A does.
        within_deadline(lambda: served_version(cb, model_repository), "2", "B's default after two pushes on A")
        for version, data in ((1, v1), (2, v2)):
            copy = tmp_path / "repo-b" / MODEL / str(version)
            assert (copy / "model.onnx").read_bytes() == data
            record = json.loads((copy / "berth-version.json").read_text())
            assert record["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
            assert record["source"] == "push"

        assert move(ca, "promote", {"version": 1, "reason": "v2 regressed"})["previous"] is None
        within_deadline(lambda: served_version(cb, model_repository), "1", "B's default after a promotion on A")
        move(ca, "promote", {"version": 2})
        within_deadline(lambda: served_version(cb, model_repository), "2", "B's default after a second promotion")
        assert move(ca, "rollback")["version"] == 1
        within_deadline(lambda: served_version(cb, model_repository), "1", "B's default after a rollback on A")

        move(ca, "split", {"versions": {"1": 70, "2": 30}, "alias": "staging"})
        move(ca, "shadow", {"version": 2, "percent": 20})
        within_deadline(
            lambda: (lambda r: r and r["shadow"] and (r["splits"], r["shadow"]["version"], r["shadow"]["percent"]))(
                registry(cb)
            ),
            ({"staging": {"1": 70, "2": 30}}, 2, 20),
            "B's splits and shadow",
        )
        assert served_version(cb, model_repository) == "1"

        # A push on B reaches A the same way.
        assert push(cb, v1) == 3
        within_deadline(
            lambda: [v["version"] for v in (registry(ca) or {"versions": []})["versions"] if v["state"] == "READY"],
            [1, 2, 3],
            "A's ready versions after a push on B",
        )

        # One audit log, read from either replica.
        assert history(ca) == history(cb)
        moves = [(h["action"], h["alias"], h["from"], h["to"]) for h in history(ca) if h["action"] != "register"]
        assert moves == [
            ("promote", "production", None, 1),
            ("promote", "production", 1, 2),
            ("rollback", "production", 2, 1),
            ("split", "staging", None, 1),
            ("shadow", None, None, 2),
        ]


def test_a_replica_started_later_serves_the_store_at_once(
    postgres: Postgres, model_repository: ModelRepository, tmp_path: Path
) -> None:
    url = postgres.createdb()
    with start(tmp_path, "a", url) as a, V2Client(a.base_url) as ca:
        push(ca, artifact(model_repository, 1))
        push(ca, artifact(model_repository, 2))
        move(ca, "promote", {"version": 1})
        # Ready means synced: no waiting for the first poll.
        with start(tmp_path, "c", url) as c, V2Client(c.base_url) as cc:
            assert served_version(cc, model_repository) == "1"
            assert registry(cc)["aliases"] == {"production": 1}
            assert history(cc) == history(ca)


def test_a_repository_model_of_one_replica_reaches_the_others(
    postgres: Postgres, model_repository: ModelRepository, tmp_path: Path
) -> None:
    """A model directory dropped into one replica's repository is registered
    with its files (config included), so the others serve it too."""
    url = postgres.createdb()
    model = model_repository.model(ALL_VERSIONS_MODEL, 2)
    config = model_config(model, name=MODEL, max_batch_size=4)
    export_model(model, tmp_path / "repo-a", version=7, config=config)
    with start(tmp_path, "a", url) as a, start(tmp_path, "b", url) as b, V2Client(b.base_url) as cb:
        assert a.process.poll() is None
        within_deadline(lambda: served_version(cb, model_repository), "7", "B's version of A's directory model")
        copied = tmp_path / "repo-b" / MODEL
        assert sorted(p.name for p in copied.iterdir()) == ["7", "config.yaml"]
        assert (copied / "config.yaml").read_bytes() == (tmp_path / "repo-a" / MODEL / "config.yaml").read_bytes()
        assert registry(cb)["versions"][0]["source"] == "directory"


def run_to_exit(tmp_path: Path, registry_flag: str) -> tuple[int, str]:
    """Runs `berth serve` with `--registry registry_flag`; its exit code and output."""
    done = subprocess.run(
        [
            str(berth_binary()), "serve",
            "--model-repository", str(tmp_path / "repo"),
            "--http-port", str(free_port()),
            "--grpc-port", "-1",
            "--registry", registry_flag,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_an_unreachable_store_fails_the_start_clearly(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    code, output = run_to_exit(tmp_path, f"postgresql://berth:hunter2@127.0.0.1:{port}/berth")
    assert code != 0
    assert f"cannot connect to the registry store postgresql://berth@127.0.0.1:{port}/berth" in output
    assert "hunter2" not in output


@pytest.mark.parametrize("flag", ["mysql://berth@127.0.0.1/berth", "postgresql:/berth", "http://127.0.0.1:5432/db"])
def test_other_registry_schemes_are_refused(tmp_path: Path, flag: str) -> None:
    code, output = run_to_exit(tmp_path, flag)
    assert code != 0
    assert "expected sqlite:PATH, postgresql://USER@HOST:PORT/DB or none" in output


def test_requests_keep_being_served_while_the_store_is_down(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    """A replica whose store goes away keeps serving what it has, and picks
    up changes again once the store is back."""
    directory = tmp_path / "postgres"
    started = subprocess.run([str(SCRIPT), "start", str(directory)], capture_output=True, text=True, check=False)
    try:
        assert started.returncode == 0, started.stderr
        if (directory / "skip").exists():
            pytest.skip((directory / "skip").read_text().strip())
        url = started.stdout.strip()
        server_dir = Path((directory / "server").read_text().strip())
        data_dir = server_dir / "data"
        with start(tmp_path, "a", url) as a, V2Client(a.base_url) as ca:
            push(ca, artifact(model_repository, 1))
            push(ca, artifact(model_repository, 2))
            move(ca, "promote", {"version": 2})
            pg_ctl = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
            bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
            subprocess.run([*pg_ctl, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "stop"], check=True)
            for _ in range(20):  # across several sync periods
                assert served_version(ca, model_repository) == "2"
                time.sleep(0.1)
            promote = ca.post(f"/v2/registry/models/{MODEL}/promote", {"version": 1})
            assert promote.status_code == 503, promote.text
            # Clients are told what happened, not where the store is: the log says that.
            assert "registry store (PostgreSQL) is unreachable" in promote.json()["error"]
            assert "127.0.0.1" not in promote.json()["error"]
            assert f"the registry store is unreachable store={url}" in a.log()
            assert served_version(ca, model_repository) == "2"
            port = url.rsplit(":", 1)[1].split("/")[0]
            subprocess.run(
                [*pg_ctl, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(server_dir / "postgres.log"),
                 "-w", "-o", f"-p {port} -k {server_dir} -c listen_addresses=127.0.0.1", "start"],
                check=True, capture_output=True,
            )  # fmt: skip
            # The connection is re-established on the next call.
            assert move(ca, "promote", {"version": 1})["previous"] == 2
            assert served_version(ca, model_repository) == "1"
            assert "cannot read the registry store; still serving" in a.log()
            within_deadline(lambda: "the registry store is reachable again" in a.log(), True, "the sync's recovery")
            assert a.log().count("the registry store is unreachable") == 1  # once per outage
    finally:
        subprocess.run([str(SCRIPT), "stop", str(directory)], check=False)
        shutil.rmtree(directory, ignore_errors=True)


def test_archive_delete_and_sticky_keys_reach_the_other_replica(
    postgres: Postgres, model_repository: ModelRepository, tmp_path: Path
) -> None:
    url = postgres.createdb()
    v1, v2 = artifact(model_repository, 1), artifact(model_repository, 2)
    with start(tmp_path, "a", url) as a, start(tmp_path, "b", url) as b, V2Client(a.base_url) as ca, V2Client(
        b.base_url
    ) as cb:
        assert [push(ca, v1), push(ca, v2), push(ca, v1)] == [1, 2, 3]
        move(ca, "promote", {"version": 1})
        within_deadline(lambda: served_version(cb, model_repository), "1", "B's default")
        model = model_repository.model(ALL_VERSIONS_MODEL, 1)
        body = model.infer_request(model.dataset.X_test[:1])

        def status_on_b(version: int) -> int:
            return cb.infer(MODEL, body, version=version).status_code

        def state_on_b(version: int) -> str | None:
            versions = (registry(cb) or {"versions": []})["versions"]
            return next((v["state"] for v in versions if v["version"] == version), None)

        # Serve version 2 on both (an alias pins it beside the policy's latest).
        move(ca, "promote", {"version": 2, "alias": "staging"})
        within_deadline(lambda: status_on_b(2), 200, "version 2 served on B")
        move(ca, "promote", {"version": 1, "alias": "staging"})
        archived = ca.post(f"/v2/registry/models/{MODEL}/versions/2/archive", {"reason": "stale"})
        assert archived.status_code == 200, archived.text
        within_deadline(lambda: state_on_b(2), "ARCHIVED", "version 2 archived on B")
        within_deadline(lambda: status_on_b(2) in (404, 503), True, "version 2 out of service on B")
        assert (tmp_path / "repo-b" / MODEL / "2" / "model.onnx").exists()  # archived: kept

        deleted = ca.session.delete(f"{ca.base_url}/v2/registry/models/{MODEL}/versions/3")
        assert deleted.status_code == 200, deleted.text
        # B's sync removes the files, then its repository poll unloads the version: both within the deadline.
        within_deadline(lambda: (tmp_path / "repo-b" / MODEL / "3").exists(), False, "version 3's files on B")
        within_deadline(lambda: status_on_b(3), 404, "version 3 out of service on B")

        # A push after the deletion never reuses number 3, on either replica.
        assert push(cb, v2) == 4
        restored = ca.post(f"/v2/registry/models/{MODEL}/versions/2/restore", {})
        assert restored.status_code == 200, restored.text
        move(ca, "split", {"versions": {"1": 50, "2": 50}, "alias": "canary", "sticky_key": "X-User"})
        within_deadline(
            lambda: (registry(cb) or {}).get("sticky_keys"), {"canary": "x-user"}, "B's sticky split key"
        )
        # One key, one version, on both replicas.
        headers = {"X-User": "alice"}
        answers = {
            c.session.post(f"{c.base_url}/v2/models/{MODEL}/versions/canary/infer", json=body, headers=headers)
            .headers["Berth-Model-Version"]
            for c in (ca, cb)
            for _ in range(10)
        }
        assert len(answers) == 1
        assert history(ca) == history(cb)
