"""Python-runtime versions that are directories, through the registry (issue #8):
a push carries the version's whole directory (model.py and the modules it
imports), content-addressed file by file; a replica on the same PostgreSQL
writes every file and serves the same predictions; a SQLite server serves
them again after a restart; and a push whose file list is hostile or too
big is refused with a 400 and stores nothing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import pytest
import requests

import berth_server
from berth.client import Client
from berth_server import REPO_ROOT, BerthServer, berth_binary
from test_registry_postgres import Postgres, postgres  # noqa: F401  (the PostgreSQL fixture)
from v2 import assert_error

MODEL: Final = "scaler"
WORKER_ENV: Final = {"PYTHONPATH": str(REPO_ROOT / "python" / "src")}
# A Python worker starts (and imports numpy) before a version serves: on a
# busy two-core machine that takes seconds, so the deadline is generous.
DEADLINE_S: Final = 60.0

MODEL_PY: Final = b'''
import numpy as np
from features import scale
from pkg.offsets import OFFSET

class Model:
    inputs = [{"name": "x", "datatype": "FP64", "shape": [-1]}]
    outputs = [{"name": "y", "datatype": "FP64", "shape": [-1]}]

    def load(self, model_dir):
        pass

    def predict(self, inputs):
        return {"y": scale(np.asarray(inputs["x"], dtype=np.float64)) + OFFSET}
'''
CONFIG: Final = "backend: python\npython: {model_file: model.py, timeout_ms: 10000}\n"
X: Final = [1.0, 2.0, 3.5]


def version_files(factor: int, offset: int) -> dict[str, bytes]:
    """A version's directory: y = factor * x + offset, the factor and offset in side modules."""
    return {
        "model.py": MODEL_PY,
        "features.py": f"def scale(x):\n    return {factor} * x\n".encode(),
        "pkg/__init__.py": b"",
        "pkg/offsets.py": f"OFFSET = {offset}\n".encode(),
    }


def expected(factor: int, offset: int) -> list[float]:
    return [factor * x + offset for x in X]


def write_model(root: Path, files: dict[str, bytes]) -> None:
    """The model's directory with version 1 as `files`."""
    (root / MODEL / "1").mkdir(parents=True)
    (root / MODEL / "config.yaml").write_text(CONFIG)
    for name, data in files.items():
        (root / MODEL / "1" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / MODEL / "1" / name).write_bytes(data)


def start(repository: Path, log: Path, registry: str | None = None, extra: Sequence[str] = ()) -> BerthServer:
    args = ["--python", sys.executable, "--strict-readiness", "false", *extra]
    if registry is not None:
        args += ["--registry", registry]
    saved = berth_server.STARTUP_TIMEOUT_S
    berth_server.STARTUP_TIMEOUT_S = 180.0  # type: ignore[misc]
    try:
        return BerthServer.start(berth_binary(), repository, log, extra_args=args, env=WORKER_ENV)
    finally:
        berth_server.STARTUP_TIMEOUT_S = saved  # type: ignore[misc]


def predict(server: BerthServer, version: int) -> list[float] | None:
    """Version `version`'s answer for X, or None while it does not serve."""
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [len(X)], "data": X}]}
    response = requests.post(f"{server.base_url}/v2/models/{MODEL}/versions/{version}/infer", json=body, timeout=30)
    if response.status_code != 200:
        return None
    data: list[float] = response.json()["outputs"][0]["data"]
    return data


