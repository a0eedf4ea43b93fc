"""PyTorch modules and TensorFlow/Keras models: loaded, exported to ONNX, and their parity proven.

Both frameworks give a tensor function, not an estimator, so Berth puts its
own serving contract around the exported graph:

- **input** `X` `[-1, n_features]`: rows as a CSV holds them. A module that
  takes `[N, C, H, W]` (or any rank) gets a `Reshape` in front, row-major,
  so a digits CNN is served 64 pixel columns per row. The shape comes from
  `--example-input` (`1,1,8,8[:float32]`), else from the SavedModel's
  signature, else from `--sample-data`'s width.
- **outputs**: a model answering `[N, K]` with K >= 2 is a classifier (unless
  `--target` holds non-integral values): `label` = ArgMax of the output,
  `probabilities` = its Softmax, or the output itself when it already is one
  (every row non-negative, summing to 1), classes 0..K-1. A model answering
  `[N]` or `[N, 1]` (or a non-integral target) is a regressor: `variable`.

The same head is applied to the original framework's answers (in numpy), so
parity compares the framework with onnxruntime on the whole function.

The exporter runs before the original is ever called: a TensorFlow graph that
tf2onnx cannot convert (file or Python ops among them) fails there, so parity
only runs graphs whose every op has an ONNX counterpart.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from berth import parity as parity_mod
from berth.convert import FLOAT32, FLOAT64, InputSpec, Signature
from berth.errors import BerthError
from berth.sources import Source

OPSET = 17
KINDS = ("torch", "tensorflow")  # the Source kinds this module converts
_DTYPES = {"float32": FLOAT32, "float": FLOAT32, "float64": FLOAT64, "double": FLOAT64}
# The graph's public names; the exported graph must not use them already.
_PUBLIC = ("X", "label", "probabilities", "variable")


def _reason(e: BaseException) -> str:
    """One line from a framework's exception: TorchScript and TensorFlow append tracebacks of the model's code."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    last = (lines[-1] if lines else "")[:300]
    return last if last.startswith(type(e).__name__) else f"{type(e).__name__}: {last}"


@dataclass
class ExampleInput:
    """The module's input: its shape without the batch dimension, and its float type."""

    inner: list[int]
    dtype: str = FLOAT32

    @property
    def width(self) -> int:
        return int(np.prod(self.inner)) if self.inner else 1


def parse_example_input(text: str) -> ExampleInput:
    """`1,1,8,8`, `1x64:float32` or `[1, 64]`: the first dimension is the batch."""
    shape, _, dtype = text.strip().strip("[]()").partition(":")
    dims = [d.strip() for d in shape.replace("x", ",").split(",") if d.strip()]
    try:
        values = [int(d) for d in dims]
    except ValueError:
        raise BerthError(f"--example-input '{text}': give the shape as numbers, e.g. 1,1,8,8 or 1,64:float32") from None
    if len(values) < 2 or any(v < 1 or v > 1 << 24 for v in values):
        raise BerthError(
            f"--example-input '{text}': give at least two positive dimensions, the batch first (e.g. 1,64)"
        )
    kind = _DTYPES.get(dtype.strip().lower() or "float32")
    if kind is None:
        raise BerthError(f"--example-input '{text}': the dtype must be float32 or float64")
    return ExampleInput(values[1:], kind)


@dataclass
class TensorFlowModel:
    """A SavedModel (or a Keras file exported to one) and the function that answers for the original."""

    saved_model: Path
    call: Any  # numpy batch -> numpy output, TensorFlow's own answer
    inner: list[int | None]
    dtype: str
    description: str
    keep: Any = field(default=None, repr=False)  # the temporary directory of an exported Keras file


# ---------------------------------------------------------------- loading


