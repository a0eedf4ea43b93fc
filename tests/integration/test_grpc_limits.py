"""The gRPC port's defences against slow, idle and too many clients (issue
#10, §4), beside the REST ones in test_limits.py and test_http_transport.py:
a connection that does not finish its (TLS and) HTTP/2 handshake within
--header-timeout-secs is closed, one with no call for --idle-timeout-secs is
sent GOAWAY and closed, and connections beyond --grpc-max-connections are
reset at once, while a real client (tritonclient.grpc) keeps being served.

The clients here speak raw TCP and just enough HTTP/2 (the preface and an
empty SETTINGS frame) to be told apart from a slowloris. Nothing here asserts
a latency: the bounds on waits are for answers that must come."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Final

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from berth_server import HOST, BerthServer, berth_binary
from models import IRIS_MODEL, ModelRepository
from test_http_transport import low_fd_limit_wrapper
from test_limits import iris_rows
from test_tls import Pki, pki  # noqa: F401 (pki is a fixture)

HANDSHAKE_TIMEOUT_S: Final = 2
IDLE_TIMEOUT_S: Final = 2
SLOW_CONNECTIONS: Final = 500
# gRPC's own handshake timeout is 120 s and it has no idle limit: every
# bound below is far under that, so the old server fails each test.
SETTLE_TIMEOUT_S: Final = 30.0
ANSWER_TIMEOUT_S: Final = 60.0

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS: Final = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_FRAME: Final = 0x4
GOAWAY_FRAME: Final = 0x7


def infer_once(client: grpcclient.InferenceServerClient, x: np.ndarray) -> None:
    infer_input = grpcclient.InferInput("X", list(x.shape), "FP32")
    infer_input.set_data_from_numpy(x)
    result = client.infer(IRIS_MODEL, [infer_input], client_timeout=ANSWER_TIMEOUT_S)
    assert result.as_numpy("label") is not None


def _grpc_client(address: str, x: np.ndarray, stop: list[bool]) -> int:
    """Infers over one channel until told to stop; returns how many succeeded, failing on any error."""
    client = grpcclient.InferenceServerClient(address)
    served = 0
    try:
        while not stop[0]:
            infer_once(client, x)
            served += 1
    finally:
        client.close()
    return served


async def _closed_by_server(port: int, first: bytes, seconds: float) -> bool:
    """Connects, sends `first`, then reads (whatever the server sends) until
    the server closes the connection (True) or `seconds` pass (False)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        if first:
            writer.write(first)
            await writer.drain()
        end = asyncio.get_running_loop().time() + seconds
        while (left := end - asyncio.get_running_loop().time()) > 0:
            try:
                if await asyncio.wait_for(reader.read(65536), timeout=left) == b"":
                    return True
            except asyncio.TimeoutError:
                return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionResetError, BrokenPipeError):
            pass
    return False


def _slow_connections_closed(port: int, first_bytes: list[bytes]) -> list[bool]:
    async def all_slow() -> list[bool]:
        return list(await asyncio.gather(*(_closed_by_server(port, b, SETTLE_TIMEOUT_S) for b in first_bytes)))

    return asyncio.run(all_slow())


@pytest.fixture(scope="module")
def x(model_repository: ModelRepository) -> np.ndarray:
    return iris_rows(model_repository)


# ---- slowloris: the handshake timeout ----------------------------------------


@pytest.fixture(scope="module")
def guarded_server(
    model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BerthServer]:
    log_path = tmp_path_factory.mktemp("grpc_guarded_berth") / "berth.log"
    args = [
        "--header-timeout-secs", str(HANDSHAKE_TIMEOUT_S),
        "--idle-timeout-secs", str(IDLE_TIMEOUT_S),
        # Room for every slow connection: they are to be cut by the
        # handshake timeout, not the connection cap.
        "--grpc-max-connections", str(2 * SLOW_CONNECTIONS),
    ]  # fmt: skip
    with BerthServer.start(berth_binary(), model_repository.root, log_path, extra_args=args) as server:
        yield server


