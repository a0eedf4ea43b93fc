"""Test certificates from the openssl command line: CAs and the certificates they sign."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def new_ca(directory: Path, name: str) -> None:
    """A self-signed test CA: NAME.pem and NAME.key.pem in `directory`."""
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", f"{name}.key.pem", "-out", f"{name}.pem", cwd=directory,
    )  # fmt: skip


def issue(
    directory: Path, name: str, common_name: str, ca: str, *, server: bool, san: str = "DNS:localhost,IP:127.0.0.1"
) -> tuple[Path, Path]:
    """A certificate and key signed by CA `ca` (a server's names `san`)."""
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", f"/CN={common_name}", "-keyout", f"{name}.key.pem", "-out", f"{name}.csr", cwd=directory,
    )  # fmt: skip
    ext = directory / f"{name}.ext"
    usage = "serverAuth" if server else "clientAuth"
    san_line = f"subjectAltName={san}\n" if server else ""
    ext.write_text(f"{san_line}extendedKeyUsage={usage}\n")
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key.pem",
        "-CAcreateserial", "-days", "2", "-extfile", ext.name, "-out", f"{name}.pem", cwd=directory,
    )  # fmt: skip
    return directory / f"{name}.pem", directory / f"{name}.key.pem"
