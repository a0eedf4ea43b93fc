"""The access log and the payload log (docs/monitoring.md#logs) against a real server.

One JSON access line per inference request at every door; payload logging off
by default; CloudEvents as KServe's logger writes them, to a file (structured)
or an HTTP sink (binary mode); redaction, rotation, a slow sink's drops
counted; API keys never logged.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
import grpc
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from berth_server import BerthServer, berth_binary, free_port

MODEL: Final = "iris_logreg"
EXAMPLE: Final = Path(__file__).resolve().parents[2] / "examples" / "models" / MODEL
WAIT_S: Final = 10.0
# Distinctive values: a redacted input's data must not appear anywhere.
SECRET_ROW: Final = [5.123457, 3.314159, 1.271828, 0.161803]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root / MODEL)
    return root


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def json_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def v2_body(rows: list[list[float]], request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [len(rows), 4], "data": rows}]}
    if request_id is not None:
        body["id"] = request_id
    return body


def metric(server: BerthServer, name: str, **labels: str) -> float:
    text = requests.get(f"{server.base_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise KeyError(name)


def send_every_door(server: BerthServer) -> None:
    """One request at each door, plus an unknown model and a bad input: 7 requests."""
    base = server.base_url
    row = [[5.1, 3.5, 1.4, 0.2]]
    assert requests.post(f"{base}/v2/models/{MODEL}/infer", json=v2_body(row, "rest-1"), timeout=10).ok
    http = httpclient.InferenceServerClient(server.address)
    x = httpclient.InferInput("X", [1, 4], "FP32")
    x.set_data_from_numpy(np.array(row, dtype=np.float32), binary_data=True)
    http.infer(MODEL, [x], request_id="binary-1", outputs=[httpclient.InferRequestedOutput("label", binary_data=True)])
    grpc = grpcclient.InferenceServerClient(server.grpc_address())
    g = grpcclient.InferInput("X", [1, 4], "FP32")
    g.set_data_from_numpy(np.array(row, dtype=np.float32))
    grpc.infer(MODEL, [g], request_id="grpc-1")
    grpc.close()
    assert requests.post(f"{base}/v1/models/{MODEL}:predict", json={"instances": row}, timeout=10).ok
    assert requests.post(f"{base}/v2/models/{MODEL}/infer_rows", json={"instances": [{"X": row[0]}]}, timeout=10).ok
    send_failures(server)


def send_failures(server: BerthServer) -> None:
    """An unknown model and an input of the wrong shape (decoded, then refused by validation)."""
    base = server.base_url
    missing_body = v2_body([[1, 2, 3, 4]], "missing-1")
    missing = requests.post(f"{base}/v2/models/no_such_model/infer", json=missing_body, timeout=10)
    assert missing.status_code == 404
    wrong_shape = {"id": "bad-1", "inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]}
    bad = requests.post(f"{base}/v2/models/{MODEL}/infer", json=wrong_shape, timeout=10)
    assert bad.status_code == 400


def test_one_access_line_per_request_at_every_door(repo: Path, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    args = ["--access-log", str(access)]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
        send_every_door(server)
        wait_for(lambda: len(json_lines(access)) >= 7, "7 access lines")
        time.sleep(0.3)  # one writer period: no eighth line may follow
        lines = json_lines(access)
        assert len(lines) == 7, lines
        assert metric(server, "berth_access_log_lines_total") == 7
        assert metric(server, "berth_access_log_dropped_total", reason="queue_full") == 0
        assert not list(tmp_path.glob("payload*")), "payload logging is off by default"
        assert "berth_payload_log" not in requests.get(f"{server.base_url}/metrics", timeout=10).text

    by_protocol: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        for field in ("ts", "level", "msg", "id", "model", "version", "protocol", "ok", "status"):
            assert field in line, (field, line)
        for field in ("queue_us", "compute_us", "total_us", "bytes_in", "bytes_out"):
            assert isinstance(line[field], int) and line[field] >= 0, (field, line)
        datetime.fromisoformat(line["ts"])
        assert line["msg"] == "access"
        by_protocol.setdefault(line["protocol"], []).append(line)
    assert sorted(by_protocol) == ["grpc", "rest", "rows", "tfserving"]
    assert len(by_protocol["rest"]) == 4  # JSON, binary, the unknown model and the bad input

    by_id = {line["id"]: line for line in lines if line["id"]}
    assert {"rest-1", "binary-1", "grpc-1", "missing-1", "bad-1"} <= set(by_id)
    for request_id in ("rest-1", "binary-1", "grpc-1"):
        ok = by_id[request_id]
        assert ok["ok"] is True and ok["status"] == "OK" and ok["level"] == "info"
        assert ok["model"] == MODEL and ok["version"] == "1"
        assert ok["batch_size"] == 1
        assert ok["bytes_in"] == 16  # one row of four FP32
        assert ok["bytes_out"] > 0
    assert by_id["grpc-1"]["protocol"] == "grpc"
    assert by_id["missing-1"] | {"ts": None, "total_us": None} == {
        "ts": None, "level": "warn", "msg": "access", "id": "missing-1", "model": "no_such_model",
        "version": "", "protocol": "rest", "ok": False, "status": "NOT_FOUND", "known_model": False,
        "queue_us": 0, "compute_us": 0, "total_us": None, "bytes_in": 16, "bytes_out": 0,
    }  # fmt: skip
    assert by_id["bad-1"]["status"] == "INVALID_ARGUMENT" and by_id["bad-1"]["version"] == "1"


def test_log_level_warn_keeps_only_failures(repo: Path, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    args = ["--access-log", str(access), "--log-level", "warn"]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
        assert requests.post(f"{server.base_url}/v2/models/{MODEL}/infer", json=v2_body([[1, 2, 3, 4]]), timeout=10).ok
        send_failures(server)
        wait_for(lambda: len(json_lines(access)) >= 2, "2 access lines")
        time.sleep(0.3)
    assert sorted(line["id"] for line in json_lines(access)) == ["bad-1", "missing-1"]


def test_access_log_to_stdout(repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "berth.log"
    with BerthServer.start(berth_binary(), repo, log, extra_args=["--access-log", "stdout"]) as server:
        requests.post(f"{server.base_url}/v2/models/{MODEL}/infer", json=v2_body([[1, 2, 3, 4]], "out-1"), timeout=10)
        wait_for(lambda: '"id":"out-1"' in server.log(), "the access line on stdout")
    line = next(line for line in log.read_text().splitlines() if '"id":"out-1"' in line)
    assert json.loads(line)["protocol"] == "rest"


def structured_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for candidate in [path, *sorted(path.parent.glob(path.name + ".*"))]:
        events += json_lines(candidate)
    return events


def check_cloud_event(attributes: dict[str, Any], event_type: str) -> None:
    assert attributes["specversion"] == "1.0"
    assert attributes["id"]
    assert attributes["source"] == f"/v2/models/{MODEL}/versions/1"
    assert attributes["type"] == event_type
    assert datetime.fromisoformat(attributes["time"]).tzinfo is not None


def test_payload_log_to_a_file_with_redaction(repo: Path, tmp_path: Path) -> None:
    payload = tmp_path / "payload.log"
    args = ["--payload-log", str(payload), "--payload-log-redact", "X,probabilities"]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
        body = v2_body([SECRET_ROW], "secret-1")
        answer = requests.post(f"{server.base_url}/v2/models/{MODEL}/infer", json=body, timeout=10)
        assert answer.ok
        probabilities = next(o for o in answer.json()["outputs"] if o["name"] == "probabilities")["data"]
        events = wait_for(lambda: len(es := structured_events(payload)) >= 2 and es, "two events")
        assert metric(server, "berth_payload_log_events_total") == 2
    request, response = events
    check_cloud_event(request, "org.kubeflow.serving.inference.request")
    check_cloud_event(response, "org.kubeflow.serving.inference.response")
    assert request["id"] == response["id"] == "secret-1"
    assert request["datacontenttype"] == "application/json"
    assert request["data"]["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": "[redacted]"}]
    outputs = {o["name"]: o for o in response["data"]["outputs"]}
    assert outputs["probabilities"]["data"] == "[redacted]"
    assert outputs["label"]["data"] == [next(o for o in answer.json()["outputs"] if o["name"] == "label")["data"][0]]
    text = payload.read_text()
    for value in [*SECRET_ROW, *probabilities]:
        assert f"{value:.5f}"[:6] not in text, value


def test_a_models_config_redacts_its_own_tensors(repo: Path, tmp_path: Path) -> None:
    config = repo / MODEL / "config.yaml"
    config.write_text(config.read_text() + "monitoring: {redact: [X]}\n")
    payload = tmp_path / "payload.log"
    with BerthServer.start(
        berth_binary(), repo, tmp_path / "berth.log", extra_args=["--payload-log", str(payload)]
    ) as server:
        body = v2_body([SECRET_ROW], "config-1")
        assert requests.post(f"{server.base_url}/v2/models/{MODEL}/infer", json=body, timeout=10).ok
        request, response = wait_for(lambda: len(es := structured_events(payload)) >= 2 and es, "two events")
    assert request["data"]["inputs"][0]["data"] == "[redacted]"
    assert all(isinstance(o["data"], list) for o in response["data"]["outputs"])
    assert "5.12345" not in payload.read_text()


def test_a_misspelt_redaction_fails_the_load(repo: Path, tmp_path: Path) -> None:
    config = repo / MODEL / "config.yaml"
    config.write_text(config.read_text() + "monitoring: {redact: [x]}\n")
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server:
        index = requests.post(f"{server.base_url}/v2/repository/index", timeout=10).json()
    (entry,) = [e for e in index if e["name"] == MODEL]
    assert entry["state"] == "UNAVAILABLE"
    assert "monitoring.redact names 'x'" in entry["reason"]


def test_payload_log_keeps_unredacted_data_and_failures(repo: Path, tmp_path: Path) -> None:
    payload = tmp_path / "payload.log"
    with BerthServer.start(
        berth_binary(), repo, tmp_path / "berth.log", extra_args=["--payload-log", str(payload)]
    ) as server:
        grpc = grpcclient.InferenceServerClient(server.grpc_address())
        g = grpcclient.InferInput("X", [1, 4], "FP32")
        g.set_data_from_numpy(np.array([SECRET_ROW], dtype=np.float32))
        grpc.infer(MODEL, [g], request_id="clear-1")
        grpc.close()
        events = wait_for(lambda: len(es := structured_events(payload)) >= 2 and es, "two events")
    request = events[0]
    assert request["protocol"] == "grpc"
    assert np.allclose(request["data"]["inputs"][0]["data"], SECRET_ROW)


def test_payload_log_rotation_keeps_at_most_n_files(repo: Path, tmp_path: Path) -> None:
    payload = tmp_path / "logs" / "payload.log"
    payload.parent.mkdir()
    args = ["--payload-log", str(payload), "--log-max-bytes", "4096", "--log-max-files", "3"]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
        for i in range(60):
            body = v2_body([[float(i), 1.0, 2.0, 3.0]], f"rotate-{i}")
            assert requests.post(f"{server.base_url}/v2/models/{MODEL}/infer", json=body, timeout=10).ok
        wait_for(lambda: metric(server, "berth_payload_log_events_total") == 120, "120 events")
    files = sorted(p.name for p in payload.parent.iterdir())
    assert files == ["payload.log", "payload.log.1", "payload.log.2"]
    for name in files:
        assert (payload.parent / name).stat().st_size <= 4096
    events = structured_events(payload)
    assert 0 < len(events) < 120
    assert events[-1]["id"] == "rotate-59" or any(e["id"] == "rotate-59" for e in events)


class Sink:
    """A CloudEvents receiver: a Python http.server that keeps what is POSTed."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, str], bytes, str]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.release.set()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                sink.release.wait()
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with sink.lock:
                    sink.events.append(({k.lower(): v for k, v in self.headers.items()}, body, self.path))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/events"

    def count(self) -> int:
        with self.lock:
            return len(self.events)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


