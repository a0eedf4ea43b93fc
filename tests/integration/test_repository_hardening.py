"""Issue #6, the repository API and the model table under hostile input:
names that crash or pollute the table, link loops, readiness with no model,
hot swaps on the row-shaped doors, retired versions' metrics, and who may
change what is served."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import requests
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from berth_server import HOST, BerthServer, berth_binary
from models import ALL_VERSIONS_MODEL, IRIS_MODEL, ModelRepository, model_config
from row_format import named_rows
from train_models import TrainedModel, export_model
from v2 import V2Client, assert_error

MODEL: Final = "lin"
WAIT_S: Final = 15.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {WAIT_S} s: {what}")


def iris(model_repository: ModelRepository, version: int = 1) -> TrainedModel:
    return model_repository.model(ALL_VERSIONS_MODEL, version)


@pytest.fixture
def repo(model_repository: ModelRepository, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    model = iris(model_repository)
    export_model(model, root, version=1, config=model_config(model, name=MODEL))
    return root


@pytest.fixture
def served(repo: Path, tmp_path: Path) -> Iterator[BerthServer]:
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server:
        yield server


def metric(server: BerthServer, line_prefix: str) -> str | None:
    for line in requests.get(f"{server.base_url}/metrics", timeout=5).text.splitlines():
        if line.startswith(line_prefix):
            return line[len(line_prefix) :].strip()
    return None


def is_ready(server: BerthServer) -> bool:
    return requests.get(f"{server.base_url}/v2/health/ready", timeout=5).status_code == 200


def index(client: V2Client) -> list[dict[str, Any]]:
    return client.repository_index()


@pytest.mark.parametrize(
    "name",
    ["a" * 256, "b" * 5000, "lin%00", "lin%00x", "lin%0a", "%ff%fe", "%2e%2e", ".berth"],
)
def test_malformed_names_are_refused_and_create_nothing(served: BerthServer, name: str) -> None:
    with V2Client(served.base_url) as client:
        before = index(client)
        for action in ("load", "unload"):
            error = assert_error(client.post(f"/v2/repository/models/{name}/{action}"), 400)
            assert "invalid model name" in error
        assert_error(client.get(f"/v2/models/{name}"), 400)
        assert index(client) == before
        assert is_ready(served)
        assert metric(served, "berth_server_ready ") == "1"
        assert client.get(f"/v2/models/{MODEL}/ready").status_code == 200


def test_unknown_name_is_404_and_creates_nothing(served: BerthServer) -> None:
    with V2Client(served.base_url) as client:
        before = index(client)
        for i in range(50):
            assert_error(client.post(f"/v2/repository/models/phantom{i}/load"), 404)
        assert index(client) == before
        assert is_ready(served)


def test_grpc_refuses_the_same_names(served: BerthServer) -> None:
    triton = grpcclient.InferenceServerClient(served.grpc_address())
    for name in ["a" * 256, "lin\0", "lin\n", ".."]:
        with pytest.raises(InferenceServerException) as error:
            triton.load_model(name)
        assert "INVALID_ARGUMENT" in str(error.value.status())
        assert "invalid model name" in error.value.message()
    with pytest.raises(InferenceServerException) as error:
        triton.load_model("phantom")
    assert "NOT_FOUND" in str(error.value.status())
    assert triton.is_server_ready()
    assert triton.is_model_ready(MODEL)
    assert not triton.is_model_ready("a" * 300)


def test_non_canonical_versions_are_400(served: BerthServer) -> None:
    with V2Client(served.base_url) as client:
        for version in ("01", "0", "+1", "-1", "1.0", "99999999999999999999"):
            error = assert_error(client.get(f"/v2/models/{MODEL}/versions/{version}"), 400)
            assert "not a version number" in error
        assert client.get(f"/v2/models/{MODEL}/versions/1").status_code == 200
        assert_error(client.get(f"/v2/models/{MODEL}/versions/7"), 404)


def test_link_loops_in_the_repository_neither_crash_nor_hide_good_models(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "self").symlink_to(repo / "self")
    (repo / "ping").symlink_to(repo / "pong")
    (repo / "pong").symlink_to(repo / "ping")
    looped = repo / "looped"
    (looped / "1").mkdir(parents=True)
    (looped / "config.yaml").write_text("{}\n")
    (looped / "1" / "model.onnx").symlink_to(looped / "1" / "model.onnx")
    with BerthServer.start(
        berth_binary(), repo, tmp_path / "berth.log", extra_args=["--repository-poll-secs", "1", "--strict-readiness", "false"]
    ) as server, V2Client(server.base_url) as client:
        states = {(e["name"], e.get("version")): e for e in index(client)}
        assert states[(MODEL, "1")]["state"] == "READY"
        assert states[("looped", "1")]["state"] == "UNAVAILABLE"
        assert "looped/1/model.onnx" in states[("looped", "1")]["reason"]
        assert str(repo) not in states[("looped", "1")]["reason"]
        for name in ("self", "ping"):
            response = client.post(f"/v2/repository/models/{name}/load")
            assert_error(response, 404)
            assert str(repo) not in response.text
        # Loading it again fails with the reason (Triton's words first), and
        # still without the server's paths.
        message = assert_error(client.post("/v2/repository/models/looped/load"), 400)
        assert message.startswith("failed to load 'looped'") and "looped/1/model.onnx" in message
        assert str(repo) not in message
        (repo / "later").symlink_to(repo / "later")
        time.sleep(2.5)  # two polls over the loops
        assert server.process.poll() is None
        assert client.get(f"/v2/models/{MODEL}/ready").status_code == 200


def test_every_health_route_gives_one_answer(repo: Path, tmp_path: Path) -> None:
    """A plain server is ready with no model (it serves the repository API, as
    Triton with an empty repository); a model that cannot serve under strict
    readiness makes it not ready; REST, gRPC and berth_server_ready agree."""
    (repo / "broken" / "1").mkdir(parents=True)
    (repo / "broken" / "config.yaml").write_text("{}\n")
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server, V2Client(
        server.base_url
    ) as client:
        triton = grpcclient.InferenceServerClient(server.grpc_address())

        def agree(expected: bool) -> None:
            assert is_ready(server) is expected
            assert triton.is_server_ready() is expected
            assert metric(server, "berth_server_ready ") == ("1" if expected else "0")

        agree(False)  # "broken" has no version that loads
        assert client.post("/v2/repository/models/broken/unload").status_code == 200
        agree(True)
        assert client.post(f"/v2/repository/models/{MODEL}/unload").status_code == 200
        agree(True)  # no model at all
        assert client.post(f"/v2/repository/models/{MODEL}/load").status_code == 200
        agree(True)


def test_sagemaker_ping_agrees_with_invocations(repo: Path, tmp_path: Path, model_repository: ModelRepository) -> None:
    with BerthServer.start(
        berth_binary(), repo, tmp_path / "berth.log", extra_args=["--platform", "sagemaker", "--host", HOST]
    ) as server, V2Client(server.base_url) as client:
        model = iris(model_repository)
        body = {"instances": model.dataset.X_test[:2].tolist()}
        assert client.get("/ping").status_code == 200
        assert client.post("/invocations", body).status_code == 200
        assert client.post(f"/v2/repository/models/{MODEL}/unload").status_code == 200
        assert client.get("/ping").status_code == 503
        assert client.post("/invocations", body).status_code == 503
        assert client.get("/v2/health/ready").status_code == 503


def test_load_parameters_are_checked_at_every_door(served: BerthServer) -> None:
    """Triton's `config` and `file:` parameters are read (test_load_parameters.py); others are refused."""
    with V2Client(served.base_url) as client:
        error = assert_error(
            client.post(f"/v2/repository/models/{MODEL}/load", {"parameters": {"file:1/model.onnx": "AAAA"}}), 400
        )
        assert "'file:' parameters need the 'config' parameter too" in error
        assert_error(client.post(f"/v2/repository/models/{MODEL}/load", {"parameters": {"bogus": 1}}), 400)
        assert_error(client.post(f"/v2/repository/models/{MODEL}/load", {"bogus": {}}), 400)
        assert_error(client.post_raw(f"/v2/repository/models/{MODEL}/load", b"{not json"), 400)
        assert client.post(f"/v2/repository/models/{MODEL}/load", {}).status_code == 200
        assert client.post(f"/v2/repository/models/{MODEL}/load", {"parameters": {}}).status_code == 200
        assert client.post(f"/v2/repository/models/{MODEL}/load", {"parameters": {"config": "{}"}}).status_code == 200
    triton = grpcclient.InferenceServerClient(served.grpc_address())
    with pytest.raises(InferenceServerException) as error:
        triton.load_model(MODEL, config="{not json")
    assert "INVALID_ARGUMENT" in str(error.value.status())
    assert f"failed to load '{MODEL}'" in str(error.value)


