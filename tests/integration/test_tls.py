"""TLS and mutual TLS on REST and gRPC, with real clients: curl, openssl s_client,
requests, tritonclient.http (ssl=True) and tritonclient.grpc (SSL credentials).

Certificates come from the openssl command line: a test CA signs the server's
certificate (localhost, 127.0.0.1) and a client's; a second CA signs an
impostor client. SIGHUP swaps the server's certificate without dropping a
connection or failing a request.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import yaml

from berth_server import REPO_ROOT, BerthServer, berth_binary
from deploy_tools import deploy_tools
from models import ModelRepository
from pki_tools import issue as _issue
from pki_tools import new_ca as _new_ca

MODEL = "iris_logreg"
ROW = [5.1, 3.5, 1.4, 0.2]
BODY = {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    impostor_cert: Path  # signed by another CA
    impostor_key: Path
    directory: Path

    def issue_server_cert(self, name: str) -> tuple[Path, Path]:
        """A fresh server certificate from the test CA (a new key and serial)."""
        return _issue(self.directory, name, "localhost", "ca", server=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is missing (Debian package openssl)")
    d = tmp_path_factory.mktemp("pki")
    _new_ca(d, "ca")
    _new_ca(d, "other-ca")
    server_cert, server_key = _issue(d, "server", "localhost", "ca", server=True)
    client_cert, client_key = _issue(d, "client", "berth-test-client", "ca", server=False)
    impostor_cert, impostor_key = _issue(d, "impostor", "berth-test-client", "other-ca", server=False)
    return Pki(d / "ca.pem", server_cert, server_key, client_cert, client_key, impostor_cert, impostor_key, d)


def _start(
    repository: Path, tmp: Path, cert: Path, key: Path, *, client_ca: Path | None, ca: Path,
    client: tuple[str, str] | None = None,
) -> BerthServer:  # fmt: skip
    args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    if client_ca is not None:
        args += ["--tls-client-ca", str(client_ca)]
    return BerthServer.start(
        berth_binary(), repository, tmp / "berth.log", extra_args=args, ca_file=ca, client_cert=client
    )


@pytest.fixture(scope="module")
def tls_server(
    model_repository: ModelRepository, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BerthServer]:
    # The server reads its certificate from copies, so that the reload test
    # can replace them.
    d = tmp_path_factory.mktemp("tls_server")
    cert, key = d / "cert.pem", d / "key.pem"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    with _start(model_repository.root, d, cert, key, client_ca=None, ca=pki.ca) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(
    model_repository: ModelRepository, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BerthServer]:
    d = tmp_path_factory.mktemp("mtls_server")
    client = (str(pki.client_cert), str(pki.client_key))
    with _start(
        model_repository.root, d, pki.server_cert, pki.server_key, client_ca=pki.ca, ca=pki.ca, client=client
    ) as server:
        yield server


def _label(answer: dict[str, object]) -> int:
    outputs = {o["name"]: o for o in answer["outputs"]}  # type: ignore[index, union-attr]
    return int(outputs["label"]["data"][0])  # type: ignore[index]


def _peer_serial(port: int, ca: Path) -> int:
    """The serial number of the certificate the server presents now."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    out = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der, capture_output=True, check=True
    )
    return int(out.stdout.decode().strip().split("=")[1], 16)


# ---- REST ---------------------------------------------------------------------


def test_curl_infers_over_tls_and_verifies_the_certificate(tls_server: BerthServer, pki: Pki) -> None:
    url = f"https://localhost:{tls_server.http_port}/v2/models/{MODEL}/infer"
    import json

    out = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--cacert", str(pki.ca), "-X", "POST", url, "-d", json.dumps(BODY)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert _label(json.loads(out.stdout)) == 0
    # Without the CA, curl refuses the server: the certificate is really checked.
    untrusted = subprocess.run(["curl", "-sS", url, "-d", "{}"], capture_output=True, text=True, timeout=30)
    assert untrusted.returncode != 0


