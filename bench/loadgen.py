"""Closed-loop load: wrk for REST, ghz for gRPC, both pinned to the client core.

Each connection sends its next request as soon as the previous answer has
arrived, so concurrency c means c requests in flight. One load-generator
thread: the client has one core, and a second thread would only take turns
with the first on it.
"""

from __future__ import annotations

import json
import resource
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

from processes import pinned

BENCH_DIR: Final = Path(__file__).resolve().parent
WRK_SCRIPT: Final = BENCH_DIR / "wrk_post.lua"
_RESULT_PREFIX: Final = "BENCH_RESULT "
_REQUEST_TIMEOUT_S: Final = 5
# Beyond the requested duration: start-up, connection set-up, the final report.
_SLACK_S: Final = 30


class LoadError(RuntimeError):
    """The load generator failed or reported nothing."""


@dataclass(frozen=True)
class LoadResult:
    """One measured run against one target at one concurrency."""

    concurrency: int
    duration_s: float
    requests: int  # completed with a success status
    errors: int  # connection errors, timeouts and non-success statuses
    p50_us: float
    p99_us: float
    server_cpu_s: float  # CPU time of the server's process tree during the run
    client_cpu_s: float  # CPU time of the load generator

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def server_cpu_us_per_request(self) -> float:
        return 1e6 * self.server_cpu_s / self.requests if self.requests else float("nan")

    @property
    def client_cpu_share(self) -> float:
        """Fraction of the client core the load generator used; near 1.0 means it was the bottleneck."""
        return self.client_cpu_s / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "errors": self.errors,
            "rps": self.rps,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "server_cpu_us_per_request": self.server_cpu_us_per_request,
            "client_cpu_share": self.client_cpu_share,
        }


@dataclass(frozen=True)
class _Raw:
    duration_s: float
    requests: int
    errors: int
    p50_us: float
    p99_us: float


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measure(
    command: list[str],
    duration_s: float,
    parse: Callable[[str], _Raw],
    server_cpu: Callable[[], float],
    concurrency: int,
) -> LoadResult:
    """Run the load generator once, with the CPU time of both sides around it."""
    client_before, server_before = _children_cpu_s(), server_cpu()
    try:
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=duration_s + _SLACK_S
        )
    except subprocess.TimeoutExpired:
        raise LoadError(f"`{' '.join(command)}` did not finish within {duration_s + _SLACK_S:.0f} s") from None
    server_after, client_after = server_cpu(), _children_cpu_s()
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-2000:]
        raise LoadError(f"`{' '.join(command)}` failed with code {result.returncode}:\n{output}")
    raw = parse(result.stdout)
    return LoadResult(
        concurrency=concurrency,
        duration_s=raw.duration_s,
        requests=raw.requests,
        errors=raw.errors,
        p50_us=raw.p50_us,
        p99_us=raw.p99_us,
        server_cpu_s=server_after - server_before,
        client_cpu_s=client_after - client_before,
    )


# --- wrk -------------------------------------------------------------------------


def _parse_wrk(stdout: str) -> _Raw:
    lines = [line for line in stdout.splitlines() if line.startswith(_RESULT_PREFIX)]
    if not lines:
        raise LoadError(f"wrk printed no result line:\n{stdout[-2000:]}")
    report = json.loads(lines[-1][len(_RESULT_PREFIX) :])
    errors = report["errors"]
    # wrk counts non-2xx/3xx answers in `requests` too, and separately as status errors.
    failed = errors["status"]
    return _Raw(
        duration_s=report["duration_us"] / 1e6,
        requests=report["requests"] - failed,
        errors=failed + errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        p50_us=float(report["latency_us"]["p50"]),
        p99_us=float(report["latency_us"]["p99"]),
    )


