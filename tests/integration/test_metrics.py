"""GET /metrics: Prometheus counters and histograms move with real traffic."""

from __future__ import annotations

import re
from typing import Final

from models import IRIS_MODEL, ModelRepository
from v2 import V2Client, infer_path

_SAMPLE: Final = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
_LABEL: Final = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: V2Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for line in response.text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(_LABEL.findall(match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def labels(**kv: str) -> frozenset[tuple[str, str]]:
    return frozenset(kv.items())


def iris_body(model_repository: ModelRepository, rows: int) -> dict[str, object]:
    x = model_repository.model(IRIS_MODEL).dataset.X_test[:rows].astype("float32")
    return {"inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.tolist()}]}


def test_counters_and_histogram_follow_traffic(client: V2Client, model_repository: ModelRepository) -> None:
    iris = labels(model=IRIS_MODEL, version="1")
    before = scrape(client)

    for _ in range(5):
        assert client.infer(IRIS_MODEL, iris_body(model_repository, 3)).status_code == 200
    bad = {"inputs": [{"name": "X", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    for _ in range(2):
        assert client.infer(IRIS_MODEL, bad).status_code == 400
    assert client.post(infer_path("no_such_model"), bad).status_code == 404

    after = scrape(client)

    def delta(name: str, key: frozenset[tuple[str, str]]) -> float:
        return after.get((name, key), 0.0) - before.get((name, key), 0.0)

    assert delta("berth_inference_requests_success_total", iris) == 5
    failure = iris | {("reason", "INVALID_ARGUMENT")}
    assert delta("berth_inference_requests_failure_total", failure) == 2
    unknown = labels(model="", version="", reason="NOT_FOUND")
    assert delta("berth_inference_requests_failure_total", unknown) == 1
    assert delta("berth_inference_request_duration_seconds_count", iris) == 5
    assert delta("berth_inference_request_duration_seconds_bucket", iris | {("le", "+Inf")}) == 5
    assert delta("berth_inference_request_duration_seconds_sum", iris) > 0
    # No series was created for the unknown model name.
    assert not any(dict(key).get("model") == "no_such_model" for _, key in after)


def test_histogram_buckets_are_cumulative(client: V2Client, model_repository: ModelRepository) -> None:
    assert client.infer(IRIS_MODEL, iris_body(model_repository, 1)).status_code == 200
    samples = scrape(client)
    buckets = sorted(
        (float(dict(key)["le"]), value)
        for (name, key), value in samples.items()
        if name == "berth_inference_request_duration_seconds_bucket"
        and dict(key)["model"] == IRIS_MODEL
        and dict(key)["version"] == "1"
    )
    counts = [value for _, value in buckets]
    assert counts == sorted(counts)
    assert buckets[-1][0] == float("inf")
    iris = labels(model=IRIS_MODEL, version="1")
    assert counts[-1] == samples[("berth_inference_request_duration_seconds_count", iris)]


def test_model_ready_gauge(client: V2Client) -> None:
    samples = scrape(client)
    assert samples[("berth_model_ready", labels(model=IRIS_MODEL, version="1"))] == 1


def test_requests_are_counted_by_the_door_they_came_in_by(
    client: V2Client, grpc_address: str, model_repository: ModelRepository
) -> None:
    import numpy as np
    import tritonclient.grpc as grpcclient
    from prometheus_client.parser import text_string_to_metric_families

    from row_format import bare_rows, named_rows

    iris = model_repository.model(IRIS_MODEL)
    X = iris.dataset.X_test[:2]

    def by_protocol() -> dict[tuple[str, str], float]:
        text = client.get("/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(text)}  # Prometheus's own parser
        return {
            (s.labels["protocol"], s.labels["outcome"]): s.value
            for s in families["berth_inference_requests"].samples
            if s.name == "berth_inference_requests_total" and s.labels["model"] == IRIS_MODEL
        }

    before = by_protocol()
    for _ in range(3):
        assert client.infer(IRIS_MODEL, iris_body(model_repository, 2)).status_code == 200
    bad = {"inputs": [{"name": "X", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    assert client.infer(IRIS_MODEL, bad).status_code == 400
    with grpcclient.InferenceServerClient(grpc_address) as grpc_client:
        x = grpcclient.InferInput("X", [2, 4], "FP32")
        x.set_data_from_numpy(X.astype(np.float32))
        for _ in range(2):
            grpc_client.infer(IRIS_MODEL, [x])
    assert client.post(f"/v1/models/{IRIS_MODEL}:predict", {"instances": bare_rows(iris, X)}).status_code == 200
    rows = client.post(f"/v2/models/{IRIS_MODEL}/infer_rows", {"instances": named_rows(iris, X)})
    assert rows.status_code == 200, rows.text
    after = by_protocol()

    def delta(protocol: str, outcome: str) -> float:
        return after.get((protocol, outcome), 0.0) - before.get((protocol, outcome), 0.0)

    assert delta("rest", "success") == 3
    assert delta("rest", "failure") == 1
    assert delta("grpc", "success") == 2
    assert delta("tfserving", "success") == 1
    assert delta("rows", "success") == 1
    assert {p for p, _ in after} <= {"rest", "grpc", "tfserving", "rows", "sagemaker", "vertex", "azure", "internal"}


def test_process_and_load_metrics(client: V2Client) -> None:
    samples = scrape(client)
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                 "process_threads", "process_start_time_seconds", "process_max_fds"):
        assert samples[(name, frozenset())] > 0, name
    assert samples[("berth_model_load_duration_seconds", labels(model=IRIS_MODEL, version="1"))] > 0
