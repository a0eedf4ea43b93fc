"""Writes the seed corpora of the grpc_codec, csv_tensor and onnx_external_data
fuzz targets, and the gzip additions to content_encoding's. The files are
committed; rerun after changing a target's input format:

    .venv/bin/python tests/fuzz/make_limits_corpora.py
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Final

from onnx import TensorProto, helper
from tritonclient.grpc import service_pb2 as pb

CORPUS: Final = Path(__file__).resolve().parent / "corpus"


def write(target: str, name: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def infer_request(**kw: object) -> pb.ModelInferRequest:
    r = pb.ModelInferRequest(model_name="m", **kw)  # type: ignore[arg-type]
    return r


def grpc_codec() -> None:
    r = infer_request()
    i = r.inputs.add(name="x", datatype="FP32", shape=[2, 2])
    i.contents.fp32_contents.extend([1, 2, 3, 4])
    write("grpc_codec", "valid_typed_fp32.bin", r.SerializeToString())

    r = infer_request(model_version="1", id="req")
    r.inputs.add(name="x", datatype="FP32", shape=[1, 2])
    r.raw_input_contents.append(struct.pack("<2f", 1.5, -2))
    r.outputs.add(name="y").parameters["binary_data"].bool_param = True
    write("grpc_codec", "valid_raw_fp32.bin", r.SerializeToString())

    r = infer_request()
    r.inputs.add(name="s", datatype="BYTES", shape=[2])
    r.raw_input_contents.append(struct.pack("<I", 2) + b"ab" + struct.pack("<I", 0))
    write("grpc_codec", "valid_raw_bytes.bin", r.SerializeToString())

    r = infer_request()
    i = r.inputs.add(name="s", datatype="BYTES", shape=[1])
    i.contents.bytes_contents.append(b"\xff\x00")
    r.parameters["timeout"].int64_param = 1000
    write("grpc_codec", "valid_bytes_timeout.bin", r.SerializeToString())

    r = infer_request()
    i = r.inputs.add(name="b", datatype="BOOL", shape=[2])
    i.contents.bool_contents.extend([True, False])
    i2 = r.inputs.add(name="n", datatype="INT64", shape=[1])
    i2.contents.int64_contents.append(-5)
    write("grpc_codec", "valid_two_inputs.bin", r.SerializeToString())

    r = infer_request()
    r.inputs.add(name="x", datatype="FP32", shape=[2])
    r.raw_input_contents.append(b"\x00" * 4)
    write("grpc_codec", "invalid_raw_short.bin", r.SerializeToString())

    r = infer_request()
    r.inputs.add(name="s", datatype="BYTES", shape=[1])
    r.raw_input_contents.append(struct.pack("<I", 0xFFFFFFFF) + b"a")
    write("grpc_codec", "invalid_bytes_length_prefix.bin", r.SerializeToString())

    r = infer_request()
    i = r.inputs.add(name="x", datatype="FP32", shape=[-1])
    write("grpc_codec", "invalid_negative_dim.bin", r.SerializeToString())

    r = infer_request()
    i = r.inputs.add(name="x", datatype="INT8", shape=[1])
    i.contents.int_contents.append(1000)
    write("grpc_codec", "invalid_int8_range.bin", r.SerializeToString())

    r = infer_request()
    i = r.inputs.add(name="x", datatype="FP32", shape=[1 << 40, 1 << 40])
    write("grpc_codec", "invalid_huge_shape.bin", r.SerializeToString())

    r = infer_request()
    r.parameters["timeout"].string_param = "soon"
    i = r.inputs.add(name="x", datatype="FP32", shape=[1])
    i.contents.fp32_contents.append(1)
    write("grpc_codec", "invalid_timeout_type.bin", r.SerializeToString())

    r = infer_request()
    i = r.inputs.add(name="x", datatype="FP32", shape=[1])
    i.parameters["shared_memory_region"].string_param = "r"
    write("grpc_codec", "invalid_shared_memory.bin", r.SerializeToString())

    write("grpc_codec", "invalid_empty.bin", b"")


def csv_tensor() -> None:
    # First byte: bit 0 FP64, bit 1 any width, (byte >> 2) % 8 the width.
    fixed2 = bytes([2 << 2])
    write("csv_tensor", "valid_two_rows.bin", fixed2 + b"1,2\n3.5,-4e3\n")
    write("csv_tensor", "valid_crlf_padded.bin", bytes([1 | 2]) + b" 1 , 2 ,3\r\n4,5,6\r\n\r\n")
    write("csv_tensor", "valid_fp64_inf.bin", bytes([1 | (1 << 2)]) + b"inf\n-1e308\n")
    write("csv_tensor", "invalid_header_line.bin", fixed2 + b"a,b\n1,2\n")
    write("csv_tensor", "invalid_ragged.bin", bytes([2]) + b"1,2\n3\n")
    write("csv_tensor", "invalid_blank_between.bin", fixed2 + b"1,2\n\n3,4\n")
    write("csv_tensor", "invalid_nan_payload.bin", fixed2 + b"nan(1),2\n")
    write("csv_tensor", "invalid_nul.bin", fixed2 + b"1\x00,2\n")
    write("csv_tensor", "invalid_out_of_range.bin", fixed2 + b"1e999,2\n")
    write("csv_tensor", "invalid_spec_rank1.bin", bytes([0]) + b"1\n")
    write("csv_tensor", "invalid_empty.bin", fixed2)


def onnx_model(location: str | None, nested: bool = False) -> bytes:
    w = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    if location is not None:
        w.ClearField("float_data")
        w.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", "0"), ("length", "8")):
            w.external_data.add(key=k, value=v)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    if nested:
        # The tensor hides in an If's then-branch, as a Constant's attribute.
        const = helper.make_node("Constant", [], ["c"], value=w)
        branch = helper.make_graph([const], "then", [], [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])])
        other = helper.make_graph(
            [helper.make_node("Constant", [], ["d"], value=helper.make_tensor("d", TensorProto.FLOAT, [2], [0, 0]))],
            "else", [], [helper.make_tensor_value_info("d", TensorProto.FLOAT, [2])])
        cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
        node = helper.make_node("If", ["cond"], ["z"], then_branch=branch, else_branch=other)
        add = helper.make_node("Add", ["x", "z"], ["y"])
        graph = helper.make_graph([node, add], "g", [x], [y], initializer=[cond])
    else:
        graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def onnx_external_data() -> None:
    write("onnx_external_data", "valid_inline.bin", onnx_model(None))
    write("onnx_external_data", "valid_external.bin", onnx_model("weights.bin"))
    write("onnx_external_data", "valid_nested_external.bin", onnx_model("../up.bin", nested=True))
    write("onnx_external_data", "valid_dotdot.bin", onnx_model("../../etc/passwd"))
    write("onnx_external_data", "valid_absolute.bin", onnx_model("/etc/passwd"))
    whole = onnx_model("weights.bin")
    write("onnx_external_data", "invalid_truncated.bin", whole[: len(whole) // 2])
    write("onnx_external_data", "valid_empty_group.bin", b"\x3b\x3c")
    write("onnx_external_data", "invalid_unterminated_group.bin", b"\x3b\x0b\x08\x01")
    write("onnx_external_data", "invalid_length_past_end.bin", b"\x3a\xff\xff\xff\xff\x0f")
    # A graph nested in a graph, deeper than protobuf allows.
    deep = b""
    for _ in range(120):
        attr = b"\x32" + _varint(len(deep)) + deep  # AttributeProto.g
        node = b"\x2a" + _varint(len(attr)) + attr  # NodeProto.attribute
        deep = b"\x0a" + _varint(len(node)) + node  # GraphProto.node
    write("onnx_external_data", "regression_deep_nesting.bin",
          b"\x3a" + _varint(len(deep)) + deep)  # ModelProto.graph


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def content_encoding() -> None:
    # First byte: 0 gzip, 1 deflate, 2 x-gzip, 3 identity, 4 br.
    body = b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}'
    named = gzip.compress(body, mtime=0)
    # FNAME and FCOMMENT set: the header has NUL-terminated fields to skip.
    flagged = bytearray(named[:10])
    flagged[3] = 0x08 | 0x10
    write("content_encoding", "valid_gzip_fname_fcomment.bin",
          b"\x00" + bytes(flagged) + b"body.json\x00comment\x00" + named[10:])
    # FHCRC set: a 2-byte header CRC follows the header.
    hcrc = bytearray(named[:10])
    hcrc[3] = 0x02
    crc = zlib.crc32(bytes(hcrc)) & 0xFFFF
    write("content_encoding", "valid_gzip_fhcrc.bin",
          b"\x00" + bytes(hcrc) + struct.pack("<H", crc) + named[10:])
    write("content_encoding", "invalid_gzip_header_only.bin", b"\x00" + named[:10])
    write("content_encoding", "valid_gzip_level9.bin", b"\x00" + gzip.compress(body * 50, 9, mtime=0))


if __name__ == "__main__":
    grpc_codec()
    csv_tensor()
    onnx_external_data()
    content_encoding()
