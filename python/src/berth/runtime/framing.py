"""The worker's side of the binary framing in src/backends/python/worker_frame.h.

Everything is little-endian; tensors travel as raw row-major bytes (BYTES
elements each prefixed by a u32 length), never as JSON.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

KIND_READY: Final = 1
KIND_INFER: Final = 2
KIND_RESULT: Final = 3
KIND_ERROR: Final = 4

ERROR_INVALID_ARGUMENT: Final = 1
ERROR_INTERNAL: Final = 2

MAX_FRAME_BYTES: Final = 1 << 31
MAX_COUNT: Final = 4096
MAX_RANK: Final = 64

# core/datatype.h's DataType values.
DATATYPE_CODES: Final[dict[str, int]] = {
    "BOOL": 1, "UINT8": 2, "UINT16": 3, "UINT32": 4, "UINT64": 5, "INT8": 6, "INT16": 7,
    "INT32": 8, "INT64": 9, "FP16": 10, "FP32": 11, "FP64": 12, "BYTES": 13,
}  # fmt: skip
CODE_NAMES: Final = {code: name for name, code in DATATYPE_CODES.items()}
NUMPY_TYPES: Final[dict[str, np.dtype]] = {
    "BOOL": np.dtype("?"), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}  # fmt: skip


class FrameError(Exception):
    """A frame that breaks the format."""


@dataclass(frozen=True)
class Spec:
    name: str
    datatype: str
    shape: tuple[int, ...]


def datatype_of(array: np.ndarray) -> str:
    """The v2 datatype of a numpy array (strings and objects are BYTES)."""
    if array.dtype.kind in "OUS":
        return "BYTES"
    for name, dtype in NUMPY_TYPES.items():
        if array.dtype.newbyteorder("<") == dtype or array.dtype == dtype:
            return name
    raise TypeError(f"numpy dtype {array.dtype} has no v2 datatype")


def _bytes_element(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return str(value).encode()


class _Writer:
    def __init__(self, kind: int) -> None:
        self.parts: list[bytes | memoryview] = [b"", bytes([kind])]
        self.size = 1

    def add(self, data: bytes | memoryview) -> None:
        self.parts.append(data)
        self.size += len(data)

    def string(self, value: bytes) -> None:
        self.add(struct.pack("<I", len(value)))
        self.add(value)

    def spec(self, name: str, datatype: str, shape: Sequence[int]) -> None:
        self.string(name.encode())
        self.add(struct.pack(f"<BI{len(shape)}q", DATATYPE_CODES[datatype], len(shape), *shape))

    def tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        self.add(struct.pack("<I", len(tensors)))
        for name, array in tensors.items():
            datatype = datatype_of(array)
            self.spec(name, datatype, array.shape)
            if datatype == "BYTES":
                items = [_bytes_element(v) for v in array.reshape(-1).tolist()]
                data = b"".join(struct.pack("<I", len(v)) + v for v in items)
                self.add(struct.pack("<Q", len(data)))
                self.add(data)
            else:
                contiguous = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
                self.add(struct.pack("<Q", contiguous.nbytes))
                self.add(memoryview(contiguous).cast("B"))

    def frame(self) -> list[bytes | memoryview]:
        if self.size > MAX_FRAME_BYTES:
            raise FrameError(f"a frame of {self.size} bytes is over the limit of {MAX_FRAME_BYTES}")
        self.parts[0] = struct.pack("<I", self.size)
        return self.parts


def encode_ready(inputs: Sequence[Spec], outputs: Sequence[Spec]) -> list[bytes | memoryview]:
    w = _Writer(KIND_READY)
    for specs in (inputs, outputs):
        w.add(struct.pack("<I", len(specs)))
        for s in specs:
            w.spec(s.name, s.datatype, s.shape)
    return w.frame()


def encode_result(outputs: Mapping[str, np.ndarray]) -> list[bytes | memoryview]:
    w = _Writer(KIND_RESULT)
    w.tensors(outputs)
    return w.frame()


def encode_error(code: int, message: str) -> list[bytes | memoryview]:
    w = _Writer(KIND_ERROR)
    w.add(bytes([code]))
    w.string(message.encode(errors="replace")[: 1 << 20])
    return w.frame()


def encode_infer(inputs: Mapping[str, np.ndarray], output_names: Sequence[str]) -> list[bytes | memoryview]:
    w = _Writer(KIND_INFER)
    w.add(struct.pack("<I", len(output_names)))
    for n in output_names:
        w.string(n.encode())
    w.tensors(inputs)
    return w.frame()


class _Reader:
    def __init__(self, body: bytearray | bytes) -> None:
        self.view = memoryview(body)
        self.pos = 0

    def take(self, n: int, what: str) -> memoryview:
        if n > len(self.view) - self.pos:
            raise FrameError(f"the frame ends inside {what}")
        out = self.view[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def count(self, what: str) -> int:
        (n,) = self.unpack("<I", what)
        if n > MAX_COUNT:
            raise FrameError(f"{what} count {n} is over {MAX_COUNT}")
        return n

    def string(self, what: str) -> bytes:
        (n,) = self.unpack("<I", what)
        return bytes(self.take(n, what))

    def spec(self) -> Spec:
        name = self.string("a tensor name").decode(errors="replace")
        code, rank = self.unpack("<BI", "a datatype and rank")
        if code not in CODE_NAMES:
            raise FrameError(f"tensor '{name}' has unknown datatype code {code}")
        if rank > MAX_RANK:
            raise FrameError(f"tensor '{name}' has rank {rank}, over {MAX_RANK}")
        shape = self.unpack(f"<{rank}q", "a shape")
        return Spec(name, CODE_NAMES[code], tuple(shape))

    def tensors(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for _ in range(self.count("tensor")):
            spec = self.spec()
            (length,) = self.unpack("<Q", "a data length")
            data = self.take(length, "a tensor's data")
            if any(d < 0 for d in spec.shape):
                raise FrameError(f"tensor '{spec.name}' has no fully known shape")
            count = int(np.prod(spec.shape, dtype=np.int64))
            if spec.datatype == "BYTES":
                r = _Reader(data)
                items = [r.string("a BYTES element") for _ in range(count)]
                if r.pos != len(data):
                    raise FrameError(f"tensor '{spec.name}' has bytes past its last element")
                array = np.empty(count, dtype=object)
                array[:] = items
                out[spec.name] = array.reshape(spec.shape)
            else:
                dtype = NUMPY_TYPES[spec.datatype]
                if count * dtype.itemsize != length:
                    raise FrameError(f"tensor '{spec.name}' has {length} bytes for shape {list(spec.shape)}")
                out[spec.name] = np.frombuffer(data, dtype=dtype).reshape(spec.shape)
        return out


def decode_infer(body: bytearray | bytes) -> tuple[dict[str, np.ndarray], list[str]]:
    r = _Reader(body)
    (kind,) = r.unpack("<B", "the frame kind")
    if kind != KIND_INFER:
        raise FrameError(f"expected an INFER frame, got kind {kind}")
    names = [r.string("an output name").decode(errors="replace") for _ in range(r.count("output name"))]
    return r.tensors(), names


def decode_result(body: bytearray | bytes) -> dict[str, np.ndarray]:
    r = _Reader(body)
    (kind,) = r.unpack("<B", "the frame kind")
    if kind != KIND_RESULT:
        raise FrameError(f"expected a RESULT frame, got kind {kind}")
    return r.tensors()


def _read_exactly(sock: socket.socket, n: int) -> bytearray | None:
    buffer = bytearray(n)
    view = memoryview(buffer)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            return None
        got += k
    return buffer


def read_frame(sock: socket.socket) -> bytearray | None:
    """The next frame's body (writable, so arrays over it are too); None at end of file."""
    header = _read_exactly(sock, 4)
    if header is None:
        return None
    (length,) = struct.unpack("<I", header)
    if length == 0 or length > MAX_FRAME_BYTES:
        raise FrameError(f"a frame of {length} bytes (1 to {MAX_FRAME_BYTES} allowed)")
    return _read_exactly(sock, length)


def write_frame(sock: socket.socket, parts: list[bytes | memoryview]) -> None:
    sock.sendall(b"".join(parts))
