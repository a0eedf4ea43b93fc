"""The C++ `berth` command line against a server that wants client certificates (mutual TLS):
`berth models` and `berth keys` with --cert/--key (or $BERTH_CERT_FILE/$BERTH_KEY_FILE), and what
they say without a certificate, with one from another CA, or with a key of another certificate.
The certificates and the mTLS server are test_tls.py's (the openssl command line, build/berth
--tls-cert --tls-key --tls-client-ca).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth_server import BerthServer, berth_binary, free_port
from models import ModelRepository
from test_tls import MODEL, Pki, mtls_server, pki  # noqa: F401 (fixtures)

# The client's certificate variables are the test's to set, never the caller's.
_ENV = {k: v for k, v in os.environ.items() if k not in ("BERTH_CA_FILE", "BERTH_CERT_FILE", "BERTH_KEY_FILE")}


def berth(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(berth_binary()), *args], capture_output=True, text=True, timeout=60,
                          env={**_ENV, **(env or {})}, check=False)  # fmt: skip


def _url(server: BerthServer) -> str:
    return f"https://localhost:{server.http_port}"


def _client(pki: Pki) -> list[str]:
    return ["--ca-file", str(pki.ca), "--cert", str(pki.client_cert), "--key", str(pki.client_key)]


def test_models_list_with_a_client_certificate(mtls_server: BerthServer, pki: Pki, tmp_path: Path) -> None:
    listed = berth("models", "list", "--url", _url(mtls_server), *_client(pki))
    assert listed.returncode == 0, listed.stderr
    assert MODEL in listed.stdout
    # From the environment, as --ca-file has $BERTH_CA_FILE.
    from_env = berth("models", "list", "--url", _url(mtls_server), "--json", env={
        "BERTH_CA_FILE": str(pki.ca), "BERTH_CERT_FILE": str(pki.client_cert), "BERTH_KEY_FILE": str(pki.client_key),
    })  # fmt: skip
    assert from_env.returncode == 0, from_env.stderr
    assert MODEL in {m["name"] for m in json.loads(from_env.stdout)["models"]}
    # One PEM file holding the certificate and its key: --cert alone (as berth-py's --cert).
    both = tmp_path / "client-and-key.pem"
    both.write_text(pki.client_cert.read_text() + pki.client_key.read_text())
    one_file = berth("models", "list", "--url", _url(mtls_server), "--ca-file", str(pki.ca), "--cert", str(both))
    assert one_file.returncode == 0, one_file.stderr


def test_without_a_client_certificate_the_cli_says_the_server_wants_one(mtls_server: BerthServer, pki: Pki) -> None:
    for command in (["models", "list"], ["keys", "list"]):
        done = berth(*command, "--url", _url(mtls_server), "--ca-file", str(pki.ca))
        assert done.returncode == 1, done.stderr
        assert "asks for a client certificate" in done.stderr, done.stderr
        assert "error:" not in done.stderr  # not OpenSSL's bare error string


def test_a_client_certificate_from_another_ca_is_refused(mtls_server: BerthServer, pki: Pki) -> None:
    done = berth("models", "list", "--url", _url(mtls_server), "--ca-file", str(pki.ca),
                 "--cert", str(pki.impostor_cert), "--key", str(pki.impostor_key))  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"refused the client certificate '{pki.impostor_cert}'" in done.stderr, done.stderr
    assert MODEL not in done.stdout


def test_a_key_of_another_certificate_is_refused_before_connecting(pki: Pki) -> None:
    # Nothing listens on the port: a message about the key, not "connection refused", shows
    # that the pair is checked before any connection is made.
    url = f"https://localhost:{free_port()}"
    for command in (["models", "list"], ["keys", "list"]):
        done = berth(*command, "--url", url, "--ca-file", str(pki.ca),
                     "--cert", str(pki.client_cert), "--key", str(pki.impostor_key))  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert f"'{pki.impostor_key}' does not match the certificate '{pki.client_cert}'" in done.stderr, done.stderr
        assert "connect" not in done.stderr


def test_unusable_certificate_arguments_are_said_plainly(pki: Pki, tmp_path: Path) -> None:
    url = f"https://localhost:{free_port()}"
    missing = tmp_path / "missing.pem"
    cases = [
        (["models", "list", "--url", url, "--key", str(pki.client_key)], 2, "--key goes with --cert"),
        (["keys", "list", "--url", url, "--key", str(pki.client_key)], 2, "--key goes with --cert"),
        (["keys", "list", "--model-repository", str(tmp_path), "--cert", str(pki.client_cert)], 2,
         "--cert and --key go with --url"),
        (["models", "list", "--url", url, "--cert", str(missing), "--key", str(pki.client_key)], 1,
         f"cannot load the client certificate '{missing}': No such file or directory"),
        (["keys", "list", "--url", url, "--cert", str(pki.client_cert), "--key", str(missing)], 1,
         f"cannot load the client key '{missing}': No such file or directory"),
        # The key is not in the certificate's file.
        (["models", "list", "--url", url, "--cert", str(pki.client_cert)], 1, "no PEM private key"),
        (["models", "list", "--url", url.replace("https", "http"), *_client(pki)], 1, "for an https:// URL"),
    ]  # fmt: skip
    for args, code, message in cases:
        done = berth(*args)
        assert done.returncode == code, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
    only_key = berth("models", "list", "--url", url, env={"BERTH_KEY_FILE": str(pki.client_key)})
    assert only_key.returncode == 1
    assert "$BERTH_KEY_FILE goes with $BERTH_CERT_FILE" in only_key.stderr, only_key.stderr


@pytest.fixture(scope="module")
def mtls_auth_server(
    model_repository: ModelRepository, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[BerthServer, str]]:
    """mTLS and --require-auth; its admin key made in its store beforehand."""
    d = tmp_path_factory.mktemp("mtls_auth")
    store = f"sqlite:{d / 'registry.db'}"
    made = berth("keys", "create", "--registry", store, "--name", "admin", "--scope", "admin", "--scope", "read")
    assert made.returncode == 0, made.stderr
    admin = made.stdout.strip().splitlines()[-1]
    with BerthServer.start(
        berth_binary(), model_repository.root, d / "berth.log",
        extra_args=["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
                    "--tls-client-ca", str(pki.ca), "--require-auth", "--registry", store],
        ca_file=pki.ca, client_cert=(str(pki.client_cert), str(pki.client_key)), authorization=f"Bearer {admin}",
    ) as server:  # fmt: skip
        yield server, admin


def test_keys_create_over_mtls_with_an_admin_key(mtls_auth_server: tuple[BerthServer, str], pki: Pki) -> None:
    server, admin = mtls_auth_server
    url = _url(server)
    made = berth("keys", "create", "--url", url, *_client(pki), "--api-key", admin, "--name", "ci", "--scope", "infer")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    listed = berth("keys", "list", "--url", url, *_client(pki), env={"BERTH_API_KEY": admin})
    assert listed.returncode == 0, listed.stderr
    assert "ci" in listed.stdout.split()
    assert key not in listed.stdout
    # The admin key without a client certificate does not get through the TLS door.
    no_cert = berth("keys", "create", "--url", url, "--ca-file", str(pki.ca), "--api-key", admin,
                    "--name", "ci2", "--scope", "infer")  # fmt: skip
    assert no_cert.returncode == 1
    assert "asks for a client certificate" in no_cert.stderr, no_cert.stderr
    # A client certificate without the admin key is refused by the server, as without TLS.
    no_key = berth("keys", "create", "--url", url, *_client(pki), "--name", "ci3", "--scope", "infer")
    assert no_key.returncode == 1
    assert "401" in no_key.stderr and "requires an API key" in no_key.stderr, no_key.stderr
