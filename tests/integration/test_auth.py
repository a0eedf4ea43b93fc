"""API keys, scopes and --require-auth, with the real server and real clients.

Keys are made the ways an operator makes them: `berth keys create` on the
repository's store before the server starts, on a store named by --registry,
and through a running server (--url). Every route family of the REST front
end and every RPC of the gRPC one is tried with every kind of key; the table
below is compared with the scopes the sources declare, so a route added
without being listed here fails the suite.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from berth_server import HOST, REPO_ROOT, BerthServer, berth_binary, free_port
from models import ALL_VERSIONS_MODEL, ModelRepository

MODEL: Final = "iris_logreg"
MISSING: Final = "no_such_model"
ROW: Final = [5.1, 3.5, 1.4, 0.2]
INFER_BODY: Final = {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
CLI_TIMEOUT_S: Final = 60.0
HTTP_SOURCES: Final = REPO_ROOT / "src" / "server" / "http"
GRPC_SOURCE: Final = REPO_ROOT / "src" / "server" / "grpc" / "grpc_server.cc"
KEY_PATTERN: Final = re.compile(r"berth_[0-9a-f]{12}_[0-9a-f]{32}")

# Every REST route and the scope it needs. A route registered in the sources
# but missing here (or declared with another scope) fails
# test_every_route_has_a_scope_and_is_in_the_table.
ROUTE_SCOPES: Final[dict[tuple[str, str], str]] = {
    ("GET", "/v2/health/live"): "none",
    ("GET", "/v2/health/ready"): "none",
    ("GET", "/v2"): "read",
    ("GET", "/v2/models/stats"): "read",
    ("GET", "/v2/models/{model}"): "read",
    ("GET", "/v2/models/{model}/versions/{version}"): "read",
    ("GET", "/v2/models/{model}/config"): "read",
    ("GET", "/v2/models/{model}/versions/{version}/config"): "read",
    ("GET", "/v2/models/{model}/ready"): "read",
    ("GET", "/v2/models/{model}/versions/{version}/ready"): "read",
    ("POST", "/v2/models/{model}/infer"): "infer",
    ("POST", "/v2/models/{model}/versions/{version}/infer"): "infer",
    ("GET", "/v2/models/{model}/stats"): "read",
    ("GET", "/v2/models/{model}/versions/{version}/stats"): "read",
    ("POST", "/v2/repository/index"): "read",
    ("GET", "/v2/repository/index"): "read",
    ("POST", "/v2/repository/models/{model}/load"): "admin",
    ("POST", "/v2/repository/models/{model}/unload"): "admin",
    ("POST", "/v2/models/{model}/infer_rows"): "infer",
    ("POST", "/v2/models/{model}/versions/{version}/infer_rows"): "infer",
    ("GET", "/v2/registry/models"): "read",
    ("GET", "/v2/registry/models/{model}"): "read",
    ("GET", "/v2/registry/models/{model}/history"): "read",
    ("POST", "/v2/registry/models/{model}/promote"): "admin",
    ("POST", "/v2/registry/models/{model}/versions"): "admin",
    ("POST", "/v2/registry/models/{model}/shadow"): "admin",
    ("POST", "/v2/registry/models/{model}/split"): "admin",
    ("POST", "/v2/registry/models/{model}/versions/{version}/archive"): "admin",
    ("POST", "/v2/registry/models/{model}/versions/{version}/restore"): "admin",
    ("DELETE", "/v2/registry/models/{model}/versions/{version}"): "admin",
    ("POST", "/v2/registry/models/{model}/versions/{version}/evaluations"): "admin",
    ("POST", "/v2/registry/models/{model}/rollback"): "admin",
    ("GET", "/v2/keys"): "admin",
    ("POST", "/v2/keys"): "admin",
    ("DELETE", "/v2/keys/{name}"): "admin",
    ("GET", "/v1/models/{model}"): "read",
    ("GET", "/v1/models/{model}/versions/{version}"): "read",
    ("GET", "/v1/models/{model}/labels/{label}"): "read",
    ("POST", "/v1/models/{model}:predict"): "infer",
    ("POST", "/v1/models/{model}/versions/{version}:predict"): "infer",
    ("POST", "/v1/models/{model}/labels/{label}:predict"): "infer",
    ("GET", "/v1/models/{model}/metadata"): "read",
    ("GET", "/v1/models/{model}/versions/{version}/metadata"): "read",
    ("GET", "/v1/models/{model}/labels/{label}/metadata"): "read",
    ("POST", "/v1/models/{model}:classify"): "infer",
    ("POST", "/v1/models/{model}/versions/{version}:classify"): "infer",
    ("POST", "/v1/models/{model}/labels/{label}:classify"): "infer",
    ("POST", "/v1/models/{model}:regress"): "infer",
    ("POST", "/v1/models/{model}/versions/{version}:regress"): "infer",
    ("POST", "/v1/models/{model}/labels/{label}:regress"): "infer",
    ("GET", "/openapi.json"): "read",
    ("GET", "/metrics"): "read",
    # A version's artifact is the model itself.
    ("GET", "/v2/registry/models/{model}/versions/{version}/artifact"): "admin",
    # Drift (docs/monitoring.md): reports are reads, baselines are changes.
    ("GET", "/v2/models/{model}/drift"): "read",
    ("GET", "/v2/models/{model}/versions/{version}/drift"): "read",
    ("GET", "/v2/models/{model}/baseline"): "read",
    ("GET", "/v2/models/{model}/versions/{version}/baseline"): "read",
    ("POST", "/v2/models/{model}/baseline"): "admin",
    ("DELETE", "/v2/models/{model}/baseline"): "admin",
    ("POST", "/v2/models/{model}/versions/{version}/baseline"): "admin",
    ("DELETE", "/v2/models/{model}/versions/{version}/baseline"): "admin",
    # Feedback (docs/monitoring.md): the caller that predicts sends the
    # ground truth, so feedback is an inference-scoped call; the accuracy a
    # read.
    ("POST", "/v2/models/{model}/feedback"): "infer",
    ("POST", "/v2/models/{model}/versions/{version}/feedback"): "infer",
    ("GET", "/v2/models/{model}/accuracy"): "read",
    ("GET", "/v2/models/{model}/versions/{version}/accuracy"): "read",
    # Alerts (docs/monitoring.md#alerts): the rules and their states are a read.
    ("GET", "/v2/alerts"): "read",
    # Shared memory (docs/migrating.md): status is a read; a registration
    # lets requests read and write that memory, so it is an admin change.
    ("GET", "/v2/systemsharedmemory/status"): "read",
    ("GET", "/v2/systemsharedmemory/region/{region}/status"): "read",
    ("POST", "/v2/systemsharedmemory/region/{region}/register"): "admin",
    ("POST", "/v2/systemsharedmemory/unregister"): "admin",
    ("POST", "/v2/systemsharedmemory/region/{region}/unregister"): "admin",
    ("GET", "/v2/cudasharedmemory/status"): "read",
    ("GET", "/v2/cudasharedmemory/region/{region}/status"): "read",
    ("POST", "/v2/cudasharedmemory/region/{region}/register"): "admin",
    ("POST", "/v2/cudasharedmemory/region/{region}/unregister"): "admin",
    ("POST", "/v2/cudasharedmemory/unregister"): "admin",
}
# The platform routes (--platform); served only in a platform's mode.
PLATFORM_ROUTE_SCOPES: Final[dict[str, dict[tuple[str, str], str]]] = {
    "sagemaker": {("GET", "/ping"): "none", ("POST", "/invocations"): "infer"},
    "vertex": {("GET", "platform.health_route"): "none", ("POST", "platform.predict_route"): "infer"},
    "azure": {("GET", "/"): "none", ("GET", "/ready"): "none", ("POST", "/score"): "infer"},
}
VERTEX_DEFAULTS: Final = {"platform.health_route": "/health", "platform.predict_route": "/predict"}

# Every RPC Berth serves and its scope; the service's other methods (shared
# memory, trace, log settings) are answered UNIMPLEMENTED by gRPC itself.
RPC_SCOPES: Final[dict[str, str]] = {
    "ServerLive": "none",
    "ServerReady": "none",
    "ModelReady": "read",
    "ServerMetadata": "read",
    "ModelMetadata": "read",
    "ModelInfer": "infer",
    "ModelStatistics": "read",
    "RepositoryIndex": "read",
    "RepositoryModelLoad": "admin",
    "RepositoryModelUnload": "admin",
    "ModelConfig": "read",
    "SystemSharedMemoryStatus": "read",
    "SystemSharedMemoryRegister": "admin",
    "SystemSharedMemoryUnregister": "admin",
    "CudaSharedMemoryStatus": "read",
    "CudaSharedMemoryRegister": "admin",
    "CudaSharedMemoryUnregister": "admin",
}
UNSERVED_RPCS: Final = {
    "ModelStreamInfer",
    "TraceSetting",
    "LogSettings",
}

# The keys every server of this module holds, by name and scopes.
KEY_SCOPES: Final = {
    "reader": ["read"],
    "inferrer": ["infer"],
    "iris-only": [f"infer:{MODEL}"],
    "ops": ["admin"],
}


def run_keys(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(berth_binary()), "keys", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
        env=env,
    )


def create_key(source: list[str], name: str, scopes: list[str], *extra: str) -> str:
    """`berth keys create`; the key is the last line of its output."""
    scope_args = [arg for scope in scopes for arg in ("--scope", scope)]
    done = run_keys("create", *source, "--name", name, *scope_args, *extra)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert KEY_PATTERN.fullmatch(key), done.stdout
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class AuthServer:
    server: BerthServer
    keys: dict[str, str]  # name -> key
    store: Path

    @property
    def url(self) -> str:
        return self.server.base_url

    def get(self, path: str, key: str | None = None) -> requests.Response:
        return requests.get(self.url + path, headers=bearer(key) if key else {}, timeout=30)


@pytest.fixture(scope="module")
def auth_server(model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """--require-auth over the test models, its keys in a store of its own (sqlite:PATH)."""
    directory = tmp_path_factory.mktemp("auth")
    store = directory / "registry.db"
    source = ["--registry", f"sqlite:{store}"]
    keys = {name: create_key(source, name, scopes) for name, scopes in KEY_SCOPES.items()}
    keys["slow"] = create_key(source, "slow", ["infer"], "--rate", "2/s")
    with BerthServer.start(
        berth_binary(),
        model_repository.root,
        directory / "berth.log",
        # debug: the most the server ever logs, for test_keys_never_reach_the_log; the
        # access log too, on stdout, which goes to the same log.
        extra_args=["--require-auth", "--registry", f"sqlite:{store}", "--log-level", "debug",
                    "--access-log", "stdout"],  # fmt: skip
        authorization=f"Bearer {keys['reader']}",
    ) as server:
        yield AuthServer(server, keys, store)


# ---- the table against the sources ------------------------------------------------


def declared_route_scopes() -> dict[tuple[str, str], str]:
    """(method, pattern) -> scope of every router->Add(...) in the HTTP front end."""
    add = re.compile(r'router->Add\(\s*"([A-Z]+)",\s*("[^"]*"|platform\.\w+),\s*(?:auth::Scope::k(\w+))?')
    routes: dict[tuple[str, str], str] = {}
    for source in HTTP_SOURCES.glob("*.cc"):
        for method, pattern, scope in add.findall(source.read_text()):
            routes[(method, pattern.strip('"'))] = scope.lower() if scope else "MISSING"
    return routes


def test_every_route_has_a_scope_and_is_in_the_table() -> None:
    declared = declared_route_scopes()
    assert ("POST", "/v2/models/{model}/infer") in declared  # the scan itself works
    missing_scope = [route for route, scope in declared.items() if scope == "MISSING"]
    assert missing_scope == [], "routes registered without a scope"
    table = dict(ROUTE_SCOPES)
    for routes in PLATFORM_ROUTE_SCOPES.values():
        table.update(routes)
    assert declared == table, "routes whose scope differs from this test's table, or are not in it"


def test_every_rpc_has_a_scope_and_is_in_the_table() -> None:
    add = re.compile(r"Add\(&AsyncService::Request(\w+),\s*&S::\w+(?:,\s*Scope::k(\w+))?\)")
    declared = {rpc: scope.lower() if scope else "MISSING" for rpc, scope in add.findall(GRPC_SOURCE.read_text())}
    assert declared == RPC_SCOPES
    service = grpcclient.service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    methods = {method.name for method in service.methods}
    assert methods - set(RPC_SCOPES) - UNSERVED_RPCS == set(), "an RPC neither served with a scope nor listed as unserved"


# ---- every route family x every kind of key ------------------------------------------


def concrete_path(pattern: str, scope: str) -> str:
    # Admin routes name a model that does not exist (and a key that does
    # not), so an authorized request changes nothing.
    model = MISSING if scope == "admin" else MODEL
    return (
        pattern.replace("{model}", model).replace("{version}", "1").replace("{label}", "production").replace("{name}", "nokey")
    )


def allowed(key_name: str | None, scope: str, path: str) -> bool:
    if scope == "none":
        return True
    if key_name is None:
        return False
    granted = KEY_SCOPES[key_name]
    if "admin" in granted:
        return True
    if scope == "infer":
        return "infer" in granted or f"/{MODEL}" in path and f"infer:{MODEL}" in granted
    return scope in granted


def send(method: str, url: str, key: str | None) -> requests.Response:
    headers = bearer(key) if key else {}
    body = INFER_BODY if method == "POST" and "infer" in url and "infer_rows" not in url else None
    return requests.request(method, url, headers=headers, json=body, timeout=30)


@pytest.mark.parametrize("key_name", [None, *KEY_SCOPES])
def test_rest_route_families_by_scope(auth_server: AuthServer, key_name: str | None) -> None:
    key = auth_server.keys[key_name] if key_name else None
    for (method, pattern), scope in ROUTE_SCOPES.items():
        path = concrete_path(pattern, scope)
        response = send(method, auth_server.url + path, key)
        route = f"{key_name} {method} {path}"
        if allowed(key_name, scope, path):
            assert response.status_code not in (401, 403), (route, response.text)
            continue
        expected = 401 if key_name is None else 403
        assert response.status_code == expected, (route, response.text)
        assert response.headers["Content-Type"].startswith("application/json"), route
        assert "error" in response.json(), route
        assert MISSING not in response.text or "infer:" in response.text, route
        if expected == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer", route


def test_scope_refusal_does_not_say_whether_the_model_exists(auth_server: AuthServer) -> None:
    iris_only = auth_server.keys["iris-only"]
    reader = auth_server.keys["reader"]
    url = auth_server.url
    # A model-limited key on a missing model: 403, as on an existing other model.
    for model in (MISSING, ALL_VERSIONS_MODEL):
        response = requests.post(f"{url}/v2/models/{model}/infer", json=INFER_BODY, headers=bearer(iris_only), timeout=30)
        assert response.status_code == 403, response.text
        assert "does not grant" in response.json()["error"]
    # Without read, metadata of a missing and an existing model look the same.
    inferrer = auth_server.keys["inferrer"]
    answers = {
        requests.get(f"{url}/v2/models/{m}", headers=bearer(inferrer), timeout=30).status_code for m in (MISSING, MODEL)
    }
    assert answers == {403}
    # The key that may know says 404.
    assert requests.get(f"{url}/v2/models/{MISSING}", headers=bearer(reader), timeout=30).status_code == 404
    assert requests.post(f"{url}/v2/models/{MISSING}/infer", json=INFER_BODY, headers=bearer(inferrer), timeout=30).status_code == 404
    # With the right key the model answers.
    response = requests.post(f"{url}/v2/models/{MODEL}/infer", json=INFER_BODY, headers=bearer(iris_only), timeout=30)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Basic b3BzOnNlY3JldA==", "Bearer not-a-key", "Bearer berth_000000000000_00000000000000000000000000000000"],
)
def test_bad_credentials_are_401(auth_server: AuthServer, header: str) -> None:
    headers = {"Authorization": header} if header else {}
    response = requests.get(f"{auth_server.url}/v2/models/{MODEL}", headers=headers, timeout=30)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "error" in response.json()
    # The server keeps serving.
    assert auth_server.get(f"/v2/models/{MODEL}", auth_server.keys["reader"]).status_code == 200


def _answer_to_header_alone(auth_server: AuthServer, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Sends a POST's header announcing a 1 MB body and none of the body; the status and body of the answer."""
    import socket

    host, port = auth_server.server.address.rsplit(":", 1)
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json", "Content-Length: 1000000"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        # The answer, then the server's close (it half-closes after a refusal
        # whose body it did not read). A server that waited for the body
        # would let this read time out.
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    ("path", "key_name", "status"),
    [
        (f"/v2/models/{MODEL}/infer", None, 401),
        (f"/v2/models/{MODEL}/infer", "reader", 403),
        (f"/v2/models/{MISSING}/infer", "reader", 403),
        ("/v2/repository/index", None, 401),
        (f"/v1/models/{MODEL}:predict", "inferrer-bad", 401),
    ],
)
def test_a_body_is_not_read_for_a_refused_key(auth_server: AuthServer, path: str, key_name: str | None, status: int) -> None:
    """With --require-auth every body is authorized from its header first: no key, a bad one or a key without the scope is refused before the client sends the body."""
    if key_name == "inferrer-bad":
        headers = {"Authorization": "Bearer berth_000000000000_00000000000000000000000000000000"}
    else:
        headers = bearer(auth_server.keys[key_name]) if key_name else {}
    answered, body = _answer_to_header_alone(auth_server, path, headers)
    assert answered == status, body
    assert "error" in json.loads(body)
    # The server keeps serving; an authorized body is read as before.
    response = requests.post(f"{auth_server.url}/v2/models/{MODEL}/infer", json=INFER_BODY, headers=bearer(auth_server.keys["inferrer"]), timeout=30)
    assert response.status_code == 200, response.text


