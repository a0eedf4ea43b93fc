#!/usr/bin/env python3
"""Side-by-side benchmark of Berth and its peers, in one run (`make bench`).

One model (iris logistic regression, one row per request) served by:
  Berth REST and gRPC (and a 1,000-row request as JSON, binary and through system
  shared memory: bench/bulk.py); FastAPI + scikit-learn; MLServer REST and gRPC;
  Triton REST and gRPC (through PyTriton); nginx returning a fixed response
  (the HTTP floor); and ONNX Runtime in process, Python and C++ (the compute floor).

Each server runs alone, pinned to the server core (but for berth-scaling's
"all cores" rows, bench/scaling.py); the load generator (wrk for REST, ghz
for gRPC) is pinned to the client core. Every target must answer
the benchmark request correctly before it is loaded. Results go to
bench/results/<timestamp>.md (and .json), to stdout, and into the results
section of docs/benchmarks.md.

    .venv/bin/python bench/run.py                    # the full run, 10 s per measurement
    .venv/bin/python bench/run.py --duration 3 --warmup 1 --only berth nginx
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Final

import paired
from inprocess import FloorResult, FloorUnavailable, benchmark_library_version, cxx_floor, python_floor
from loadgen import GrpcCall, LoadError, LoadResult, run_ghz, run_grpc_load, run_wrk
from model import BenchModel, prepare
from processes import StartupError
from report import (
    ISSUE_FLOORS,
    RunReport,
    TargetReport,
    load_average,
    machine_info,
    render_document,
    render_results,
    update_docs,
)
from servers import PEERS, Peer, PeerContext, PeerUnavailable, Skipped, Target
from tools import (
    GHZ_VERSION,
    ToolUnavailable,
    command_output,
    ensure_debian_binary,
    ensure_ghz,
    ensure_peer_venv,
    log,
)
from verify import Answer, VerificationError, verify_grpc, verify_rest

BENCH_DIR: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = BENCH_DIR.parent
GRPC_PROTO: Final = REPO_ROOT / "src" / "server" / "grpc" / "grpc_service.proto"
GRPC_PROTO_ROOT: Final = REPO_ROOT / "src"  # its imports are named from here (registry/...)
FLOOR_KEY: Final = "ort"
PEER_PACKAGES: Final = (
    "fastapi",
    "uvicorn",
    "mlserver",
    "mlserver-sklearn",
    "nvidia-pytriton",
    "scikit-learn",
    "numpy",
)


@dataclass(frozen=True)
class Settings:
    duration_s: float
    warmup_s: float
    concurrencies: tuple[int, ...]
    server_core: int
    client_core: int


@dataclass(frozen=True)
class LoadTools:
    wrk: Path
    ghz: Path | None
    ghz_problem: str
    grpc_load: Path | None = None  # bench/grpc_load.cc, built by CMake


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    keys = [peer.key for peer in PEERS] + [FLOOR_KEY]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Whole seconds: wrk takes no fractions.
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first (default 2)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 16], help="connections in flight (default: 1 16)"
    )
    parser.add_argument(
        "--paired-rounds", type=int, default=4,
        help="interleaved rounds per issue floor after the main run (bench/paired.py; default 4, 0 skips them)",
    )  # fmt: skip
    parser.add_argument("--paired-duration", type=int, default=3, help="seconds per row per round (default 3)")
    parser.add_argument(
        "--floors-only", action="store_true",
        help="only the interleaved floors (no main table): the issues' verdicts in a few minutes",
    )  # fmt: skip
    parser.add_argument("--only", nargs="+", choices=keys, default=keys, help="measure only these")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--berth-binary", type=Path, default=REPO_ROOT / "build" / "berth")
    parser.add_argument("--build-dir", type=Path, default=REPO_ROOT / "build", help="where CMake-built tools are")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-update-docs", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--no-install", action="store_true", help="install nothing; skip what is missing")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temporary model and logs")
    args = parser.parse_args(argv)
    if args.floors_only and args.paired_rounds == 0:
        parser.error("--floors-only measures the interleaved rounds: --paired-rounds must be at least 1")
    if args.paired_rounds < 0 or args.paired_duration < 1:
        parser.error("--paired-rounds must be at least 0 and --paired-duration at least 1 s")
    if args.duration < 1 or args.warmup < 1:
        parser.error("--duration and --warmup must be at least 1 s (the warm-up also checks for errors)")
    if any(c < 1 for c in args.concurrency):
        parser.error("--concurrency values must be at least 1")
    return args


# --- Measuring one target ------------------------------------------------------------


def _verify(target: Target, model: BenchModel) -> Answer | str:
    """The target's answer to the benchmark request, or why it is wrong."""
    verify = verify_rest if target.protocol == "http" else verify_grpc
    try:
        return target.verify() if target.verify is not None else verify(target.address, model, target.headers,
                                                                         target.ca_file)  # fmt: skip
    except VerificationError as error:
        return f"wrong or no answer, not loaded: {error}"


