"""Memory a large request costs the server: a bound, not a timing (issue #6).

Each case starts a fresh server, so that its peak resident set (VmHWM in
/proc/<pid>/status) before the request is the start-up peak, and sends one
large JSON request (v2 infer, TF Serving :predict, the row route infer_rows,
SageMaker's /invocations as a cloud route). The body is the decoder's worst case: short
numbers nested as rows, so that a document tree costs many times the text
(the tree decoder grew the peak by about 8x such a body). The request is
decoded in full and then refused by validation (its batch is over the
model's max_batch_size), so the figure is the decoder's and the transport's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pytest
import requests

from berth_server import BerthServer, berth_binary
from models import IRIS_MODEL, ModelRepository
from v2 import assert_error, infer_path

BODY_BYTES: Final = 48 << 20
# The bound the test holds the server to: peak growth within this many times
# the body. The streaming decoder needs about 2.2x for this body (the body
# itself, the tensor it becomes and the transport's buffer); the headroom is
# for allocator slack, so the test does not depend on the allocator's mood.
MAX_GROWTH_PER_BODY_BYTE: Final = 4.0

_ROW: Final = b"[1,2,3,4],"  # 10 bytes of text, 16 bytes of FP32 tensor


def _rows(count: int) -> bytes:
    return b"[" + _ROW * (count - 1) + _ROW[:-1] + b"]"


def _data_last(rows: int) -> bytes:
    return (
        b'{"inputs": [{"name": "X", "datatype": "FP32", "shape": [%d, 4], "data": ' % rows
        + _rows(rows)
        + b"}]}"
    )


def _data_first(rows: int) -> bytes:
    # The data comes before the shape and datatype it needs: it is read twice
    # from the body, never staged.
    return b'{"inputs": [{"data": ' + _rows(rows) + b', "name": "X", "datatype": "FP32", "shape": [%d, 4]}]}' % rows


def _tfserving_rows(rows: int) -> bytes:
    # TF Serving's row format: each instance is parsed on its own and dropped.
    return b'{"instances": ' + _rows(rows) + b"}"


def _tfserving_columns(rows: int) -> bytes:
    # TF Serving's columnar format: the value is written into the tensor as it is read.
    return b'{"inputs": ' + _rows(rows) + b"}"


def _named_rows(rows: int) -> bytes:
    # The row route: each row an object {input name: value}, as many bytes
    # in all as `rows` rows of _ROW.
    row = b'{"X": [1,2,3,4]},'
    count = rows * len(_ROW) // len(row)
    return b'{"instances": [' + row * (count - 1) + row[:-1] + b"]}"


def _bare_rows(rows: int) -> bytes:
    # A cloud route's bare list of rows (SageMaker JSON).
    return _rows(rows)


_SAGEMAKER: Final = ("--platform", "sagemaker")
_TARGET_IRIS: Final = {"X-Amzn-SageMaker-Target-Model": IRIS_MODEL}

_CASES: Final = [
    pytest.param(_data_last, infer_path(IRIS_MODEL), (), {}, id="v2-data-last"),
    pytest.param(_data_first, infer_path(IRIS_MODEL), (), {}, id="v2-data-first"),
    pytest.param(_tfserving_rows, f"/v1/models/{IRIS_MODEL}:predict", (), {}, id="tfserving-instances"),
    pytest.param(_tfserving_columns, f"/v1/models/{IRIS_MODEL}:predict", (), {}, id="tfserving-inputs"),
    pytest.param(_named_rows, f"/v2/models/{IRIS_MODEL}/infer_rows", (), {}, id="infer-rows"),
    pytest.param(_bare_rows, "/invocations", _SAGEMAKER, _TARGET_IRIS, id="sagemaker-rows"),
]


def _peak_resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.skipif(
    "ASAN_OPTIONS" in os.environ,
    reason="a bound for the production allocator: ASan's redzones and quarantine change the peak",
)
@pytest.mark.parametrize(("make_body", "path", "extra_args", "headers"), _CASES)
def test_large_json_body_costs_a_small_multiple_of_itself(
    model_repository: ModelRepository,
    tmp_path_factory: pytest.TempPathFactory,
    make_body: Callable[[int], bytes],
    path: str,
    extra_args: tuple[str, ...],
    headers: dict[str, str],
) -> None:
    body = make_body(BODY_BYTES // len(_ROW))
    log_path = tmp_path_factory.mktemp("berth_limits") / "berth.log"
    with BerthServer.start(
        berth_binary(),
        model_repository.root,
        log_path,
        max_request_bytes=2 * BODY_BYTES,
        extra_args=extra_args,
    ) as server:
        before = _peak_resident_bytes(server.process.pid)
        response = requests.post(
            server.base_url + path,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=120,
        )
        assert "max_batch_size" in assert_error(response, 400)
        growth = _peak_resident_bytes(server.process.pid) - before
    assert growth <= MAX_GROWTH_PER_BODY_BYTE * len(body), (
        f"peak RSS grew by {growth / 1e6:.0f} MB ({growth / len(body):.1f}x) "
        f"for a {len(body) / 1e6:.0f} MB body"
    )