def test_grpc_slowloris_connections_are_closed_while_a_grpc_client_is_served(
    guarded_server: BerthServer, x: np.ndarray
) -> None:
    port = int(guarded_server.grpc_address().rsplit(":", 1)[1])
    # Half send the preface's first byte, half complete TCP and send nothing.
    first_bytes = [PREFACE[:1]] * (SLOW_CONNECTIONS // 2) + [b""] * (SLOW_CONNECTIONS - SLOW_CONNECTIONS // 2)
    stop = [False]
    with ThreadPoolExecutor(1) as pool:
        normal: Future[int] = pool.submit(_grpc_client, guarded_server.grpc_address(), x, stop)
        try:
            closed = _slow_connections_closed(port, first_bytes)
        finally:
            stop[0] = True
        served = normal.result()
    print(f"grpc client: {served} inferences served beside {SLOW_CONNECTIONS} slow connections")
    one_byte, silent = closed[: SLOW_CONNECTIONS // 2], closed[SLOW_CONNECTIONS // 2 :]
    assert all(one_byte), f"{one_byte.count(False)} one-byte connections were left open"
    assert all(silent), f"{silent.count(False)} silent connections were left open"
    assert served > 0
    assert "gRPC connection refused" not in guarded_server.log()
    client = grpcclient.InferenceServerClient(guarded_server.grpc_address())
    try:
        infer_once(client, x)
    finally:
        client.close()


# ---- idle connections ----------------------------------------------------------


def _frames_until_closed(port: int) -> list[int]:
    """Opens an HTTP/2 connection (preface and SETTINGS), sends no call and
    returns the types of the frames the server sent until it closed the
    connection; fails if it is still open after SETTLE_TIMEOUT_S."""
    sock = socket.create_connection((HOST, port), timeout=SETTLE_TIMEOUT_S)
    received = b""
    try:
        sock.sendall(PREFACE + EMPTY_SETTINGS)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            assert time.monotonic() < deadline, "the idle connection was never closed"
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if chunk == b"":
                break
            received += chunk
    finally:
        sock.close()
    types: list[int] = []
    while len(received) >= 9:
        length = int.from_bytes(received[:3], "big")
        types.append(received[3])
        received = received[9 + length :]
    return types


def test_an_idle_grpc_connection_is_sent_goaway_and_closed(guarded_server: BerthServer) -> None:
    port = int(guarded_server.grpc_address().rsplit(":", 1)[1])
    frames = _frames_until_closed(port)
    assert SETTINGS_FRAME in frames, frames  # the handshake was done: not cut as a slowloris
    assert GOAWAY_FRAME in frames, frames


def _established_on(port: int) -> int:
    """The server's ends of established TCP connections on `port` (this
    host's /proc/net/tcp and tcp6: gRPC listens on a dual-stack socket)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # TCP_ESTABLISHED
                count += 1
    return count


def test_a_client_whose_idle_connection_was_closed_reconnects_and_is_served(
    guarded_server: BerthServer, x: np.ndarray
) -> None:
    address = guarded_server.grpc_address()
    port = int(address.rsplit(":", 1)[1])
    client = grpcclient.InferenceServerClient(address)
    try:
        infer_once(client, x)
        assert _established_on(port) >= 1
        # The server closes the client's connection once it has been idle.
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while _established_on(port) > 0:
            assert time.monotonic() < deadline, "the idle client's connection was never closed"
            time.sleep(0.2)
        # The same client object reconnects by itself for its next calls.
        for _ in range(3):
            infer_once(client, x)
    finally:
        client.close()


# ---- ping floods ---------------------------------------------------------------

ENHANCE_YOUR_CALM: Final = 0xB
PINGS: Final = 10


def test_a_ping_flood_is_answered_goaway_enhance_your_calm(guarded_server: BerthServer) -> None:
    """Pings without calls faster than one per 30 s: two strikes, then GOAWAY
    (ENHANCE_YOUR_CALM) and the connection closes. (gRPC's own defaults
    refuse this too; the test keeps Berth's settings from loosening it.)"""
    port = int(guarded_server.grpc_address().rsplit(":", 1)[1])
    sock = socket.create_connection((HOST, port), timeout=SETTLE_TIMEOUT_S)
    received = b""
    try:
        pings = b"".join(b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + i.to_bytes(8, "big") for i in range(PINGS))
        sock.sendall(PREFACE + EMPTY_SETTINGS + pings)
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    goaway_codes: list[int] = []
    while len(received) >= 9:
        length = int.from_bytes(received[:3], "big")
        if received[3] == GOAWAY_FRAME:
            goaway_codes.append(int.from_bytes(received[13:17], "big"))
        received = received[9 + length :]
    assert ENHANCE_YOUR_CALM in goaway_codes, goaway_codes


# ---- the connection cap --------------------------------------------------------

MAX_GRPC_CONNECTIONS: Final = 8
EXTRA_CONNECTIONS: Final = 12


def _open_http2(port: int) -> tuple[socket.socket | None, bool]:
    """An HTTP/2 connection (preface and SETTINGS) and whether the server took
    it: it answers with its SETTINGS, or resets or closes it unanswered (the
    reset may come before connect() returns: no socket then)."""
    try:
        sock = socket.create_connection((HOST, port), timeout=SETTLE_TIMEOUT_S)
    except (ConnectionResetError, BrokenPipeError):
        return None, False
    try:
        sock.sendall(PREFACE + EMPTY_SETTINGS)
        header = sock.recv(9)
    except (ConnectionResetError, BrokenPipeError):
        return sock, False
    return sock, len(header) > 3 and header[3] == SETTINGS_FRAME


@pytest.fixture
def capped_server(model_repository: ModelRepository, tmp_path: Path) -> Iterator[BerthServer]:
    args = ["--grpc-max-connections", str(MAX_GRPC_CONNECTIONS)]
    with BerthServer.start(berth_binary(), model_repository.root, tmp_path / "berth.log", extra_args=args) as server:
        yield server


def test_grpc_connections_over_the_cap_are_closed_and_clients_are_still_served(
    capped_server: BerthServer, x: np.ndarray
) -> None:
    address = capped_server.grpc_address()
    port = int(address.rsplit(":", 1)[1])
    client = grpcclient.InferenceServerClient(address)
    held: list[socket.socket] = []
    try:
        infer_once(client, x)  # holds one of the connections
        taken = refused = 0
        for _ in range(MAX_GRPC_CONNECTIONS + EXTRA_CONNECTIONS):
            sock, ok = _open_http2(port)
            if sock is not None:
                held.append(sock)
            if ok:
                taken += 1
            else:
                refused += 1
        assert taken <= MAX_GRPC_CONNECTIONS - 1, taken
        assert refused >= EXTRA_CONNECTIONS, refused
        # The connection the client holds is still served.
        for _ in range(3):
            infer_once(client, x)
        assert "gRPC connection refused: at the connection limit" in capped_server.log()
        assert f"grpc_max_connections={MAX_GRPC_CONNECTIONS}" in capped_server.log()
        for sock in held:
            sock.close()
        held.clear()
        # Once the connections are gone, new clients are taken again.
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            sock, ok = _open_http2(port)
            if sock is not None:
                sock.close()
            if ok:
                break
            assert time.monotonic() < deadline, "no new connection was taken after the others closed"
            time.sleep(0.2)
        fresh = grpcclient.InferenceServerClient(address)
        try:
            infer_once(fresh, x)
        finally:
            fresh.close()
    finally:
        for sock in held:
            sock.close()
        client.close()


# Headroom is an eighth of the limit, at least 64 (server/http/connection_cap.h):
# 192 descriptors for connections, a quarter of them for gRPC.
CAPPED_FD_LIMIT: Final = 256


def test_rest_and_grpc_split_the_descriptors_below_the_open_file_limit(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    wrapper = low_fd_limit_wrapper(tmp_path, CAPPED_FD_LIMIT)
    with BerthServer.start(wrapper, model_repository.root, tmp_path / "berth.log") as server:
        assert "max_connections=144 grpc_max_connections=48 open_file_limit=256" in server.log(), server.log()


# ---- TLS: a client that never sends ClientHello ---------------------------------


def test_a_tls_grpc_connection_that_never_says_hello_is_closed(
    model_repository: ModelRepository, pki: Pki, tmp_path: Path, x: np.ndarray  # noqa: F811
) -> None:
    args = [
        "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
        "--header-timeout-secs", str(HANDSHAKE_TIMEOUT_S),
    ]  # fmt: skip
    with BerthServer.start(
        berth_binary(), model_repository.root, tmp_path / "berth.log", extra_args=args, ca_file=pki.ca
    ) as server:
        port = int(server.grpc_address().rsplit(":", 1)[1])
        # Silent, and one byte of a TLS record header.
        closed = _slow_connections_closed(port, [b""] * 10 + [b"\x16"] * 10)
        assert all(closed), f"{closed.count(False)} of {len(closed)} TLS connections left open"
        # A real TLS client is still served.
        client = grpcclient.InferenceServerClient(
            server.grpc_address().replace(HOST, "localhost"), ssl=True, root_certificates=str(pki.ca)
        )
        try:
            infer_once(client, x)
        finally:
            client.close()


