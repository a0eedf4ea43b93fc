"""A push streams to disk (issue #7 item 7: "push (artifact upload with
metadata, streamed, size-limited)"): its body is written to a file as it
arrives, so an artifact far larger than --max-request-bytes is pushed without
being held in memory, up to --max-upload-bytes; one cut off midway or over the
limit stores nothing and leaves no file behind."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np
import onnx
import pytest
import requests
from onnx import TensorProto, helper, numpy_helper

from berth_server import BerthServer, berth_binary
from v2 import V2Client, assert_error

WIDTH: Final = 1024  # a 1024x1024 FP32 weight: a 4 MiB artifact
MAX_REQUEST: Final = 1 << 20


def big_model(seed: int) -> bytes:
    weight = np.random.default_rng(seed).standard_normal((WIDTH, WIDTH)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "big",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, WIDTH])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, WIDTH])],
        [numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


@pytest.fixture
def served(repo: Path, tmp_path: Path) -> Iterator[BerthServer]:
    args = ["--max-request-bytes", str(MAX_REQUEST), "--max-upload-bytes", str(6 << 20)]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
        server.repository = repo  # type: ignore[attr-defined]
        yield server


def push(base_url: str, name: str, body: bytes, metadata: dict[str, object] | None = None) -> requests.Response:
    head = b"" if metadata is None else json.dumps(metadata).encode()
    headers = {"Content-Type": "application/octet-stream"}
    if metadata is not None:
        headers["Berth-Metadata-Length"] = str(len(head))
    return requests.post(f"{base_url}/v2/registry/models/{name}/versions", data=head + body, headers=headers, timeout=120)


def uploads(server: BerthServer) -> list[Path]:
    root: Path = server.repository  # type: ignore[attr-defined]
    return sorted((root / ".berth" / "uploads").iterdir())


def settled_uploads(server: BerthServer) -> list[Path]:
    """The upload files left once answered requests let go of theirs (the
    file goes when the answer has been written, just after the client reads it)."""
    deadline = time.monotonic() + 10
    while uploads(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    return uploads(server)


def test_an_artifact_beyond_max_request_bytes_is_pushed_and_serves(served: BerthServer) -> None:
    artifact = big_model(1)
    assert len(artifact) > 4 * MAX_REQUEST
    metadata = {"description": "a big MatMul", "metrics": {"r2": 0.5}}
    response = push(served.base_url, "big", artifact, metadata)
    assert response.status_code == 200, response.text
    assert response.json() == {"model": "big", "version": 1}
    with V2Client(served.base_url) as client:
        shown = client.get("/v2/registry/models/big").json()["versions"][0]
        assert shown["digest"] == "sha256:" + hashlib.sha256(artifact).hexdigest()
        assert shown["size"] == len(artifact) and shown["metadata"] == metadata
        x = np.ones((1, WIDTH), dtype=np.float32)
        answer = client.infer("big", {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, WIDTH], "data": x.ravel().tolist()}]})
        # Other requests keep --max-request-bytes: this one is about 2 KiB.
        assert answer.status_code == 200, answer.text
    # The second version streams too; the uploads are gone once answered.
    assert push(served.base_url, "big", big_model(2)).json()["version"] == 2
    assert settled_uploads(served) == []
    # An inference body over --max-request-bytes is still refused.
    assert_error(requests.post(f"{served.base_url}/v2/models/big/infer", data=b"x" * (MAX_REQUEST + 1), timeout=30), 413)


def test_an_upload_over_max_upload_bytes_is_413_and_stores_nothing(served: BerthServer) -> None:
    too_big = big_model(1) + b"\0" * (3 << 20)
    assert "larger than the limit" in assert_error(push(served.base_url, "big", too_big), 413)
    with V2Client(served.base_url) as client:
        assert_error(client.get("/v2/registry/models/big"), 404)
    assert settled_uploads(served) == []
    assert not (served.repository / "big").exists()


def test_an_upload_cut_off_midway_stores_nothing_and_leaves_no_file(served: BerthServer) -> None:
    artifact = big_model(1)
    host, port = served.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v2/registry/models/big/versions HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {len(artifact)}\r\n\r\n".encode()
            + artifact[: len(artifact) // 3]
        )
        time.sleep(0.5)
        assert len(uploads(served)) == 1  # being written
    assert settled_uploads(served) == []
    assert not (served.repository / "big").exists()
    # The server keeps serving, and the next push of the same bytes works.
    assert push(served.base_url, "big", artifact).status_code == 200


def test_bad_pushes_over_the_stream_are_refused_with_the_reason(served: BerthServer) -> None:
    assert "does not load" in assert_error(push(served.base_url, "big", b"not onnx" * 300_000), 400)
    assert "metadata" in assert_error(push(served.base_url, "big", big_model(1), {"f1": 1}), 400)
    gz = requests.post(
        f"{served.base_url}/v2/registry/models/big/versions",
        data=b"x", headers={"Content-Encoding": "gzip"}, timeout=30,
    )  # fmt: skip
    assert_error(gz, 415)
    assert settled_uploads(served) == []
    assert not (served.repository / "big").exists()


def test_with_require_auth_a_push_is_refused_before_its_body_is_read(repo: Path, tmp_path: Path) -> None:
    created = subprocess.run(
        [str(berth_binary()), "keys", "create", "--model-repository", str(repo), "--name", "ci",
         "--scope", "admin"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = created.stdout.strip().splitlines()[-1]
    args = ["--require-auth", "--max-request-bytes", str(MAX_REQUEST)]
    with BerthServer.start(
        berth_binary(), repo, tmp_path / "auth.log", extra_args=args, authorization=f"Bearer {key}"
    ) as server:
        server.repository = repo  # type: ignore[attr-defined]
        artifact = big_model(1)
        host, port = server.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            # The header alone: a 401 comes back at once, before any byte of
            # the body is sent, and nothing is written.
            sock.sendall(
                b"POST /v2/registry/models/big/versions HTTP/1.1\r\nHost: x\r\n"
                + f"Content-Length: {len(artifact)}\r\n\r\n".encode()
            )
            sock.settimeout(10)
            assert sock.recv(4096).startswith(b"HTTP/1.1 401")
        assert settled_uploads(server) == []
        refused = requests.post(
            f"{server.base_url}/v2/registry/models/big/versions", data=artifact,
            headers={"Authorization": "Bearer berth_000000000000_" + "0" * 32}, timeout=60,
        )  # fmt: skip
        assert refused.status_code == 401
        allowed = requests.post(
            f"{server.base_url}/v2/registry/models/big/versions", data=artifact,
            headers={"Authorization": f"Bearer {key}"}, timeout=60,
        )  # fmt: skip
        assert allowed.status_code == 200, allowed.text
        history = requests.get(
            f"{server.base_url}/v2/registry/models/big/history", headers={"Authorization": f"Bearer {key}"}, timeout=10
        ).json()["history"]
        assert history[-1]["actor"] == "ci"
