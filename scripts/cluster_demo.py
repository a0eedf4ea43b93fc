#!/usr/bin/env python3
"""`make cluster-demo`: three Berth replicas on a private PostgreSQL behind
nginx, the topology tests/integration/test_cluster.py tests, for a person
to try (docs/deploy.md walks through it). The example model iris_logreg is
pushed through replica 0 and promoted to production; everything stops, and
its temporary directory is removed, on Ctrl-C.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import requests  # noqa: E402

from cluster import Cluster, ClusterUnavailable  # noqa: E402

MODEL = "iris_logreg"


def main() -> int:
    artifact = ROOT / "examples" / "models" / MODEL / "1" / "model.onnx"
    if not artifact.is_file():
        print(f"no {artifact}: run scripts/setup.sh (make build) first", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="berth-cluster-") as tmp:
        cluster = Cluster(Path(tmp))
        try:
            cluster.start()
        except ClusterUnavailable as e:
            print(f"cannot start the demo: {e}", file=sys.stderr)
            cluster.stop()
            return 1
        try:
            first = cluster.replicas[0]
            pushed = requests.post(
                f"{first.base_url}/v2/registry/models/{MODEL}/versions",
                data=artifact.read_bytes(),
                headers={"Content-Type": "application/octet-stream"},
                timeout=30,
            )
            pushed.raise_for_status()
            version = pushed.json()["version"]
            requests.post(
                f"{first.base_url}/v2/registry/models/{MODEL}/promote", json={"version": version}, timeout=10
            ).raise_for_status()
            print(f"""
Berth cluster (3 replicas, PostgreSQL, nginx) in {tmp}

  nginx REST   {cluster.base_url}        e.g. curl {cluster.base_url}/v2/models/{MODEL}
  nginx gRPC   {cluster.grpc_address}
  PostgreSQL   {cluster.registry_url}
""")
            for r in cluster.replicas:
                print(f"  replica {r.index}    {r.base_url} (gRPC {r.grpc_port}, pid {r.server.process.pid if r.server else '-'}, "
                      f"log {r.log_path})")
            print(f"""
Try:
  curl -s {cluster.base_url}/v2/models/{MODEL}/infer -d '{{"inputs":[{{"name":"X","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}}]}}' -i
  kill -9 <a replica's pid>        (nginx sends its requests to the others)
  curl -s {cluster.replicas[0].base_url}/v2/health/ready

Ctrl-C stops everything.""")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        finally:
            print("stopping", file=sys.stderr)
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