def _non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent
            address: str = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_repository_changes_only_from_loopback(repo: Path, tmp_path: Path) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    command_args = ["--host", "0.0.0.0"]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=command_args) as server:
        remote = f"http://{address}:{server.http_port}"
        for action in ("load", "unload"):
            response = requests.post(f"{remote}/v2/repository/models/{MODEL}/{action}", timeout=5)
            assert response.status_code == 403, response.text
            assert "--allow-remote-admin" in response.json()["error"]
        assert requests.get(f"{remote}/v2/models/{MODEL}/ready", timeout=5).status_code == 200
        grpc_port = server.grpc_address().rsplit(":", 1)[1]
        triton = grpcclient.InferenceServerClient(f"{address}:{grpc_port}")
        with pytest.raises(InferenceServerException) as error:
            triton.unload_model(MODEL)
        assert "PERMISSION_DENIED" in str(error.value.status())
        # Loopback clients may.
        assert requests.post(f"{server.base_url}/v2/repository/models/{MODEL}/load", timeout=5).status_code == 200
    with BerthServer.start(
        berth_binary(), repo, tmp_path / "berth2.log", extra_args=[*command_args, "--allow-remote-admin", "true"]
    ) as server:
        url = f"http://{address}:{server.http_port}/v2/repository/models/{MODEL}/load"
        response = requests.post(url, timeout=5)
        assert response.status_code == 200, response.text