# ---- real clients ------------------------------------------------------------------


def test_tritonclient_http_with_headers(auth_server: AuthServer) -> None:
    client = httpclient.InferenceServerClient(auth_server.server.address)
    x = httpclient.InferInput("X", [1, 4], "FP32")
    x.set_data_from_numpy(np.array([ROW], dtype=np.float32))
    result = client.infer(MODEL, [x], headers=bearer(auth_server.keys["inferrer"]))
    assert result.get_response()["model_name"] == MODEL
    assert client.is_server_live()  # liveness needs no key
    with pytest.raises(InferenceServerException) as error:
        client.infer(MODEL, [x])
    assert "API key" in str(error.value)
    with pytest.raises(InferenceServerException):
        client.infer(MODEL, [x], headers=bearer(auth_server.keys["reader"]))
    client.close()


def grpc_calls(client: grpcclient.InferenceServerClient) -> dict[str, object]:
    """One call of every served RPC (admin ones on a missing model), taking headers."""
    x = grpcclient.InferInput("X", [1, 4], "FP32")
    x.set_data_from_numpy(np.array([ROW], dtype=np.float32))
    return {
        "ServerLive": lambda h: client.is_server_live(headers=h),
        "ServerReady": lambda h: client.is_server_ready(headers=h),
        "ModelReady": lambda h: client.is_model_ready(MODEL, headers=h),
        "ServerMetadata": lambda h: client.get_server_metadata(headers=h),
        "ModelMetadata": lambda h: client.get_model_metadata(MODEL, headers=h),
        "ModelInfer": lambda h: client.infer(MODEL, [x], headers=h),
        "ModelStatistics": lambda h: client.get_inference_statistics(MODEL, headers=h),
        "RepositoryIndex": lambda h: client.get_model_repository_index(headers=h),
        "RepositoryModelLoad": lambda h: client.load_model(MISSING, headers=h),
        "RepositoryModelUnload": lambda h: client.unload_model(MISSING, headers=h),
        "ModelConfig": lambda h: client.get_model_config(MODEL, headers=h),
        "SystemSharedMemoryStatus": lambda h: client.get_system_shared_memory_status(headers=h),
        # A region whose key does not exist: authorized, it fails on the key.
        "SystemSharedMemoryRegister": lambda h: client.register_system_shared_memory(
            "auth_test_region", "/berth_auth_test_no_such_key", 64, headers=h
        ),
        "SystemSharedMemoryUnregister": lambda h: client.unregister_system_shared_memory(
            "auth_test_region", headers=h
        ),
        "CudaSharedMemoryStatus": lambda h: client.get_cuda_shared_memory_status(headers=h),
        "CudaSharedMemoryRegister": lambda h: client.register_cuda_shared_memory(
            "auth_test_region", b"", 0, 64, headers=h
        ),
        "CudaSharedMemoryUnregister": lambda h: client.unregister_cuda_shared_memory(
            "auth_test_region", headers=h
        ),
    }


