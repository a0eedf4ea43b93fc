"""Converting a loaded model to ONNX, with the signature Berth serves it under.

Classifiers come out as `label` (one per row) and `probabilities` (one column
per class, in `class_labels` order; no ZipMap), regressors as `variable`.
A model fed one numeric matrix has one input `X` of shape [-1, n_features];
a model whose ColumnTransformer selects columns by name has one [-1, 1] input
per column (BYTES for string columns), named after the column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import pandas as pd

from berth.errors import BerthError
from berth.sources import Source

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
FLOAT32 = "float32"
FLOAT64 = "float64"
# float64 in, the pipeline's transformers in float64, the final estimator in
# float32: what scikit-learn computes for a scaler in front of trees (trees
# cast their input to float32), which neither all-float32 (onnxruntime#4130:
# the scaler's mean and scale rounded) nor all-float64 (skl2onnx#1183: trees
# compare doubles) reproduces near a threshold.
MIXED = "float64-float32"


@dataclass
class InputSpec:
    """One ONNX input: its name, the DataFrame columns it takes, and its element type."""

    name: str
    columns: list[str]
    kind: str  # "float32" | "float64" | "string"


@dataclass
class Signature:
    """What the converted model takes and gives."""

    inputs: list[InputSpec]
    task: str  # classification | regression
    class_labels: list[Any] = field(default_factory=list)

    @property
    def feature_names(self) -> list[str]:
        return [c for spec in self.inputs for c in spec.columns]

    def check_columns(self, frame: pd.DataFrame) -> None:
        """Raise naming the feature columns `frame` lacks."""
        missing = [c for c in self.feature_names if c not in frame.columns]
        if missing:
            raise BerthError(
                f"the data lacks the model's feature column(s) {', '.join(map(str, missing))} "
                f"(the model takes {', '.join(map(str, self.feature_names))})"
            )

    def feeds(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """The ONNX feeds for the rows of `frame` (columns named as `feature_names`)."""
        self.check_columns(frame)
        feeds: dict[str, np.ndarray] = {}
        for spec in self.inputs:
            block = frame[spec.columns]
            if spec.kind == "string":
                feeds[spec.name] = block.astype(str).to_numpy().reshape(-1, len(spec.columns))
            elif spec.kind == MIXED:
                feeds[spec.name] = block.to_numpy(dtype=np.float64)
            else:
                try:
                    values = block.to_numpy(dtype=np.float64)
                except (ValueError, TypeError) as e:
                    raise BerthError(f"input '{spec.name}' takes numbers, and the data's columns are not ({e})") from e
                feeds[spec.name] = values.astype(spec.kind)
        return feeds


def estimator_name(model: Any) -> str:
    """'Pipeline(StandardScaler, LogisticRegression)' and the like."""
    steps = getattr(model, "steps", None)
    if isinstance(steps, list):
        return f"{type(model).__name__}({', '.join(estimator_name(s[1]) for s in steps)})"
    return type(model).__name__


def final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return final_estimator(steps[-1][1]) if isinstance(steps, list) and steps else model


def task_of(model: Any) -> str:
    from sklearn.base import is_classifier

    return "classification" if is_classifier(model) or hasattr(final_estimator(model), "classes_") else "regression"


def _column_transformers(model: Any) -> list[Any]:
    from sklearn.compose import ColumnTransformer

    if isinstance(model, ColumnTransformer):
        return [model]
    steps = getattr(model, "steps", None)
    return [t for _, step in steps for t in _column_transformers(step)] if isinstance(steps, list) else []


def _is_string_encoder(transformer: Any) -> bool:
    steps = getattr(transformer, "steps", None)
    if isinstance(steps, list):
        return any(_is_string_encoder(s[1]) for s in steps)
    categories = getattr(transformer, "categories_", None)
    return isinstance(categories, list) and any(np.asarray(c).dtype.kind in "OUS" for c in categories)


def signature_of(model: Any, sample: pd.DataFrame | None, precision: str) -> Signature:
    """The inputs a scikit-learn-compatible `model` is converted with."""
    task = task_of(model)
    labels = [_plain(c) for c in getattr(final_estimator(model), "classes_", [])] if task == "classification" else []
    names = getattr(model, "feature_names_in_", None)
    transformers = _column_transformers(model)
    if names is not None and transformers:
        string_columns: set[str] = set()
        for ct in transformers:
            for _, trans, cols in ct.transformers_:
                if isinstance(cols, (list, np.ndarray)) and _is_string_encoder(trans):
                    string_columns.update(str(c) for c in cols)
        if sample is not None:
            string_columns.update(str(c) for c in names if c in sample and sample[c].dtype == object)
        inputs = [InputSpec(str(c), [str(c)], "string" if str(c) in string_columns else precision) for c in names]
        return Signature(inputs, task, labels)
    count = getattr(model, "n_features_in_", None)
    if count is None and sample is not None:
        count = sample.shape[1]
    if count is None:
        raise BerthError("the model does not say how many features it takes: give --sample-data")
    columns = [str(c) for c in names] if names is not None else [f"f{i}" for i in range(int(count))]
    if sample is not None and names is None:
        if sample.shape[1] != count:
            raise BerthError(
                f"the model takes {count} features (it was fitted without column names, so they are taken "
                f"in order); the data has {sample.shape[1]} columns besides the target"
            )
        columns = [str(c) for c in sample.columns]
    return Signature([InputSpec("X", columns, precision)], task, labels)


def _plain(value: Any) -> int | str:
    """A class label as the metadata keeps it: an int, or a string (an integral float is an int)."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value.decode() if isinstance(value, bytes) else str(value)