def _load_function(
    target: Target, model: BenchModel, body_file: Path, tools: LoadTools, settings: Settings
) -> Callable[[int, float], LoadResult] | str:
    """How to load the target at a concurrency for a duration, or why it cannot be."""
    if target.protocol == "http":

        def load(concurrency: int, duration_s: float) -> LoadResult:
            return run_wrk(
                tools.wrk, target.address, target.body or body_file,
                concurrency=concurrency, duration_s=duration_s,
                core=settings.client_core, server_cpu=target.server.cpu_seconds,
                json_header_bytes=target.json_header_bytes,
                headers=target.headers,
            )  # fmt: skip

        return load
    call = GrpcCall(target.address, model.grpc_body, {k.lower(): v for k, v in target.headers.items()},
                    target.ca_file)  # fmt: skip
    if target.grpc_client == "cpp":
        if tools.grpc_load is None:
            return "answered correctly, but there is no build/grpc_load (bench/grpc_load.cc): run `make build`"
        grpc_load = tools.grpc_load

        def load_grpc_cpp(concurrency: int, duration_s: float) -> LoadResult:
            return run_grpc_load(grpc_load, call, concurrency=concurrency, duration_s=duration_s,
                                 core=settings.client_core, server_cpu=target.server.cpu_seconds)  # fmt: skip

        return load_grpc_cpp
    if tools.ghz is None:
        return f"answered correctly, but no gRPC load generator: {tools.ghz_problem}"
    ghz = tools.ghz

    def load_grpc(concurrency: int, duration_s: float) -> LoadResult:
        return run_ghz(ghz, GRPC_PROTO, call, concurrency=concurrency, duration_s=duration_s,
                       core=settings.client_core, server_cpu=target.server.cpu_seconds,
                       import_paths=(GRPC_PROTO_ROOT,))  # fmt: skip

    return load_grpc


def _prepare_target(
    target: Target, *, model: BenchModel, body_file: Path, tools: LoadTools, settings: Settings
) -> Callable[[int, float], LoadResult] | str:
    """The target's load function once its answer is checked; else why it is not loaded."""
    answer = _verify(target, model)
    return answer if isinstance(answer, str) else _load_function(target, model, body_file, tools, settings)


def measure(target: Target, model: BenchModel, body_file: Path, tools: LoadTools, settings: Settings) -> TargetReport:
    """Verify the target's answer, warm it up, then load it at each concurrency."""
    report = TargetReport(target.name, target.protocol, target.setup)
    answer = _verify(target, model)
    if isinstance(answer, str):
        report.problem = answer
        return report
    report.response_bytes = answer.response_bytes
    load = _load_function(target, model, body_file, tools, settings)
    if isinstance(load, str):
        report.problem = load
        return report

    try:
        log(f"{target.name}: warm-up {settings.warmup_s:g} s")
        warmup = load(max(settings.concurrencies), settings.warmup_s)
        if warmup.requests == 0 or warmup.errors:
            report.problem = f"{warmup.errors} of {warmup.requests + warmup.errors} warm-up requests failed"
            return report
        for concurrency in settings.concurrencies:
            log(f"{target.name}: c={concurrency}, {settings.duration_s:g} s")
            result = load(concurrency, settings.duration_s)
            report.results[concurrency] = result
            log(f"{target.name}: c={concurrency}: {result.rps:,.0f} req/s, p50 {result.p50_us:.0f} µs, "
                f"p99 {result.p99_us:.0f} µs, {result.errors} errors")  # fmt: skip
    except LoadError as error:
        report.problem = f"load generator failed: {error}"
    if not target.server.running():
        report.problem = (report.problem + "; " if report.problem else "") + "the server exited during the run"
    return report


