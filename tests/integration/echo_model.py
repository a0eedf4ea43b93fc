"""A tiny ONNX model over BYTES and BOOL, built at test time with the `onnx` package.

Inputs `text` (BYTES [-1]) and `flag` (BOOL [-1]); outputs

    text_out = text                          (Identity: any bytes in, the same bytes out)
    flag_out = flag                          (Identity)
    pick     = flag ? text : NOT_UTF8        (Where: bytes that are not UTF-8 from JSON input)

so that every door can be sent the same requests, and the JSON doors can be
made to return BYTES that are not valid UTF-8 even when they cannot send them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import onnx
import pytest
from onnx import TensorProto, helper

from berth_server import BerthServer, berth_binary
from models import ModelRepository  # noqa: F401  (puts examples/ on sys.path for train_models)
from train_models import ModelConfig

NOT_UTF8: Final = b"\xff\xfe not UTF-8 \xc3"
OPSET: Final = 17
IR_VERSION: Final = 8


def echo_model() -> onnx.ModelProto:
    batch = ["N"]
    not_utf8 = helper.make_tensor("not_utf8", TensorProto.STRING, [1], [NOT_UTF8])
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["text"], ["text_out"]),
            helper.make_node("Identity", ["flag"], ["flag_out"]),
            helper.make_node("Constant", [], ["fallback"], value=not_utf8),
            helper.make_node("Where", ["flag", "text", "fallback"], ["pick"]),
        ],
        "echo",
        [
            helper.make_tensor_value_info("text", TensorProto.STRING, batch),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, batch),
        ],
        [
            helper.make_tensor_value_info("text_out", TensorProto.STRING, batch),
            helper.make_tensor_value_info("flag_out", TensorProto.BOOL, batch),
            helper.make_tensor_value_info("pick", TensorProto.STRING, batch),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def write_echo_model(repository: Path, name: str) -> Path:
    """Write the model as version 1 of `name` in `repository`; return the model directory."""
    model_dir = repository / name
    ModelConfig(name=name).write(model_dir)
    version_dir = model_dir / "1"
    version_dir.mkdir()
    onnx.save_model(echo_model(), version_dir / "model.onnx")
    return model_dir


ECHO_MODEL: Final = "echo"


def raw_bytes(values: list[bytes]) -> bytes:
    """BYTES elements in the raw form of the binary extension and gRPC: each a 4-byte little-endian length, then the bytes."""
    return b"".join(len(v).to_bytes(4, "little") + v for v in values)


def start_echo_server(tmp_path_factory: pytest.TempPathFactory, extra_args: Sequence[str] = ()) -> BerthServer:
    """A server (REST and gRPC) whose repository holds only ECHO_MODEL."""
    repository = tmp_path_factory.mktemp("echo_repository")
    write_echo_model(repository, ECHO_MODEL)
    log_path = tmp_path_factory.mktemp("echo_berth") / "berth.log"
    return BerthServer.start(berth_binary(), repository, log_path, extra_args=extra_args)