_REGISTERED = False


def _register_boosters() -> None:
    """Teach skl2onnx the XGBoost and LightGBM scikit-learn wrappers (onnxmltools' converters)."""
    global _REGISTERED
    if _REGISTERED:
        return
    _REGISTERED = True
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        import xgboost
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost

        update_registered_converter(
            xgboost.XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=options,
        )
        update_registered_converter(
            xgboost.XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes, convert_xgboost
        )
    except ImportError:
        pass
    try:
        import lightgbm
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(
            lightgbm.LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=options,
        )
        update_registered_converter(
            lightgbm.LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes, convert_lightgbm
        )
    except ImportError:
        pass


def to_onnx(source: Source, signature: Signature) -> onnx.ModelProto:
    """Convert `source` with `signature`; raise BerthError naming what does not convert."""
    if source.kind == "sklearn":
        if all(s.kind == MIXED for s in signature.inputs):
            return _sklearn_mixed(source.model, signature)
        return _sklearn(source.model, signature)
    if source.kind == "lightgbm-booster":
        return _lightgbm_booster(source.model, signature)
    if source.kind == "xgboost-booster":
        raise BerthError("load XGBoost models through XGBClassifier/XGBRegressor (a model file or a pickle of one)")
    raise BerthError(f"Berth cannot convert a {source.kind} model here")


def has_mixed_form(model: Any, signature: Signature) -> bool:
    """Whether `model` is a pipeline of numeric transformers ending in an estimator, fed one matrix."""
    steps = getattr(model, "steps", None)
    return (
        isinstance(steps, list)
        and len(steps) >= 2
        and len(signature.inputs) == 1
        and (signature.inputs[0].kind != "string")
        and hasattr(steps[-1][1], "n_features_in_")
    )