def test_plaintext_on_the_tls_port_gets_no_answer_and_tls_keeps_serving(tls_server: BerthServer, pki: Pki) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{tls_server.http_port}/v2/health/live", timeout=5)
    r = requests.post(f"{tls_server.base_url}/v2/models/{MODEL}/infer", json=BODY, verify=str(pki.ca), timeout=10)
    assert r.status_code == 200 and _label(r.json()) == 0


@pytest.mark.parametrize(
    ("flag", "accepted"), [("-tls1_3", True), ("-tls1_2", True), ("-tls1_1", False), ("-tls1", False)]
)
def test_openssl_s_client_gets_tls_1_2_or_later_only(
    tls_server: BerthServer, pki: Pki, flag: str, accepted: bool
) -> None:
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{tls_server.http_port}", "-CAfile", str(pki.ca),
         "-verify_return_error", flag],
        input=b"", capture_output=True, timeout=30,
    )  # fmt: skip
    text = out.stdout.decode(errors="replace")
    if accepted:
        assert out.returncode == 0, text + out.stderr.decode(errors="replace")
        assert "Verify return code: 0 (ok)" in text
        cipher = next(line for line in text.splitlines() if "Cipher is" in line)
        # Forward secrecy and AEAD only: TLS 1.3 suites, or ECDHE with GCM/ChaCha20.
        assert "TLS_" in cipher or ("ECDHE" in cipher and ("GCM" in cipher or "CHACHA20" in cipher)), cipher
    else:
        assert out.returncode != 0, text


def test_tritonclient_http_with_ssl(tls_server: BerthServer, pki: Pki) -> None:
    client = httpclient.InferenceServerClient(
        f"localhost:{tls_server.http_port}", ssl=True, ssl_options={"ca_certs": str(pki.ca)}
    )
    try:
        assert client.is_server_ready()
        x = httpclient.InferInput("X", [1, 4], "FP32")
        x.set_data_from_numpy(np.array([ROW], dtype=np.float32), binary_data=True)
        result = client.infer(MODEL, [x])
        assert int(result.as_numpy("label")[0]) == 0
    finally:
        client.close()


# ---- gRPC ---------------------------------------------------------------------


def test_tritonclient_grpc_with_ssl_credentials(tls_server: BerthServer, pki: Pki) -> None:
    port = tls_server.grpc_address().rsplit(":", 1)[1]
    client = grpcclient.InferenceServerClient(
        f"localhost:{port}", ssl=True, root_certificates=str(pki.ca)
    )
    try:
        assert client.is_server_ready()
        x = grpcclient.InferInput("X", [1, 4], "FP32")
        x.set_data_from_numpy(np.array([ROW], dtype=np.float32))
        assert int(client.infer(MODEL, [x]).as_numpy("label")[0]) == 0
    finally:
        client.close()


def test_the_berth_cli_speaks_https_with_the_ca_it_is_given(tls_server: BerthServer, pki: Pki) -> None:
    """`berth models` and `berth keys` over https: --ca-file, else $BERTH_CA_FILE, else the system's CAs."""
    url = f"https://localhost:{tls_server.http_port}"
    env = {k: v for k, v in os.environ.items() if k not in ("BERTH_CA_FILE", "SSL_CERT_FILE")}

    def berth(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(berth_binary()), *args], capture_output=True, text=True, timeout=60,
                              env={**env, **(extra_env or {})}, check=False)  # fmt: skip

    listed = berth("models", "list", "--url", url, "--ca-file", str(pki.ca))
    assert listed.returncode == 0, listed.stderr
    assert MODEL in listed.stdout
    from_env = berth("models", "list", "--url", url, "--json", extra_env={"BERTH_CA_FILE": str(pki.ca)})
    assert from_env.returncode == 0, from_env.stderr
    assert MODEL in {m["name"] for m in json.loads(from_env.stdout)["models"]}
    keys = berth("keys", "list", "--url", url, "--ca-file", str(pki.ca))
    assert keys.returncode == 0, keys.stderr
    # The test CA is not among the system's: the certificate is refused, and said to be.
    untrusted = berth("models", "list", "--url", url)
    assert untrusted.returncode == 1
    assert "certificate" in untrusted.stderr.lower(), untrusted.stderr
    other_ca = berth("keys", "list", "--url", url, "--ca-file", str(pki.directory / "other-ca.pem"))
    assert other_ca.returncode == 1
    assert "certificate" in other_ca.stderr.lower(), other_ca.stderr
    missing = berth("models", "list", "--url", url, "--ca-file", str(pki.directory / "missing.pem"))
    assert missing.returncode == 1
    assert "missing.pem" in missing.stderr, missing.stderr


