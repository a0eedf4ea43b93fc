"""Runs the real Berth server binary for the integration tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

import requests

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
HOST: Final = "127.0.0.1"
STARTUP_TIMEOUT_S: Final = 20.0
SHUTDOWN_TIMEOUT_S: Final = 10.0
_POLL_INTERVAL_S: Final = 0.05
# Matches the text (port=N) and the JSON ("port":"N") log formats.
_GRPC_LISTENING: Final = re.compile(r'gRPC front end listening.*?\bport(?:=|":")(\d+)')


def berth_binary() -> Path:
    """$BERTH_BINARY, or build/berth in the repository."""
    return Path(os.environ.get("BERTH_BINARY", REPO_ROOT / "build" / "berth"))


def free_port() -> int:
    """A TCP port that is free on HOST right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class BerthServer:
    """A started `berth serve` process; its stdout and stderr go to `log_path`.

    As a context manager it stops the server on exit and, unless the body
    raised, asserts that SIGTERM made it exit with code 0.
    """

    process: subprocess.Popen[bytes]
    http_port: int
    log_path: Path
    # With TLS: the CA that signed the server's certificate (and the client
    # certificate and key, for mutual TLS), used by the start-up checks.
    ca_file: Path | None = None
    client_cert: tuple[str, str] | None = None
    # With --require-auth: the Authorization header the start-up checks send.
    authorization: str | None = None

    @property
    def address(self) -> str:
        """host:port of the REST front end, as tritonclient wants it."""
        return f"{HOST}:{self.http_port}"

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ca_file is not None else "http"
        return f"{scheme}://{self.address}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def grpc_address(self) -> str:
        """host:port of the gRPC front end, read from its "listening" log line.

        The server may have picked the port itself (--grpc-port 0), and the
        gRPC front end starts after the REST one, so the line is waited for.
        """
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            match = _GRPC_LISTENING.search(self.log())
            if match:
                return f"{HOST}:{match.group(1)}"
            if self.process.poll() is not None:
                break
            time.sleep(_POLL_INTERVAL_S)
        raise RuntimeError(f"berth logged no gRPC listening port:\n{self.log()}")

    @classmethod
    def start(
        cls,
        binary: Path,
        repository: Path,
        log_path: Path,
        *,
        max_request_bytes: int | None = None,
        grpc_port: int = 0,
        http_port: int | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        http_port_env: str | None = None,
        ca_file: Path | None = None,
        client_cert: tuple[str, str] | None = None,
        authorization: str | None = None,
    ) -> BerthServer:
        """Start the server and wait until it is live and has finished loading models.

        `env` adds variables to the server's environment. With `http_port_env`
        the free port goes to the server in that variable (a cloud platform's
        contract, e.g. AIP_HTTP_PORT) instead of --http-port. `http_port`
        fixes the port (a replica restarted behind a load balancer), else a
        free one is picked.
        """
        if not binary.is_file():
            raise FileNotFoundError(f"no Berth binary at {binary}: build it first or set BERTH_BINARY")
        http_port = free_port() if http_port is None else http_port
        environment = {**os.environ, **(env or {})}
        if http_port_env is None:
            port_args = ["--http-port", str(http_port)]
        else:
            port_args = []
            environment[http_port_env] = str(http_port)
        command = [
            str(binary), "serve",
            "--model-repository", str(repository),
            *port_args,
            "--grpc-port", str(grpc_port),
            "--host", HOST,
            "--log-level", "info",
            "--log-format", "text",
        ]  # fmt: skip
        if max_request_bytes is not None:
            command += ["--max-request-bytes", str(max_request_bytes)]
        command += extra_args
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=environment)
        server = cls(process, http_port, log_path, ca_file, client_cert, authorization)
        try:
            server._wait_until_loaded()
        except BaseException:
            process.kill()
            process.wait()
            raise
        return server

    def __enter__(self) -> BerthServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        exit_code = self.stop()
        if exc_type is None:
            assert exit_code == 0, f"berth exited with code {exit_code} after SIGTERM:\n{self.log()}"

    def _wait_until_loaded(self) -> None:
        """Poll until /v2/health/live answers 200 and no model is still loading."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            exit_code = self.process.poll()
            if exit_code is not None:
                raise RuntimeError(f"berth exited with code {exit_code} during start-up:\n{self.log()}")
            try:
                if self._live() and self._models_settled():
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet
            time.sleep(_POLL_INTERVAL_S)
        raise TimeoutError(f"berth was not ready within {STARTUP_TIMEOUT_S} s:\n{self.log()}")

    def _live(self) -> bool:
        status: int = requests.get(f"{self.base_url}/v2/health/live", timeout=1, **self._tls()).status_code
        return status == 200

    def _models_settled(self) -> bool:
        headers = {} if self.authorization is None else {"Authorization": self.authorization}
        index = requests.post(f"{self.base_url}/v2/repository/index", timeout=1, headers=headers, **self._tls())
        return index.status_code == 200 and all(entry.get("state") != "LOADING" for entry in index.json())

    def _tls(self) -> dict[str, object]:
        if self.ca_file is None:
            return {}
        return {"verify": str(self.ca_file), "cert": self.client_cert}

    def stop(self) -> int:
        """SIGTERM, then the exit code; kills the server if it has not exited within 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"berth did not exit within {SHUTDOWN_TIMEOUT_S} s of SIGTERM:\n{self.log()}"
            ) from None
