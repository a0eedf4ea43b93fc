"""Writes the tiny ONNX models that the C++ unit tests load.

Run once with the `onnx` package installed; the outputs are committed beside
this script, so the unit tests need no Python:

    python tests/data/make_test_models.py

add_fp32.onnx         sum = a + b, FP32 [N, 3] each (N symbolic).
identity_all_types.onnx
                      one Identity per v2 datatype: input `x_<DT>` ->
                      output `y_<DT>`, shape [-1, -1], for BOOL, UINT8..UINT64,
                      INT8..INT64, FP16, FP32, FP64 and BYTES (ONNX string).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import onnx
from onnx import TensorProto, helper

HERE: Final = Path(__file__).resolve().parent
OPSET: Final = 17
IR_VERSION: Final = 8  # old enough for any ONNX Runtime of the last years

V2_TO_ONNX: Final = {
    "BOOL": TensorProto.BOOL,
    "UINT8": TensorProto.UINT8,
    "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32,
    "UINT64": TensorProto.UINT64,
    "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16,
    "INT32": TensorProto.INT32,
    "INT64": TensorProto.INT64,
    "FP16": TensorProto.FLOAT16,
    "FP32": TensorProto.FLOAT,
    "FP64": TensorProto.DOUBLE,
    "BYTES": TensorProto.STRING,
}


def save(graph: onnx.GraphProto, name: str) -> None:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path = HERE / name
    onnx.save(model, path)
    print(f"{path.name}: {path.stat().st_size} bytes")


def add_fp32() -> onnx.GraphProto:
    shape = ["N", 3]
    return helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"])],
        "add",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, shape),
        ],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, shape)],
    )


def identity_all_types() -> onnx.GraphProto:
    shape = [None, None]  # unnamed dimensions: ONNX Runtime reports -1
    nodes: list[onnx.NodeProto] = []
    inputs: list[onnx.ValueInfoProto] = []
    outputs: list[onnx.ValueInfoProto] = []
    for v2, onnx_type in V2_TO_ONNX.items():
        nodes.append(helper.make_node("Identity", [f"x_{v2}"], [f"y_{v2}"]))
        inputs.append(helper.make_tensor_value_info(f"x_{v2}", onnx_type, shape))
        outputs.append(helper.make_tensor_value_info(f"y_{v2}", onnx_type, shape))
    return helper.make_graph(nodes, "identity", inputs, outputs)


def main() -> None:
    save(add_fp32(), "add_fp32.onnx")
    save(identity_all_types(), "identity_all_types.onnx")


if __name__ == "__main__":
    main()