def load_tensorflow(path: Path, *, trust: bool) -> Source:
    """A SavedModel directory, or a `.keras`/`.h5` file (loaded in Keras' safe mode unless `trust`)."""
    import tensorflow as tf

    from berth.sources import sha256_file

    if path.is_dir():
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as e:
            raise BerthError(f"not a model directory: TensorFlow cannot load {path} ({_reason(e)})") from e
        signature = loaded.signatures.get("serving_default") if hasattr(loaded, "signatures") else None
        if signature is None:
            raise BerthError(f"the SavedModel {path} has no serving_default signature to convert")
        inputs = signature.structured_input_signature[1]
        outputs = signature.structured_outputs
        if len(inputs) != 1 or not isinstance(outputs, dict) or len(outputs) != 1:
            raise BerthError(
                f"the SavedModel {path}'s serving_default takes {len(inputs)} input(s) and gives "
                f"{len(outputs) if isinstance(outputs, dict) else '?'} output(s); Berth imports one input, one output"
            )
        (in_name, spec), (out_name,) = next(iter(inputs.items())), list(outputs)

        def call(batch: np.ndarray) -> np.ndarray:
            return np.asarray(signature(**{in_name: tf.constant(batch)})[out_name].numpy())

        model = TensorFlowModel(path, call, list(spec.shape)[1:], _tf_dtype(spec.dtype), "SavedModel(serving_default)")
        model.keep = loaded
        return Source(model, "tensorflow", "savedmodel", _directory_digest(path), path)

    import keras

    try:
        keras_model = keras.models.load_model(str(path), safe_mode=not trust, compile=False)
    except ValueError as e:
        if "safe_mode" in str(e) or "unsafe" in str(e).lower():
            raise BerthError(
                f"refusing to load {path}: it holds Python code (a Lambda layer), which Keras' safe mode does not "
                "run. Nothing was loaded. If you wrote this file yourself and trust it, pass --trust."
            ) from e
        raise BerthError(f"not a model file: Keras cannot load {path} ({_reason(e)})") from e
    except Exception as e:
        raise BerthError(f"not a model file: Keras cannot load {path} ({_reason(e)})") from e
    if len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1:
        raise BerthError(f"{path} has {len(keras_model.inputs)} inputs and {len(keras_model.outputs)} outputs; "
                         "Berth imports one input, one output")  # fmt: skip
    keep = tempfile.TemporaryDirectory(prefix="berth-keras-")
    exported = Path(keep.name) / "saved_model"
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the exported signature
            keras_model.export(str(exported), format="tf_saved_model")
    except Exception as e:
        keep.cleanup()
        raise BerthError(f"Keras cannot export {path} as a SavedModel for conversion ({_reason(e)})") from e
    shape = list(keras_model.inputs[0].shape)[1:]

    def keras_call(batch: np.ndarray) -> np.ndarray:
        return np.asarray(keras_model(batch, training=False))

    dtype = _tf_dtype(tf.as_dtype(keras_model.inputs[0].dtype))
    model = TensorFlowModel(exported, keras_call, shape, dtype, type(keras_model).__name__, keep)
    fmt = "keras" if path.suffix.lower() == ".keras" else "keras-h5"
    return Source(model, "tensorflow", fmt, sha256_file(path), path)


def _directory_digest(path: Path) -> str:
    """sha256 over a SavedModel's files (graph and variables): each one's relative path, size and bytes, in order."""
    import hashlib

    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _tf_dtype(dtype: Any) -> str:
    name = getattr(dtype, "name", str(dtype))
    if name not in ("float32", "float64"):
        raise BerthError(f"the model takes {name} input; Berth imports float32 or float64 models")
    return name


# ---------------------------------------------------------------- conversion


def _export_torch(module: Any, example: ExampleInput) -> onnx.ModelProto:
    import torch

    dtype = torch.float64 if example.dtype == FLOAT64 else torch.float32
    buffer = io.BytesIO()
    try:
        with torch.no_grad():
            torch.onnx.export(
                module,
                (torch.zeros(2, *example.inner, dtype=dtype),),
                buffer,
                dynamo=False,  # the TorchScript exporter: no onnxscript, and it reads TorchScript files too
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                opset_version=OPSET,
            )
    except Exception as e:
        raise BerthError(f"torch.onnx.export cannot export the module: {_reason(e)}") from e
    return onnx.load_from_string(buffer.getvalue())


