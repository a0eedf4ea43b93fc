"""The servers compared: how each is started, when it is ready, and what it exposes.

A peer starts one server process (pinned to the server core) and returns its
targets: one per protocol front end to load. Each server is started only
when its turn comes and stopped before the next, so the server core never
runs two of them at once.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Final, Literal

import bulk
import scaling
import yaml
from model import BenchModel
from processes import HOST, ManagedProcess, StartupError, free_ports, port_open, start_process
from tools import command_output
from verify import Answer

BENCH_DIR: Final = Path(__file__).resolve().parent
PEERS_DIR: Final = BENCH_DIR / "peers"
# One thread for every numeric library a Python peer may load.
THREAD_ENV: Final = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}
BERTH_STARTUP_TIMEOUT_S: Final = 30.0
PYTHON_STARTUP_TIMEOUT_S: Final = 90.0
TRITON_STARTUP_TIMEOUT_S: Final = 180.0
GRPC_STARTUP_TIMEOUT_S: Final = 5.0

Protocol = Literal["http", "grpc"]


class PeerUnavailable(RuntimeError):
    """A peer cannot run here (a tool or package is missing); the message says why."""


@dataclass(frozen=True)
class Target:
    """One front end to load: a REST URL (wrk) or a gRPC address (ghz)."""

    name: str  # the row of the results table
    protocol: Protocol
    address: str  # http://host:port/path, or host:port for gRPC
    server: ManagedProcess
    setup: str  # how the server runs, for the method notes
    # A REST target with a body of its own (bench/bulk.py) instead of the
    # one-row body: its file, its JSON part's length under the binary
    # extension, and how to check its answer.
    body: Path | None = None
    json_header_bytes: int | None = None
    verify: Callable[[], Answer] | None = None
    # Sent with every request (e.g. {"Authorization": "Bearer KEY"}); gRPC as metadata, lower-cased.
    headers: dict[str, str] = field(default_factory=dict)
    # With TLS: the CA that signed the server's certificate (the address is https://).
    ca_file: Path | None = None
    # A gRPC target's load generator: ghz (grpc-go), or bench/grpc_load.cc (gRPC C++), which costs
    # less per call, so that the server and not the client is the limit.
    grpc_client: Literal["ghz", "cpp"] = "ghz"


@dataclass(frozen=True)
class Skipped:
    """A target that could not be measured, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class PeerContext:
    """What a peer needs to start."""

    model: BenchModel
    workdir: Path
    core: int
    berth_binary: Path
    peer_python: Path | None  # the peer venv's Python
    peer_python_problem: str  # why peer_python is None
    nginx: Path | None
    nginx_problem: str

    def require_peer_python(self) -> Path:
        if self.peer_python is None:
            raise PeerUnavailable(f"peer venv unavailable: {self.peer_python_problem}")
        return self.peer_python

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def infer_path(self) -> str:
        return f"/v2/models/{self.model.name}/infer"

    def infer_url(self, port: int) -> str:
        return f"http://{HOST}:{port}{self.infer_path()}"


StartFunction = Callable[[PeerContext, ExitStack], list[Target | Skipped]]


@dataclass(frozen=True)
class Peer:
    """A server under test; `key` selects it with --only."""

    key: str
    target_names: tuple[str, ...]
    start: StartFunction


def http_ok(url: str, ca_file: Path | None = None) -> bool:
    """True if GET `url` answers 200 (over TLS verified against `ca_file`, if given)."""
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file is not None else None
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        return False


# --- Berth -----------------------------------------------------------------------


