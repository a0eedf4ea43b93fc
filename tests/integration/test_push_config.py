"""A registry push that carries the model's config (issue #8): the config, framed by
Berth-Config-Length, makes a first push create a `backend: python` model; a PostgreSQL replica
gets the same config; a config that does not parse, names another model or has another backend
is refused with a 400 and stores nothing; a push to an existing model may repeat its config, and a
different one is refused (409) with the serving version untouched; --require-signed-models still
refuses an unsigned directory pushed with `trust: true`, and only an admin key pushes one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Final

import requests

from berth.client import Client
import berth_server
from berth_server import REPO_ROOT, BerthServer, berth_binary
from test_auth import bearer, create_key
from test_python_push_files import MODEL, WORKER_ENV, eventually, expected, predict, start, version_files
from test_registry_postgres import Postgres, postgres  # noqa: F401  (the PostgreSQL fixture)
from test_signed_models import keypair, sign
from v2 import assert_error

CONFIG: Final = f"name: {MODEL}\nbackend: python\ntrust: true\npython: {{model_file: model.py, timeout_ms: 10000}}\n"


def push(
    server: BerthServer, files: dict[str, bytes], config: bytes | None, headers: dict[str, str] | None = None
) -> requests.Response:
    """A REST push of the directory `files` with `config` in front of its file list."""
    listing = json.dumps({"files": [{"name": n, "size": len(b)} for n, b in files.items()]}).encode()
    framing = {"Content-Type": "application/octet-stream", "Berth-Files-Length": str(len(listing))}
    if config is not None:
        framing["Berth-Config-Length"] = str(len(config))
    return requests.post(
        f"{server.base_url}/v2/registry/models/{MODEL}/versions",
        data=(config or b"") + listing + b"".join(files.values()),
        headers={**framing, **(headers or {})},
        timeout=120,
    )


def registered(server: BerthServer) -> list[int]:
    answer = requests.get(f"{server.base_url}/v2/registry/models/{MODEL}", timeout=30)
    if answer.status_code == 404:
        return []
    assert answer.status_code == 200, answer.text
    return [v["version"] for v in answer.json()["versions"]]


def test_a_first_push_with_a_config_creates_a_python_model(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    with start(root, tmp_path / "berth.log") as server:
        answer = push(server, version_files(2, 1), CONFIG.encode())
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"model": MODEL, "version": 1}
        assert predict(server, 1) == expected(2, 1)
        assert (root / MODEL / "config.yaml").read_text() == CONFIG
        # Through the Python client, with the same config: the next version.
        with Client(server.base_url) as client:
            assert client.push_files(MODEL, version_files(3, 0), {"description": "v2"}, config=CONFIG) == 2
        assert predict(server, 2) == expected(3, 0)
    # The config is the model's: a restart serves both versions from it.
    with start(root, tmp_path / "again.log") as server:
        assert predict(server, 2) == expected(3, 0)


def test_the_cli_pushes_a_directory_with_its_config(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    source = tmp_path / "v1"
    for name, data in version_files(4, 2).items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    (tmp_path / "config.yaml").write_text(CONFIG)
    with start(root, tmp_path / "berth.log") as server:
        done = subprocess.run(
            [str(berth_binary()), "models", "push", "--url", server.base_url, "--name", MODEL, str(source),
             "--config", str(tmp_path / "config.yaml")],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "1"
        assert predict(server, 1) == expected(4, 2)
        (tmp_path / "other.yaml").write_text(CONFIG.replace("10000", "20000"))
        done = subprocess.run(
            [str(berth_binary()), "models", "push", "--url", server.base_url, "--name", MODEL, str(source),
             "--config", str(tmp_path / "other.yaml")],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert done.returncode == 1 and done.stdout == ""
        assert "409" in done.stderr and "the pushed config differs" in done.stderr, done.stderr


def test_a_bad_config_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    files = version_files(2, 1)
    with start(root, tmp_path / "berth.log") as server:
        cases: list[tuple[bytes, str]] = [
            (b"backend: python\npython: {model_file: [\n", "the pushed config: "),
            (b"backend: python\ntrusted: true\n", "trusted"),
            (b"backend: python\nmax_batch_size: lots\n", "max_batch_size"),
            (b"name: other\nbackend: python\n", "the pushed config names model 'other', not 'scaler'"),
            (b"backend: tensorflow\n", "tensorflow"),
            (b"backend: python\n\x00", "without NUL bytes"),
            (b"backend: python\xff\n", "UTF-8"),
        ]
        for config, why in cases:
            message = assert_error(push(server, files, config), 400)
            assert why in message, message
        # The framing: a length past the body's end, or none at all.
        message = assert_error(push(server, files, b"x", {"Berth-Config-Length": "999999"}), 400)
        assert "Berth-Config-Length must be a byte count within the body" in message
        message = assert_error(push(server, files, None, {"Berth-Config-Length": "0"}), 400)
        assert "Berth-Config-Length frames an empty config" in message
        assert registered(server) == []
        assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == []
        # A good push after them creates the model as version 1.
        assert push(server, files, CONFIG.encode()).json()["version"] == 1
        assert predict(server, 1) == expected(2, 1)


def test_a_differing_config_is_refused_and_the_serving_version_stays(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    with start(root, tmp_path / "berth.log") as server:
        assert push(server, version_files(2, 1), CONFIG.encode()).status_code == 200
        other = CONFIG.replace("timeout_ms: 10000", "timeout_ms: 20000").encode()
        message = assert_error(push(server, version_files(9, 9), other), 409)
        assert message.startswith("the pushed config differs from model 'scaler''s config (scaler/config.yaml)")
        assert "push without a config" in message
        # A bad config is still a 400 on an existing model.
        assert_error(push(server, version_files(9, 9), b"backend: [\n"), 400)
        assert registered(server) == [1]
        assert sorted(p.name for p in (root / MODEL).iterdir()) == ["1", "config.yaml"]
        assert (root / MODEL / "config.yaml").read_text() == CONFIG
        assert predict(server, 1) == expected(2, 1)
        # The same config (trailing white space aside) or none at all: a new version.
        assert push(server, version_files(3, 0), CONFIG.encode() + b"\n\n").json()["version"] == 2
        assert push(server, version_files(4, 0), None).json()["version"] == 3
        assert predict(server, 3) == expected(4, 0)


def test_a_replica_serves_a_model_first_pushed_with_a_config(
    postgres: Postgres,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = postgres.createdb()
    (tmp_path / "repo-a").mkdir()
    (tmp_path / "repo-b").mkdir()
    with start(tmp_path / "repo-a", tmp_path / "a.log", url) as a, \
            start(tmp_path / "repo-b", tmp_path / "b.log", url) as b:  # fmt: skip
        assert push(a, version_files(3, 1), CONFIG.encode()).status_code == 200
        # B writes the store's copy of the config with the model's first version.
        eventually(lambda: predict(b, 1), expected(3, 1), "replica B's version 1, pushed to A with its config")
        assert (tmp_path / "repo-b" / MODEL / "config.yaml").read_text() == CONFIG
        # B refuses another config as A does: both compare with the same config.
        other = CONFIG.replace("10000", "20000").encode()
        assert_error(push(b, version_files(4, 0), other), 409)
        assert registered(a) == registered(b) == [1]


def test_signed_models_still_refuse_an_unsigned_directory_pushed_with_trust(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    private, public = keypair(tmp_path, "trusted")
    signed = tmp_path / "signed"
    for name, data in version_files(2, 1).items():
        (signed / name).parent.mkdir(parents=True, exist_ok=True)
        (signed / name).write_bytes(data)
    sign(signed, private)
    files = {p.relative_to(signed).as_posix(): p.read_bytes() for p in sorted(signed.rglob("*")) if p.is_file()}
    signers = ["--require-signed-models", "--trusted-signers", str(public)]
    with start(root, tmp_path / "berth.log", None, signers) as server:
        message = assert_error(push(server, version_files(2, 1), CONFIG.encode()), 400)
        assert "unsigned" in message, message
        assert registered(server) == []
        assert not (root / MODEL).exists()
        # Signed by a trusted key, the same push creates the model.
        assert push(server, files, CONFIG.encode()).json()["version"] == 1
        assert predict(server, 1) == expected(2, 1)


def test_a_config_is_pushed_with_the_admin_scope_only(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    source = ["--registry", f"sqlite:{tmp_path / 'registry.db'}"]
    keys = {name: create_key(source, name, [scope]) for name, scope in (("runner", "infer"), ("ops", "admin"))}
    keys["reader"] = create_key(source, "reader", ["read"])
    saved = berth_server.STARTUP_TIMEOUT_S
    berth_server.STARTUP_TIMEOUT_S = 180.0  # type: ignore[misc]
    try:
        server = BerthServer.start(
            berth_binary(), root, tmp_path / "berth.log", env=WORKER_ENV,
            extra_args=["--python", sys.executable, "--require-auth", *source],
            authorization=f"Bearer {keys['reader']}",
        )  # fmt: skip
    finally:
        berth_server.STARTUP_TIMEOUT_S = saved  # type: ignore[misc]
    with server:
        # A `trust: true` config runs the model's code: an infer key may not push it.
        assert_error(push(server, version_files(2, 1), CONFIG.encode(), bearer(keys["runner"])), 403)
        assert not (root / MODEL).exists()
        answer = push(server, version_files(2, 1), CONFIG.encode(), bearer(keys["ops"]))
        assert answer.status_code == 200, answer.text
        assert (root / MODEL / "config.yaml").read_text() == CONFIG


def test_one_artifact_is_pushed_with_its_config_too(tmp_path: Path) -> None:
    """The framing without a file list: metadata, config, then the artifact's bytes (an ONNX model)."""
    root = tmp_path / "repo"
    root.mkdir()
    artifact = (REPO_ROOT / "tests" / "data" / "add_fp32.onnx").read_bytes()
    config = "allow_nan: true\nversion_policy: {all: true}\n"
    body = {
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [1, 3], "data": [1.0, float("nan"), 3.0]},
            {"name": "b", "datatype": "FP32", "shape": [1, 3], "data": [10.0, 20.0, 30.0]},
        ]
    }
    with start(root, tmp_path / "berth.log") as server, Client(server.base_url) as client:
        assert client.push("add", artifact, {"description": "a + b"}, config=config) == 1
        assert (root / "add" / "config.yaml").read_text() == config
        # allow_nan is the pushed config's: a NaN input is served, not refused.
        answer = requests.post(f"{server.base_url}/v2/models/add/infer", data=json.dumps(body), timeout=30)
        assert answer.status_code == 200, answer.text
        assert client.registry_model("add")["versions"][0]["metadata"]["description"] == "a + b"
        # Without a config a new model gets the defaults, which refuse NaN.
        assert client.push("add_defaults", artifact, {}) == 1
        refused = requests.post(f"{server.base_url}/v2/models/add_defaults/infer", data=json.dumps(body), timeout=30)
        assert_error(refused, 400)