def _flip_versions(root: Path, model_repository: ModelRepository, admin: V2Client, flips: int) -> None:
    """Adds version 2, 3, ... one at a time; under {latest: 1} each load retires the previous one."""
    for version in range(2, 2 + flips):
        model = iris(model_repository, 1 + version % 2)
        export_model(model, root, version=version, config=model_config(model, name=MODEL))
        response = admin.post(f"/v2/repository/models/{MODEL}/load")
        assert response.status_code == 200, response.text


def test_hot_swap_loses_no_request_on_the_row_doors(
    repo: Path, tmp_path: Path, model_repository: ModelRepository
) -> None:
    """Each door resolves the version once and runs on that handle: a version
    retired between decoding and running cannot turn into a 404."""
    model = iris(model_repository)
    x = model.dataset.X_test[:3]
    rows_body = {"instances": named_rows(model, x)}
    tf_body = {"instances": x.tolist()}
    failures: list[str] = []
    counts = {"rows": 0, "tf": 0}
    stop = threading.Event()

    with BerthServer.start(
        berth_binary(), repo, tmp_path / "berth.log", grpc_port=-1, extra_args=["--http-threads", "4"]
    ) as server:

        def loop(door: str, path: str, body: Any) -> None:
            with V2Client(server.base_url) as client:
                while not stop.is_set():
                    response = client.post(path, body)
                    if response.status_code != 200:
                        failures.append(f"{door}: {response.status_code} {response.text}")
                    counts[door] += 1

        threads = [
            threading.Thread(target=loop, args=("rows", f"/v2/models/{MODEL}/infer_rows", rows_body)),
            threading.Thread(target=loop, args=("tf", f"/v1/models/{MODEL}:predict", tf_body)),
        ]
        for thread in threads:
            thread.start()
        try:
            with V2Client(server.base_url) as admin:
                _flip_versions(repo, model_repository, admin, flips=25)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert failures == []
    assert counts["rows"] > 0 and counts["tf"] > 0


def model_series(metrics_text: str) -> list[str]:
    """The sample lines of /metrics labelled with MODEL, without their version and value."""
    out = []
    for line in metrics_text.splitlines():
        if line.startswith("#") or f'model="{MODEL}"' not in line:
            continue
        name_and_labels = line.rsplit(" ", 1)[0]
        out.append(re.sub(r'version="[^"]*"', 'version="*"', name_and_labels))
    return out


def test_retired_versions_leave_the_metrics(
    repo: Path, tmp_path: Path, model_repository: ModelRepository
) -> None:
    model = iris(model_repository)
    body = model.infer_request(model.dataset.X_test[:1])
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", grpc_port=-1) as server, V2Client(
        server.base_url
    ) as client:
        assert client.infer(MODEL, body).status_code == 200
        first = model_series(requests.get(f"{server.base_url}/metrics", timeout=5).text)
        for version in range(2, 42):
            exported = iris(model_repository, 1 + version % 2)
            export_model(exported, repo, version=version, config=model_config(exported, name=MODEL))
            assert client.post(f"/v2/repository/models/{MODEL}/load").status_code == 200
            assert client.infer(MODEL, body).status_code == 200
        text = requests.get(f"{server.base_url}/metrics", timeout=5).text
    versions = {
        line.split('version="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("berth_inference_requests_success_total{")
    }
    assert versions == {"41"}
    # The 40 retired versions left no series behind: each series of the model
    # is there once (one version's), and they are those of one version that
    # answered one request (less the drift gauges, which appear once a
    # request was sampled: monitoring.sample_rate 0.1).
    last = model_series(text)
    assert [series for series, n in Counter(last).items() if n > 1] == []

    def steady(series: list[str]) -> set[str]:
        return {s for s in series if not s.startswith("berth_drift_")}

    assert steady(last) == steady(first), sorted(steady(last) ^ steady(first))[:20]