def _start_berth_process(
    ctx: PeerContext,
    stack: ExitStack,
    grpc_port: int,
    repository: Path | None = None,
    extra_args: Sequence[str] = (),
    name: str = "berth",
    ca_file: Path | None = None,
    env: dict[str, str] | None = None,
    cores: str | None = None,
) -> tuple[ManagedProcess, int, str]:
    """A Berth server on the server core (or on `cores`, a taskset cpu list); its process, port and setup."""
    (http_port,) = free_ports(1)
    threads = ["--http-threads", "1"]
    if "--grpc-threads" in command_output([str(ctx.berth_binary), "--help"]):
        threads += ["--grpc-threads", "1"]
    command = [
        str(ctx.berth_binary), "serve",
        "--model-repository", str(repository or ctx.model.repository),
        "--host", HOST,
        "--http-port", str(http_port),
        "--grpc-port", str(grpc_port),
        *threads,
        "--log-level", "info",
        *extra_args,
    ]  # fmt: skip
    core = cores if cores is not None else ctx.core
    server = start_process(stack, name, command, log_path=ctx.log_path(name), core=core, cwd=ctx.workdir, env=env)
    scheme = "https" if ca_file is not None else "http"
    server.wait_until(
        lambda: http_ok(f"{scheme}://{HOST}:{http_port}/v2/health/ready", ca_file),
        timeout_s=BERTH_STARTUP_TIMEOUT_S,
        what="readiness (GET /v2/health/ready)",
    )
    setup = f"`berth serve {' '.join(threads)}`, model config onnxruntime intra_op_threads 1, inter_op_threads 1"
    return server, http_port, setup


# The alias that splits traffic 50/50 over versions 1 and 2 (the same artifact).
SPLIT_ALIAS: Final = "ab"
BERTH_REST_ROWS: Final = ("Berth REST", "Berth REST by alias", "Berth REST by split")