def _export_tensorflow(model: TensorFlowModel) -> onnx.ModelProto:
    import tensorflow as tf
    from tf2onnx import tf_loader
    from tf2onnx.convert import _convert_common

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
                str(model.saved_model), None, None, None, ["serving_default"], None, False,
                return_initialized_tables=True, return_tensors_to_rename=True,
            )  # fmt: skip
            with tf.device("/cpu:0"):
                proto, _ = _convert_common(
                    graph_def, name=str(model.saved_model), opset=OPSET, input_names=inputs,
                    output_names=outputs, tensors_to_rename=renames, initialized_tables=tables,
                )  # fmt: skip
    except Exception as e:
        raise BerthError(f"tf2onnx cannot convert the model: {_reason(e)}") from e
    return proto


def _original(source: Source, example: ExampleInput, rows: np.ndarray) -> np.ndarray:
    """The framework's raw answer for `rows` ([N, width]) reshaped to the module's input."""
    batch = rows.reshape(-1, *example.inner).astype(example.dtype)
    if source.kind == "torch":
        import torch

        with torch.no_grad():
            out = source.model(torch.from_numpy(batch))
        if not isinstance(out, torch.Tensor):
            raise BerthError(f"the module answers a {type(out).__name__}; Berth imports modules that return one tensor")
        return out.detach().cpu().numpy()
    return np.asarray(source.model.call(batch))


@dataclass
class Head:
    task: str  # classification | regression
    width: int  # K: the classes, or the regression outputs
    softmax: bool = False


def _head(raw: np.ndarray, y: np.ndarray | None) -> Head:
    if raw.ndim == 1 or (raw.ndim == 2 and raw.shape[1] == 1):
        return Head("regression", 1)
    if raw.ndim != 2:
        raise BerthError(f"the model answers shape {list(raw.shape)}; Berth imports models that answer [N] or [N, K]")
    target = np.asarray(y) if y is not None else None
    if target is not None and np.issubdtype(target.dtype, np.number) and not np.all(np.mod(target, 1) == 0):
        return Head("regression", raw.shape[1])  # several outputs fitted to a continuous target
    already = bool(np.all(raw >= 0) and np.allclose(raw.sum(axis=1), 1.0, atol=1e-4))
    return Head("classification", raw.shape[1], softmax=not already)


def _apply_head(raw: np.ndarray, head: Head) -> parity_mod.Outputs:
    raw64 = raw.astype(np.float64)
    if head.task == "regression":
        return parity_mod.Outputs(values=raw64.reshape(len(raw64), -1))
    labels = raw.argmax(axis=1)
    if not head.softmax:
        return parity_mod.Outputs(labels=labels, probabilities=raw64)
    shifted = np.exp(raw64 - raw64.max(axis=1, keepdims=True))
    return parity_mod.Outputs(labels=labels, probabilities=shifted / shifted.sum(axis=1, keepdims=True))


