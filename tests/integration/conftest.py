"""Session fixtures: the trained test models and a Berth server serving them.

The server binary is build/berth, or $BERTH_BINARY.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import pytest

from berth_server import BerthServer, berth_binary
from models import ModelRepository, build_model_repository
from v2 import V2Client

# Small, so that the oversized-body test needs little data; every other
# request of the suite is far below it.
MAX_REQUEST_BYTES: Final = 1 << 20


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: replicas behind nginx on PostgreSQL (tests/integration/test_cluster.py)")


@pytest.fixture(scope="session")
def max_request_bytes() -> int:
    """The --max-request-bytes of `server`."""
    return MAX_REQUEST_BYTES


@pytest.fixture(scope="session")
def model_repository(tmp_path_factory: pytest.TempPathFactory) -> ModelRepository:
    return build_model_repository(tmp_path_factory.mktemp("model_repository"))


@pytest.fixture(scope="session")
def server(
    model_repository: ModelRepository, max_request_bytes: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BerthServer]:
    """Berth serving `model_repository`; must exit with code 0 on SIGTERM at the end of the session."""
    log_path = tmp_path_factory.mktemp("berth") / "berth.log"
    with BerthServer.start(
        berth_binary(), model_repository.root, log_path, max_request_bytes=max_request_bytes
    ) as server:
        yield server


@pytest.fixture(scope="session")
def grpc_address(server: BerthServer) -> str:
    """host:port of `server`'s gRPC front end (it picks a free port)."""
    return server.grpc_address()


@pytest.fixture(scope="session")
def client(server: BerthServer) -> Iterator[V2Client]:
    with V2Client(server.base_url) as client:
        yield client