def run_wrk(
    wrk: Path,
    url: str,
    body: Path,
    *,
    concurrency: int,
    duration_s: float,
    core: int,
    server_cpu: Callable[[], float],
    json_header_bytes: int | None = None,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """POST `body` to `url` with `concurrency` connections for `duration_s` seconds.

    With `json_header_bytes` the body is the binary tensor extension's: that
    many bytes of JSON, then raw tensor data (Inference-Header-Content-Length).
    `headers` go with every request (wrk_post.lua reads them from BENCH_HEADERS).
    """
    header = [] if json_header_bytes is None else [f"BENCH_HEADER_LENGTH={json_header_bytes}"]
    command = pinned(
        [
            "env", f"BENCH_BODY_FILE={body}", f"BENCH_HEADERS={json.dumps(headers or {})}", *header,
            str(wrk), "-t1", f"-c{concurrency}", f"-d{duration_s:g}s",
            f"--timeout={_REQUEST_TIMEOUT_S}s", "-s", str(WRK_SCRIPT), url,
        ],
        core,
    )  # fmt: skip
    return _measure(command, duration_s, _parse_wrk, server_cpu, concurrency)


# --- ghz -------------------------------------------------------------------------


GRPC_CALL: Final = "inference.GRPCInferenceService.ModelInfer"


# How ghz reports the requests still in flight when --duration runs out and it
# closes its connections (bojand/ghz#370): not the server's failures.
_GHZ_CUT_OFF: Final = ("use of closed network connection", "the client connection is closing")


def _parse_ghz(stdout: str, concurrency: int) -> _Raw:
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        raise LoadError(f"ghz printed no JSON report:\n{stdout[-2000:]}") from None
    statuses: dict[str, int] = report.get("statusCodeDistribution") or {}
    ok = statuses.get("OK", 0)
    error_messages: dict[str, int] = report.get("errorDistribution") or {}
    cut_off = sum(n for message, n in error_messages.items() if any(s in message for s in _GHZ_CUT_OFF))
    failed = sum(statuses.values()) - ok
    if cut_off <= concurrency:  # at most one per worker can be in flight at the deadline
        failed -= cut_off
    percentiles = {int(entry["percentage"]): entry["latency"] for entry in report.get("latencyDistribution") or []}
    if 50 not in percentiles or 99 not in percentiles:
        raise LoadError(f"ghz report has no p50/p99 (statuses {statuses}, errors {error_messages})")
    return _Raw(
        duration_s=report["total"] / 1e9,
        requests=ok,
        errors=failed,
        p50_us=percentiles[50] / 1e3,
        p99_us=percentiles[99] / 1e3,
    )


@dataclass(frozen=True)
class GrpcCall:
    """What a gRPC load generator sends: ModelInfer with `request` to `address`.

    `metadata` goes with every call; with `ca_file` the connection is TLS, verified against it.
    """

    address: str
    request: dict[str, Any]
    metadata: dict[str, str] = field(default_factory=dict)
    ca_file: Path | None = None


def run_ghz(
    ghz: Path,
    proto: Path,
    call: GrpcCall,
    *,
    concurrency: int,
    duration_s: float,
    core: int,
    server_cpu: Callable[[], float],
    import_paths: tuple[Path, ...] = (),
) -> LoadResult:
    """`call` from `concurrency` ghz workers, one connection each, for `duration_s`.

    `import_paths` are where the proto's imports are found, besides its own folder.
    """
    transport = ["--cacert", str(call.ca_file)] if call.ca_file is not None else ["--insecure"]
    extra = ["--metadata", json.dumps(call.metadata)] if call.metadata else []
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="ghz-request-") as data:
        json.dump(call.request, data)
        data.flush()
        command = pinned(
            [
                str(ghz), *transport, *extra,
                "--proto", str(proto), "--import-paths", ",".join(str(p) for p in (proto.parent, *import_paths)),
                "--call", GRPC_CALL, "--data-file", data.name,
                "--concurrency", str(concurrency), "--connections", str(concurrency),
                "--duration", f"{duration_s:g}s", "--timeout", f"{_REQUEST_TIMEOUT_S}s",
                "--cpus", "1", "--format", "json",
                call.address,
            ],
            core,
        )  # fmt: skip
        return _measure(command, duration_s, partial(_parse_ghz, concurrency=concurrency), server_cpu, concurrency)


# --- bench/grpc_load.cc --------------------------------------------------------------


def _parse_grpc_load(stdout: str) -> _Raw:
    try:
        report = json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise LoadError(f"grpc_load printed no JSON line:\n{stdout[-2000:]}") from None
    return _Raw(
        duration_s=report["seconds"],
        requests=report["requests"],
        errors=report["errors"],
        p50_us=report["latency_us"]["p50"],
        p99_us=report["latency_us"]["p99"],
    )


def run_grpc_load(
    binary: Path, call: GrpcCall, *, concurrency: int, duration_s: float, core: int, server_cpu: Callable[[], float]
) -> LoadResult:
    """`call` from `concurrency` workers, one connection each, through gRPC C++ (bench/grpc_load.cc)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="grpc-load-request-") as data:
        json.dump(call.request, data)
        data.flush()
        command = [str(binary), "--address", call.address, "--request", data.name,
                   "--concurrency", str(concurrency), "--duration", f"{duration_s:g}",
                   "--timeout", f"{_REQUEST_TIMEOUT_S}"]  # fmt: skip
        if call.ca_file is not None:
            command += ["--ca-file", str(call.ca_file)]
        for key, value in call.metadata.items():
            command += ["--metadata", f"{key}={value}"]
        return _measure(pinned(command, core), duration_s, _parse_grpc_load, server_cpu, concurrency)
