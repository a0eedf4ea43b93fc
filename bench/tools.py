"""Find or install what a benchmark run needs, idempotently.

- Debian packages (wrk, nginx) with apt-get, when missing and running as root.
- The peer servers in a venv outside the repository, from bench/requirements-peers.txt.
- ghz, the gRPC load generator, with `go install` into the cache's bin/.

Everything installed goes under the cache directory ($BERTH_BENCH_CACHE,
default ~/.cache/berth); nothing is written into the repository.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

BENCH_DIR: Final = Path(__file__).resolve().parent
PEER_REQUIREMENTS: Final = BENCH_DIR / "requirements-peers.txt"
GHZ_MODULE: Final = "github.com/bojand/ghz/cmd/ghz"
GHZ_VERSION: Final = "v0.121.0"
_INSTALL_TIMEOUT_S: Final = 1200


class ToolUnavailable(RuntimeError):
    """A tool cannot be had here; the message says why."""


def cache_dir() -> Path:
    path = Path(os.environ.get("BERTH_BENCH_CACHE", Path.home() / ".cache" / "berth"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _run(command: Sequence[str], *, timeout_s: float, env: dict[str, str] | None = None) -> None:
    """Run an install step; ToolUnavailable with the end of its output if it fails."""
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        raise ToolUnavailable(f"`{' '.join(command)}` timed out after {timeout_s:.0f} s") from None
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise ToolUnavailable(f"`{' '.join(command)}` failed with code {result.returncode}:\n{tail}")


def ensure_debian_binary(binary: str, package: str, *, install: bool) -> Path:
    """The path of `binary`, installing Debian package `package` first if it is missing."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if found:
        return Path(found)
    if not install:
        raise ToolUnavailable(f"{binary} is not installed (apt-get install {package}); --no-install given")
    if os.geteuid() != 0:
        raise ToolUnavailable(f"{binary} is not installed and this is not root: sudo apt-get install {package}")
    log(f"installing Debian package {package}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-q"], timeout_s=_INSTALL_TIMEOUT_S, env=env)
    # --no-install-recommends; policy-rc.d or a missing init keeps a service from starting.
    _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", package], timeout_s=_INSTALL_TIMEOUT_S, env=env)
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if not found:
        raise ToolUnavailable(f"installed {package} but found no {binary}")
    return Path(found)


def ensure_peer_venv(*, install: bool) -> Path:
    """The Python of the peer venv, (re)installed when requirements-peers.txt changed."""
    venv = cache_dir() / "bench-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".requirements-sha256"
    digest = hashlib.sha256(PEER_REQUIREMENTS.read_bytes()).hexdigest()
    if python.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return python
    if not install:
        raise ToolUnavailable(f"the peer venv {venv} is missing or stale; --no-install given")
    log(f"installing the peer servers into {venv} (a few minutes, once)")
    if not python.is_file():
        # The same interpreter as the harness: the peers need CPython <= 3.12 (mlserver).
        _run([sys.executable, "-m", "venv", str(venv)], timeout_s=300)
    _run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(PEER_REQUIREMENTS)],
        timeout_s=_INSTALL_TIMEOUT_S,
    )
    stamp.write_text(digest + "\n")
    return python


def ensure_ghz(*, install: bool) -> Path:
    """ghz at GHZ_VERSION, built with `go install` through the Go module proxy on first use."""
    target = cache_dir() / "bin" / f"ghz-{GHZ_VERSION}"
    if target.is_file():
        return target
    if not install:
        raise ToolUnavailable("ghz is not installed; --no-install given")
    go = shutil.which("go")
    if not go:
        raise ToolUnavailable("ghz needs Go to install (go install) and no `go` is on PATH")
    log(f"installing ghz {GHZ_VERSION} with go install (about a minute, once)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as gobin:
        _run([go, "install", f"{GHZ_MODULE}@{GHZ_VERSION}"], timeout_s=_INSTALL_TIMEOUT_S, env={"GOBIN": gobin})
        shutil.move(str(Path(gobin) / "ghz"), target)
    return target


def command_output(command: Sequence[str]) -> str:
    """Stdout and stderr of a short command (a version query), or '' if it cannot run."""
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (result.stdout + result.stderr).strip()