@pytest.mark.parametrize("key_name", [None, *KEY_SCOPES])
def test_grpc_rpcs_by_scope(auth_server: AuthServer, key_name: str | None) -> None:
    client = grpcclient.InferenceServerClient(auth_server.server.grpc_address())
    headers = {"authorization": f"Bearer {auth_server.keys[key_name]}"} if key_name else {}
    calls = grpc_calls(client)
    assert set(calls) == set(RPC_SCOPES)
    for rpc, scope in RPC_SCOPES.items():
        # The only model-limited RPC is ModelInfer, on MODEL.
        path = f"/{MODEL}" if rpc == "ModelInfer" else ""
        status = "OK"
        try:
            calls[rpc](headers)
        except InferenceServerException as error:
            status = str(error.status())
        if allowed(key_name, scope, path):
            assert "UNAUTHENTICATED" not in status and "PERMISSION_DENIED" not in status, (key_name, rpc, status)
        else:
            expected = "UNAUTHENTICATED" if key_name is None else "PERMISSION_DENIED"
            assert expected in status, (key_name, rpc, status)
    client.close()


# ---- expiry, revocation, rate limits -----------------------------------------------


def test_expired_and_revoked_keys(auth_server: AuthServer) -> None:
    ops = auth_server.keys["ops"]
    url = auth_server.url
    # Made through the running server: works at once.
    created = requests.post(
        f"{url}/v2/keys", json={"name": "short-lived", "scopes": ["read"], "expires_days": 1}, headers=bearer(ops), timeout=30
    )
    assert created.status_code == 200, created.text
    key = created.json()["key"]
    assert auth_server.get(f"/v2/models/{MODEL}", key).status_code == 200
    listed = requests.get(f"{url}/v2/keys", headers=bearer(ops), timeout=30).json()["keys"]
    entry = next(k for k in listed if k["name"] == "short-lived")
    assert entry["expires_at"] is not None and entry["revoked_at"] is None
    assert "hash" not in entry and "salt" not in entry and key not in str(listed)
    # Time passes: the store's expiry moves into the past; the server re-reads within a second or so.
    with sqlite3.connect(auth_server.store) as db:
        db.execute("UPDATE api_keys SET expires_at = '2001-01-01T00:00:00Z' WHERE name = 'short-lived'")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and auth_server.get(f"/v2/models/{MODEL}", key).status_code == 200:
        time.sleep(0.1)
    response = auth_server.get(f"/v2/models/{MODEL}", key)
    assert response.status_code == 401, response.text
    assert "expired" in response.json()["error"]
    # Revoked through the server: refused at once.
    other = requests.post(f"{url}/v2/keys", json={"name": "to-revoke", "scopes": ["read"]}, headers=bearer(ops), timeout=30)
    revocable = other.json()["key"]
    assert auth_server.get(f"/v2/models/{MODEL}", revocable).status_code == 200
    assert requests.delete(f"{url}/v2/keys/to-revoke", headers=bearer(ops), timeout=30).status_code == 200
    response = auth_server.get(f"/v2/models/{MODEL}", revocable)
    assert response.status_code == 401 and "revoked" in response.json()["error"], response.text
    assert requests.delete(f"{url}/v2/keys/to-revoke", headers=bearer(ops), timeout=30).status_code == 400
    assert requests.delete(f"{url}/v2/keys/nobody", headers=bearer(ops), timeout=30).status_code == 404
    # Bad key requests: a clear error, nothing stored.
    for body in ({}, {"name": "x"}, {"name": "x", "scopes": ["write"]}, {"name": "a b", "scopes": ["read"]}, [1]):
        bad = requests.post(f"{url}/v2/keys", json=body, headers=bearer(ops), timeout=30)
        assert bad.status_code == 400, (body, bad.text)
    names = {k["name"] for k in requests.get(f"{url}/v2/keys", headers=bearer(ops), timeout=30).json()["keys"]}
    assert "x" not in names and "a b" not in names


