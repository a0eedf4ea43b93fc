"""The Python worker's side of the binary framing (berth.runtime.framing), without a server:
round trips of every datatype, and hostile frames refused with FrameError before allocating.
The C++ side is src/backends/python/worker_frame_test.cc; test_python_runtime.py runs both together."""

from __future__ import annotations

import socket
import struct
import sys

import numpy as np
import pytest

from berth_server import REPO_ROOT

try:
    from berth.runtime import framing
except ImportError:  # the venv's berth is another tree's, older than this one
    sys.path.insert(0, str(REPO_ROOT / "python" / "src"))
    sys.modules.pop("berth", None)
    from berth.runtime import framing


def _body(parts: list[bytes | memoryview]) -> bytes:
    whole = b"".join(parts)
    (length,) = struct.unpack("<I", whole[:4])
    assert length == len(whole) - 4
    return whole[4:]


@pytest.mark.parametrize("datatype", sorted(framing.NUMPY_TYPES))
def test_every_fixed_size_datatype_round_trips(datatype: str) -> None:
    array = (np.arange(6) % 2 == 1) if datatype == "BOOL" else np.arange(6).astype(framing.NUMPY_TYPES[datatype])
    array = array.reshape(2, 3)
    inputs, names = framing.decode_infer(_body(framing.encode_infer({"x": array}, ["y", "z"])))
    assert names == ["y", "z"]
    assert inputs["x"].dtype == framing.NUMPY_TYPES[datatype]
    np.testing.assert_array_equal(inputs["x"], array)
    out = framing.decode_result(bytearray(_body(framing.encode_result({"x": array}))))
    np.testing.assert_array_equal(out["x"], array)
    assert out["x"].flags.writeable


def test_bytes_round_trip_with_nul_and_unicode() -> None:
    words = np.array([b"a", b"nul\0byte", "é".encode(), b""], dtype=object)
    out = framing.decode_result(_body(framing.encode_result({"w": words})))
    assert out["w"].tolist() == words.tolist()
    strings = framing.decode_result(_body(framing.encode_result({"w": np.array(["x", "yz"])})))
    assert strings["w"].tolist() == [b"x", b"yz"]


def _hand_result(code: int, shape: list[int], data: bytes, length: int | None = None) -> bytes:
    name = b"t"
    head = struct.pack("<BI", framing.KIND_RESULT, 1) + struct.pack("<I", len(name)) + name
    spec = struct.pack(f"<BI{len(shape)}q", code, len(shape), *shape)
    return head + spec + struct.pack("<Q", len(data) if length is None else length) + data


@pytest.mark.parametrize(
    "body",
    [
        _hand_result(11, [4], b"\0" * 8),  # data does not fill the shape
        _hand_result(11, [1 << 40, 1 << 20], b""),  # a huge shape, no data
        _hand_result(11, [1], b"abcd", length=1 << 62),  # a length past the end
        _hand_result(13, [1], struct.pack("<I", 1000)),  # an element past the data
        _hand_result(0, [1], b""),  # unknown datatype
        _hand_result(11, [-1], b""),  # not a known shape
        b"",
        bytes([framing.KIND_ERROR]),
    ],
)
def test_hostile_frames_are_refused(body: bytes) -> None:
    with pytest.raises(framing.FrameError):
        framing.decode_result(body)


def test_read_frame_refuses_a_huge_length_and_sees_end_of_file() -> None:
    a, b = socket.socketpair()
    with a, b:
        b.sendall(struct.pack("<I", framing.MAX_FRAME_BYTES + 1))
        with pytest.raises(framing.FrameError):
            framing.read_frame(a)
        b.close()
        assert framing.read_frame(a) is None