def berth_graph(model: onnx.ModelProto, example: ExampleInput, head: Head) -> onnx.ModelProto:
    """Put Berth's contract around an exported graph: `X` [-1, width] in, label/probabilities or variable out."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise BerthError(
            f"the exported graph has {len(inputs)} inputs and {len(graph.output)} outputs; "
            "Berth imports one input, one output"
        )
    used = {n for node in graph.node for n in [*node.input, *node.output]} | initializers
    clash = [n for n in _PUBLIC if n in used and n not in (inputs[0].name, graph.output[0].name)]
    if clash:
        raise BerthError(f"the exported graph already uses the name(s) {', '.join(clash)}")
    elem = TensorProto.DOUBLE if example.dtype == FLOAT64 else TensorProto.FLOAT
    original_in, original_out = inputs[0], graph.output[0]
    out_elem = original_out.type.tensor_type.elem_type or TensorProto.FLOAT
    shape = numpy_helper.from_array(np.asarray([-1, *example.inner], dtype=np.int64), "berth_input_shape")
    graph.initializer.append(shape)
    front = helper.make_node("Reshape", ["X", "berth_input_shape"], [original_in.name], name="berth_input_reshape")
    graph.node.insert(0, front)
    graph.input.remove(original_in)
    graph.input.insert(0, helper.make_tensor_value_info("X", elem, [None, example.width]))
    tail = original_out.name
    del graph.output[:]
    if head.task == "classification":
        graph.node.append(helper.make_node("ArgMax", [tail], ["label"], axis=1, keepdims=0, name="berth_label"))
        op = "Softmax" if head.softmax else "Identity"
        kwargs = {"axis": 1} if head.softmax else {}
        graph.node.append(helper.make_node(op, [tail], ["probabilities"], name="berth_probabilities", **kwargs))
        graph.output.extend(
            [
                helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                helper.make_tensor_value_info("probabilities", out_elem, [None, head.width]),
            ]
        )
    else:
        width = numpy_helper.from_array(np.asarray([-1, head.width], dtype=np.int64), "berth_output_shape")
        graph.initializer.append(width)
        reshape = helper.make_node("Reshape", [tail, "berth_output_shape"], ["variable"], name="berth_variable")
        graph.node.append(reshape)
        graph.output.append(helper.make_tensor_value_info("variable", out_elem, [None, head.width]))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise BerthError(f"the exported graph does not check after Berth's input and output were added: {e}") from e
    return model


def _example(source: Source, given: ExampleInput | None, sample: pd.DataFrame | None) -> ExampleInput:
    if source.kind == "tensorflow":
        inner, dtype = source.model.inner, source.model.dtype
        if given is None:
            if any(d is None for d in inner):
                raise BerthError(
                    f"the model's input shape {['N', *inner]} has unknown dimensions: give --example-input "
                    "(e.g. 1,28,28,1)"
                )
            given = ExampleInput([int(d) for d in inner], dtype)
        elif len(inner) != len(given.inner) or any(
            d is not None and d != g for d, g in zip(inner, given.inner, strict=True)
        ):
            raise BerthError(f"--example-input's shape {given.inner} differs from the model's own {inner}")
        given = ExampleInput(given.inner, dtype)  # the signature's float type, whatever was asked
    if given is None:
        if sample is None:
            raise BerthError(
                "a PyTorch module does not say what it takes: give --example-input (e.g. 1,64 or 1,1,8,8) "
                "or --sample-data"
            )
        given = ExampleInput([sample.shape[1]])
    if sample is not None and sample.shape[1] != given.width:
        raise BerthError(
            f"the model takes {given.width} values per row (shape {given.inner}); "
            f"the data has {sample.shape[1]} columns besides the target"
        )
    return given


def convert_with_parity(
    source: Source,
    sample: pd.DataFrame | None,
    y: np.ndarray | None,
    example_input: ExampleInput | None,
    tolerance: float,
    step: Any,
) -> tuple[Signature, onnx.ModelProto, parity_mod.Parity, ExampleInput]:
    """Export, wrap in Berth's contract, and compare with the framework on the sample (or generated) rows."""
    example = _example(source, example_input, sample)
    columns = [str(c) for c in sample.columns] if sample is not None else [f"f{i}" for i in range(example.width)]
    step("converting")
    raw_model = _export_torch(source.model, example) if source.kind == "torch" else _export_tensorflow(source.model)
    if sample is not None:
        rows = sample[columns]
    else:
        rng = np.random.default_rng(0)
        rows = pd.DataFrame(rng.normal(0.0, 2.0, size=(256, example.width)), columns=columns)
    step("parity")
    try:
        raw = _original(source, example, rows.to_numpy(dtype=np.float64))
    except BerthError:
        raise
    except Exception as e:
        raise BerthError(f"the original model fails on the rows: {_reason(e)}") from e
    head = _head(raw, y)
    model = berth_graph(raw_model, example, head)
    labels: list[Any] = list(range(head.width)) if head.task == "classification" else []
    signature = Signature([InputSpec("X", columns, example.dtype)], head.task, labels)
    converted = parity_mod.OnnxModel(model)
    names = [o.name for o in converted.session.get_outputs()]
    answers = dict(zip(names, converted.session.run(None, signature.feeds(rows)), strict=True))
    if head.task == "classification":
        got = parity_mod.Outputs(labels=answers["label"], probabilities=answers["probabilities"])
    else:
        got = parity_mod.Outputs(values=np.asarray(answers["variable"], dtype=np.float64))
    figures = parity_mod.compare(_apply_head(raw, head), got, tolerance)
    return signature, model, figures, example


def describe(source: Source) -> tuple[str, str]:
    """(framework, estimator) for the metadata."""
    if source.kind == "tensorflow":
        return ("keras" if source.source_format.startswith("keras") else "tensorflow"), source.model.description
    name = getattr(source.model, "original_name", None) or type(source.model).__name__
    return "pytorch", str(name)