def run_peer(peer: Peer, ctx: PeerContext, body_file: Path, tools: LoadTools, settings: Settings) -> list[TargetReport]:
    """Start one server, measure its targets, stop it."""
    log(f"starting {peer.key}")
    with ExitStack() as stack:
        try:
            targets = peer.start(ctx, stack)
        except (PeerUnavailable, StartupError, ToolUnavailable, OSError) as error:
            log(f"{peer.key}: not measured: {str(error).splitlines()[0]}")
            return [TargetReport(name, "", problem=str(error)) for name in peer.target_names]
        reports = []
        for target in targets:
            if isinstance(target, Skipped):
                log(f"{target.name}: not measured: {target.reason}")
                reports.append(TargetReport(target.name, "", problem=target.reason))
            else:
                reports.append(measure(target, ctx.model, body_file, tools, settings))
        log(f"stopping {peer.key}")
    return reports


# --- Versions ------------------------------------------------------------------------


def _peer_versions(peer_python: Path | None) -> dict[str, str]:
    if peer_python is None:
        return {}
    script = (
        "import importlib.metadata as m, json, sys\n"
        "def v(p):\n"
        "    try: return m.version(p)\n"
        "    except m.PackageNotFoundError: return 'not installed'\n"
        f"json.dump({{p: v(p) for p in {list(PEER_PACKAGES)!r}}}, sys.stdout)\n"
    )
    output = command_output([str(peer_python), "-c", script])
    try:
        versions: dict[str, str] = json.loads(output)
    except json.JSONDecodeError:
        return {}
    return {f"{name} (peer venv)": version for name, version in versions.items()}


def _ort_library_version(library: Path) -> str:
    """The version string of an ONNX Runtime shared library, asked in a child process."""
    script = (
        "import ctypes, sys\n"
        "class Base(ctypes.Structure):\n"
        "    _fields_ = [('get_api', ctypes.c_void_p), ('get_version', ctypes.CFUNCTYPE(ctypes.c_char_p))]\n"
        "lib = ctypes.CDLL(sys.argv[1])\n"
        "lib.OrtGetApiBase.restype = ctypes.POINTER(Base)\n"
        "print(lib.OrtGetApiBase().contents.get_version().decode())\n"
    )
    return command_output([sys.executable, "-c", script, str(library)]) or "?"


def collect_versions(
    berth_binary: Path, tools: LoadTools, nginx: Path | None, peer_python: Path | None, workdir: Path
) -> dict[str, str]:
    versions = {
        "berth": command_output([str(berth_binary), "--version"]) or "?",
        "ONNX Runtime linked by Berth": _ort_library_version(
            REPO_ROOT / ".deps" / "onnxruntime" / "lib" / "libonnxruntime.so"
        ),
        "harness Python": platform.python_version(),
        "onnxruntime (harness venv)": metadata.version("onnxruntime"),
        "scikit-learn (harness venv)": metadata.version("scikit-learn"),
        "wrk": command_output(["dpkg-query", "-W", "-f=${Version}", "wrk"]) or "?",
        "ghz": f"{GHZ_VERSION} (go install)" if tools.ghz else f"not available: {tools.ghz_problem}",
        "nginx": command_output([str(nginx), "-v"]).removeprefix("nginx version: ") if nginx else "not used",
        "Google Benchmark (libbenchmark-dev)": benchmark_library_version() or "not installed",
    }
    versions.update(_peer_versions(peer_python))
    triton_log = workdir / "logs" / "triton.log"
    if triton_log.is_file():
        match = re.search(r"server_version\s*\|\s*([\d.]+)", triton_log.read_text(errors="replace"))
        if match:
            versions["tritonserver (bundled in nvidia-pytriton)"] = match.group(1)
    return versions


# --- The run -------------------------------------------------------------------------


