"""Reading a trained model from what the user has: a file or a directory.

Every pickle-based file is scanned before anything unpickles it
(`pickle_scan`); the bytes are read once, so the file that was scanned is the
file that loads. What comes back is a `Source`: the model object, what it is,
and where it came from.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from berth import pickle_scan
from berth.errors import BerthError

PYTHON_RUNTIME_MISSING = (
    "needs the Python runtime (backend `python`), which this Berth does not have yet; "
    "export the model to a format that converts (a scikit-learn, XGBoost or LightGBM model, "
    "TorchScript, or ONNX)"
)


@dataclass
class Source:
    """A loaded model and its provenance."""

    model: Any
    kind: str  # sklearn | xgboost-booster | lightgbm-booster | torch | tensorflow | onnx
    # pickle | joblib | skops | xgboost-json | lightgbm-text | torchscript | torch-pickle | savedmodel | keras
    # | keras-h5 | onnx | mlflow:<flavor>/<format>
    source_format: str
    digest: str  # "sha256:<hex>" of the file (or of the MLflow model file)
    path: Path
    scan: pickle_scan.ScanResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def load_source(path: Path, *, trust: bool) -> Source:
    """Read the model at `path`; refuse unsafe pickles unless `trust`; raise BerthError when it is not a model."""
    if not path.exists():
        raise BerthError(f"{path} does not exist")
    if path.is_dir():
        return _load_directory(path, trust=trust)
    suffix = path.suffix.lower()
    if suffix in (".keras", ".h5"):
        return _tensorflow(path, trust=trust)
    if suffix == ".skops":
        return _load_skops(path, trust=trust)
    if suffix == ".onnx":
        return _load_onnx(path)
    data = path.read_bytes()
    if not data:
        raise BerthError(f"not a model file: {path} is empty")
    if suffix in (".pt", ".pth") or (data[:2] == b"PK" and _is_torch_archive(data)):
        return _load_torch(path, data, trust=trust)
    if suffix in (".json", ".ubj") or data[:1] == b"{":
        return _load_xgboost(path, data)
    if data.startswith(b"tree\n") or suffix == ".txt":
        return _load_lightgbm(path, data)
    if pickle_scan.is_pickle_like(data[:8]):
        return _load_pickle(path, data, trust=trust)
    raise BerthError(
        f"not a model file: {path} is neither a pickle/joblib/skops file, an XGBoost or LightGBM model "
        "file, TorchScript, ONNX, a Keras file, a TensorFlow SavedModel nor an MLflow model directory"
    )


def _is_torch_archive(data: bytes) -> bool:
    """A zip that torch.save or torch.jit.save wrote (it holds <name>/data.pkl)."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(n.endswith("/data.pkl") for n in archive.namelist())
    except zipfile.BadZipFile:
        return False


def _load_pickle(path: Path, data: bytes, *, trust: bool) -> Source:
    try:
        result = pickle_scan.scan_bytes(data, path)
    except BerthError as e:
        raise BerthError(f"not a model file: {path}: {e}") from e
    pickle_scan.refuse_unless_trusted(result, path, trust)
    import joblib

    try:
        model = joblib.load(io.BytesIO(data))
    except Exception as e:
        raise BerthError(f"{path} passed the safety check but does not load: {type(e).__name__}: {e}") from e
    fmt = "joblib" if result.joblib else "pickle"
    return _from_object(model, path, fmt, _digest(data), result)


def _from_object(model: Any, path: Path, fmt: str, digest: str, scan: pickle_scan.ScanResult | None) -> Source:
    """Classify a loaded object; anything that is not a model is refused."""
    module = type(model).__module__
    if module.startswith("xgboost") and type(model).__name__ == "Booster":
        return Source(model, "xgboost-booster", fmt, digest, path, scan)
    if module.startswith("lightgbm") and type(model).__name__ == "Booster":
        return Source(model, "lightgbm-booster", fmt, digest, path, scan)
    if hasattr(model, "fit") and (hasattr(model, "predict") or hasattr(model, "transform")):
        return Source(model, "sklearn", fmt, digest, path, scan)
    raise BerthError(f"not a model file: {path} holds a {module}.{type(model).__name__}, not a fitted estimator")


