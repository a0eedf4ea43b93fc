"""From a trained model to a verified, registered version.

`import_model` loads the artifact (scanning pickles first), converts it to
ONNX, proves parity on sample rows, profiles the training sample and
registers the version: pushed to a server (`url`) or written into a model
repository directory (`repository`). Nothing is registered when parity fails,
unless `force`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from berth import baseline, convert, data, metrics, neural, parity, pyfunc
from berth.client import Client, ClientCert, encode_metadata
from berth.errors import BerthError
from berth.sources import Source, load_source

GENERATED_ROWS = 256
# How long a pyfunc push may take: the server starts a Python worker and loads the model before it answers.
PYFUNC_PUSH_TIMEOUT_S = 300.0
PRECISIONS = ("auto", convert.FLOAT32, convert.MIXED, convert.FLOAT64)


@dataclass
class ImportResult:
    name: str
    version: int
    metadata: dict[str, Any]
    parity: parity.Parity | None  # None for an ONNX file (nothing was converted)
    location: str  # the server URL or the version's directory


def _versions(*packages: str) -> dict[str, str]:
    out = {}
    for package in packages:
        try:
            out[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def generated_rows(signature: convert.Signature, model: Any, rows: int = GENERATED_ROWS) -> pd.DataFrame:
    """Rows made from the signature when the user gives none: numbers around 0, categories the encoders know."""
    rng = np.random.default_rng(0)
    categories: dict[str, list[Any]] = {}
    for ct in convert._column_transformers(model):
        for _, trans, cols in ct.transformers_:
            encoder = trans.steps[-1][1] if hasattr(trans, "steps") else trans
            named = cols if isinstance(cols, (list, np.ndarray)) else []
            for col, cats in zip(named, getattr(encoder, "categories_", []), strict=False):
                categories[str(col)] = list(cats)
    columns: dict[str, Any] = {}
    for spec in signature.inputs:
        for col in spec.columns:
            if spec.kind == "string":
                known = categories.get(col) or ["a", "b"]
                columns[col] = rng.choice(np.asarray(known, dtype=object), size=rows)
            else:
                columns[col] = rng.normal(0.0, 2.0, size=rows)
    return pd.DataFrame(columns)


def _signature(source: Source, sample: pd.DataFrame | None, precision: str) -> convert.Signature:
    if source.kind == "lightgbm-booster":
        return convert.booster_signature(source.model, sample)
    if source.kind != "sklearn":
        raise BerthError(f"a {source.kind} model is not converted by this importer")
    return convert.signature_of(source.model, sample, precision)


def _convert_with_parity(
    source: Source,
    sample: pd.DataFrame | None,
    rows: pd.DataFrame | None,
    precision: str,
    tolerance: float,
    step: Callable[[str], None],
) -> tuple[convert.Signature, onnx.ModelProto, parity.Parity, list[str], pd.DataFrame]:
    """Convert at each candidate precision until parity holds; the last candidate tried if none does.

    float32 first: it is what tree models compare in (skl2onnx#1183, trees fed
    doubles split differently); then a pipeline's transformers in float64 and
    its final estimator in float32 (a StandardScaler's mean and scale rounded
    to float32 move rows across a tree's threshold, onnxruntime#4130); then
    float64 throughout.
    """
    candidates = [convert.FLOAT32, convert.MIXED, convert.FLOAT64] if precision == "auto" else [precision]
    mixed = source.kind == "sklearn" and convert.has_mixed_form(
        source.model, _signature(source, sample, convert.FLOAT32)
    )
    if precision == "auto" and not mixed:
        candidates.remove(convert.MIXED)
    if precision == convert.MIXED and not mixed:
        raise BerthError("--precision float64-float32 applies to a Pipeline fed one numeric matrix")
    if source.kind == "lightgbm-booster":
        candidates = [convert.FLOAT32]
    tried: list[str] = []
    result = None
    for candidate in candidates:
        signature = _signature(source, sample, candidate)
        check_rows = rows if rows is not None else generated_rows(signature, source.model)
        step(f"converting ({candidate})")
        try:
            model = convert.to_onnx(source, signature)
            converted_model = parity.OnnxModel(model)
        except BerthError as e:
            tried.append(f"{candidate}: {e}")
            if candidate == candidates[-1] and result is None:
                raise BerthError("; ".join(tried)) from e
            continue
        step(f"parity ({candidate})")
        original = parity.original_outputs(source, signature, check_rows)
        converted = converted_model.run(signature, check_rows)
        figures = parity.compare(original, converted, tolerance)
        tried.append(f"{candidate}: {figures.describe()}")
        result = (signature, model, figures, tried, check_rows)
        if figures.passed:
            break
    assert result is not None
    return result


def import_model(
    path: Path | str,
    *,
    name: str,
    url: str | None = None,
    repository: Path | str | None = None,
    sample_data: Path | str | None = None,
    target: str | None = None,
    trust: bool = False,
    force: bool = False,
    precision: str = "auto",
    tolerance: float = parity.DEFAULT_TOLERANCE,
    cv: int | None = None,
    description: str | None = None,
    api_key: str | None = None,
    progress: Callable[[str], None] | None = None,
    example_input: str | None = None,
    ca_file: str | None = None,
    cert: ClientCert | None = None,
    python_runtime: bool = False,
) -> ImportResult:
    """Import the model file or directory at `path` as the next version of `name` (see the module's docstring)."""
    if (url is None) == (repository is None):
        raise BerthError("give exactly one of --url and --repository")
    if precision not in PRECISIONS:
        raise BerthError(f"precision must be one of {', '.join(PRECISIONS)}")
    step = progress or (lambda _: None)
    path = Path(path)
    sample_path = Path(sample_data) if sample_data is not None else None
    sample: pd.DataFrame | None = None
    y: np.ndarray | None = None
    if sample_path is not None:
        frame = data.read_csv(sample_path, what="sample data")
        sample, y = data.split_target(frame, target, sample_path)
    elif target is not None:
        raise BerthError("--target names a column of --sample-data: give --sample-data too")
    if cv is not None and (cv < 2 or y is None):
        raise BerthError("--cv K needs K >= 2 and --sample-data with --target")

    example = neural.parse_example_input(example_input) if example_input is not None else None

    if python_runtime and pyfunc.pyfunc_only(path, prefer=True) is None:
        raise BerthError("--python-runtime takes an MLflow model directory with a python_function flavor")
    if (mlmodel := pyfunc.pyfunc_only(path, prefer=python_runtime)) is not None:
        if cv is not None or example is not None or precision != "auto":
            raise BerthError("--cv, --example-input and --precision apply to models converted to ONNX, not a pyfunc")
        if repository is not None:
            version, directory, metadata = pyfunc.import_pyfunc(
                path, mlmodel, name=name, repository=Path(repository), sample=sample, trust=trust,
                description=description, step=step,
            )  # fmt: skip
            return ImportResult(name, version, metadata, None, str(directory))
        assert url is not None
        # The server answers once its trial load has started a worker and loaded the pyfunc (up to the
        # config's startup_timeout_ms, 120 s by default), so the push waits longer than a request.
        with Client(url, api_key=api_key, ca_file=ca_file, cert=cert, timeout=PYFUNC_PUSH_TIMEOUT_S) as client:
            # The directory and a new model's config in one push (the server refuses another model's config).
            version, _, metadata = pyfunc.import_pyfunc(
                path, mlmodel, name=name, repository=None, sample=sample, trust=trust, description=description,
                step=step, push=lambda files, meta, config: client.push_files(name, files, meta, config=config),
            )  # fmt: skip
        return ImportResult(name, version, metadata, None, url)
    step("scanning and loading")
    source = load_source(path, trust=trust)
    if example is not None and source.kind not in neural.KINDS:
        raise BerthError("--example-input applies to PyTorch and TensorFlow models")

    figures: parity.Parity | None = None
    if source.kind in neural.KINDS:
        if precision != "auto":
            raise BerthError("--precision applies to scikit-learn models; a tensor model keeps its own float type")
        signature, model, figures, example = neural.convert_with_parity(source, sample, y, example, tolerance, step)
        source.extra["input_shape"] = [-1, *example.inner]
        if not figures.passed and not force:
            raise BerthError(
                f"parity failed, so nothing was registered: the ONNX export of {path} does not reproduce "
                f"the original ({figures.describe()}). Pass --force to register it anyway."
            )
    elif source.kind == "onnx":  # already the artifact: nothing to convert, no original to compare with
        signature, model = _onnx_signature(source.model, sample), source.model
        parity.OnnxModel(model)  # it must load in onnxruntime before it is registered
    else:
        signature, model, figures, tried, _ = _convert_with_parity(source, sample, sample, precision, tolerance, step)
        if not figures.passed and not force:
            raise BerthError(
                f"parity failed, so nothing was registered: the ONNX conversion of {path} does not reproduce "
                f"the original ({'; '.join(tried)}). Pass --force to register it anyway."
            )
    metadata = _metadata(source, signature, model, figures)
    if sample is not None and sample_path is not None:
        metadata["dataset"] = data.dataset_record(sample_path, len(sample))
        step("profiling the sample")
        outputs = parity.OnnxModel(model).session.run(None, signature.feeds(sample))
        names = [o.name for o in model.graph.output]
        metadata["baseline"] = baseline.profile(signature, sample, dict(zip(names, outputs, strict=True)))
    if cv is not None and y is not None:
        if source.kind != "sklearn":
            raise BerthError("--cv cross-validates scikit-learn estimators only")
        step(f"{cv}-fold cross-validation")
        features: Any = sample[signature.feature_names] if sample is not None else None
        if getattr(source.model, "feature_names_in_", None) is None:
            features = features.to_numpy()
        metadata["metrics"] = metrics.cross_validate(source.model, features, y, cv, signature.task)
    if description:
        metadata["description"] = description
    artifact = model.SerializeToString()
    step("registering")
    if url is not None:
        with Client(url, api_key=api_key, ca_file=ca_file, cert=cert) as client:
            version = client.push(name, artifact, metadata)
        location = url
    else:
        assert repository is not None
        version, directory = write_repository_version(Path(repository), name, artifact, metadata)
        location = str(directory)
    return ImportResult(name, version, metadata, figures, location)


def _onnx_signature(model: onnx.ModelProto, sample: pd.DataFrame | None) -> convert.Signature:
    """An ONNX file's signature off its graph; a one-input model's columns named as the sample's."""
    from berth.convert import signature_from

    signature = signature_from(model, {})
    if sample is not None and len(signature.inputs) == 1 and len(signature.inputs[0].columns) == sample.shape[1]:
        signature.inputs[0].columns = [str(c) for c in sample.columns]
    return signature


def _metadata(
    source: Source, signature: convert.Signature, model: onnx.ModelProto, figures: parity.Parity | None
) -> dict[str, Any]:
    framework = {"sklearn": "scikit-learn", "lightgbm-booster": "lightgbm"}.get(source.kind, source.kind)
    estimator = convert.estimator_name(source.model) if source.kind != "onnx" else "ONNX graph"
    module = type(convert.final_estimator(source.model)).__module__.split(".")[0]
    if module in ("xgboost", "lightgbm"):
        framework = module
    if source.kind in neural.KINDS:
        framework, estimator = neural.describe(source)
    mtime = dt.datetime.fromtimestamp(os.stat(source.path).st_mtime, tz=dt.timezone.utc)
    metadata: dict[str, Any] = {
        "task": signature.task,
        "framework": framework,
        "estimator": estimator,
        "trained_at": mtime.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "feature_names": signature.feature_names,
        "lineage": {
            "source_digest": source.digest,
            "source_format": source.source_format,
            "converters": _versions(
                "scikit-learn",
                "skl2onnx",
                "onnxmltools",
                "onnx",
                "onnxruntime",
                "xgboost",
                "xgboost-cpu",
                "lightgbm",
                "skops",
                "torch",
                "tensorflow-cpu",
                "tensorflow",
                "keras",
                "tf2onnx",
                "berth",
            ),
        },
        "extra": {
            "inputs": [{"name": s.name, "columns": s.columns, "kind": s.kind} for s in signature.inputs],
            "onnx_opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
            **source.extra,
        },
    }
    if figures is not None:
        metadata["parity"] = figures.to_metadata()
    if signature.class_labels:
        metadata["class_labels"] = signature.class_labels
    if source.scan is not None:
        metadata["scan"] = source.scan.to_metadata()
    return metadata


def write_repository_version(
    root: Path, name: str, artifact: bytes, metadata: dict[str, Any], *, files: Path | None = None,
    config: bytes | None = None,
) -> tuple[int, Path]:  # fmt: skip
    """Write <root>/<name>/<N>/model.onnx and metadata.json (and config.yaml for a new model); N is the next number.

    `files`, a directory, is copied in instead of model.onnx (an MLflow
    model for the Python runtime); `config` replaces the ONNX config.yaml a
    new model gets.

    The version is written to a hidden staging directory, fsynced and renamed
    into place, so a server polling the repository sees it whole or not at
    all; two imports at once get distinct numbers (a rename onto a version
    that appeared meanwhile fails, and the next number is tried).
    """
    from berth.names import check_model_name

    check_model_name(name)
    encode_metadata(metadata)  # the same limits as a push, before anything is written
    model_dir = root / name
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        config_file = model_dir / "config.yaml"
        if not config_file.exists():
            _write_durably(config_file, config or f"name: {name}\nbackend: onnx\nmax_batch_size: 0\n".encode())
        staging = Path(tempfile.mkdtemp(prefix=".import-", dir=model_dir))
    except OSError as e:
        raise BerthError(f"cannot write into the model repository {root}: {e}") from e
    try:
        if files is None:
            _write_durably(staging / "model.onnx", artifact)
        else:
            for source in sorted(files.rglob("*")):
                target = staging / source.relative_to(files)
                if source.is_dir():
                    target.mkdir(exist_ok=True)
                else:
                    _write_durably(target, source.read_bytes())
        _write_durably(staging / "metadata.json", (json.dumps(metadata, indent=2, allow_nan=False) + "\n").encode())
        for _ in range(100):
            taken = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
            version = max(taken, default=0) + 1
            final = model_dir / str(version)
            if final.exists():
                continue
            try:
                staging.rename(final)
            except OSError:
                continue  # another import took this number meanwhile
            return version, final
        raise BerthError(f"could not claim a version number in {model_dir}")
    except OSError as e:
        raise BerthError(f"cannot write into the model repository {root}: {e}") from e
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
