"""The compute floors: the model run in process by ONNX Runtime, no server around it.

- Python: bench/peers/ort_inprocess.py (onnxruntime's Python API) in the harness's venv.
- C++: bench/ort_inprocess_bench.cc (Google Benchmark) against the ONNX Runtime Berth links.
  The binary is build/ort_inprocess_bench when CMake builds it; otherwise the
  harness compiles it into the cache with the system compiler and libbenchmark-dev.
Both run pinned to the server core with one ONNX Runtime thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from model import BenchModel
from processes import pinned
from tools import cache_dir, command_output

BENCH_DIR: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = BENCH_DIR.parent
CXX_SOURCE: Final = BENCH_DIR / "ort_inprocess_bench.cc"
_SLACK_S: Final = 60


class FloorUnavailable(RuntimeError):
    """A floor cannot be measured here; the message says why."""


@dataclass(frozen=True)
class FloorResult:
    name: str
    runtime: str  # e.g. "onnxruntime 1.23.2 (Python)"
    calls_per_s: float
    mean_us: float
    p50_us: float
    p99_us: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "runtime": self.runtime,
            "calls_per_s": self.calls_per_s,
            "mean_us": self.mean_us,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
        }


def _row_argument(model: BenchModel) -> str:
    return ",".join(repr(value) for value in model.row)


def _run_json(command: list[str], timeout_s: float) -> Any:
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise FloorUnavailable(f"`{' '.join(command)}` timed out") from None
    if result.returncode != 0:
        raise FloorUnavailable(f"`{' '.join(command)}` failed with code {result.returncode}: {result.stderr[-1500:]}")
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        raise FloorUnavailable(f"no JSON from `{' '.join(command)}`: {result.stdout[-1500:]}") from None


def python_floor(model: BenchModel, *, duration_s: float, warmup_s: float, core: int) -> FloorResult:
    command = pinned(
        [
            sys.executable, str(BENCH_DIR / "peers" / "ort_inprocess.py"),
            "--model", str(model.onnx_path), "--row", _row_argument(model),
            "--duration", f"{duration_s:g}", "--warmup", f"{warmup_s:g}",
        ],
        core,
    )  # fmt: skip
    report = _run_json(command, duration_s + warmup_s + _SLACK_S)
    return FloorResult(
        name="ONNX Runtime in process, Python",
        runtime=f"onnxruntime {report['onnxruntime']} (Python API)",
        calls_per_s=float(report["calls_per_s"]),
        mean_us=float(report["mean_us"]),
        p50_us=float(report["p50_us"]),
        p99_us=float(report["p99_us"]),
    )


def _ort_prefix() -> Path:
    return Path(os.environ.get("BERTH_ORT_PREFIX", REPO_ROOT / ".deps" / "onnxruntime"))


def cxx_binary(*, build_dir: Path) -> Path:
    """build/ort_inprocess_bench if CMake built it, else a copy compiled into the cache."""
    built = build_dir / "ort_inprocess_bench"
    if built.is_file():
        return built
    prefix = _ort_prefix()
    if not (prefix / "include" / "onnxruntime_cxx_api.h").is_file():
        raise FloorUnavailable(f"no ONNX Runtime headers under {prefix} (run `make setup`)")
    if not Path("/usr/include/benchmark/benchmark.h").is_file():
        raise FloorUnavailable("Google Benchmark headers missing: apt-get install libbenchmark-dev")
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        raise FloorUnavailable("no C++ compiler on PATH")
    key = hashlib.sha256(CXX_SOURCE.read_bytes() + str(prefix.resolve()).encode()).hexdigest()[:16]
    binary = cache_dir() / "bin" / f"ort_inprocess_bench-{key}"
    if binary.is_file():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    lib = prefix / "lib"
    command = [
        compiler, "-O2", "-std=c++20", str(CXX_SOURCE),
        f"-I{prefix / 'include'}", f"-L{lib}", "-lonnxruntime", "-lbenchmark", "-pthread",
        f"-Wl,-rpath,{lib}", "-o", str(binary),
    ]  # fmt: skip
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise FloorUnavailable(f"compiling {CXX_SOURCE.name} failed: {result.stderr[-1500:]}")
    return binary


def cxx_floor(model: BenchModel, *, duration_s: float, core: int, build_dir: Path) -> FloorResult:
    binary = cxx_binary(build_dir=build_dir)
    command = pinned(
        [
            str(binary), "--model", str(model.onnx_path), "--row", _row_argument(model),
            f"--benchmark_min_time={duration_s:g}", "--benchmark_format=json",
        ],
        core,
    )  # fmt: skip
    report = _run_json(command, 3 * duration_s + _SLACK_S)
    runs = [entry for entry in report["benchmarks"] if entry.get("run_type", "iteration") == "iteration"]
    if not runs:
        raise FloorUnavailable(f"{binary.name} reported no benchmark run")
    run = runs[-1]
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3}[run["time_unit"]]
    mean_us = float(run["real_time"]) * scale
    return FloorResult(
        name="ONNX Runtime in process, C++",
        runtime=f"{run.get('label') or 'onnxruntime'} (C++ API, Google Benchmark)",
        calls_per_s=1e6 / mean_us,
        mean_us=mean_us,
        p50_us=float(run["p50_us"]),
        p99_us=float(run["p99_us"]),
    )


def benchmark_library_version() -> str:
    """The Debian libbenchmark-dev version, or ''."""
    return command_output(["dpkg-query", "-W", "-f=${Version}", "libbenchmark-dev"])