def test_http_sink_receives_binary_mode_cloud_events(repo: Path, tmp_path: Path, sink: Sink) -> None:
    args = ["--payload-log", sink.url, "--payload-log-redact", "probabilities"]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
        for i in range(3):
            body = v2_body([[1.0, 2.0, 3.0, float(i)]], f"sink-{i}")
            assert requests.post(f"{server.base_url}/v2/models/{MODEL}/infer", json=body, timeout=10).ok
        wait_for(lambda: sink.count() >= 6, "six events at the sink")
    assert sink.count() == 6
    for headers, body, path in sink.events:
        assert path == "/events"
        attributes = {k.removeprefix("ce-"): v for k, v in headers.items() if k.startswith("ce-")}
        check_cloud_event(attributes, attributes["type"])
        assert headers["content-type"] == "application/json"
        assert attributes["inferenceservicename"] == MODEL
        data = json.loads(body)
        assert data["id"] == attributes["id"]
        if attributes["type"].endswith(".response"):
            assert b"[redacted]" in body and data["model_name"] == MODEL
    types = sorted((h["ce-id"], h["ce-type"]) for h, _, _ in sink.events)
    assert types == [
        (f"sink-{i}", f"org.kubeflow.serving.inference.{kind}") for i in range(3) for kind in ("request", "response")
    ]


