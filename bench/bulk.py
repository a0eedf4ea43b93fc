"""The 1,000-row FP32 request three ways, on one Berth server: JSON, the binary tensor
extension, and system shared memory (Triton's extension).

All three are driven by wrk with a fixed body, like every REST row. For shared
memory the body is only the JSON that names the regions: the rows sit in a
shared-memory object registered once before the run (POST
/v2/systemsharedmemory/region/{r}/register), and the outputs are written to a
second one; every request writes the same answer there, so concurrent requests
overwriting each other's outputs is harmless for a benchmark.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any, Final

import numpy as np

from model import BULK_ROWS, BenchModel
from verify import Answer, VerificationError

HOST: Final = "127.0.0.1"
BULK_ROWS_TEXT: Final = f"{BULK_ROWS:,} rows of 4 FP32"
ROWS: Final = ("Berth REST 1,000 rows JSON", "Berth REST 1,000 rows binary", "Berth REST 1,000 rows shared memory")
IN_REGION: Final = "bench_rows_in"
OUT_REGION: Final = "bench_rows_out"
LABEL_BYTES_PER_ROW: Final = 8  # INT64
PROBABILITY_BYTES_PER_ROW: Final = 3 * 4  # 3 x FP32
_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True)
class BulkBody:
    """One way of sending the rows: the body file and, under the binary extension, its JSON part's length."""

    path: Path
    json_header_bytes: int | None = None


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def write_bodies(model: BenchModel, workdir: Path) -> tuple[BulkBody, BulkBody, BulkBody]:
    """The JSON, binary and shared-memory bodies, written under `workdir`."""
    rows = model.bulk_rows
    shape = list(rows.shape)
    json_body = _compact({"inputs": [{"name": "X", "shape": shape, "datatype": "FP32", "data": rows.ravel().tolist()}]})
    header = _compact({
        "inputs": [{"name": "X", "shape": shape, "datatype": "FP32", "parameters": {"binary_data_size": rows.nbytes}}],
        "parameters": {"binary_data_output": True},
    })  # fmt: skip
    n = rows.shape[0]
    shm_body = _compact({
        "inputs": [{"name": "X", "shape": shape, "datatype": "FP32",
                    "parameters": {"shared_memory_region": IN_REGION, "shared_memory_byte_size": rows.nbytes}}],
        "outputs": [
            {"name": "label", "parameters": {"shared_memory_region": OUT_REGION,
                                             "shared_memory_byte_size": n * LABEL_BYTES_PER_ROW}},
            {"name": "probabilities", "parameters": {"shared_memory_region": OUT_REGION,
                                                     "shared_memory_offset": n * LABEL_BYTES_PER_ROW,
                                                     "shared_memory_byte_size": n * PROBABILITY_BYTES_PER_ROW}},
        ],
    })  # fmt: skip
    paths = [workdir / name for name in ("bulk_json.json", "bulk_binary.bin", "bulk_shm.json")]
    paths[0].write_bytes(json_body)
    paths[1].write_bytes(header + rows.tobytes())
    paths[2].write_bytes(shm_body)
    return BulkBody(paths[0]), BulkBody(paths[1], len(header)), BulkBody(paths[2])


def register_regions(stack: ExitStack, http_port: int, model: BenchModel) -> tuple[str, shared_memory.SharedMemory]:
    """Creates and registers the input and output regions; empty problem on success, and the output region."""
    rows = model.bulk_rows
    n = rows.shape[0]
    regions = []
    for name, size in ((IN_REGION, rows.nbytes), (OUT_REGION, n * (LABEL_BYTES_PER_ROW + PROBABILITY_BYTES_PER_ROW))):
        region = shared_memory.SharedMemory(create=True, size=size)
        stack.callback(region.unlink)
        stack.callback(region.close)
        regions.append(region)
        problem = _post(f"http://{HOST}:{http_port}/v2/systemsharedmemory/region/{name}/register",
                        _compact({"key": "/" + region.name, "byte_size": size}), None)[0]  # fmt: skip
        if problem:
            return problem, region
    np.ndarray(rows.shape, np.float32, buffer=regions[0].buf)[:] = rows
    return "", regions[1]


def _post(url: str, body: bytes, json_header_bytes: int | None) -> tuple[str, bytes, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if json_header_bytes is not None:
        headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(json_header_bytes)}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            return "", response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return f"POST {url}: HTTP {error.code}: {error.read()[:500]!r}", b"", {}
    except (urllib.error.URLError, OSError) as error:
        return f"POST {url}: {error}", b"", {}


def _outputs(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    json_size = int(headers.get("Inference-Header-Content-Length", len(body)))
    document = json.loads(body[:json_size])
    out, offset = {}, json_size
    for output in document["outputs"]:
        params = output.get("parameters", {})
        if "data" in output:
            out[output["name"]] = np.ravel(output["data"])
        elif "binary_data_size" in params:
            size = params["binary_data_size"]
            dtype = np.int64 if output["datatype"] == "INT64" else np.float32
            out[output["name"]] = np.frombuffer(body[offset : offset + size], dtype=dtype)
            offset += size
        else:
            out[output["name"]] = params
    return out


def verify_bulk(url: str, body: BulkBody, model: BenchModel, out_region: shared_memory.SharedMemory | None) -> Answer:
    """POST the body; VerificationError unless its outputs equal the JSON request's (read from the region for shm)."""
    problem, reference_body, reference_headers = _post(url, _compact({"inputs": [{
        "name": "X", "shape": list(model.bulk_rows.shape), "datatype": "FP32", "data": model.bulk_rows.ravel().tolist(),
    }]}), None)  # fmt: skip
    if problem:
        raise VerificationError(problem)
    reference = _outputs(reference_body, reference_headers)
    problem, answer, headers = _post(url, body.path.read_bytes(), body.json_header_bytes)
    if problem:
        raise VerificationError(problem)
    got = _outputs(answer, headers)
    if out_region is not None:
        n = model.bulk_rows.shape[0]
        got = {
            "label": np.frombuffer(bytes(out_region.buf[: n * LABEL_BYTES_PER_ROW]), dtype=np.int64),
            "probabilities": np.frombuffer(
                bytes(out_region.buf[n * LABEL_BYTES_PER_ROW : n * (LABEL_BYTES_PER_ROW + PROBABILITY_BYTES_PER_ROW)]),
                dtype=np.float32,
            ),
        }
    # JSON writes FP32 in its shortest round-trip form: compared as float32.
    for name, dtype in (("label", np.int64), ("probabilities", np.float32)):
        if not np.array_equal(np.asarray(got[name], dtype=dtype), np.asarray(reference[name], dtype=dtype)):
            raise VerificationError(f"POST {url}: output {name!r} differs from the JSON request's")
    return Answer(response_bytes=len(answer))