def _sklearn_mixed(model: Any, signature: Signature) -> onnx.ModelProto:
    from onnx import TensorProto, compose, helper
    from sklearn.pipeline import Pipeline

    head = Pipeline(model.steps[:-1])
    tail = model.steps[-1][1]
    double = Signature([InputSpec(s.name, s.columns, FLOAT64) for s in signature.inputs], "regression")
    first = _sklearn(head, double)
    width = int(tail.n_features_in_)
    second = _sklearn(
        tail,
        Signature(
            [InputSpec("features32", [f"t{i}" for i in range(width)], FLOAT32)], signature.task, signature.class_labels
        ),
    )
    produced = first.graph.output[0].name
    first.graph.node.append(helper.make_node("Cast", [produced], ["features32_out"], to=TensorProto.FLOAT))
    first.graph.output.pop()
    first.graph.output.append(helper.make_tensor_value_info("features32_out", TensorProto.FLOAT, [None, width]))
    domains = {o.domain: o.version for o in [*first.opset_import, *second.opset_import]}
    for m in (first, second):
        del m.opset_import[:]
        m.opset_import.extend(helper.make_opsetid(d, v) for d, v in domains.items())
        m.ir_version = max(first.ir_version, second.ir_version)
    return compose.merge_models(first, second, io_map=[("features32_out", "features32")])


def _sklearn(model: Any, signature: Signature) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
    from skl2onnx.common.exceptions import MissingShapeCalculator

    _register_boosters()
    model = _without_xgboost_feature_names(model)
    types = {FLOAT32: FloatTensorType, FLOAT64: DoubleTensorType, MIXED: DoubleTensorType, "string": StringTensorType}
    initial = [(s.name, types[s.kind]([None, len(s.columns)])) for s in signature.inputs]
    options: dict[Any, Any] = {}
    if signature.task == "classification":
        options[id(final_estimator(model))] = {"zipmap": False}
    try:
        return convert_sklearn(model, initial_types=initial, target_opset=TARGET_OPSET, options=options)
    except MissingShapeCalculator as e:
        raise BerthError(
            f"{estimator_name(model)} has a step skl2onnx cannot convert ({e}); such a model "
            "needs the Python runtime (backend `python`), which this Berth does not have yet"
        ) from e
    except (RuntimeError, NotImplementedError, TypeError, ValueError) as e:
        raise BerthError(f"{estimator_name(model)} does not convert to ONNX: {e}") from e


def _without_xgboost_feature_names(model: Any) -> Any:
    """A copy whose XGBoost boosters forget their feature names (onnxmltools reads only f0, f1, ...)."""
    import copy

    def boosters(m: Any) -> list[Any]:
        steps = getattr(m, "steps", None)
        if isinstance(steps, list):
            return [b for _, step in steps for b in boosters(step)]
        return [m] if type(m).__module__.startswith("xgboost") and hasattr(m, "get_booster") else []

    if not boosters(model) or all(b.get_booster().feature_names is None for b in boosters(model)):
        return model
    clone = copy.deepcopy(model)
    for b in boosters(clone):
        b.get_booster().feature_names = None
    return clone


def _lightgbm_booster(booster: Any, signature: Signature) -> onnx.ModelProto:
    from onnxmltools import convert_lightgbm
    from skl2onnx.common.data_types import FloatTensorType

    spec = signature.inputs[0]
    model = convert_lightgbm(
        booster, initial_types=[(spec.name, FloatTensorType([None, len(spec.columns)]))], zipmap=False, target_opset=15
    )  # onnxmltools' highest for LightGBM
    return _rename_outputs(model, signature.task)


def _rename_outputs(model: onnx.ModelProto, task: str) -> onnx.ModelProto:
    """Berth's output names (label, probabilities / variable) on a graph a converter named otherwise."""
    wanted = ["label", "probabilities"] if task == "classification" else ["variable"]
    renames = {o.name: w for o, w in zip(model.graph.output, wanted, strict=False) if o.name != w}
    for node in model.graph.node:
        for i, name in enumerate(node.output):
            if name in renames:
                node.output[i] = renames[name]
    for output in model.graph.output:
        output.name = renames.get(output.name, output.name)
    return model


