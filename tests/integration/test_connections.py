"""Many idle keep-alive connections cost sockets, not threads, and do not stop
the server from answering."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from berth_server import HOST, BerthServer, berth_binary
from models import IRIS_MODEL, ModelRepository
from v2 import V2Client, decode_outputs

IDLE_CONNECTIONS: Final = 2000
HTTP_THREADS: Final = 2


def thread_count(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no Threads line for pid {pid}")


@pytest.fixture(scope="module")
def small_server(
    model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BerthServer]:
    log = tmp_path_factory.mktemp("berth_connections") / "berth.log"
    with BerthServer.start(
        berth_binary(), model_repository.root, log, grpc_port=-1, extra_args=["--http-threads", str(HTTP_THREADS)]
    ) as server:
        yield server


def test_thousands_of_idle_connections_need_no_thread_each(
    small_server: BerthServer, model_repository: ModelRepository
) -> None:
    model = model_repository.model(IRIS_MODEL)
    body = model.infer_request(model.dataset.X_test[:4])
    pid = small_server.process.pid
    threads_before = thread_count(pid)

    sockets: list[socket.socket] = []
    try:
        for i in range(IDLE_CONNECTIONS):
            s = socket.create_connection((HOST, small_server.http_port), timeout=10)
            if i % 2:
                # Half of them have been used once and are kept alive, idle.
                s.sendall(f"GET /v2/health/live HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
                assert s.recv(4096).startswith(b"HTTP/1.1 200")
            sockets.append(s)

        with V2Client(small_server.base_url) as client:
            response = client.infer(IRIS_MODEL, body)
        assert response.status_code == 200, response.text
        want = model.sklearn_outputs(model.dataset.X_test[:4])["label"]
        assert (decode_outputs(response.json())["label"] == want).all()
        # A thousand of the connections have been served and are held open
        # by the server; no thread was added for them.
        assert thread_count(pid) == threads_before
    finally:
        for s in sockets:
            s.close()
