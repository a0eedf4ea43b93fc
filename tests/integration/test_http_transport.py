"""The HTTP transport under pressure and at its edges, over raw sockets:
file-descriptor exhaustion, --max-connections, --idle-timeout-secs,
`Expect: 100-continue`, strict Transfer-Encoding framing, gzip framing and
the --max-inflight-bytes budget."""

from __future__ import annotations

import gzip
import json
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from berth_server import HOST, BerthServer, berth_binary
from models import IRIS_MODEL, ModelRepository
from sanitizer import SANITIZED
from v2 import infer_path

SOCKET_TIMEOUT_S: Final = 10.0
# How long a test waits for the server to reach a state it cannot signal
# (a connection closed on its side, descriptors freed); never asserted.
SETTLE_TIMEOUT_S: Final = 20.0
INFER_PATH: Final = infer_path(IRIS_MODEL)
# A correct request for IRIS_MODEL (input X: FP32 [-1, 4]).
GOOD_REQUEST: Final = json.dumps(
    {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
).encode()


def padded_request(size: int) -> bytes:
    """GOOD_REQUEST, led by whitespace to exactly `size` bytes."""
    assert size >= len(GOOD_REQUEST)
    return b" " * (size - len(GOOD_REQUEST)) + GOOD_REQUEST


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json_error(self) -> str:
        assert self.headers.get("content-type") == "application/json", self
        error: str = json.loads(self.body)["error"]
        return error


class Connection:
    """One raw HTTP/1.1 connection: bytes out exactly as given, responses parsed."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT_S)
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        self._buffer += chunk
        return bool(chunk)

    def read_response(self) -> Response | None:
        """The next response (a 100 Continue too), or None if the server closed first."""
        while b"\r\n\r\n" not in self._buffer:
            if not self._fill():
                assert not self._buffer, f"connection closed within a response head: {self._buffer!r}"
                return None
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            assert self._fill(), "connection closed within a response body"
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return Response(status, headers, body)

    def closed_by_server(self) -> bool:
        """Waits (up to the socket timeout) for the server to close; True if it did."""
        try:
            return not self._fill() and not self._buffer
        except TimeoutError:
            return False

    def request(self, method: str, path: str, body: bytes = b"", headers: str = "") -> Response | None:
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n{headers}"
        if body or method == "POST":
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.send(head.encode() + b"\r\n" + body)
        return self.read_response()

    def close(self) -> None:
        self.sock.close()


def assert_infer_ok(response: Response | None) -> None:
    assert response is not None, "the server closed the connection"
    assert response.status == 200, response
    outputs = {output["name"] for output in json.loads(response.body)["outputs"]}
    assert "label" in outputs, response


def infer_succeeds_eventually(port: int) -> None:
    """A fresh connection's inference succeeds, retrying while the server settles."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        try:
            connection = Connection(port)
            try:
                response = connection.request("POST", INFER_PATH, GOOD_REQUEST)
            finally:
                connection.close()
            if response is not None and response.status == 200:
                assert_infer_ok(response)
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "no inference succeeded after the pressure ended"
        time.sleep(0.1)


def start_server(
    model_repository: ModelRepository, tmp_path: Path, *args: str, binary: Path | None = None
) -> BerthServer:
    return BerthServer.start(
        binary or berth_binary(), model_repository.root, tmp_path / "berth.log", grpc_port=-1, extra_args=args
    )


# ---- file descriptors, --max-connections, --idle-timeout-secs --------------

FD_LIMIT: Final = 64
IDLE_CONNECTIONS: Final = 3 * FD_LIMIT
# A server that spins on accept() writes hundreds of thousands of lines a
# second; a healthy one a handful (start-up, one line per 5 s of failures).
MAX_LOG_LINES: Final = 100


def log_lines(server: BerthServer) -> int:
    return server.log().count("\n")


def low_fd_limit_wrapper(tmp_path: Path, limit: int) -> Path:
    """The server binary run under a hard and soft limit of `limit` open files."""
    wrapper = tmp_path / "berth_low_fd_limit"
    wrapper.write_text(f'#!/bin/sh\nulimit -n {limit} || exit 99\nexec "{berth_binary()}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


# UBSan checks a vptr it has not seen before by writing the object's memory
# to a pipe (sanitizer_common's IsAccessibleMemoryRange). With no descriptor
# free the pipe fails, and it reports a bad vptr that is not, which aborts a
# sanitizer build mid-request. `make test` runs this test on the plain build.
@pytest.mark.skipif(SANITIZED, reason="UBSan's vptr check needs a free descriptor (false reports at EMFILE)")
def test_out_of_file_descriptors_backs_off_and_recovers(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    wrapper = low_fd_limit_wrapper(tmp_path, FD_LIMIT)
    # Past the automatic cap (limit less headroom), which would refuse the
    # connections politely long before the descriptors ran out.
    with start_server(model_repository, tmp_path, "--max-connections", "100000", binary=wrapper) as server:
        probe = Connection(server.http_port)
        idle: list[socket.socket] = []
        try:
            assert_infer_ok(probe.request("POST", INFER_PATH, GOOD_REQUEST))
            # More connections than descriptors: the kernel queues the rest
            # in the listen backlog, and accept() fails with EMFILE.
            idle = [socket.create_connection((HOST, server.http_port)) for _ in range(IDLE_CONNECTIONS)]
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            while "accept failed" not in server.log():
                assert time.monotonic() < deadline, f"accept never failed:\n{server.log()}"
                time.sleep(0.05)
            # Long enough for a spinning acceptor to flood the log.
            time.sleep(1.0)
            # A connection the server already holds is still served.
            assert_infer_ok(probe.request("POST", INFER_PATH, GOOD_REQUEST))
            assert log_lines(server) < MAX_LOG_LINES, server.log()[:2000]
            assert "pausing new connections" in server.log()
        finally:
            for s in idle:
                s.close()
            probe.close()
        infer_succeeds_eventually(server.http_port)
        assert log_lines(server) < MAX_LOG_LINES, server.log()[:2000]


# Headroom is an eighth of the limit, at least 64 (server/http/connection_cap.h).
CAPPED_FD_LIMIT: Final = 256
AUTOMATIC_CAP: Final = CAPPED_FD_LIMIT - 64


def test_connections_are_capped_below_the_file_descriptor_limit(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    """Without --max-connections, clients cannot take the descriptors the
    rest of the server needs: past the cap they get a 503, and accept() never
    fails for want of descriptors."""
    wrapper = low_fd_limit_wrapper(tmp_path, CAPPED_FD_LIMIT)
    with start_server(model_repository, tmp_path, binary=wrapper) as server:
        assert f"max_connections={AUTOMATIC_CAP}" in server.log()
        probe = Connection(server.http_port)
        held: list[Connection] = []
        refused = 0
        try:
            assert_infer_ok(probe.request("POST", INFER_PATH, GOOD_REQUEST))
            for _ in range(AUTOMATIC_CAP + 16):
                connection = Connection(server.http_port)
                response = connection.request("GET", "/v2/health/live")
                if response is not None and response.status == 200:
                    held.append(connection)
                    continue
                refused += 1
                if response is not None:
                    assert response.status == 503, response
                connection.close()
            # The start-up probes' connections may still have been closing
            # when the first were opened, so the count is not exact.
            assert len(held) >= AUTOMATIC_CAP - 4, len(held)
            assert refused >= 16, refused
            assert_infer_ok(probe.request("POST", INFER_PATH, GOOD_REQUEST))
            assert "connection refused: at the connection limit" in server.log()
            assert "accept failed" not in server.log(), server.log()[-2000:]
        finally:
            for connection in held:
                connection.close()
            probe.close()
        infer_succeeds_eventually(server.http_port)


MAX_CONNECTIONS: Final = 4


def test_connections_over_max_connections_are_refused(model_repository: ModelRepository, tmp_path: Path) -> None:
    with start_server(model_repository, tmp_path, "--max-connections", str(MAX_CONNECTIONS)) as server:
        held: list[Connection] = []
        try:
            # The start-up probes' connections may still be closing on the
            # server's side, so each of the first N retries until it is served.
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            while len(held) < MAX_CONNECTIONS:
                connection = Connection(server.http_port)
                response = connection.request("GET", "/v2/health/live")
                if response is not None and response.status == 200:
                    held.append(connection)
                    continue
                connection.close()
                assert time.monotonic() < deadline, "could not open the first connections"
                time.sleep(0.05)

            extra = Connection(server.http_port)
            try:
                refused = extra.request("GET", "/v2/health/live")
                # Refused politely (a 503 JSON error, then the close) or, if
                # even that was impossible, closed.
                if refused is not None:
                    assert refused.status == 503, refused
                    assert refused.headers.get("connection") == "close"
                    assert "connections" in refused.json_error()
                    assert extra.closed_by_server()
            finally:
                extra.close()
            assert "connection refused: at the connection limit" in server.log()

            for connection in held:
                assert_infer_ok(connection.request("POST", INFER_PATH, GOOD_REQUEST))
        finally:
            for connection in held:
                connection.close()
        # Closing them makes room again.
        infer_succeeds_eventually(server.http_port)


def test_idle_timeout_is_a_flag(model_repository: ModelRepository, tmp_path: Path) -> None:
    with start_server(model_repository, tmp_path, "--idle-timeout-secs", "1") as server:
        connection = Connection(server.http_port)
        try:
            assert_infer_ok(connection.request("POST", INFER_PATH, GOOD_REQUEST))
            # The default (65 s) would outlast the socket timeout.
            assert connection.closed_by_server()
        finally:
            connection.close()


# ---- Expect: 100-continue ----------------------------------------------------


@pytest.fixture
def connection(server: BerthServer) -> Iterator[Connection]:
    c = Connection(server.http_port)
    yield c
    c.close()


def expect_continue_head(length: int, extra: str = "") -> bytes:
    return (
        f"POST {INFER_PATH} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nExpect: 100-continue\r\n{extra}\r\n"
    ).encode()


def test_expect_continue_is_answered_before_the_body(connection: Connection) -> None:
    connection.send(expect_continue_head(len(GOOD_REQUEST)))
    interim = connection.read_response()
    assert interim is not None and interim.status == 100, interim
    assert interim.body == b""
    connection.send(GOOD_REQUEST)
    assert_infer_ok(connection.read_response())
    # The connection stays usable.
    assert_infer_ok(connection.request("POST", INFER_PATH, GOOD_REQUEST))


def test_expect_continue_over_the_limit_is_413_without_the_body(
    connection: Connection, max_request_bytes: int
) -> None:
    connection.send(expect_continue_head(max_request_bytes + 1))
    refused = connection.read_response()
    assert refused is not None and refused.status == 413, refused
    assert str(max_request_bytes) in refused.json_error()
    assert connection.closed_by_server()


def test_http_1_0_expectation_is_ignored(connection: Connection) -> None:
    # RFC 9110: a 100-continue expectation in an HTTP/1.0 request is ignored.
    head = expect_continue_head(len(GOOD_REQUEST)).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    connection.send(head + GOOD_REQUEST)
    assert_infer_ok(connection.read_response())


# ---- Transfer-Encoding framing ---------------------------------------------


def chunked(body: bytes) -> bytes:
    return f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"


def framed_request(headers: str, body: bytes) -> bytes:
    head = f"POST {INFER_PATH} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n{headers}\r\n"
    return head.encode() + body


CL: Final = f"Content-Length: {len(chunked(GOOD_REQUEST))}\r\n"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param("Transfer-Encoding: gzip, chunked\r\n", chunked(gzip.compress(GOOD_REQUEST)), id="gzip-chunked"),
        pytest.param("Transfer-Encoding: gzip, chunked\r\n", chunked(GOOD_REQUEST), id="gzip-chunked-plain"),
        pytest.param("Transfer-Encoding: chunked, gzip\r\n", chunked(GOOD_REQUEST), id="chunked-gzip"),
        pytest.param("Transfer-Encoding: xchunked\r\n" + CL, chunked(GOOD_REQUEST), id="xchunked-then-length"),
        pytest.param(CL + "Transfer-Encoding: xchunked\r\n", chunked(GOOD_REQUEST), id="length-then-xchunked"),
        pytest.param("Transfer-Encoding: identity\r\n" + CL, chunked(GOOD_REQUEST), id="identity"),
        pytest.param("Transfer-Encoding: chunked\r\n" + CL, chunked(GOOD_REQUEST), id="chunked-and-length"),
        pytest.param(
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", chunked(GOOD_REQUEST), id="two-headers"
        ),
    ],
)
def test_transfer_encoding_other_than_chunked_is_400(
    server: BerthServer, connection: Connection, headers: str, body: bytes
) -> None:
    connection.send(framed_request(headers, body))
    refused = connection.read_response()
    assert refused is not None and refused.status == 400, refused
    # Ours names Transfer-Encoding; Beast's own (for a duplicate or a
    # conflicting Content-Length) says "bad transfer encoding" or "bad Content-Length".
    error = refused.json_error().lower()
    assert "transfer-encoding" in error or "transfer encoding" in error or "content-length" in error, error
    # Nothing of the refused request is read as a next request.
    assert connection.closed_by_server()
    infer_succeeds_eventually(server.http_port)


@pytest.mark.parametrize("coding", ["chunked", "Chunked"])
def test_chunked_alone_is_accepted(connection: Connection, coding: str) -> None:
    connection.send(framed_request(f"Transfer-Encoding: {coding}\r\n", chunked(GOOD_REQUEST)))
    assert_infer_ok(connection.read_response())
    # Several chunks, and the connection stays usable.
    half = len(GOOD_REQUEST) // 2
    parts = f"{half:x}\r\n".encode() + GOOD_REQUEST[:half] + b"\r\n" + chunked(GOOD_REQUEST[half:])
    connection.send(framed_request("Transfer-Encoding: chunked\r\n", parts))
    assert_infer_ok(connection.read_response())


# ---- gzip framing ----------------------------------------------------------


def test_gzip_members_are_all_decoded(connection: Connection) -> None:
    half = len(GOOD_REQUEST) // 2
    body = gzip.compress(GOOD_REQUEST[:half]) + gzip.compress(GOOD_REQUEST[half:])
    assert_infer_ok(connection.request("POST", INFER_PATH, body, "Content-Encoding: gzip\r\n"))


@pytest.mark.parametrize("junk", [b"x", b"\0" * 8, GOOD_REQUEST])
def test_bytes_after_the_gzip_stream_are_400(connection: Connection, junk: bytes) -> None:
    body = gzip.compress(GOOD_REQUEST) + junk
    refused = connection.request("POST", INFER_PATH, body, "Content-Encoding: gzip\r\n")
    assert refused is not None and refused.status == 400, refused
    assert "after the end" in refused.json_error()


# ---- --max-inflight-bytes ----------------------------------------------------

UPLOAD_BYTES: Final = 50_000
HELD_UPLOADS: Final = 3
# Room for the held uploads and a small request, not for a fourth upload.
INFLIGHT_BYTES: Final = HELD_UPLOADS * UPLOAD_BYTES + 8_000
MAX_BODY_BYTES: Final = 64 * 1024


def test_inflight_budget_refuses_then_recovers(model_repository: ModelRepository, tmp_path: Path) -> None:
    with start_server(
        model_repository,
        tmp_path,
        "--max-request-bytes", str(MAX_BODY_BYTES),
        "--max-inflight-bytes", str(INFLIGHT_BYTES),
    ) as server:  # fmt: skip
        body = padded_request(UPLOAD_BYTES)
        uploads = [Connection(server.http_port) for _ in range(HELD_UPLOADS)]
        try:
            for upload in uploads:
                # "100 Continue" comes once the declared length is reserved;
                # half the body is sent, and the upload is held there.
                upload.send(expect_continue_head(UPLOAD_BYTES))
                interim = upload.read_response()
                assert interim is not None and interim.status == 100, interim
                upload.send(body[: UPLOAD_BYTES // 2])

            # A fourth upload does not fit: 503 before its body is sent.
            fourth = Connection(server.http_port)
            try:
                fourth.send(expect_continue_head(UPLOAD_BYTES))
                refused = fourth.read_response()
                assert refused is not None and refused.status == 503, refused
                assert refused.headers.get("retry-after") == "1"
                assert "in flight" in refused.json_error()
                assert refused.headers.get("connection") == "close"
                assert fourth.closed_by_server()
            finally:
                fourth.close()

            # Chunked: refused when a chunk that does not fit is announced.
            chunks = Connection(server.http_port)
            try:
                first_chunk = f"{UPLOAD_BYTES:x}\r\n".encode() + body[:1000]
                chunks.send(framed_request("Transfer-Encoding: chunked\r\n", first_chunk))
                refused = chunks.read_response()
                assert refused is not None and refused.status == 503, refused
                assert chunks.closed_by_server()
            finally:
                chunks.close()

            small = Connection(server.http_port)
            try:
                # A compressed body small on the wire counts at its decoded size.
                compressed = gzip.compress(body)
                assert len(compressed) < INFLIGHT_BYTES - HELD_UPLOADS * UPLOAD_BYTES
                refused = small.request("POST", INFER_PATH, compressed, "Content-Encoding: gzip\r\n")
                assert refused is not None and refused.status == 503, refused
                # Its body was read, so the connection stays open; a small
                # request fits beside the held uploads.
                assert_infer_ok(small.request("POST", INFER_PATH, GOOD_REQUEST))
            finally:
                small.close()

            for upload in uploads:
                upload.send(body[UPLOAD_BYTES // 2 :])
                assert_infer_ok(upload.read_response())
        finally:
            for upload in uploads:
                upload.close()

        # Every byte came back: full-size uploads fit again, one after another.
        again = Connection(server.http_port)
        try:
            for _ in range(HELD_UPLOADS + 1):
                assert_infer_ok(again.request("POST", INFER_PATH, body))
        finally:
            again.close()


def test_grpc_shares_the_inflight_budget(model_repository: ModelRepository, tmp_path: Path) -> None:
    """A gRPC infer message counts against the same budget as REST bodies."""
    import numpy as np
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    with BerthServer.start(
        berth_binary(),
        model_repository.root,
        tmp_path / "berth.log",
        extra_args=["--max-request-bytes", str(MAX_BODY_BYTES), "--max-inflight-bytes", str(INFLIGHT_BYTES)],
    ) as server:
        triton = grpcclient.InferenceServerClient(server.grpc_address())
        x = np.zeros((1, 4), dtype=np.float32)
        inputs = [grpcclient.InferInput("X", [1, 4], "FP32")]
        inputs[0].set_data_from_numpy(x)
        padding = {"padding": "p" * 20_000}  # larger than what the held uploads leave
        uploads = [Connection(server.http_port) for _ in range(HELD_UPLOADS)]
        try:
            for upload in uploads:
                upload.send(expect_continue_head(UPLOAD_BYTES))
                interim = upload.read_response()
                assert interim is not None and interim.status == 100, interim
            with pytest.raises(InferenceServerException) as refused:
                triton.infer(IRIS_MODEL, inputs, parameters=padding)
            assert "UNAVAILABLE" in str(refused.value.status())
            assert "in flight" in refused.value.message()
        finally:
            for upload in uploads:
                upload.close()
        deadline = time.monotonic() + 10
        while True:  # the closed uploads give their bytes back as the server notices
            try:
                triton.infer(IRIS_MODEL, inputs, parameters=padding)
                break
            except InferenceServerException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