def _registry_post(http_port: int, path: str, body: dict[str, object]) -> str:
    """POST `body` to the registry admin API; empty on 200, else what went wrong."""
    request = urllib.request.Request(
        f"http://{HOST}:{http_port}/v2/registry/models/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return "" if response.status == 200 else f"POST {path}: HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"POST {path}: HTTP {error.code} {error.read(500).decode(errors='replace')}"
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        return f"POST {path}: {error}"


SPLIT_CHECK_REQUESTS: Final = 40  # all 40 from one version of a 50/50 split: odds 2 in 2**40


def _check_split(url: str, body: bytes) -> str:
    """Empty if requests to `url` are answered by both versions 1 and 2 (Berth-Model-Version), else why not."""
    answered: set[str] = set()
    for _ in range(SPLIT_CHECK_REQUESTS):
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answered.add(response.headers.get("Berth-Model-Version", "?"))
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            return f"POST {url}: {error}"
    if answered != {"1", "2"}:
        return f"{SPLIT_CHECK_REQUESTS} requests were answered by versions {sorted(answered)}, not by both 1 and 2"
    return ""


def _berth_rest_targets(ctx: PeerContext, server: ManagedProcess, http_port: int, setup: str) -> list[Target | Skipped]:
    """Infer by version number, by alias (production -> 1) and by a 50/50 split over versions 1 and 2.

    All three run on the one server process, one after the other, so their
    ratio is the cost of resolving an alias or drawing a split on the hot path.
    """
    base = f"http://{HOST}:{http_port}/v2/models/{ctx.model.name}/versions"
    by_number = Target(BERTH_REST_ROWS[0], "http", f"{base}/1/infer", server, f"{setup}; POST .../versions/1/infer")
    model = ctx.model.name
    problem = _registry_post(http_port, f"{model}/promote", {"version": 1, "alias": "production"})
    alias: Target | Skipped = (
        Skipped(BERTH_REST_ROWS[1], f"could not promote version 1: {problem}")
        if problem
        else Target(BERTH_REST_ROWS[1], "http", f"{base}/production/infer", server,
                    f"{setup}; POST .../versions/production/infer, production -> version 1")
    )  # fmt: skip
    problem = _registry_post(http_port, f"{model}/split", {"versions": {"1": 50, "2": 50}, "alias": SPLIT_ALIAS})
    if not problem:
        problem = _check_split(f"{base}/{SPLIT_ALIAS}/infer", ctx.model.rest_body)
    split: Target | Skipped = (
        Skipped(BERTH_REST_ROWS[2], f"could not split over versions 1 and 2: {problem}")
        if problem
        else Target(BERTH_REST_ROWS[2], "http", f"{base}/{SPLIT_ALIAS}/infer", server,
                    f"{setup}; POST .../versions/{SPLIT_ALIAS}/infer, alias {SPLIT_ALIAS} split 50/50 over "
                    "versions 1 and 2 (the same artifact)")
    )  # fmt: skip
    return [by_number, alias, split]


def _berth_bulk_targets(
    ctx: PeerContext, stack: ExitStack, server: ManagedProcess, http_port: int, setup: str
) -> list[Target | Skipped]:
    """The 1,000-row FP32 request as JSON, binary and through system shared memory, on the same server."""
    url = f"http://{HOST}:{http_port}/v2/models/{ctx.model.bulk_name}/infer"
    bodies = bulk.write_bodies(ctx.model, ctx.workdir)
    problem, out_region = bulk.register_regions(stack, http_port, ctx.model)
    notes = (
        "the data in the JSON body",
        "binary tensor extension, inputs and outputs raw (binary_data_output)",
        "input and outputs in system shared memory regions registered once; the body names them",
    )
    targets: list[Target | Skipped] = []
    for name, body, note in zip(bulk.ROWS, bodies, notes, strict=True):
        if problem and body is bodies[2]:
            targets.append(Skipped(name, f"could not register the shared-memory regions: {problem}"))
            continue
        region = out_region if body is bodies[2] else None
        targets.append(Target(
            name, "http", url, server, f"{setup}; POST .../{ctx.model.bulk_name}/infer, {bulk.BULK_ROWS_TEXT}: {note}",
            body=body.path, json_header_bytes=body.json_header_bytes,
            verify=partial(bulk.verify_bulk, url, body, ctx.model, region),
        ))  # fmt: skip
    return targets


# The plaintext gRPC row again, loaded by bench/grpc_load.cc (gRPC C++) instead of ghz: ghz keeps its
# core busy before the server is, and sends a PING on every response.
BERTH_GRPC_CPP_ROW: Final = "Berth gRPC, C++ client"
GRPC_CPP_CLIENT: Final = "loaded by bench/grpc_load.cc (gRPC C++, one connection per worker) instead of ghz"


def start_berth(ctx: PeerContext, stack: ExitStack) -> list[Target | Skipped]:
    """Berth with REST and, if this build has it, gRPC; one process for both."""
    if not ctx.berth_binary.is_file():
        raise PeerUnavailable(f"no Berth binary at {ctx.berth_binary}: run `make build`")
    (grpc_port,) = free_ports(1)
    grpc_problem = ""
    try:
        server, http_port, setup = _start_berth_process(ctx, stack, grpc_port)
    except StartupError as error:
        # A build without gRPC may refuse a gRPC port: measure REST alone.
        grpc_problem = f"Berth did not start with --grpc-port: {str(error).splitlines()[0]}"
        server, http_port, setup = _start_berth_process(ctx, stack, -1)
        grpc_port = -1
    targets = [*_berth_rest_targets(ctx, server, http_port, setup),
               *_berth_bulk_targets(ctx, stack, server, http_port, setup)]  # fmt: skip
    if grpc_port > 0:
        try:
            server.wait_until(
                lambda: "gRPC front end listening" in server.log_tail(200) or port_open(grpc_port),
                timeout_s=GRPC_STARTUP_TIMEOUT_S,
                what="gRPC front end (log line or open port)",
            )
        except StartupError:
            grpc_problem = "this build/berth has no gRPC front end (no 'gRPC front end listening', port closed)"
        else:
            address = f"{HOST}:{grpc_port}"
            return [*targets, Target("Berth gRPC", "grpc", address, server, setup),
                    Target(BERTH_GRPC_CPP_ROW, "grpc", address, server, setup + "; " + GRPC_CPP_CLIENT,
                           grpc_client="cpp")]  # fmt: skip
    return [*targets, Skipped("Berth gRPC", grpc_problem), Skipped(BERTH_GRPC_CPP_ROW, grpc_problem)]


# Drift monitoring (docs/monitoring.md) off and on, side by side on one
# server: the same model three times, with monitoring.sample_rate 0, the
# default 0.1, and 1 (every request's tensors read: the worst case).
BERTH_MONITORING_ROWS: Final = (
    "Berth REST, monitoring off",
    "Berth REST, monitoring on (default sample_rate 0.1)",
    "Berth REST, monitoring on (sample_rate 1)",
)
MONITORING_RATES: Final = (("", 0.0), ("_sampled", 0.1), ("_monitored", 1.0))


def _monitoring_repository(ctx: PeerContext) -> Path:
    """The bench model once per MONITORING_RATES entry, named with its suffix."""
    root = ctx.workdir / "monitoring_repository"
    shutil.rmtree(root, ignore_errors=True)
    source = ctx.model.repository / ctx.model.name
    for suffix, rate in MONITORING_RATES:
        name = ctx.model.name + suffix
        shutil.copytree(source, root / name)
        config_path = root / name / "config.yaml"
        config = yaml.safe_load(config_path.read_text())
        config["name"] = name
        config["monitoring"] = {"sample_rate": rate}
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def start_berth_monitoring(ctx: PeerContext, stack: ExitStack) -> list[Target | Skipped]:
    """Berth REST on one model with drift monitoring off, at its default rate, and on every request."""
    if not ctx.berth_binary.is_file():
        raise PeerUnavailable(f"no Berth binary at {ctx.berth_binary}: run `make build`")
    server, http_port, setup = _start_berth_process(ctx, stack, -1, _monitoring_repository(ctx))
    base = f"http://{HOST}:{http_port}/v2/models"
    return [
        Target(row, "http", f"{base}/{ctx.model.name}{suffix}/versions/1/infer", server,
               f"{setup}; monitoring.sample_rate {rate:g}" + (" (window of 10,000 rows, no baseline)" if rate else ""))
        for row, (suffix, rate) in zip(BERTH_MONITORING_ROWS, MONITORING_RATES, strict=True)
    ]  # fmt: skip


# The Python runtime (docs/python.md): the bench model's pickle served by
# `backend: python` worker processes, beside the ONNX rows and MLServer (the
# same pickle) of the same run.
BERTH_PYTHON_ROWS: Final = ("Berth REST, Python runtime", "Berth gRPC, Python runtime")


def _python_runtime_repository(ctx: PeerContext) -> Path:
    """The bench model as `backend: python` over its pickle, with the ONNX version's declared signature."""
    root = ctx.workdir / "python_runtime_repository"
    shutil.rmtree(root, ignore_errors=True)
    version = root / ctx.model.name / "1"
    version.mkdir(parents=True)
    shutil.copy(ctx.model.pickle_path, version / "model.pkl")
    config = yaml.safe_load((ctx.model.repository / ctx.model.name / "config.yaml").read_text())
    for key in ("onnxruntime", "version_policy"):
        config.pop(key, None)
    config.update({"backend": "python", "trust": True, "python": {"model_file": "model.pkl"}})
    (root / ctx.model.name / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def start_berth_python(ctx: PeerContext, stack: ExitStack) -> list[Target | Skipped]:
    """Berth REST and gRPC on the pickle through one Python worker (instance_count 1)."""
    if not ctx.berth_binary.is_file():
        raise PeerUnavailable(f"no Berth binary at {ctx.berth_binary}: run `make build`")
    (grpc_port,) = free_ports(1)
    # The harness's interpreter (scikit-learn installed) runs the worker, with this tree's berth package.
    env = {**THREAD_ENV, "PYTHONPATH": str(BENCH_DIR.parent / "python" / "src")}
    server, http_port, setup = _start_berth_process(
        ctx, stack, grpc_port, _python_runtime_repository(ctx), ["--python", sys.executable], "berth-python", env=env
    )
    setup = f"{setup.split(', model config')[0]}; backend python, one worker (instance_count 1), scikit-learn predict + predict_proba"
    server.wait_until(lambda: port_open(grpc_port), timeout_s=GRPC_STARTUP_TIMEOUT_S, what="gRPC port")
    return [
        Target(BERTH_PYTHON_ROWS[0], "http", ctx.infer_url(http_port), server, setup),
        Target(BERTH_PYTHON_ROWS[1], "grpc", f"{HOST}:{grpc_port}", server, setup),
    ]


# --- Berth with API keys, and with TLS and API keys ------------------------------------


BERTH_SECURE_ROWS: Final = ("Berth REST auth", "Berth gRPC auth", "Berth REST TLS+auth", "Berth gRPC TLS+auth",
                             "Berth gRPC TLS+auth, C++ client")  # fmt: skip


def _openssl(directory: Path, *args: str) -> None:
    done = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PeerUnavailable(f"openssl {args[0]} failed: {done.stderr.strip()[:300]}")


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (P-256): (ca, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(directory, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-days", "2", "-subj", "/CN=bench-ca", "-keyout", "ca.key.pem", "-out", "ca.pem")  # fmt: skip
    _openssl(directory, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-subj", "/CN=localhost", "-keyout", "server.key.pem", "-out", "server.csr")  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(directory, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key.pem",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem")  # fmt: skip
    return directory / "ca.pem", directory / "server.pem", directory / "server.key.pem"


def _create_key(ctx: PeerContext, store: Path) -> str:
    """An infer key in `store`, made with `berth keys create`; the key is its last line."""
    done = subprocess.run(
        [str(ctx.berth_binary), "keys", "create", "--registry", f"sqlite:{store}", "--name", "bench",
         "--scope", "infer"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise PeerUnavailable(f"this build/berth cannot make API keys: {done.stderr.strip()[:300]}")
    return done.stdout.strip().splitlines()[-1]


# The access log (docs/monitoring.md#logs) on: the `berth` row's REST load
# with one JSON line per request written to a file.
BERTH_ACCESS_LOG_ROWS: Final = ("Berth REST, access log on",)


def start_berth_access_log(ctx: PeerContext, stack: ExitStack) -> list[Target | Skipped]:
    """Berth as in the `berth` row, plus --access-log FILE; compare with its "Berth REST" row."""
    if not ctx.berth_binary.is_file():
        raise PeerUnavailable(f"no Berth binary at {ctx.berth_binary}: run `make build`")
    if "--access-log" not in command_output([str(ctx.berth_binary), "--help"]):
        raise PeerUnavailable("this build/berth has no --access-log")
    access_log = ctx.workdir / "logs" / "access.log"
    access_log.parent.mkdir(parents=True, exist_ok=True)
    server, http_port, setup = _start_berth_process(
        ctx, stack, -1, extra_args=["--access-log", str(access_log)], name="berth-access-log"
    )
    url = f"http://{HOST}:{http_port}/v2/models/{ctx.model.name}/versions/1/infer"
    setup += "; --access-log FILE; POST .../versions/1/infer"
    return [Target(BERTH_ACCESS_LOG_ROWS[0], "http", url, server, setup)]


# The payload log (docs/monitoring.md#logs) on: the `berth` row's REST load
# with each request's and response's CloudEvents written to a file, for every
# request (--payload-log-rate 1, the default) and for a tenth of them.
PAYLOAD_LOG_RATES: Final = ("1", "0.1")
BERTH_PAYLOAD_LOG_ROWS: Final = (
    "Berth REST, payload log on (rate 1, the default)",
    "Berth REST, payload log on (rate 0.1)",
)


def start_berth_payload_log(ctx: PeerContext, stack: ExitStack) -> list[Target | Skipped]:
    """Berth as in the `berth` row, plus --payload-log FILE at each rate; compare with its "Berth REST" row."""
    if not ctx.berth_binary.is_file():
        raise PeerUnavailable(f"no Berth binary at {ctx.berth_binary}: run `make build`")
    if "--payload-log" not in command_output([str(ctx.berth_binary), "--help"]):
        raise PeerUnavailable("this build/berth has no --payload-log")
    targets: list[Target | Skipped] = []
    for row, rate in zip(BERTH_PAYLOAD_LOG_ROWS, PAYLOAD_LOG_RATES, strict=True):
        payload_log = ctx.workdir / "logs" / f"payload-{rate}.log"
        payload_log.parent.mkdir(parents=True, exist_ok=True)
        name = f"berth-payload-log-{rate}"
        args = ["--payload-log", str(payload_log), "--payload-log-rate", rate]
        server, http_port, setup = _start_berth_process(ctx, stack, -1, extra_args=args, name=name)
        url = f"http://{HOST}:{http_port}/v2/models/{ctx.model.name}/versions/1/infer"
        setup += f"; --payload-log FILE --payload-log-rate {rate}; POST .../versions/1/infer"
        targets.append(Target(row, "http", url, server, setup))
    return targets


def start_berth_secure(ctx: PeerContext, stack: ExitStack) -> list[Target | Skipped]:
    """Berth with --require-auth (an infer key on every request), plaintext and over TLS.

    Two processes on the same core, loaded one at a time: the rows sit beside
    the plaintext Berth rows of the same run, so their ratio is the cost of
    checking a key (and of TLS, keep-alive connections).
    """
    if not ctx.berth_binary.is_file():
        raise PeerUnavailable(f"no Berth binary at {ctx.berth_binary}: run `make build`")
    # A store of its own each start (bench/paired.py starts the peer again): key names are never reused.
    store = Path(tempfile.mkdtemp(prefix="auth-", dir=ctx.workdir)) / "registry.db"
    key = _create_key(ctx, store)
    headers = {"Authorization": f"Bearer {key}"}
    auth_args = ["--require-auth", "--registry", f"sqlite:{store}"]
    targets: list[Target | Skipped] = []
    for tls in (False, True):
        rows = BERTH_SECURE_ROWS[2:4] if tls else BERTH_SECURE_ROWS[:2]
        extra = list(auth_args)
        ca_file = None
        if tls:
            ca_file, cert, cert_key = _certificates(ctx.workdir / "tls")
            extra += ["--tls-cert", str(cert), "--tls-key", str(cert_key)]
        (grpc_port,) = free_ports(1)
        name = "berth-tls-auth" if tls else "berth-auth"
        server, http_port, setup = _start_berth_process(
            ctx, stack, grpc_port, extra_args=extra, name=name, ca_file=ca_file
        )
        setup += "; --require-auth, an infer key in every request" + ("; TLS (P-256 certificate)" if tls else "")
        scheme = "https" if tls else "http"
        url = f"{scheme}://{HOST}:{http_port}/v2/models/{ctx.model.name}/versions/1/infer"
        targets.append(Target(rows[0], "http", url, server, f"{setup}; POST .../versions/1/infer",
                              headers=headers, ca_file=ca_file))  # fmt: skip
        if not port_open(grpc_port):
            server.wait_until(lambda port=grpc_port: port_open(port), timeout_s=GRPC_STARTUP_TIMEOUT_S,
                              what="gRPC port")  # fmt: skip
        targets.append(Target(rows[1], "grpc", f"{HOST}:{grpc_port}", server, setup, headers=headers, ca_file=ca_file))
        if tls:
            targets.append(Target(BERTH_SECURE_ROWS[4], "grpc", f"{HOST}:{grpc_port}", server,
                                  f"{setup}; {GRPC_CPP_CLIENT}", headers=headers, ca_file=ca_file,
                                  grpc_client="cpp"))  # fmt: skip
    return targets


# --- Berth: throughput against instance count (bench/scaling.py) --------------------


def start_berth_scaling(ctx: PeerContext, stack: ExitStack) -> list[Target | Skipped]:
    """The MLP at instance_count 1, 2 and 4 (dynamic batching), one row per request, on the server core; and
    at 1 and 2 on a second server given every core, where a second instance can run on a second core."""
    if not ctx.berth_binary.is_file():
        raise PeerUnavailable(f"no Berth binary at {ctx.berth_binary}: run `make build`")
    try:
        model = scaling.prepare(ctx.workdir)
    except (ImportError, RuntimeError) as error:
        raise PeerUnavailable(f"cannot make the MLP: {error}") from None
    mlp = f"MLP {scaling.FEATURES}-{'-'.join(map(str, scaling.HIDDEN))}-{scaling.CLASSES}"
    targets: list[Target | Skipped] = []
    server, http_port, setup = _start_berth_process(ctx, stack, -1, model.repository, name="berth-scaling")
    for row, instances in zip(scaling.PINNED_ROWS, scaling.INSTANCES, strict=True):
        url = f"http://{HOST}:{http_port}/v2/models/{model.model_name(instances)}/versions/1/infer"
        note = f"{setup}; {mlp}, dynamic_batching (100 µs), instance_count {instances}, one row per request"
        targets.append(Target(row, "http", url, server, note, body=model.body,
                              verify=partial(scaling.verify, url, model.body)))  # fmt: skip
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return targets + [Skipped(row, "one core only: nothing to spread instances over") for row in scaling.SPREAD_ROWS]
    cpu_list = ",".join(map(str, cores))
    # Loaded after the pinned rows (one at a time), so the first server is idle meanwhile.
    server, http_port, setup = _start_berth_process(ctx, stack, -1, model.repository, name="berth-scaling-spread",
                                                    cores=cpu_list)  # fmt: skip
    for row, instances in zip(scaling.SPREAD_ROWS, scaling.SPREAD_INSTANCES, strict=True):
        url = f"http://{HOST}:{http_port}/v2/models/{model.model_name(instances)}/versions/1/infer"
        note = (f"{setup}; server on cores {cpu_list} (all of them: the load generator shares them), {mlp}, "
                f"dynamic_batching (100 µs), instance_count {instances}, one row per request")  # fmt: skip
        targets.append(Target(row, "http", url, server, note, body=model.body,
                              verify=partial(scaling.verify, url, model.body)))  # fmt: skip
    return targets


# --- FastAPI + scikit-learn ------------------------------------------------------


def start_fastapi(ctx: PeerContext, stack: ExitStack) -> list[Target | Skipped]:
    python = ctx.require_peer_python()
    (port,) = free_ports(1)
    command = [
        str(python), "-m", "uvicorn", "fastapi_app:app",
        "--app-dir", str(PEERS_DIR),
        "--host", HOST, "--port", str(port),
        "--workers", "1", "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = {**THREAD_ENV, "BENCH_MODEL_PICKLE": str(ctx.model.pickle_path), "BENCH_MODEL_NAME": ctx.model.name}
    server = start_process(
        stack, "fastapi", command, log_path=ctx.log_path("fastapi"), core=ctx.core, cwd=ctx.workdir, env=env
    )
    server.wait_until(
        lambda: http_ok(f"http://{HOST}:{port}/v2/health/ready"),
        timeout_s=PYTHON_STARTUP_TIMEOUT_S,
        what="readiness (GET /v2/health/ready)",
    )
    setup = "uvicorn, 1 worker, uvloop + httptools, `async def` handler, scikit-learn predict + predict_proba"
    return [Target("FastAPI + scikit-learn", "http", ctx.infer_url(port), server, setup)]


# --- MLServer ----------------------------------------------------------------------


def start_mlserver(ctx: PeerContext, stack: ExitStack) -> list[Target | Skipped]:
    python = ctx.require_peer_python()
    http_port, grpc_port, metrics_port = free_ports(3)
    root = ctx.workdir / "mlserver"
    model_dir = root / ctx.model.name
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model.pkl").write_bytes(ctx.model.pickle_path.read_bytes())
    settings = {
        "debug": False,
        "host": HOST,
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "metrics_endpoint": None,  # no metrics middleware: the peer at its leanest
        "parallel_workers": 0,  # infer in the server process, not a worker pool (one core)
        "metrics_dir": str(root / "metrics"),
    }
    model_settings = {
        "name": ctx.model.name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.pkl", "version": "1"},
    }
    (root / "settings.json").write_text(json.dumps(settings, indent=2))
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    command = [str(python.parent / "mlserver"), "start", str(root)]
    server = start_process(
        stack, "mlserver", command, log_path=ctx.log_path("mlserver"), core=ctx.core, cwd=ctx.workdir, env=THREAD_ENV
    )
    server.wait_until(
        lambda: http_ok(f"http://{HOST}:{http_port}/v2/models/{ctx.model.name}/ready"),
        timeout_s=PYTHON_STARTUP_TIMEOUT_S,
        what="model readiness (GET /v2/models/<model>/ready)",
    )
    setup = "mlserver-sklearn runtime, parallel_workers 0, metrics off, debug off; output `predict` only"
    return [
        Target("MLServer REST", "http", ctx.infer_url(http_port), server, setup),
        Target("MLServer gRPC", "grpc", f"{HOST}:{grpc_port}", server, setup),
    ]


# --- Triton (PyTriton) -------------------------------------------------------------


def start_triton(ctx: PeerContext, stack: ExitStack) -> list[Target | Skipped]:
    python = ctx.require_peer_python()
    http_port, grpc_port = free_ports(2)
    command = [
        str(python), str(PEERS_DIR / "pytriton_app.py"),
        "--pickle", str(ctx.model.pickle_path),
        "--model-name", ctx.model.name,
        "--http-port", str(http_port), "--grpc-port", str(grpc_port),
        "--http-threads", "1",
        "--workspace", str(ctx.workdir / "pytriton"),
    ]  # fmt: skip
    server = start_process(
        stack, "triton", command, log_path=ctx.log_path("triton"), core=ctx.core, cwd=ctx.workdir, env=THREAD_ENV
    )
    server.wait_until(
        lambda: http_ok(f"http://{HOST}:{http_port}/v2/models/{ctx.model.name}/ready"),
        timeout_s=TRITON_STARTUP_TIMEOUT_S,
        what="model readiness (GET /v2/models/<model>/ready)",
    )
    setup = (
        "tritonserver bundled with nvidia-pytriton, --http-thread-count 1, metrics off, dynamic batcher "
        "(PyTriton default, max_batch_size 64); model = scikit-learn in the PyTriton Python process"
    )
    return [
        Target("Triton REST (PyTriton)", "http", ctx.infer_url(http_port), server, setup),
        Target("Triton gRPC (PyTriton)", "grpc", f"{HOST}:{grpc_port}", server, setup),
    ]


# --- nginx (the HTTP floor) ----------------------------------------------------------


def nginx_config(template: str, *, prefix: Path, port: int, path: str, body: bytes) -> str:
    """The nginx.conf template with its @...@ fields filled in."""
    text = body.decode()
    if "$" in text:
        raise ValueError("the static body contains '$', which nginx would expand as a variable")
    quoted = text.replace("\\", "\\\\").replace("'", "\\'")
    return (
        template.replace("@PREFIX@", str(prefix))
        .replace("@PORT@", str(port))
        .replace("@PATH@", path)
        .replace("@BODY@", quoted)
    )


def start_nginx(ctx: PeerContext, stack: ExitStack) -> list[Target | Skipped]:
    if ctx.nginx is None:
        raise PeerUnavailable(f"nginx unavailable: {ctx.nginx_problem}")
    (port,) = free_ports(1)
    prefix = ctx.workdir / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    config = prefix / "nginx.conf"
    template = (PEERS_DIR / "nginx.conf").read_text()
    config.write_text(
        nginx_config(template, prefix=prefix, port=port, path=ctx.infer_path(), body=ctx.model.rest_response)
    )
    # -e: the start-up error log goes to the prefix too, not /var/log/nginx.
    command = [str(ctx.nginx), "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")]
    server = start_process(stack, "nginx", command, log_path=ctx.log_path("nginx"), core=ctx.core, cwd=ctx.workdir)
    server.wait_until(lambda: http_ok(ctx.infer_url(port)), timeout_s=10, what="an answer on its port")
    setup = "nginx, 1 worker, `return 200` with a fixed v2 JSON response (no model)"
    return [Target("nginx static (HTTP floor)", "http", ctx.infer_url(port), server, setup)]


PEERS: Final[Sequence[Peer]] = (
    Peer("berth", (*BERTH_REST_ROWS, *bulk.ROWS, "Berth gRPC", BERTH_GRPC_CPP_ROW), start_berth),
    Peer("berth-monitoring", BERTH_MONITORING_ROWS, start_berth_monitoring),
    Peer("berth-secure", BERTH_SECURE_ROWS, start_berth_secure),
    Peer("berth-python", BERTH_PYTHON_ROWS, start_berth_python),
    Peer("berth-access-log", BERTH_ACCESS_LOG_ROWS, start_berth_access_log),
    Peer("berth-payload-log", BERTH_PAYLOAD_LOG_ROWS, start_berth_payload_log),
    Peer("berth-scaling", scaling.ROWS, start_berth_scaling),
    Peer("fastapi", ("FastAPI + scikit-learn",), start_fastapi),
    Peer("mlserver", ("MLServer REST", "MLServer gRPC"), start_mlserver),
    Peer("triton", ("Triton REST (PyTriton)", "Triton gRPC (PyTriton)"), start_triton),
    Peer("nginx", ("nginx static (HTTP floor)",), start_nginx),
)