def eventually(probe: Callable[[], Any], want: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    seen = probe()
    while seen != want and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = probe()
    assert seen == want, f"{what}: {seen!r} instead of {want!r}"


def push(
    server: BerthServer, files: dict[str, bytes], listing: list[dict[str, Any]] | None = None
) -> requests.Response:
    """A push of `files` (the file list `listing` if given, else theirs)."""
    if listing is None:
        listing = [{"name": n, "size": len(b)} for n, b in files.items()]
    head = json.dumps({"files": listing}).encode()
    return requests.post(
        f"{server.base_url}/v2/registry/models/{MODEL}/versions",
        data=head + b"".join(files.values()),
        headers={"Content-Type": "application/octet-stream", "Berth-Files-Length": str(len(head))},
        timeout=120,
    )


def record(server: BerthServer, version: int) -> dict[str, Any]:
    answer = requests.get(f"{server.base_url}/v2/registry/models/{MODEL}", timeout=30).json()
    found: dict[str, Any] = next(v for v in answer["versions"] if v["version"] == version)
    return found


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def assert_recorded(rec: dict[str, Any], files: dict[str, bytes]) -> None:
    """The registry lists every file with its digest and size, the model file's digest as the version's."""
    assert {f["name"]: (f["digest"], f["size"]) for f in rec["files"]} == {
        n: (sha256(b), len(b)) for n, b in files.items()
    }
    assert rec["digest"] == sha256(files["model.py"])
    assert rec["files_digest"].startswith("sha256:")


@pytest.fixture
def model_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "repo-a"
    write_model(root, version_files(2, 0))
    yield root


def test_a_version_pushed_to_one_replica_is_served_by_another_file_for_file(
    postgres: Postgres,  # noqa: F811
    model_root: Path,
    tmp_path: Path,
) -> None:
    url = postgres.createdb()
    v2 = version_files(3, 1)
    with start(model_root, tmp_path / "a.log", url) as a, start(tmp_path / "repo-b", tmp_path / "b.log", url) as b:
        # The directory version A registered reaches B with its side modules.
        eventually(lambda: predict(b, 1), expected(2, 0), "replica B's version 1")
        # Through the Python client, with metadata in front of the file list.
        with Client(a.base_url) as client:
            assert client.push_files(MODEL, v2, {"description": "triple plus one"}) == 2
        assert predict(a, 2) == expected(3, 1)
        eventually(lambda: predict(b, 2), expected(3, 1), "replica B's version 2, pushed to A")
        for server in (a, b):
            assert_recorded(record(server, 2), v2)
            assert record(server, 2)["metadata"]["description"] == "triple plus one"
        assert record(a, 2)["files_digest"] == record(b, 2)["files_digest"]
        assert record(a, 1)["files_digest"] != record(a, 2)["files_digest"]
        for name, data in v2.items():
            assert (tmp_path / "repo-b" / MODEL / "2" / name).read_bytes() == data


def test_a_directory_pushed_by_the_cli_serves_again_after_a_restart(model_root: Path, tmp_path: Path) -> None:
    v2 = version_files(5, -1)
    source = tmp_path / "v2"
    for name, data in v2.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "features.cpython-311.pyc").write_bytes(b"not sent")
    with start(model_root, tmp_path / "first.log") as server:
        done = subprocess.run(
            [str(berth_binary()), "models", "push", "--url", server.base_url, "--name", MODEL, str(source)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "2"
        assert predict(server, 2) == expected(5, -1)
        before = record(server, 2)
        assert_recorded(before, v2)
        shown = subprocess.run(
            [str(berth_binary()), "models", "show", "--url", server.base_url, MODEL],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert "version 2: 4 files" in shown.stdout and "pkg/offsets.py" in shown.stdout, shown.stdout
    with start(model_root, tmp_path / "second.log") as server:
        assert predict(server, 2) == expected(5, -1)
        assert record(server, 2)["files"] == before["files"]
        assert record(server, 2)["files_digest"] == before["files_digest"]


def test_hostile_or_oversized_file_lists_are_refused_and_store_nothing(model_root: Path, tmp_path: Path) -> None:
    good = version_files(3, 1)
    with start(model_root, tmp_path / "berth.log") as server:
        before = requests.get(f"{server.base_url}/v2/registry/models/{MODEL}", timeout=30).json()
        cases: list[tuple[dict[str, bytes], list[dict[str, Any]] | None, str]] = [
            ({**good, "../x": b"escape"}, None, "'..'"),
            ({**good, "/etc/x": b"absolute"}, None, "plain name"),
            ({**good, "berth-version.json": b"{}"}, None, "reserved"),
            ({f"f{i}": b"" for i in range(1001)}, None, "more than the 1000"),
            (good, [{"name": "model.py", "size": 5 << 30}], "total more than"),
            (good, [{"name": n, "size": len(b) + 1} for n, b in good.items()], "add up to"),
            ({k: v for k, v in good.items() if k != "model.py"}, None, "no 'model.py'"),
        ]
        for files, listing, why in cases:
            message = assert_error(push(server, files, listing), 400)
            assert why in message, message
        after = requests.get(f"{server.base_url}/v2/registry/models/{MODEL}", timeout=30).json()
        assert [v["version"] for v in after["versions"]] == [v["version"] for v in before["versions"]] == [1]
        assert sorted(p.name for p in (model_root / MODEL).iterdir()) == ["1", "config.yaml"]
        assert not (model_root / "x").exists()
        assert predict(server, 1) == expected(2, 0)  # still serving
        # And a good push after them gets the next number.
        assert push(server, good).json()["version"] == 2