def _load_skops(path: Path, *, trust: bool) -> Source:
    try:
        import skops.io as sio
    except ImportError as e:
        raise BerthError("reading .skops files needs skops: pip install skops") from e
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as e:
        raise BerthError(f"not a model file: {path} does not read as a skops file ({e})") from e
    scan = pickle_scan.ScanResult(globals=list(untrusted), scanner="skops+berth-allowlist")
    scan.disallowed = sorted(t for t in untrusted if not pickle_scan.is_allowed(t))
    pickle_scan.refuse_unless_trusted(scan, path, trust)
    model = sio.load(path, trusted=list(untrusted))
    return _from_object(model, path, "skops", sha256_file(path), scan)


def _load_xgboost(path: Path, data: bytes) -> Source:
    try:
        import xgboost
    except ImportError as e:
        raise BerthError("XGBoost model files need xgboost: pip install 'berth[boosters]'") from e
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        document = None  # UBJSON (xgboost's default binary format) also starts with '{'
    if (
        data[:1] == b"{"
        and document is not None
        and not (isinstance(document, dict) and isinstance(document.get("learner"), dict))
    ):
        raise BerthError(f"not a model file: {path} is JSON but not an XGBoost model")
    model: Any = xgboost.XGBRegressor()
    try:
        model.load_model(bytearray(data))
    except xgboost.core.XGBoostError as e:
        raise BerthError(f"not a model file: XGBoost cannot read {path}: {str(e).splitlines()[0]}") from e
    objective = json.loads(model.get_booster().save_config())["learner"]["objective"]["name"]
    if objective.startswith(("binary:", "multi:")):
        model = xgboost.XGBClassifier()
        model.load_model(bytearray(data))
    return Source(model, "sklearn", "xgboost-json" if document is not None else "xgboost-ubj", _digest(data), path)


def _load_lightgbm(path: Path, data: bytes) -> Source:
    try:
        import lightgbm
    except ImportError as e:
        raise BerthError("LightGBM model files need lightgbm: pip install 'berth[boosters]'") from e
    try:
        booster = lightgbm.Booster(model_str=data.decode())
    except (lightgbm.basic.LightGBMError, UnicodeDecodeError) as e:
        raise BerthError(f"not a model file: LightGBM cannot read {path} ({e})") from e
    return Source(booster, "lightgbm-booster", "lightgbm-text", _digest(data), path)


def _load_torch(path: Path, data: bytes, *, trust: bool) -> Source:
    """TorchScript (torch.jit.load), else a torch.save archive: weights only, or a whole pickled module.

    A pickled module is code: its data.pkl is scanned like any pickle and
    loads only with `trust` (it always names the module's own class, which no
    allow-list can know). A state dict alone has no code to export.
    """
    try:
        import torch
    except ImportError:
        raise BerthError(
            f"{path} looks like a PyTorch file, and torch is not installed here "
            "(scripts/setup.sh installs it; or pip install 'berth[torch]')"
        ) from None
    digest = _digest(data)
    try:
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        return Source(module.eval(), "torch", "torchscript", digest, path)
    except RuntimeError:
        pass
    if not _is_torch_archive(data):
        raise BerthError(f"not a model file: {path} is neither TorchScript nor an archive torch.save wrote")
    try:
        weights = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        weights = None  # it names more than tensors and containers: a pickled module (or worse)
    except Exception as e:
        raise BerthError(f"not a model file: torch cannot read {path} ({type(e).__name__}: {e})") from e
    if weights is not None:
        raise BerthError(
            f"{path} holds weights without the module's code (a {type(weights).__name__}); save the module itself: "
            "torch.jit.script(module).save(path) (TorchScript, no --trust needed) or torch.save(module, path)"
        )
    scan = pickle_scan.scan_torch_archive(data, path)
    pickle_scan.refuse_unless_trusted(scan, path, trust)
    try:
        module = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as e:
        raise BerthError(f"{path} passed the safety check but does not load: {type(e).__name__}: {e}") from e
    if not isinstance(module, torch.nn.Module):
        raise BerthError(f"not a model file: {path} holds a {type(module).__name__}, not a torch.nn.Module")
    return Source(module.eval(), "torch", "torch-pickle", digest, path, scan)


