"""Replicas under failure (issue #11, item 4): three `berth serve` processes
on one private PostgreSQL, behind nginx balancing REST and gRPC, under
continuous load from 8 REST connections (no client retries: nginx retries
inference on another replica) and 2 gRPC channels (whose retry policy
retries ModelInfer on UNAVAILABLE and CANCELLED) for at least 30 s:

  - kill -9 of a replica: no client request fails (nginx sends what the dead
    replica dropped to another); restarted on an empty repository, it fetches
    its artifacts from PostgreSQL and serves again;
  - a rolling restart, SIGTERM to each replica in turn as Kubernetes does:
    no request fails;
  - a promotion made through one replica is served by all three within 5 s;
  - PostgreSQL restarted: the replicas keep serving, report the store
    degraded (readiness detail, berth_registry_store_degraded), refuse admin
    writes with a clear 503, and recover when it is back.

Runs alone with `pytest tests/integration/test_cluster.py` (or `-m cluster`).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import grpc
import numpy as np
import pytest
import requests
from tritonclient.grpc import service_pb2, service_pb2_grpc

from cluster import Cluster, ClusterUnavailable, Replica
from models import ALL_VERSIONS_MODEL, ModelRepository
from test_registry_postgres import MODEL, artifact
from v2 import V2Client

pytestmark = pytest.mark.cluster

REST_CONNECTIONS: Final = 8
GRPC_CHANNELS: Final = 2
LOAD_SECONDS: Final = 30.0
# The promise: a move on one replica is served by all within 5 s.
SYNC_DEADLINE_S: Final = 5.0
# How long a restarted replica may take to serve again, and the store's
# state to be reported (the sync runs about once a second): bounds for
# waiting, not measurements.
REJOIN_DEADLINE_S: Final = 20.0
T = TypeVar("T")
# nginx streams a gRPC request's body to the upstream and so cannot replay
# it on another replica once one cut the call off: gRPC clients retry
# themselves, by the channel's retry policy (docs/deploy.md). A killed
# replica's calls reach the client as UNAVAILABLE (nginx's 502); a call that
# reaches a replica as its gRPC server shuts down can reach it as CANCELLED
# (seen in about one call of 5,000 during the rolling restart). ModelInfer is
# idempotent for these models, so both are retried.
GRPC_SERVICE_CONFIG: Final = json.dumps({
    "methodConfig": [{
        "name": [{"service": "inference.GRPCInferenceService", "method": "ModelInfer"}],
        "retryPolicy": {
            "maxAttempts": 4, "initialBackoff": "0.05s", "maxBackoff": "0.5s",
            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
        },
    }]
})  # fmt: skip


def wait_for(probe: Callable[[], T], expected: T, what: str, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    seen = probe()
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = probe()
    assert seen == expected, f"{what}: {seen!r} instead of {expected!r} after {deadline_s} s"


@dataclass
class Load:
    """Clients sending inference through nginx until stopped; every failure is kept."""

    rest_url: str
    grpc_address: str
    body: dict[str, Any]
    grpc_request: service_pb2.ModelInferRequest
    failures: list[str] = field(default_factory=list)
    upstreams: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for _ in range(REST_CONNECTIONS):
            self._threads.append(threading.Thread(target=self._rest, daemon=True))
        for _ in range(GRPC_CHANNELS):
            self._threads.append(threading.Thread(target=self._grpc, daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _record(self, failure: str | None, upstream: str = "", version: str = "") -> None:
        with self._lock:
            self.requests += 1
            if failure is not None:
                self.failures.append(f"{time.strftime('%X')} {failure}")
            self.upstreams[upstream] += 1
            self.versions[version] += 1

    def _rest(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    r = session.post(f"{self.rest_url}/v2/models/{MODEL}/infer", json=self.body, timeout=15)
                except requests.RequestException as e:
                    self._record(f"REST {type(e).__name__}: {e}")
                    continue
                ok = r.status_code == 200 and len(r.json()["outputs"]) > 0
                self._record(
                    None if ok else f"REST {r.status_code} {r.text[:200]}",
                    r.headers.get("Berth-Upstream", ""),
                    r.headers.get("Berth-Model-Version", ""),
                )

    def _grpc(self) -> None:
        options = [("grpc.enable_retries", 1), ("grpc.service_config", GRPC_SERVICE_CONFIG)]
        with grpc.insecure_channel(self.grpc_address, options=options) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            while not self._stop.is_set():
                # The channel's policy cannot retry a call nginx has already
                # answered with a 502 (its response headers commit the call),
                # so the client retries that one itself, as docs/deploy.md says
                # a client behind a proxy should; any other failure counts.
                for attempt in range(3):
                    try:
                        reply = stub.ModelInfer(self.grpc_request, timeout=15)
                        self._record(None, "grpc", reply.model_version)
                        break
                    except grpc.RpcError as e:
                        committed_502 = e.code() == grpc.StatusCode.UNAVAILABLE and "status: 502" in (e.details() or "")
                        if committed_502 and attempt < 2:
                            time.sleep(0.05)
                            continue
                        self._record(f"gRPC {e.code().name}: {e.details()}")
                        break

    def snapshot(self) -> tuple[int, Counter[str]]:
        with self._lock:
            return self.requests, Counter(self.upstreams)


def readiness(replica: Replica) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(f"{replica.base_url}/v2/health/ready", timeout=5).json()
    return body


def degraded_metric(replica: Replica) -> str:
    text = requests.get(f"{replica.base_url}/metrics", timeout=5).text
    line = next(line for line in text.splitlines() if line.startswith("berth_registry_store_degraded "))
    return line.split()[1]


def served_version(base_url: str, body: dict[str, Any]) -> str | None:
    r = requests.post(f"{base_url}/v2/models/{MODEL}/infer", json=body, timeout=5)
    return r.headers.get("Berth-Model-Version") if r.status_code == 200 else None


def promote(replica: Replica, version: int) -> requests.Response:
    return requests.post(
        f"{replica.base_url}/v2/registry/models/{MODEL}/promote", json={"version": version}, timeout=10
    )


def push(replica: Replica, data: bytes) -> int:
    r = requests.post(
        f"{replica.base_url}/v2/registry/models/{MODEL}/versions",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    version: int = r.json()["version"]
    return version


def upstream_of(replica: Replica) -> str:
    return f"127.0.0.1:{replica.http_port}"


def wait_until_nginx_uses(cluster: Cluster, load: Load, replica: Replica) -> None:
    """The replica answers clients through nginx again (nginx retries a
    replica it marked down about a second later)."""
    start = load.snapshot()[1][upstream_of(replica)]
    wait_for(lambda: load.snapshot()[1][upstream_of(replica)] > start, True,
             f"replica {replica.index} serving through nginx", REJOIN_DEADLINE_S)  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start()
    except ClusterUnavailable as e:
        c.stop()
        pytest.skip(str(e))
    except BaseException:
        c.stop()
        raise
    yield c
    codes = c.stop()
    assert codes == [0] * len(codes), f"replicas exited with {codes}"


def test_replicas_behind_nginx_survive_kills_restarts_promotions_and_a_database_restart(
    cluster: Cluster, model_repository: ModelRepository
) -> None:
    a, b, c = cluster.replicas
    model = model_repository.model(ALL_VERSIONS_MODEL, 1)
    body = model.infer_request(model.dataset.X_test[:4])
    rows = np.asarray(model.dataset.X_test[:4], dtype=np.float32)
    grpc_request = service_pb2.ModelInferRequest(model_name=MODEL)
    tensor = grpc_request.inputs.add(name=body["inputs"][0]["name"], datatype="FP32", shape=list(rows.shape))
    tensor.contents.fp32_contents.extend(rows.ravel().tolist())

    # Version 1 pushed and promoted through replica a; all three serve it.
    assert push(a, artifact(model_repository, 1)) == 1
    assert promote(a, 1).status_code == 200
    for replica in cluster.replicas:
        wait_for(lambda r=replica: served_version(r.base_url, body), "1", f"replica {replica.index}", SYNC_DEADLINE_S)
    assert served_version(cluster.base_url, body) == "1"

    load = Load(cluster.base_url, cluster.grpc_address, body, grpc_request)
    started = time.monotonic()
    load.start()
    try:
        time.sleep(2)
        assert set(load.snapshot()[1]) >= {upstream_of(r) for r in cluster.replicas}, load.snapshot()

        # kill -9, then a restart on an empty repository: the artifacts come from PostgreSQL.
        a.kill()
        time.sleep(1)
        a.start(fresh_repository=True)
        assert (a.repository / MODEL / "1" / "model.onnx").read_bytes() == artifact(model_repository, 1)
        assert served_version(a.base_url, body) == "1"
        wait_until_nginx_uses(cluster, load, a)

        # A rolling restart: SIGTERM each replica in turn, wait until it serves again.
        for replica in cluster.replicas:
            assert replica.stop() == 0
            replica.start()
            wait_until_nginx_uses(cluster, load, replica)

        # A promotion through replica b reaches all three within 5 s.
        assert push(b, artifact(model_repository, 2)) == 2
        assert promote(b, 2).status_code == 200
        for replica in cluster.replicas:
            wait_for(lambda r=replica: served_version(r.base_url, body), "2", f"replica {replica.index}", SYNC_DEADLINE_S)

        # PostgreSQL restarted: serving goes on, the store is reported degraded,
        # admin writes are refused clearly, and all recover once it is back.
        cluster.pause_postgres()
        for replica in cluster.replicas:
            wait_for(lambda r=replica: readiness(r)["registry"]["state"], "degraded",
                     f"replica {replica.index}'s readiness detail", REJOIN_DEADLINE_S)  # fmt: skip
            assert degraded_metric(replica) == "1"
            assert "unreachable" in readiness(replica)["registry"]["error"]
            assert served_version(replica.base_url, body) == "2"
        refused = promote(c, 1)
        assert refused.status_code == 503, refused.text
        assert "registry store (PostgreSQL) is unreachable" in refused.json()["error"]
        time.sleep(2)  # load keeps flowing through the outage
        cluster.resume_postgres()
        for replica in cluster.replicas:
            wait_for(lambda r=replica: readiness(r), {"ready": True, "registry": {"state": "ok"}},
                     f"replica {replica.index}'s recovery", REJOIN_DEADLINE_S)  # fmt: skip
            assert degraded_metric(replica) == "0"
        assert promote(c, 1).status_code == 200
        for replica in cluster.replicas:
            wait_for(lambda r=replica: served_version(r.base_url, body), "1", f"replica {replica.index}", SYNC_DEADLINE_S)

        # The load ran for at least LOAD_SECONDS in all.
        time.sleep(max(0.0, LOAD_SECONDS - (time.monotonic() - started)))
    finally:
        load.stop()

    total, upstreams = load.snapshot()
    assert load.failures == [], f"{len(load.failures)} of {total} requests failed:\n" + "\n".join(load.failures[:20])
    assert upstreams["grpc"] > 0
    assert all(upstreams[upstream_of(r)] > 0 for r in cluster.replicas), upstreams
    assert set(load.versions) <= {"1", "2"}, load.versions
    print(f"{total} requests in {time.monotonic() - started:.0f} s, none failed; by replica: {dict(upstreams)}")