def test_rate_limit_answers_429_with_retry_after(auth_server: AuthServer) -> None:
    slow = auth_server.keys["slow"]
    statuses = []
    retry_after = []
    for _ in range(6):
        response = requests.post(
            f"{auth_server.url}/v2/models/{MODEL}/infer", json=INFER_BODY, headers=bearer(slow), timeout=30
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            retry_after.append(response.headers["Retry-After"])
            assert "rate limit" in response.json()["error"]
    assert 429 in statuses and 200 in statuses, statuses
    assert all(value.isdigit() and int(value) >= 1 for value in retry_after), retry_after
    client = grpcclient.InferenceServerClient(auth_server.server.grpc_address())
    x = grpcclient.InferInput("X", [1, 4], "FP32")
    x.set_data_from_numpy(np.array([ROW], dtype=np.float32))
    codes = []
    for _ in range(6):
        try:
            client.infer(MODEL, [x], headers={"authorization": f"Bearer {slow}"})
            codes.append("OK")
        except InferenceServerException as error:
            codes.append(str(error.status()))
    assert any("RESOURCE_EXHAUSTED" in c for c in codes), codes
    client.close()
    # The refusal carries retry-after in its trailing metadata. (A call the
    # bucket lets through fails on its empty request: also an RpcError.)
    channel = grpc.insecure_channel(auth_server.server.grpc_address())
    stub = grpcclient.service_pb2_grpc.GRPCInferenceServiceStub(channel)
    refusal: grpc.RpcError | None = None
    for _ in range(10):
        try:
            stub.ModelInfer.with_call(
                grpcclient.service_pb2.ModelInferRequest(model_name=MODEL),
                metadata=[("authorization", f"Bearer {slow}")],
                timeout=30,
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                refusal = error
                break
    channel.close()
    assert refusal is not None, "no RESOURCE_EXHAUSTED in 10 calls at once"
    trailing = dict(refusal.trailing_metadata() or ())
    assert trailing.get("retry-after", "").isdigit() and int(trailing["retry-after"]) >= 1, trailing


# The timing of a wrong key (how much of it is right, whether its id exists)
# is checked in process, where nanoseconds are visible: ConstantTimeTest in
# src/server/auth/constant_time_test.cc. Over HTTP a round trip's jitter (tens
# of microseconds) hides a leaky comparison of a 32-digit secret entirely.


# ---- the command line in its three forms ---------------------------------------------


def test_keys_cli_in_each_source_form(
    auth_server: AuthServer, model_repository: ModelRepository, tmp_path: Path
) -> None:
    # --url, with the admin key as a flag and from BERTH_API_KEY.
    url_source = ["--url", auth_server.url]
    key = create_key([*url_source, "--api-key", auth_server.keys["ops"]], "cli-url", ["read"])
    assert auth_server.get(f"/v2/models/{MODEL}", key).status_code == 200
    env = {"BERTH_API_KEY": auth_server.keys["ops"], "PATH": "/usr/bin:/bin"}
    listed = run_keys("list", *url_source, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "cli-url" in listed.stdout and key not in listed.stdout
    assert not KEY_PATTERN.search(listed.stdout)
    done = run_keys("revoke", *url_source, "cli-url", env=env)
    assert done.returncode == 0, done.stderr
    assert auth_server.get(f"/v2/models/{MODEL}", key).status_code == 401
    # --url with a key lacking admin: refused, exit 1.
    refused = run_keys("list", *url_source, "--api-key", auth_server.keys["reader"])
    assert refused.returncode == 1 and "403" in refused.stderr, refused.stderr
    # --registry: the running server's store; the server sees the new key within its reload period.
    registry_source = ["--registry", f"sqlite:{auth_server.store}"]
    key = create_key(registry_source, "cli-registry", ["infer"], "--rate", "100/s", "--expires", "30")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and auth_server.get("/v2", key).status_code == 401:
        time.sleep(0.1)
    infer = requests.post(f"{auth_server.url}/v2/models/{MODEL}/infer", json=INFER_BODY, headers=bearer(key), timeout=30)
    assert infer.status_code == 200, infer.text
    listed = run_keys("list", *registry_source)
    line = next(line for line in listed.stdout.splitlines() if line.startswith("cli-registry"))
    assert "infer" in line and "100/s" in line and "active" in line
    assert run_keys("revoke", *registry_source, "cli-registry").returncode == 0
    assert "revoked" in next(line for line in run_keys("list", *registry_source).stdout.splitlines() if line.startswith("cli-registry"))
    # --model-repository: the repository's own store, then a server on it.
    repo = tmp_path / "repo"
    (repo / MODEL).mkdir(parents=True)
    for item in (model_repository.root / MODEL).rglob("*"):
        target = repo / MODEL / item.relative_to(model_repository.root / MODEL)
        if item.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.write_bytes(item.read_bytes())
    key = create_key(["--model-repository", str(repo)], "cli-repo", ["admin"])
    assert (repo / ".berth" / "registry.db").is_file()
    listed = run_keys("list", "--model-repository", str(repo))
    assert listed.returncode == 0 and "cli-repo" in listed.stdout
    with BerthServer.start(
        berth_binary(), repo, tmp_path / "berth.log", grpc_port=-1, extra_args=["--require-auth"],
        authorization=f"Bearer {key}",
    ) as server:  # fmt: skip
        assert requests.get(f"{server.base_url}/v2/keys", headers=bearer(key), timeout=30).status_code == 200
        assert requests.get(f"{server.base_url}/v2/keys", timeout=30).status_code == 401
    assert run_keys("revoke", "--model-repository", str(repo), "cli-repo").returncode == 0
    # Usage errors: exit 2.
    for args in (
        ["create", "--name", "x", "--scope", "read"],
        ["create", *registry_source, "--name", "x"],
        ["create", *registry_source, "--name", "x", "--scope", "write"],
        ["create", *registry_source, "--name", "x", "--scope", "read", "--rate", "0/s"],
        ["list", *registry_source, "--url", auth_server.url],
        ["revoke", *registry_source],
    ):
        assert run_keys(*args).returncode == 2, args


def test_models_cli_sends_the_api_key(auth_server: AuthServer) -> None:
    base = [str(berth_binary()), "models", "list", "--url", auth_server.url]
    denied = subprocess.run(base, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)
    assert denied.returncode == 1 and "API key" in denied.stderr, denied.stderr
    done = subprocess.run(
        [*base, "--api-key", auth_server.keys["reader"]], capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stderr
    env = {"BERTH_API_KEY": auth_server.keys["reader"], "PATH": "/usr/bin:/bin"}
    done = subprocess.run(base, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False, env=env)
    assert done.returncode == 0, done.stderr


def test_admin_actions_name_the_key_in_the_audit_log(auth_server: AuthServer) -> None:
    ops = auth_server.keys["ops"]
    url = f"{auth_server.url}/v2/registry/models/{ALL_VERSIONS_MODEL}"
    response = requests.post(f"{url}/promote", json={"version": 2, "reason": "auth test"}, headers=bearer(ops), timeout=30)
    assert response.status_code == 200, response.text
    history = requests.get(f"{url}/history", headers=bearer(auth_server.keys["reader"]), timeout=30).json()
    records = history["history"] if isinstance(history, dict) else history
    promotion = [r for r in records if r.get("action") == "promote"][-1]
    assert promotion["actor"] == "ops"


# ---- platform routes and the loopback rule without --require-auth --------------------------


@pytest.mark.parametrize("platform", sorted(PLATFORM_ROUTE_SCOPES))
def test_platform_routes_by_scope(
    auth_server: AuthServer, model_repository: ModelRepository, platform: str, tmp_path: Path
) -> None:
    repo = model_repository.root
    with BerthServer.start(
        berth_binary(), repo, tmp_path / "berth.log", grpc_port=-1,
        extra_args=["--require-auth", "--registry", f"sqlite:{auth_server.store}", "--platform", platform,
                    "--default-model", MODEL, "--strict-readiness", "false"],
        authorization=f"Bearer {auth_server.keys['reader']}",
    ) as server:  # fmt: skip
        for (method, pattern), scope in PLATFORM_ROUTE_SCOPES[platform].items():
            path = VERTEX_DEFAULTS.get(pattern, pattern)
            for key_name in (None, "reader", "inferrer", "iris-only"):
                key = auth_server.keys[key_name] if key_name else None
                response = requests.request(
                    method, server.base_url + path, headers=bearer(key) if key else {}, json={"instances": [ROW]}, timeout=30
                )
                # A platform route names no model: infer:MODEL does not reach it.
                ok = scope == "none" or key_name == "inferrer"
                if ok:
                    assert response.status_code not in (401, 403), (platform, key_name, path, response.text)
                else:
                    assert response.status_code == (401 if key is None else 403), (platform, key_name, path, response.text)


def _non_loopback_address() -> str | None:
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent
            address: str = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_without_require_auth_every_admin_route_is_loopback_only_and_says_why(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    with BerthServer.start(
        berth_binary(), model_repository.root, tmp_path / "berth.log",
        extra_args=["--host", "0.0.0.0", "--registry", f"sqlite:{tmp_path / 'registry.db'}"],
    ) as server:  # fmt: skip
        remote = f"http://{address}:{server.http_port}"
        for (method, pattern), scope in ROUTE_SCOPES.items():
            response = send(method, remote + concrete_path(pattern, scope), None)
            if scope == "admin":
                assert response.status_code == 403, (pattern, response.text)
                error = response.json()["error"]
                assert "loopback" in error and "--require-auth" in error and "--allow-remote-admin" in error
            else:
                assert response.status_code not in (401, 403), (pattern, response.text)
        client = grpcclient.InferenceServerClient(f"{address}:{server.grpc_address().rsplit(':', 1)[1]}")
        for rpc, call in grpc_calls(client).items():
            status = "OK"
            try:
                call({})
            except InferenceServerException as error:
                status = str(error.status()) + str(error)
            if RPC_SCOPES[rpc] == "admin":
                assert "PERMISSION_DENIED" in status and "loopback" in status, (rpc, status)
            else:
                assert "PERMISSION_DENIED" not in status, (rpc, status)
        client.close()
        # Loopback clients may.
        local = requests.get(f"{server.base_url}/v2/keys", timeout=30)
        assert local.status_code == 200, local.text


def test_require_auth_without_a_store_refuses_to_start(model_repository: ModelRepository, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(berth_binary()), "serve", "--model-repository", str(model_repository.root), "--registry", "none",
         "--require-auth", "--http-port", str(free_port()), "--grpc-port", "-1", "--host", HOST],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "--require-auth needs a registry store" in done.stderr


def test_keys_never_reach_the_log(auth_server: AuthServer) -> None:
    """After the tests above: by now the server has seen every kind of key, good and bad, at every door."""
    created = requests.post(
        f"{auth_server.url}/v2/keys", json={"name": "logged", "scopes": ["read"]},
        headers=bearer(auth_server.keys["ops"]), timeout=30,
    )  # fmt: skip
    assert created.status_code == 200, created.text
    for header in (f"Bearer {auth_server.keys['ops']}x", "Bearer berth_0123456789ab_" + "f" * 32, "Basic secret"):
        requests.get(f"{auth_server.url}/v2/models/{MODEL}", headers={"Authorization": header}, timeout=30)
    log = auth_server.server.log()
    assert "API key created" in log  # the key routes do log, without the key
    assert not KEY_PATTERN.search(log), "a key in the server's log"
    assert "Bearer" not in log and "Basic secret" not in log, "an Authorization header in the log"
    assert "authorization" not in log.lower(), "an Authorization header in the log"


# ---- PostgreSQL: keys shared by replicas ---------------------------------------------

PG_SCRIPT: Final = REPO_ROOT / "scripts" / "private_postgres.sh"


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A new database on a private PostgreSQL server (scripts/private_postgres.sh), stopped afterwards."""
    directory = tmp_path_factory.mktemp("postgres")
    started = subprocess.run([str(PG_SCRIPT), "start", str(directory)], capture_output=True, text=True, check=False)
    try:
        assert started.returncode == 0, f"cannot start PostgreSQL:\n{started.stderr}"
        if (directory / "skip").exists():
            pytest.skip((directory / "skip").read_text().strip())
        made = subprocess.run(
            [str(PG_SCRIPT), "createdb", str(directory), "auth_keys"], capture_output=True, text=True, check=False
        )
        assert made.returncode == 0, made.stderr
        yield made.stdout.strip()
    finally:
        subprocess.run([str(PG_SCRIPT), "stop", str(directory)], check=False, capture_output=True)


def test_keys_on_postgresql_reach_every_replica(
    postgres_url: str, model_repository: ModelRepository, tmp_path: Path
) -> None:
    """A key made on the shared store works on two replicas; revoked on the store, both refuse it within seconds."""
    source = ["--registry", postgres_url]
    admin = create_key(source, "pg-admin", ["admin"])
    reader = create_key(source, "pg-reader", ["read"], "--expires", "7")
    listed = run_keys("list", *source)
    assert listed.returncode == 0 and "pg-reader" in listed.stdout, listed.stderr
    replicas = []
    with BerthServer.start(
        berth_binary(), tmp_path / "a", tmp_path / "a.log", grpc_port=-1,
        extra_args=["--require-auth", *source], authorization=f"Bearer {admin}",
    ) as first, BerthServer.start(
        berth_binary(), tmp_path / "b", tmp_path / "b.log", grpc_port=-1,
        extra_args=["--require-auth", *source], authorization=f"Bearer {admin}",
    ) as second:  # fmt: skip
        replicas = [first, second]
        for server in replicas:
            assert requests.get(f"{server.base_url}/v2", headers=bearer(reader), timeout=30).status_code == 200
        # Made through one replica: the other sees it within its reload period.
        made = requests.post(
            f"{first.base_url}/v2/keys", json={"name": "pg-made", "scopes": ["read"]}, headers=bearer(admin), timeout=30
        )
        assert made.status_code == 200, made.text
        made_key = made.json()["key"]
        assert run_keys("revoke", *source, "pg-reader").returncode == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answers = {
                (requests.get(f"{s.base_url}/v2", headers=bearer(reader), timeout=30).status_code,
                 requests.get(f"{s.base_url}/v2", headers=bearer(made_key), timeout=30).status_code)
                for s in replicas
            }  # fmt: skip
            if answers == {(401, 200)}:
                break
            time.sleep(0.1)
        assert answers == {(401, 200)}, answers