def _load_onnx(path: Path) -> Source:
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:
        raise BerthError(f"not a model file: {path} is not a valid ONNX model ({e})") from e
    return Source(model, "onnx", "onnx", sha256_file(path), path)


def _tensorflow(path: Path, *, trust: bool) -> Source:
    try:
        import tensorflow  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        raise BerthError(
            f"{path} is a TensorFlow/Keras model, and TensorFlow is not installed here (with tf2onnx; "
            "scripts/setup.sh installs tensorflow-cpu and tf2onnx, or pip install 'berth[tensorflow]')"
        ) from None
    from berth.neural import load_tensorflow

    return load_tensorflow(path, trust=trust)


def _load_directory(path: Path, *, trust: bool) -> Source:
    if (path / "MLmodel").is_file():
        return _load_mlflow(path, trust=trust)
    if (path / "saved_model.pb").is_file():
        return _tensorflow(path, trust=trust)
    raise BerthError(f"not a model directory: {path} has neither an MLmodel file (MLflow) nor saved_model.pb")


# MLflow flavors Berth converts, and the file each keeps its model in.
_MLFLOW_FLAVORS = ("sklearn", "xgboost", "lightgbm", "onnx", "pytorch", "tensorflow", "keras")


def _mlflow_candidates(directory: Path) -> list[Path]:
    """The model inside a flavor's data directory: a Keras file or SavedModel first, else its first file."""
    children = sorted(directory.iterdir())
    tensors = [p for p in children if p.suffix.lower() in (".keras", ".h5") or (p / "saved_model.pb").is_file()]
    return tensors + [p for p in children if p.is_file() and p not in tensors]


def _load_mlflow(path: Path, *, trust: bool) -> Source:
    try:
        mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise BerthError(f"{path / 'MLmodel'} is not valid YAML: {e}") from e
    flavors = mlmodel.get("flavors") if isinstance(mlmodel, dict) else None
    if not isinstance(flavors, dict) or not flavors:
        raise BerthError(f"{path / 'MLmodel'} names no flavors")
    for flavor in _MLFLOW_FLAVORS:
        conf = flavors.get(flavor)
        if not isinstance(conf, dict):
            continue
        name = (
            conf.get("pickled_model") or conf.get("data") or conf.get("model_data") or conf.get("saved_model_dir") or ""
        )
        file = (path / str(name)).resolve()
        if not str(name) or not file.is_relative_to(path.resolve()):
            raise BerthError(f"the MLflow {flavor} flavor names no model file inside {path}")
        if file.is_dir() and not (file / "saved_model.pb").is_file():  # lightgbm/pytorch/keras keep a directory
            candidates = _mlflow_candidates(file)
            if not candidates:
                raise BerthError(f"the MLflow {flavor} flavor's {file} is empty")
            file = candidates[0]
        source = load_source(file, trust=trust)
        source.source_format = f"mlflow:{flavor}/{source.source_format}"
        source.extra["mlflow"] = {"run_id": mlmodel.get("run_id"), "flavor": flavor}
        if isinstance(mlmodel.get("signature"), dict):
            source.extra["mlflow"]["signature"] = mlmodel["signature"]
        return source
    if "python_function" in flavors:
        loader = flavors["python_function"].get("loader_module", "a custom python_function")
        raise BerthError(f"the MLflow model at {path} is a {loader} model, which {PYTHON_RUNTIME_MISSING}")
    raise BerthError(f"the MLflow model at {path} has no flavor Berth converts (it has {', '.join(flavors)})")
