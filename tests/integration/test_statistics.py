"""Triton's statistics extension, read by Triton's own clients (tritonclient.http
get_inference_statistics() and tritonclient.grpc get_inference_statistics(as_json=True)),
and the Prometheus series that count the same executions.

A server of its own, so that every count is exact: `iris_direct` runs each request
alone (direct scheduler), `iris_batched` gathers concurrent requests (dynamic batcher).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from berth_server import BerthServer, berth_binary
from models import IRIS_MODEL, ModelRepository, export_model, model_config
from test_metrics import labels, scrape
from v2 import V2Client

DIRECT: Final = "iris_direct"
BATCHED: Final = "iris_batched"
CLIENTS: Final = 16
REQUESTS_PER_CLIENT: Final = 10
DURATIONS: Final = (
    "success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss",
)  # fmt: skip


@pytest.fixture(scope="module")
def stats_server(
    model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BerthServer]:
    root = tmp_path_factory.mktemp("statistics_repository")
    model = model_repository.model(IRIS_MODEL)
    export_model(model, root, config=model_config(model, name=DIRECT, max_batch_size=32))
    batched_dir = export_model(model, root, config=model_config(model, name=BATCHED, max_batch_size=64))
    with (batched_dir / "config.yaml").open("a") as config:
        # A long delay and one instance, so that concurrent requests meet in the queue.
        config.write("dynamic_batching: {max_queue_delay_microseconds: 20000}\ninstance_count: 1\n")
    log = Path(tmp_path_factory.mktemp("berth_statistics")) / "berth.log"
    with BerthServer.start(berth_binary(), root, log, extra_args=["--http-threads", "4"]) as server:
        yield server


@pytest.fixture(scope="module")
def http_triton(stats_server: BerthServer) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(url=stats_server.address)
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc_triton(stats_server: BerthServer) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(url=stats_server.grpc_address())
    yield client
    client.close()


def iris_rows(model_repository: ModelRepository, rows: int) -> np.ndarray:
    return np.asarray(model_repository.model(IRIS_MODEL).dataset.X_test[:rows], dtype=np.float32)


def http_infer(client: httpclient.InferenceServerClient, model: str, x: np.ndarray) -> None:
    infer_input = httpclient.InferInput("X", list(x.shape), "FP32")
    infer_input.set_data_from_numpy(x, binary_data=True)
    client.infer(model, [infer_input])


def grpc_infer(client: grpcclient.InferenceServerClient, model: str, x: np.ndarray) -> None:
    infer_input = grpcclient.InferInput("X", list(x.shape), "FP32")
    infer_input.set_data_from_numpy(x)
    client.infer(model, [infer_input])


def as_ints(value: Any) -> Any:
    """tritonclient.grpc's JSON (protobuf's mapping): uint64 as strings, zero fields left out.
    Brought to the REST form: every duration with both fields, numbers as ints."""
    if isinstance(value, list):
        return [as_ints(v) for v in value]
    if isinstance(value, dict):
        out = {k: v if k in ("name", "version") else as_ints(v) for k, v in value.items()}
        if "inference_stats" in out:
            for key in DURATIONS:
                out["inference_stats"][key] = {"count": 0, "ns": 0, **out["inference_stats"].get(key, {})}
            for key in ("last_inference", "inference_count", "execution_count"):
                out.setdefault(key, 0)
            # An empty list is left out too: a model no batch has run on yet.
            out.setdefault("batch_stats", [])
        return out
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def test_the_server_announces_the_extension(http_triton: httpclient.InferenceServerClient) -> None:
    assert "statistics" in http_triton.get_server_metadata()["extensions"]


def test_counts_of_the_direct_scheduler_are_exact(
    stats_server: BerthServer,
    http_triton: httpclient.InferenceServerClient,
    model_repository: ModelRepository,
) -> None:
    started_ms = time.time() * 1000
    for _ in range(5):
        http_infer(http_triton, DIRECT, iris_rows(model_repository, 3))
    bad = {"inputs": [{"name": "X", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    with V2Client(stats_server.base_url) as client:
        for _ in range(2):
            assert client.infer(DIRECT, bad).status_code == 400
    ended_ms = time.time() * 1000

    stats = http_triton.get_inference_statistics(DIRECT)
    assert [(s["name"], s["version"]) for s in stats["model_stats"]] == [(DIRECT, "1")]
    model = stats["model_stats"][0]
    assert model["inference_count"] == 15  # rows
    assert model["execution_count"] == 5
    assert started_ms - 1000 <= model["last_inference"] <= ended_ms + 1000
    inference = model["inference_stats"]
    assert set(inference) == set(DURATIONS)
    assert inference["success"]["count"] == 5
    assert inference["fail"]["count"] == 2
    for key in ("success", "fail", "compute_input", "compute_infer", "compute_output"):
        assert inference[key]["ns"] > 0, key
    for key in ("queue", "compute_input", "compute_infer", "compute_output"):
        assert inference[key]["count"] == 5, key
    assert inference["cache_hit"] == {"count": 0, "ns": 0}
    assert inference["cache_miss"] == {"count": 0, "ns": 0}
    [batch] = model["batch_stats"]
    assert batch["batch_size"] == 3
    assert set(batch) == {"batch_size", "compute_input", "compute_infer", "compute_output"}
    for key in ("compute_input", "compute_infer", "compute_output"):
        assert batch[key]["count"] == 5
        assert batch[key]["ns"] > 0


def test_batched_executions_count_once(
    stats_server: BerthServer,
    http_triton: httpclient.InferenceServerClient,
    grpc_triton: grpcclient.InferenceServerClient,
    model_repository: ModelRepository,
) -> None:
    x = iris_rows(model_repository, 1)
    body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": x.tolist()}]}

    # Half the clients over REST (tritonclient.http is not thread-safe: a
    # session per thread), half over gRPC.
    def client_run(i: int) -> None:
        if i % 2 == 1:
            for _ in range(REQUESTS_PER_CLIENT):
                grpc_infer(grpc_triton, BATCHED, x)
            return
        with V2Client(stats_server.base_url) as client:
            for _ in range(REQUESTS_PER_CLIENT):
                assert client.infer(BATCHED, body).status_code == 200

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client_run, range(CLIENTS)))

    requests_sent = CLIENTS * REQUESTS_PER_CLIENT
    model = http_triton.get_inference_statistics(BATCHED, "1")["model_stats"][0]
    assert model["inference_count"] == requests_sent
    assert model["inference_stats"]["success"]["count"] == requests_sent
    # Concurrent requests were merged: fewer executions than rows.
    assert 0 < model["execution_count"] < requests_sent
    # They waited in the batcher's queue.
    assert model["inference_stats"]["queue"]["count"] == requests_sent
    assert model["inference_stats"]["queue"]["ns"] > 0
    batches = model["batch_stats"]
    assert [b["batch_size"] for b in batches] == sorted(b["batch_size"] for b in batches)
    assert any(b["batch_size"] > 1 for b in batches)
    assert sum(b["compute_infer"]["count"] for b in batches) == model["execution_count"]
    assert sum(b["batch_size"] * b["compute_infer"]["count"] for b in batches) == requests_sent


def test_grpc_answers_the_same_statistics(
    http_triton: httpclient.InferenceServerClient,
    grpc_triton: grpcclient.InferenceServerClient,
    model_repository: ModelRepository,
) -> None:
    grpc_infer(grpc_triton, DIRECT, iris_rows(model_repository, 2))
    over_grpc = grpc_triton.get_inference_statistics(as_json=True)
    over_http = http_triton.get_inference_statistics()
    assert [(s["name"], s["version"]) for s in over_http["model_stats"]] == [(BATCHED, "1"), (DIRECT, "1")]
    assert as_ints(over_grpc) == over_http
    one = grpc_triton.get_inference_statistics(DIRECT, "1", as_json=True)
    assert as_ints(one)["model_stats"] == [over_http["model_stats"][1]]
    # The typed form, as a client reading the protobuf fields gets it.
    typed = grpc_triton.get_inference_statistics(DIRECT).model_stats[0]
    assert typed.inference_count == over_http["model_stats"][1]["inference_count"]
    assert typed.batch_stats[-1].compute_infer.count > 0


@pytest.mark.parametrize(
    ("model", "version", "words"),
    [
        ("no_such_model", "", "requested model 'no_such_model' is not available"),
        ("no_such_model", "1", "requested model 'no_such_model' is not available"),
        (DIRECT, "7", f"requested model version is not available for model '{DIRECT}'"),
        (DIRECT, "staging", f"requested model version is not available for model '{DIRECT}'"),
    ],
)
def test_unknown_models_and_versions_are_refused(
    stats_server: BerthServer,
    http_triton: httpclient.InferenceServerClient,
    grpc_triton: grpcclient.InferenceServerClient,
    model: str,
    version: str,
    words: str,
) -> None:
    with pytest.raises(InferenceServerException) as over_http:
        http_triton.get_inference_statistics(model, version)
    assert over_http.value.status() == "404"
    assert words in over_http.value.message()
    with pytest.raises(InferenceServerException) as over_grpc:
        grpc_triton.get_inference_statistics(model, version)
    assert over_grpc.value.status() == "StatusCode.NOT_FOUND"
    assert over_grpc.value.message() == over_http.value.message()
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/stats"
    response = requests.get(stats_server.base_url + path, timeout=10)
    assert response.status_code == 404
    assert words in response.json()["error"]
    # Still serving.
    assert http_triton.get_inference_statistics(DIRECT)["model_stats"]


def test_malformed_versions_are_refused(stats_server: BerthServer) -> None:
    response = requests.get(stats_server.base_url + f"/v2/models/{DIRECT}/versions/01/stats", timeout=10)
    assert response.status_code == 400
    assert "not a version number" in response.json()["error"]


def test_metrics_count_the_same_executions(
    stats_server: BerthServer,
    http_triton: httpclient.InferenceServerClient,
    model_repository: ModelRepository,
) -> None:
    http_infer(http_triton, BATCHED, iris_rows(model_repository, 4))
    with V2Client(stats_server.base_url) as client:
        samples = scrape(client)
    for name in (DIRECT, BATCHED):
        stats = http_triton.get_inference_statistics(name)["model_stats"][0]
        inference = stats["inference_stats"]
        series = labels(model=name, version="1")
        assert samples[("berth_batch_size_count", series)] == stats["execution_count"]
        assert samples[("berth_batch_size_sum", series)] == stats["inference_count"]
        assert samples[("berth_inference_queue_duration_seconds_count", series)] == inference["queue"]["count"]
        assert samples[("berth_inference_queue_duration_seconds_sum", series)] == pytest.approx(
            inference["queue"]["ns"] * 1e-9, abs=1e-9
        )
        for phase in ("input", "infer", "output"):
            key = series | {("phase", phase)}
            assert samples[("berth_inference_compute_duration_seconds_count", key)] == inference["success"]["count"]
            assert samples[("berth_inference_compute_duration_seconds_sum", key)] == pytest.approx(
                inference[f"compute_{phase}"]["ns"] * 1e-9, abs=1e-9
            )
            bucket = key | {("le", "+Inf")}
            assert samples[("berth_inference_compute_duration_seconds_bucket", bucket)] == inference["success"]["count"]
        assert samples[("berth_inference_requests_in_flight", series)] == 0


def test_the_exposition_parses_with_prometheus_client(stats_server: BerthServer) -> None:
    text = requests.get(stats_server.base_url + "/metrics", timeout=10).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name in (
        "berth_inference_request_duration_seconds",
        "berth_inference_queue_duration_seconds",
        "berth_inference_compute_duration_seconds",
        "berth_batch_size",
    ):
        assert families[name].type == "histogram", name
    assert families["berth_inference_requests_in_flight"].type == "gauge"
    phases = {
        sample.labels["phase"]
        for sample in families["berth_inference_compute_duration_seconds"].samples
        if sample.labels["model"] == DIRECT
    }
    assert phases == {"input", "infer", "output"}
    # No label value comes from a request: only the models of the repository.
    models = {sample.labels.get("model") for family in families.values() for sample in family.samples}
    assert models <= {DIRECT, BATCHED, "", None}