def test_grpc_plaintext_client_is_refused_by_a_tls_server(tls_server: BerthServer) -> None:
    client = grpcclient.InferenceServerClient(tls_server.grpc_address())
    try:
        with pytest.raises(Exception):
            client.is_server_live(client_timeout=5)
    finally:
        client.close()


# ---- mutual TLS -----------------------------------------------------------------


def test_mtls_rest_needs_a_client_certificate_from_the_trusted_ca(mtls_server: BerthServer, pki: Pki) -> None:
    url = f"{mtls_server.base_url}/v2/models/{MODEL}/infer"
    good = requests.post(
        url, json=BODY, verify=str(pki.ca), cert=(str(pki.client_cert), str(pki.client_key)), timeout=10
    )
    assert good.status_code == 200 and _label(good.json()) == 0
    for cert in (None, (str(pki.impostor_cert), str(pki.impostor_key))):
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(url, json=BODY, verify=str(pki.ca), cert=cert, timeout=10)
    # curl with the impostor's certificate, the same.
    out = subprocess.run(
        ["curl", "-sS", "--cacert", str(pki.ca), "--cert", str(pki.impostor_cert), "--key", str(pki.impostor_key),
         f"https://localhost:{mtls_server.http_port}/v2/health/ready"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode != 0


def test_mtls_grpc_needs_a_client_certificate_from_the_trusted_ca(mtls_server: BerthServer, pki: Pki) -> None:
    port = mtls_server.grpc_address().rsplit(":", 1)[1]
    address = f"localhost:{port}"
    good = grpcclient.InferenceServerClient(
        address, ssl=True, root_certificates=str(pki.ca), private_key=str(pki.client_key),
        certificate_chain=str(pki.client_cert),
    )  # fmt: skip
    try:
        assert good.is_server_ready()
    finally:
        good.close()
    for key, chain in ((None, None), (str(pki.impostor_key), str(pki.impostor_cert))):
        bad = grpcclient.InferenceServerClient(
            address, ssl=True, root_certificates=str(pki.ca), private_key=key, certificate_chain=chain
        )
        try:
            with pytest.raises(Exception):
                bad.is_server_ready(client_timeout=5)
        finally:
            bad.close()


# ---- reload -------------------------------------------------------------------


def test_sighup_swaps_the_certificate_under_load_without_a_failed_request(
    tls_server: BerthServer, pki: Pki
) -> None:
    """REST and gRPC clients, on kept and on new connections, while the key and certificate are replaced.

    The key is replaced first and the certificate only after gRPC's file
    watcher has had time to look (its interval is 1 s), as an operator
    copying one file after the other does: neither port may serve the new
    key with the old certificate (every new handshake would fail), no
    request may fail, and after each SIGHUP new connections on both ports
    get the new certificate.
    """
    server_dir = Path(tls_server.log_path).parent
    cert, key = server_dir / "cert.pem", server_dir / "key.pem"
    grpc_port = int(tls_server.grpc_address().rsplit(":", 1)[1])
    before = _peer_serial(tls_server.http_port, pki.ca)
    assert _peer_serial(grpc_port, pki.ca) == before
    failures: list[str] = []
    done = {"rest": 0, "grpc": 0}
    stop = threading.Event()

    def rest_load(keep_alive: bool) -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                if keep_alive:
                    r = session.post(f"{tls_server.base_url}/v2/models/{MODEL}/infer", json=BODY,
                                     verify=str(pki.ca), timeout=10)  # fmt: skip
                else:
                    r = requests.post(f"{tls_server.base_url}/v2/models/{MODEL}/infer", json=BODY,
                                      verify=str(pki.ca), timeout=10)  # fmt: skip
                if r.status_code != 200:
                    failures.append(f"REST {r.status_code} {r.text}")
                done["rest"] += 1
            except requests.RequestException as e:
                failures.append(f"REST {e!r}")

    def grpc_infer(client: grpcclient.InferenceServerClient) -> None:
        x = grpcclient.InferInput("X", [1, 4], "FP32")
        x.set_data_from_numpy(np.array([ROW], dtype=np.float32))
        assert int(client.infer(MODEL, [x], client_timeout=10).as_numpy("label")[0]) == 0

    def grpc_client() -> grpcclient.InferenceServerClient:
        return grpcclient.InferenceServerClient(f"localhost:{grpc_port}", ssl=True, root_certificates=str(pki.ca))

    def grpc_load(keep_channel: bool) -> None:
        kept = grpc_client() if keep_channel else None
        while not stop.is_set():
            client = kept or grpc_client()  # a new channel: a new TLS handshake
            try:
                grpc_infer(client)
                done["grpc"] += 1
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failures.append(f"gRPC {e!r}")
            finally:
                if kept is None:
                    client.close()
        if kept is not None:
            kept.close()

    threads = [threading.Thread(target=rest_load, args=(i % 2 == 0,)) for i in range(2)]
    threads += [threading.Thread(target=grpc_load, args=(i % 2 == 0,)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        serials = [before]
        for i in range(3):
            time.sleep(0.5)
            new_cert, new_key = pki.issue_server_cert(f"reloaded-{i}")
            # Each file written next to the live one, then renamed over it:
            # no reader sees half a file. The key first, the certificate
            # after gRPC's watcher has looked at least once.
            shutil.copy(new_key, key.with_suffix(".tmp"))
            key.with_suffix(".tmp").rename(key)
            time.sleep(1.5)
            shutil.copy(new_cert, cert.with_suffix(".tmp"))
            cert.with_suffix(".tmp").rename(cert)
            tls_server.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while _peer_serial(tls_server.http_port, pki.ca) == serials[-1]:
                assert time.monotonic() < deadline, "the REST side still presents the old certificate"
                time.sleep(0.05)
            serials.append(_peer_serial(tls_server.http_port, pki.ca))
            deadline = time.monotonic() + 5
            while _peer_serial(grpc_port, pki.ca) != serials[-1]:
                assert time.monotonic() < deadline, "new gRPC connections still get the old certificate"
                time.sleep(0.1)
            # A new gRPC channel now handshakes with the new certificate.
            client = grpc_client()
            try:
                grpc_infer(client)
            finally:
                client.close()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:5]
    assert done["rest"] > 50 and done["grpc"] > 50, done
    assert len(set(serials)) == 4
    assert "TLS certificate reloaded" in tls_server.log()


def test_a_bad_certificate_on_sighup_keeps_the_current_one(tls_server: BerthServer, pki: Pki) -> None:
    server_dir = Path(tls_server.log_path).parent
    cert = server_dir / "cert.pem"
    good = cert.read_bytes()
    serial = _peer_serial(tls_server.http_port, pki.ca)
    try:
        cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        tls_server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "TLS reload failed" not in tls_server.log():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert _peer_serial(tls_server.http_port, pki.ca) == serial
        r = requests.get(f"{tls_server.base_url}/v2/health/ready", verify=str(pki.ca), timeout=10)
        assert r.status_code == 200
    finally:
        cert.write_bytes(good)


# ---- configuration --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "{cert}"], "needs both --tls-cert and --tls-key"),
        (["--tls-client-ca", "{ca}"], "--tls-client-ca needs --tls-cert and --tls-key"),
        (["--tls-cert", "{cert}", "--tls-key", "{other_key}"], "does not match the certificate"),
        (["--tls-cert", "{missing}", "--tls-key", "{key}"], "cannot load the certificate"),
    ],
)
def test_bad_tls_flags_are_refused_at_start_with_the_reason(
    pki: Pki, tmp_path: Path, args: list[str], message: str
) -> None:
    values = {
        "cert": str(pki.server_cert), "key": str(pki.server_key), "ca": str(pki.ca),
        "other_key": str(pki.client_key), "missing": str(tmp_path / "missing.pem"),
    }  # fmt: skip
    command = [str(berth_binary()), "serve", "--model-repository", str(tmp_path), "--http-port", "0",
               "--grpc-port", "0", *[a.format(**values) for a in args]]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr


def image_healthcheck(port: int) -> list[str]:
    """The image's HEALTHCHECK command (deploy/Dockerfile), aimed at `port` instead of 8000."""
    dockerfile = REPO_ROOT / "deploy" / "Dockerfile"
    line = next(l for l in dockerfile.read_text().splitlines() if l.startswith("HEALTHCHECK "))
    command: list[str] = json.loads(line.split(" CMD ", 1)[1])
    return [part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in command]


def run_healthcheck(command: list[str], env: dict[str, str] | None = None) -> int:
    done = subprocess.run(command, capture_output=True, env={**os.environ, **(env or {})}, timeout=30, check=False)
    return done.returncode


def test_the_images_healthcheck_passes_over_plaintext_tls_and_mtls(
    model_repository: ModelRepository, tls_server: BerthServer, mtls_server: BerthServer, pki: Pki, tmp_path: Path
) -> None:
    with BerthServer.start(berth_binary(), model_repository.root, tmp_path / "plain.log") as plain:
        assert run_healthcheck(image_healthcheck(plain.http_port)) == 0
    assert run_healthcheck(image_healthcheck(tls_server.http_port)) == 0
    mtls = image_healthcheck(mtls_server.http_port)
    assert run_healthcheck(mtls) != 0, "mTLS let a health check without a certificate in"
    certificate = {"BERTH_HEALTHCHECK_CERT": str(pki.client_cert), "BERTH_HEALTHCHECK_KEY": str(pki.client_key)}
    assert run_healthcheck(mtls, certificate) == 0


def test_the_helm_charts_mtls_probes_pass_where_the_kubelets_would_not(mtls_server: BerthServer, pki: Pki) -> None:
    """The chart's exec probes under tls.clientAuth, run against a real mTLS
    server with the probe Secret's files; the kubelet's HTTPS probe (no
    client certificate) is refused by the same server."""
    tools = deploy_tools()
    done = subprocess.run(
        [str(tools.helm), "template", "berth", str(REPO_ROOT / "deploy" / "helm" / "berth"),
         "--set", "tls.enabled=true", "--set", "tls.cert=C", "--set", "tls.key=K",
         "--set", "tls.clientAuth=true", "--set", "tls.probeClientSecret=berth-probe"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    deployment = next(d for d in yaml.safe_load_all(done.stdout) if d and d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    files = {"/etc/berth/probe-tls/tls.crt": str(pki.client_cert), "/etc/berth/probe-tls/tls.key": str(pki.client_key)}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = [
            files.get(part, part.replace("127.0.0.1:8000", f"127.0.0.1:{mtls_server.http_port}"))
            for part in container[probe]["exec"]["command"]
        ]
        assert run_healthcheck(command) == 0, f"{probe}: {command}"
    kubelet = requests.Session()
    with pytest.raises(requests.exceptions.ConnectionError):  # an SSLError, or a reset after the handshake
        kubelet.get(f"https://127.0.0.1:{mtls_server.http_port}/v2/health/ready", verify=False, timeout=5)