def _resolve_load_tools(install: bool, build_dir: Path) -> LoadTools:
    wrk = ensure_debian_binary("wrk", "wrk", install=install)  # without wrk there is no benchmark
    grpc_load = build_dir / "grpc_load"
    grpc_load_found = grpc_load if grpc_load.is_file() else None
    try:
        return LoadTools(wrk, ensure_ghz(install=install), "", grpc_load_found)
    except ToolUnavailable as error:
        return LoadTools(wrk, None, str(error), grpc_load_found)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    install = not args.no_install
    settings = Settings(args.duration, args.warmup, tuple(args.concurrency), args.server_core, args.client_core)
    if (os.cpu_count() or 1) < 2 or settings.server_core == settings.client_core:
        log("warning: the server and the load generator share a core; numbers will be lower than on two cores")
    started = datetime.now(UTC)
    machine = machine_info()
    selected = set(args.only)
    tools = _resolve_load_tools(install, args.build_dir)

    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-"))
    try:
        log(f"training and converting the model in {workdir}")
        model = prepare(workdir)
        body_file = workdir / "request.json"
        body_file.write_bytes(model.rest_body)

        peer_python, peer_problem = None, ""
        if selected & {"fastapi", "mlserver", "triton"}:
            try:
                peer_python = ensure_peer_venv(install=install)
            except ToolUnavailable as error:
                peer_problem = str(error)
        nginx, nginx_problem = None, ""
        if "nginx" in selected:
            try:
                nginx = ensure_debian_binary("nginx", "nginx", install=install)
            except ToolUnavailable as error:
                nginx_problem = str(error)
        ctx = PeerContext(
            model=model,
            workdir=workdir,
            core=settings.server_core,
            berth_binary=args.berth_binary,
            peer_python=peer_python,
            peer_python_problem=peer_problem,
            nginx=nginx,
            nginx_problem=nginx_problem,
        )
        report = RunReport(
            started_at=started.strftime("%Y-%m-%d %H:%M UTC"),
            duration_s=settings.duration_s,
            warmup_s=settings.warmup_s,
            concurrencies=settings.concurrencies,
            server_core=settings.server_core,
            client_core=settings.client_core,
            request_bytes=len(model.rest_body),
            machine=machine,
        )
        for peer in PEERS:
            if peer.key in selected and not args.floors_only:
                report.targets += run_peer(peer, ctx, body_file, tools, settings)

        if args.paired_rounds > 0:
            report.paired = paired.measure_pairs(
                ISSUE_FLOORS, PEERS, selected,
                start=lambda peer, stack: peer.start(ctx, stack),
                prepare=partial(_prepare_target, model=model, body_file=body_file, tools=tools, settings=settings),
                rounds=args.paired_rounds, duration_s=args.paired_duration, warmup_s=settings.warmup_s,
            )  # fmt: skip

        if FLOOR_KEY in selected and not args.floors_only:
            floors: tuple[tuple[str, Callable[[], FloorResult]], ...] = (
                (
                    "ONNX Runtime in process, Python",
                    partial(python_floor, model, duration_s=settings.duration_s, warmup_s=settings.warmup_s,
                            core=settings.server_core),
                ),
                (
                    "ONNX Runtime in process, C++",
                    partial(cxx_floor, model, duration_s=settings.duration_s, core=settings.server_core,
                            build_dir=args.build_dir),
                ),
            )  # fmt: skip
            for name, measure_floor in floors:
                log(f"{name}: {settings.duration_s:g} s")
                try:
                    report.floors.append(measure_floor())
                except FloorUnavailable as error:
                    report.floor_problems[name] = str(error)
        report.load_average_end = load_average()
        report.versions = collect_versions(args.berth_binary, tools, nginx, peer_python, workdir)
    finally:
        if args.keep_workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    markdown_path = args.results_dir / f"{stamp}.md"
    markdown_path.write_text(render_document(report))
    (args.results_dir / f"{stamp}.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    print(render_document(report))
    log(f"wrote {markdown_path} and {markdown_path.with_suffix('.json').name}")
    if not args.no_update_docs and not args.floors_only:  # a floors-only run has no main table to show
        relative = markdown_path.relative_to(REPO_ROOT) if markdown_path.is_relative_to(REPO_ROOT) else markdown_path
        if update_docs(args.docs, render_results(report), str(relative)):
            log(f"updated the results section of {args.docs}")
        else:
            log(f"{args.docs} has no results markers; not updated")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    try:
        return run(args)
    except ToolUnavailable as error:
        log(f"cannot benchmark: {error}")
        return 2
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    except subprocess.SubprocessError as error:
        log(f"failed: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
