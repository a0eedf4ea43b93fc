"""The client's transport contract, against peers that misbehave on purpose (no Berth needed):
retries only for idempotent calls and only when the connection failed; the API key sent as a bearer
token; progress bars on a terminal only."""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import pytest
from sklearn.linear_model import LogisticRegression

import berth
from python_models import iris


@dataclass
class HangUpPeer:
    """Accepts TCP connections, records the first bytes of each request, and closes without answering."""

    sock: socket.socket
    requests: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()
        return f"http://{host}:{port}"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.requests.append(conn.recv(65536))
                except OSError:
                    self.requests.append(b"")


@pytest.fixture
def peer() -> Iterator[HangUpPeer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    peer = HangUpPeer(sock)
    thread = threading.Thread(target=peer.serve, daemon=True)
    thread.start()
    yield peer
    sock.close()
    thread.join(timeout=5)


def test_idempotent_calls_are_retried_on_connection_failure(peer: HangUpPeer) -> None:
    client = berth.Client(peer.url, retries=2, timeout=5)
    with pytest.raises(berth.BerthError, match="cannot reach the Berth server"):
        client.predict("m", [[1.0, 2.0]])
    assert len(peer.requests) == 3  # the metadata read, tried 1 + 2 times
    assert all(r.startswith(b"GET /v2/models/m ") for r in peer.requests)


def test_a_push_is_never_retried(peer: HangUpPeer) -> None:
    client = berth.Client(peer.url, retries=2, timeout=5)
    with pytest.raises(berth.BerthError, match="cannot reach the Berth server"):
        client.push("m", b"bytes", {"task": "regression"})
    assert len(peer.requests) == 1
    assert peer.requests[0].startswith(b"POST /v2/registry/models/m/versions ")


def test_api_key_is_a_bearer_token(peer: HangUpPeer, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(berth.BerthError):
        berth.Client(peer.url, api_key="s3cret", retries=0).predict("m", [[1.0]])
    monkeypatch.setenv("BERTH_API_KEY", "from-env")
    with pytest.raises(berth.BerthError):
        berth.Client(peer.url, retries=0).predict("m", [[1.0]])
    assert b"\r\nAuthorization: Bearer s3cret\r\n" in peer.requests[0]
    assert b"\r\nAuthorization: Bearer from-env\r\n" in peer.requests[1]


def test_bad_urls_are_refused() -> None:
    for url in ("localhost:8000", "ftp://host", "http://"):
        with pytest.raises(berth.BerthError, match="is not a server URL"):
            berth.Client(url)


def test_progress_on_a_terminal_only(tmp_path: Path) -> None:
    X, y = iris()
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), tmp_path / "m.joblib")
    command = [sys.executable, "-m", "berth.cli", "import", str(tmp_path / "m.joblib"), "--name", "m",
               "--repository", str(tmp_path / "repo")]  # fmt: skip
    master, slave = pty.openpty()
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=slave, timeout=120, check=False)
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert done.returncode == 0
    assert b"converting" in shown and b"parity" in shown  # the steps, on the terminal
    assert done.stdout.strip().splitlines()[-1] == b"1"