def booster_signature(booster: Any, sample: pd.DataFrame | None) -> Signature:
    """The signature of a native LightGBM Booster (one input X)."""
    objective = str(booster.params.get("objective", booster.dump_model().get("objective", "")))
    classification = objective.startswith(("binary", "multiclass", "multiclassova"))
    names = [str(n) for n in booster.feature_name()]
    if sample is not None and sample.shape[1] == len(names) and not set(names) <= set(map(str, sample.columns)):
        names = [str(c) for c in sample.columns]
    classes = int(booster.dump_model().get("num_class", 1))
    labels: list[Any] = list(range(max(classes, 2))) if classification else []
    return Signature([InputSpec("X", names, FLOAT32)], "classification" if classification else "regression", labels)


def onnx_io(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    """The graph's input and output names."""
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers], [o.name for o in model.graph.output]


_ONNX_KINDS = {onnx.TensorProto.FLOAT: FLOAT32, onnx.TensorProto.DOUBLE: FLOAT64,
               onnx.TensorProto.STRING: "string"}  # fmt: skip
_V2_KINDS = {"FP32": FLOAT32, "FP64": FLOAT64, "BYTES": "string"}


def signature_from(model: onnx.ModelProto, metadata: dict[str, Any]) -> Signature:
    """The signature recorded at import (metadata.extra.inputs), else one read off the graph."""
    names, outputs = onnx_io(model)
    inputs = []
    for value in model.graph.input:
        if value.name in names:
            tensor = value.type.tensor_type
            dims = [d.dim_value for d in tensor.shape.dim]
            width = dims[-1] if len(dims) == 2 and dims[-1] > 0 else 1
            inputs.append((value.name, _ONNX_KINDS.get(tensor.elem_type), width))
    return signature_from_inputs(inputs, len(outputs), metadata)


def signature_from_v2(model_metadata: dict[str, Any], metadata: dict[str, Any]) -> Signature:
    """The same from a server's model metadata (GET /v2/models/{m}: inputs' name, datatype, shape)."""
    inputs = []
    for spec in model_metadata.get("inputs", []):
        shape = [int(d) for d in spec.get("shape", [])]
        width = shape[-1] if len(shape) == 2 and shape[-1] > 0 else 1
        inputs.append((str(spec["name"]), _V2_KINDS.get(str(spec.get("datatype"))), width))
    return signature_from_inputs(inputs, len(model_metadata.get("outputs", [])), metadata)


def signature_from_inputs(
    inputs: list[tuple[str, str | None, int]], n_outputs: int, metadata: dict[str, Any]
) -> Signature:
    """A signature from the inputs' (name, kind or None, width) and the version's metadata.

    The column mapping recorded at import (metadata.extra.inputs) wins.
    Otherwise a model of several inputs takes one column per input, named
    after it; a single [-1, n] input takes the version's recorded
    `feature_names` when there are n of them, else columns f0..f{n-1}.
    """
    task = metadata.get("task") or ("classification" if n_outputs == 2 else "regression")
    labels = list(metadata.get("class_labels", []))
    recorded = (metadata.get("extra") or {}).get("inputs")
    if isinstance(recorded, list) and recorded:
        specs = [InputSpec(str(i["name"]), [str(c) for c in i["columns"]], str(i["kind"])) for i in recorded]
        return Signature(specs, task, labels)
    feature_names = metadata.get("feature_names")
    specs = []
    for name, kind, width in inputs:
        if kind is None:
            raise BerthError(f"input '{name}' has an element type Berth does not feed from columns")
        if width == 1 and len(inputs) > 1:
            columns = [name]
        elif isinstance(feature_names, list) and len(feature_names) == width and len(inputs) == 1:
            columns = [str(c) for c in feature_names]
        else:
            columns = [f"f{i}" for i in range(width)]
        specs.append(InputSpec(name, columns, kind))
    return Signature(specs, task, labels)