def test_a_slow_sink_never_blocks_requests_and_drops_are_counted(repo: Path, tmp_path: Path, sink: Sink) -> None:
    sink.release.clear()  # the sink holds every POST until released
    args = ["--payload-log", sink.url]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
        session = requests.Session()
        for i in range(1100):
            body = v2_body([[1.0, 2.0, 3.0, 4.0]], f"slow-{i}")
            assert session.post(f"{server.base_url}/v2/models/{MODEL}/infer", json=body, timeout=10).ok
        dropped = metric(server, "berth_payload_log_dropped_total", reason="queue_full")
        # 1024 pairs queue and one is out at the sink: the rest are dropped.
        assert dropped >= 2 * (1100 - 1025)
        sink.release.set()


def test_a_sink_that_is_down_costs_requests_nothing(repo: Path, tmp_path: Path) -> None:
    (closed,) = [free_port()]  # nothing listens there
    args = ["--payload-log", f"http://127.0.0.1:{closed}/events"]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
        for i in range(5):
            body = v2_body([[1.0, 2.0, 3.0, 4.0]], f"down-{i}")
            assert requests.post(f"{server.base_url}/v2/models/{MODEL}/infer", json=body, timeout=10).ok
        wait_for(lambda: metric(server, "berth_payload_log_dropped_total", reason="sink_error") == 10, "10 drops")
        assert metric(server, "berth_payload_log_events_total") == 0
    assert "the payload log's sink refused an event" in server.log()


