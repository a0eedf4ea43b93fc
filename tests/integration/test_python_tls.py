"""The berth package over TLS: Client and AsyncClient on https:// and grpcs:// with a private CA
(ca_file=, $BERTH_CA_FILE), mutual TLS with a client certificate (refused with one from another
CA), and `berth-py evaluate --ca-file` over https. The certificates and the TLS servers are
test_tls.py's (the openssl command line, build/berth --tls-cert ...).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import berth
from berth_server import BerthServer
from python_models import iris, write_csv
from test_tls import Pki, _start, pki  # noqa: F401 (pki is a fixture)

MODEL = "iris_tls"


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository holding an iris classifier imported by berth-py (its feature names recorded)."""
    d = tmp_path_factory.mktemp("python_tls")
    X, y = iris()
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), d / "m.joblib")
    berth.import_model(d / "m.joblib", name=MODEL, repository=d / "repo")
    return d / "repo"


def _server(repository: Path, pki: Pki, tmp: Path, *, mutual: bool) -> BerthServer:
    client = (str(pki.client_cert), str(pki.client_key)) if mutual else None
    return _start(repository, tmp, pki.server_cert, pki.server_key, client_ca=pki.ca if mutual else None, ca=pki.ca,
                  client=client)  # fmt: skip


@pytest.fixture(scope="module")
def tls_server(repository: Path, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    with _server(repository, pki, tmp_path_factory.mktemp("tls"), mutual=False) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(repository: Path, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    with _server(repository, pki, tmp_path_factory.mktemp("mtls"), mutual=True) as server:
        yield server


def _urls(server: BerthServer) -> list[str]:
    port = server.grpc_address().rsplit(":", 1)[1]
    return [f"https://localhost:{server.http_port}", f"grpcs://localhost:{port}"]


def _expected() -> tuple[np.ndarray, np.ndarray]:
    X, y = iris()
    rows = X.iloc[::10]
    return rows.to_numpy(), LogisticRegression(max_iter=1000).fit(X, y).predict(rows)


@pytest.mark.parametrize("door", [0, 1], ids=["https", "grpcs"])
def test_predict_over_tls_with_a_private_ca(tls_server: BerthServer, pki: Pki, door: int) -> None:
    url = _urls(tls_server)[door]
    rows, labels = _expected()
    with berth.Client(url, ca_file=str(pki.ca)) as client:
        assert client.predict(MODEL, rows).labels.tolist() == labels.tolist()  # type: ignore[union-attr]
    # Without the CA the server's certificate is not trusted: a clear error, not a retry loop.
    with pytest.raises(berth.BerthError, match="TLS with the Berth server at .* failed"):
        berth.Client(url, retries=0).predict(MODEL, rows)


@pytest.mark.parametrize("door", [0, 1], ids=["https", "grpcs"])
def test_berth_ca_file_is_the_default_ca(
    tls_server: BerthServer, pki: Pki, door: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BERTH_CA_FILE", str(pki.ca))
    rows, labels = _expected()
    with berth.Client(_urls(tls_server)[door]) as client:
        assert client.predict(MODEL, rows).labels.tolist() == labels.tolist()  # type: ignore[union-attr]


@pytest.mark.parametrize("door", [0, 1], ids=["https", "grpcs"])
def test_mutual_tls_needs_a_client_certificate_from_the_trusted_ca(
    mtls_server: BerthServer, pki: Pki, door: int
) -> None:
    url = _urls(mtls_server)[door]
    rows, labels = _expected()
    good = berth.Client(url, ca_file=str(pki.ca), cert=(str(pki.client_cert), str(pki.client_key)))
    with good:
        assert good.predict(MODEL, rows).labels.tolist() == labels.tolist()  # type: ignore[union-attr]
    for cert in (None, (str(pki.impostor_cert), str(pki.impostor_key))):
        with pytest.raises(berth.BerthError), berth.Client(url, ca_file=str(pki.ca), cert=cert, retries=0) as bad:
            bad.predict(MODEL, rows)


@pytest.mark.parametrize("door", [0, 1], ids=["https", "grpcs"])
def test_berth_cert_file_and_key_file_are_the_default_client_certificate(
    mtls_server: BerthServer, pki: Pki, door: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variables the C++ `berth` command line reads too."""
    monkeypatch.setenv("BERTH_CERT_FILE", str(pki.client_cert))
    monkeypatch.setenv("BERTH_KEY_FILE", str(pki.client_key))
    rows, labels = _expected()
    with berth.Client(_urls(mtls_server)[door], ca_file=str(pki.ca)) as client:
        assert client.predict(MODEL, rows).labels.tolist() == labels.tolist()  # type: ignore[union-attr]
    # They are left alone for a plaintext URL, and a key needs its certificate.
    berth.Client("http://localhost:1").close()
    monkeypatch.delenv("BERTH_CERT_FILE")
    with pytest.raises(berth.BerthError, match=r"\$BERTH_KEY_FILE goes with \$BERTH_CERT_FILE"):
        berth.Client(_urls(mtls_server)[door], ca_file=str(pki.ca))


def test_async_client_over_mutual_tls(mtls_server: BerthServer, pki: Pki) -> None:
    rows, labels = _expected()
    url = _urls(mtls_server)[0]

    async def predict(cert: tuple[str, str]) -> list[int]:
        async with berth.AsyncClient(url, ca_file=str(pki.ca), cert=cert, retries=0) as client:
            return (await client.predict(MODEL, rows)).labels.tolist()  # type: ignore[union-attr]

    assert asyncio.run(predict((str(pki.client_cert), str(pki.client_key)))) == labels.tolist()
    with pytest.raises(berth.BerthError):
        asyncio.run(predict((str(pki.impostor_cert), str(pki.impostor_key))))


def test_tls_options_need_a_tls_url_and_readable_files(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(berth.BerthError, match="is not TLS"):
        berth.Client("http://localhost:1", ca_file=str(pki.ca))
    with pytest.raises(berth.BerthError, match="is not TLS"):
        berth.Client("grpc://localhost:1", cert=str(pki.client_cert))
    with pytest.raises(berth.BerthError, match="cannot read the CA file"):
        berth.Client("https://localhost:1", ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(berth.BerthError, match="always checks"):
        berth.Client("grpcs://localhost:1", verify=False)


def _evaluate(server: BerthServer, holdout: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("BERTH_CA_FILE", None)
    command = [sys.executable, "-m", "berth.cli", "evaluate", "--url", _urls(server)[0], MODEL,
               "--data", str(holdout), "--target", "target", *flags]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)


def test_berth_py_evaluate_over_https(mtls_server: BerthServer, pki: Pki, tmp_path: Path) -> None:
    X, y = iris()
    holdout = write_csv(tmp_path / "holdout.csv", X, y)
    done = _evaluate(mtls_server, holdout, "--ca-file", str(pki.ca), "--cert", str(pki.client_cert),
                     "--key", str(pki.client_key))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{MODEL} version 1 (classification) on 150 rows" in done.stdout
    assert "accuracy: 0.9" in done.stdout
    refused = _evaluate(mtls_server, holdout, "--ca-file", str(pki.ca))
    assert refused.returncode == 2
    assert "berth-py: error: TLS with the Berth server" in refused.stderr
