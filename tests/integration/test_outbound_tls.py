"""HTTPS out of the server (docs/security.md#outbound-tls): the payload log's sink
and the alerts' webhook receiver over TLS, each a real Python http.server wrapped
in `ssl` with a certificate from a test CA (openssl). The receiver's certificate
is checked against --payload-log-ca / the webhook's ca_file (or the system's
CAs): one from another CA, or naming another host, is refused; the drop is
counted and the server keeps serving.
"""

from __future__ import annotations

import json
import shutil
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from berth_server import BerthServer, berth_binary
from pki_tools import issue, new_ca

MODEL: Final = "iris_logreg"
EXAMPLE: Final = Path(__file__).resolve().parents[2] / "examples" / "models" / MODEL
WAIT_S: Final = 20.0
BODY: Final = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}


class TlsReceiver:
    """An https:// receiver: keeps the path, headers and body of every POST it reads."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, host: str, path: str) -> str:
        return f"https://{host}:{self.server.server_address[1]}{path}"

    def received(self) -> list[tuple[str, dict[str, str], bytes]]:
        with self.lock:
            return list(self.posts)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is missing (Debian package openssl)")
    d = tmp_path_factory.mktemp("pki")
    new_ca(d, "ca")
    new_ca(d, "other-ca")
    issue(d, "trusted", "localhost", "ca", server=True)
    issue(d, "untrusted", "localhost", "other-ca", server=True)
    issue(d, "elsewhere", "elsewhere.example", "ca", server=True, san="DNS:elsewhere.example")
    return d


def receiver_for(pki: Path, name: str) -> TlsReceiver:
    return TlsReceiver(pki / f"{name}.pem", pki / f"{name}.key.pem")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root / MODEL)
    return root


def wait_for(condition: Callable[[], Any], what: str, during: Callable[[], Any] | None = None) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if during is not None:
            during()
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def metric(server: BerthServer, name: str, **labels: str) -> float:
    text = requests.get(f"{server.base_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise KeyError(name)


def infer(server: BerthServer) -> None:
    assert requests.post(f"{server.base_url}/v2/models/{MODEL}/infer", json=BODY, timeout=10).ok


def test_payload_events_reach_an_https_sink_that_the_ca_file_trusts(repo: Path, tmp_path: Path, pki: Path) -> None:
    receiver = receiver_for(pki, "trusted")
    try:
        # By name (SNI, the name checked against the certificate).
        args = ["--payload-log", receiver.url("localhost", "/events"), "--payload-log-ca", str(pki / "ca.pem")]
        with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
            infer(server)
            wait_for(lambda: len(receiver.received()) >= 2, "two events at the sink")
            assert metric(server, "berth_payload_log_events_total") == 2
            assert metric(server, "berth_payload_log_dropped_total", reason="sink_error") == 0
        types = sorted(headers["ce-type"] for _, headers, _ in receiver.received())
        assert types == ["org.kubeflow.serving.inference.request", "org.kubeflow.serving.inference.response"]
        for path, headers, body in receiver.received():
            assert path == "/events" and headers["host"].startswith("localhost:")
            assert json.loads(body)
    finally:
        receiver.close()


def test_the_system_cas_are_the_default(repo: Path, tmp_path: Path, pki: Path) -> None:
    """Without --payload-log-ca, OpenSSL's default paths: here SSL_CERT_FILE names the test CA."""
    receiver = receiver_for(pki, "trusted")
    try:
        args = ["--payload-log", receiver.url("127.0.0.1", "/events")]  # by IP address
        env = {"SSL_CERT_FILE": str(pki / "ca.pem")}
        with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args, env=env) as server:
            infer(server)
            wait_for(lambda: len(receiver.received()) >= 2, "two events at the sink")
    finally:
        receiver.close()


@pytest.mark.parametrize("certificate", ["untrusted", "elsewhere"])
def test_a_sink_whose_certificate_is_not_trusted_is_refused(
    repo: Path, tmp_path: Path, pki: Path, certificate: str
) -> None:
    """Another CA's certificate, or one naming another host: no event is sent, the drops are counted."""
    receiver = receiver_for(pki, certificate)
    try:
        args = ["--payload-log", receiver.url("127.0.0.1", "/events"), "--payload-log-ca", str(pki / "ca.pem")]
        with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
            infer(server)
            wait_for(
                lambda: metric(server, "berth_payload_log_dropped_total", reason="sink_error") == 2, "two drops"
            )
            infer(server)  # the server keeps serving
            assert requests.get(f"{server.base_url}/v2/health/ready", timeout=10).ok
            assert metric(server, "berth_payload_log_events_total") == 0
        assert receiver.received() == []
        assert "the server's certificate is not trusted" in server.log()
    finally:
        receiver.close()


def alerts_file(path: Path, url: str, ca_file: Path) -> Path:
    rule = {"alert": "AnyTraffic", "model": MODEL, "metric": "request_rate", "op": ">", "threshold": 0, "window": "1m"}
    webhook = {"url": url, "timeout": "2s", "retries": 0, "ca_file": str(ca_file)}
    path.write_text(yaml.safe_dump({"webhook": webhook, "rules": [rule]}, sort_keys=False))
    return path


@pytest.mark.parametrize(("certificate", "outcome"), [("trusted", "sent"), ("untrusted", "failed")])
def test_an_alert_fires_to_an_https_webhook(
    repo: Path, tmp_path: Path, pki: Path, certificate: str, outcome: str
) -> None:
    receiver = receiver_for(pki, certificate)
    try:
        path = alerts_file(tmp_path / "alerts.yaml", receiver.url("localhost", "/hook"), pki / "ca.pem")
        args = ["--alerts", str(path), "--alert-interval-ms", "100"]
        with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
            wait_for(
                lambda: metric(server, "berth_alert_webhook_total", outcome=outcome) >= 1,
                f"a notification {outcome}",
                during=lambda: infer(server),
            )
            infer(server)  # the server keeps serving
        if outcome == "sent":
            ((hook_path, headers, body),) = receiver.received()[:1]
            assert hook_path == "/hook" and headers["content-type"] == "application/json"
            assert json.loads(body)["status"] == "firing"
        else:
            assert receiver.received() == []
            assert "the server's certificate is not trusted" in server.log()
    finally:
        receiver.close()