def run_keys(*args: str) -> str:
    done = subprocess.run(
        [str(berth_binary()), "keys", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_keys_and_authorization_never_reach_the_logs(repo: Path, tmp_path: Path, sink: Sink) -> None:
    store = tmp_path / "registry.db"
    key = run_keys("create", "--registry", f"sqlite:{store}", "--name", "client", "--scope", "infer", "--scope", "read")
    access, payload, log = tmp_path / "access.log", tmp_path / "payload.log", tmp_path / "berth.log"
    args = [
        "--require-auth", "--registry", f"sqlite:{store}", "--log-level", "debug",
        "--access-log", str(access), "--payload-log", str(payload),
    ]  # fmt: skip
    with BerthServer.start(berth_binary(), repo, log, extra_args=args, authorization=f"Bearer {key}") as server:
        headers = {"Authorization": f"Bearer {key}"}
        url = f"{server.base_url}/v2/models/{MODEL}/infer"
        assert requests.post(url, json=v2_body([[1, 2, 3, 4]], "auth-1"), headers=headers, timeout=10).ok
        grpc = grpcclient.InferenceServerClient(server.grpc_address())
        g = grpcclient.InferInput("X", [1, 4], "FP32")
        g.set_data_from_numpy(np.array([[1, 2, 3, 4]], dtype=np.float32))
        grpc.infer(MODEL, [g], request_id="auth-2", headers={"authorization": f"Bearer {key}"})
        grpc.close()
        wait_for(lambda: len(json_lines(access)) >= 2 and len(structured_events(payload)) >= 4, "the logs")
    secret = key.split(".")[-1] if "." in key else key
    for path in (access, payload, log):
        text = path.read_text()
        assert key not in text and secret not in text, path
        assert "Bearer" not in text and "authorization" not in text.lower(), path


def new_line(path: Path, before: int) -> dict[str, Any]:
    """The one access line written after the first `before`: waits for it, then one writer period for a second."""
    wait_for(lambda: len(json_lines(path)) > before, "an access line")
    time.sleep(0.3)
    lines = json_lines(path)
    assert len(lines) == before + 1, lines[before:]
    return lines[before]


def raw_grpc_infer(server: BerthServer, request: Any, key: str | None) -> grpc.StatusCode:
    """A ModelInfer call as it is sent, with no client-side checks; its status code."""
    channel = grpc.insecure_channel(server.grpc_address())
    try:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        metadata = [] if key is None else [("authorization", f"Bearer {key}")]
        stub.ModelInfer(request, metadata=metadata, timeout=10)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()
    finally:
        channel.close()


def grpc_request(raw: bytes) -> Any:
    request = service_pb2.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="X", datatype="FP32", shape=[1, 4])
    request.raw_input_contents.append(raw)
    return request


def test_requests_refused_at_the_door_get_one_access_line(repo: Path, tmp_path: Path) -> None:
    """Each refusal before the core, at REST and gRPC, has exactly one line, with its status and no key."""
    store = tmp_path / "registry.db"
    source = ["--registry", f"sqlite:{store}"]
    inferrer = run_keys("create", *source, "--name", "inferrer", "--scope", "infer")
    reader = run_keys("create", *source, "--name", "reader", "--scope", "read")
    slow = run_keys("create", *source, "--name", "slow", "--scope", "infer", "--rate", "1/s")
    access = tmp_path / "access.log"
    args = ["--require-auth", *source, "--access-log", str(access), "--max-request-bytes", "1024"]
    log = tmp_path / "berth.log"
    with BerthServer.start(berth_binary(), repo, log, extra_args=args, authorization=f"Bearer {reader}") as server:
        url = f"{server.base_url}/v2/models/{MODEL}/infer"
        row = v2_body([[1.0, 2.0, 3.0, 4.0]])

        def rest(expected: int, key: str | None, **kwargs: Any) -> dict[str, Any]:
            before = len(json_lines(access))
            headers = {} if key is None else {"Authorization": f"Bearer {key}"}
            method = kwargs.pop("method", "POST")
            answer = requests.request(method, kwargs.pop("url", url), headers=headers, timeout=10, **kwargs)
            assert answer.status_code == expected, answer.text
            return new_line(access, before)

        def refused(line: dict[str, Any], status: str, http_status: int | None, model: str | None = MODEL) -> None:
            assert line["refused"] is True and line["ok"] is False and line["level"] == "warn", line
            assert line["status"] == status and line.get("http_status") == http_status, line
            assert line.get("model") == model and "version" not in line and "id" not in line, line
            assert line["client"] == "127.0.0.1" and line["total_us"] >= 0, line

        ok = rest(200, inferrer, json=row)  # reached the core: its line, and only it
        assert ok["ok"] is True and "refused" not in ok and ok["version"] == "1"
        refused(rest(400, inferrer, data=b"{not json"), "INVALID_ARGUMENT", 400)
        refused(rest(401, None, json=row), "UNAUTHENTICATED", 401)
        refused(rest(403, reader, json=row), "PERMISSION_DENIED", 403)
        refused(rest(413, inferrer, data=b"{" + b" " * 4096 + b"}"), "RESOURCE_EXHAUSTED", 413)
        refused(rest(404, inferrer, url=f"{server.base_url}/v2/no/such/route"), "NOT_FOUND", 404, model=None)
        predict = f"{server.base_url}/v1/models/no_such_model:predict"
        unknown = rest(404, inferrer, url=predict, json={"instances": [[1, 2, 3, 4]]})
        refused(unknown, "NOT_FOUND", 404, model="no_such_model")
        before = len(json_lines(access))  # a route that is not an inference's: no line for its answers
        ready = f"{server.base_url}/v2/models/nope/ready"
        assert requests.get(ready, headers={"Authorization": f"Bearer {reader}"}, timeout=10).status_code == 404
        time.sleep(0.3)
        assert len(json_lines(access)) == before
        statuses = []
        for _ in range(10):
            before = len(json_lines(access))
            answer = requests.post(url, json=row, headers={"Authorization": f"Bearer {slow}"}, timeout=10)
            line = new_line(access, before)
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                refused(line, "RESOURCE_EXHAUSTED", 429)
                break
            assert answer.ok and "refused" not in line
        assert statuses[-1] == 429, statuses

        def rpc(expected: grpc.StatusCode, key: str | None, raw: bytes = b"\0" * 16) -> dict[str, Any]:
            before = len(json_lines(access))
            assert raw_grpc_infer(server, grpc_request(raw), key) == expected
            return new_line(access, before)

        assert rpc(grpc.StatusCode.OK, inferrer)["protocol"] == "grpc"
        for code, key, raw, status in [
            (grpc.StatusCode.INVALID_ARGUMENT, inferrer, b"\0" * 3, "INVALID_ARGUMENT"),
            (grpc.StatusCode.UNAUTHENTICATED, None, b"\0" * 16, "UNAUTHENTICATED"),
            (grpc.StatusCode.PERMISSION_DENIED, reader, b"\0" * 16, "PERMISSION_DENIED"),
        ]:
            line = rpc(code, key, raw)
            refused(line, status, None)
            assert line["protocol"] == "grpc"
        for _ in range(10):
            before = len(json_lines(access))
            code = raw_grpc_infer(server, grpc_request(b"\0" * 16), slow)
            line = new_line(access, before)
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                refused(line, "RESOURCE_EXHAUSTED", None)
                break
            assert code == grpc.StatusCode.OK and "refused" not in line
        else:
            raise AssertionError("the gRPC rate limit never refused")
    text = access.read_text()
    for key in (inferrer, reader, slow):
        assert key not in text and key.split(".")[-1] not in text
    assert "Bearer" not in text and "authorization" not in text.lower()


def test_bad_log_flags_are_refused_at_start(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="--access-log: cannot open log file"):
        BerthServer.start(
            berth_binary(), repo, tmp_path / "a.log", extra_args=["--access-log", str(tmp_path / "no" / "x.log")]
        )
    for flag, value, message in [
        ("--payload-log-rate", "2", "a fraction in (0, 1]"),
        ("--payload-log-ca", "", "give a CA file"),
        ("--log-max-files", "0", "a number of files"),
    ]:
        done = subprocess.run(
            [str(berth_binary()), "serve", "--model-repository", str(repo), flag, value],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert message in done.stderr, done.stderr
