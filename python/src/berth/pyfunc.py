"""An MLflow `python_function` model (nothing converts it to ONNX) into a model repository or a server's
registry, for the Python runtime.

`import_pyfunc` copies the MLflow directory into `<repository>/<name>/<N>/`
and writes `<repository>/<name>/config.yaml` (`backend: python`, `trust:
true`, `python.model_file: MLmodel`), or pushes the directory's files with
that config to a server (`--url`: the config becomes a new model's; a model
that exists must have the same one), with the signature the runtime needs:
one input per column (a DataFrame's columns, as the pyfunc takes them) from
the model's column signature, else from `--sample-data`; one output,
`prediction`, typed by running the model on those rows. Loading a pyfunc
unpickles its `python_model.pkl` (cloudpickle: arbitrary code), so nothing
happens without `--trust`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from berth.errors import BerthError
from berth.sources import sha256_file

OUTPUT = "prediction"
# MLflow's column types → v2 datatypes.
_MLFLOW_TYPES = {
    "double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL", "string": "BYTES",
}  # fmt: skip
_NUMPY_KINDS = {"f": "FP64", "i": "INT64", "u": "INT64", "b": "BOOL", "O": "BYTES", "U": "BYTES", "S": "BYTES"}
_CASTS = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "INT32": np.int32, "BOOL": np.bool_}


def pyfunc_only(path: Path, *, prefer: bool = False) -> dict[str, Any] | None:
    """The MLmodel of an MLflow directory whose only servable flavor is python_function (with `prefer`: that has
    one, whatever else it has); None for anything else."""
    if not path.is_dir() or not (path / "MLmodel").is_file():
        return None
    from berth.sources import _MLFLOW_FLAVORS as MLFLOW_FLAVORS

    try:
        mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        return None  # the converter path words that error
    flavors = mlmodel.get("flavors") if isinstance(mlmodel, dict) else None
    if not isinstance(flavors, dict) or "python_function" not in flavors:
        return None
    if not prefer and any(f in flavors for f in MLFLOW_FLAVORS):
        return None
    return mlmodel


def _signature_inputs(mlmodel: dict[str, Any]) -> list[dict[str, Any]] | None:
    """One input per column of the model's column signature; None without one."""
    signature = mlmodel.get("signature")
    if not isinstance(signature, dict) or not isinstance(signature.get("inputs"), str):
        return None
    try:
        columns = json.loads(signature["inputs"])
    except ValueError:
        return None
    if not isinstance(columns, list) or not columns:
        return None
    if any(not isinstance(c, dict) or c.get("type") not in _MLFLOW_TYPES or not c.get("name") for c in columns):
        raise BerthError(
            "the MLflow model's input signature is not one of named columns of double, float, long, integer, boolean "
            f"or string (it is {signature['inputs'][:200]}): the Python runtime feeds it a DataFrame of such columns"
        )
    return [{"name": str(c["name"]), "datatype": _MLFLOW_TYPES[c["type"]], "shape": [-1, 1]} for c in columns]


def _sample_inputs(sample: pd.DataFrame) -> list[dict[str, Any]]:
    return [{"name": str(c), "datatype": _NUMPY_KINDS.get(sample[c].dtype.kind, "BYTES"), "shape": [-1, 1]}
            for c in sample.columns]  # fmt: skip


def _rows(inputs: list[dict[str, Any]], sample: pd.DataFrame | None) -> pd.DataFrame:
    """Rows to type the output with: the sample's, else a few made from the signature."""
    if sample is not None:
        return sample[[i["name"] for i in inputs]].head(64)
    rng = np.random.default_rng(0)
    columns: dict[str, Any] = {}
    for i in inputs:
        if i["datatype"] == "BYTES":
            columns[i["name"]] = np.array(["a", "b", "c", "d"], dtype=object)
        else:
            columns[i["name"]] = rng.normal(size=4).astype(_CASTS[i["datatype"]])
    return pd.DataFrame(columns)


def _output(result: Any) -> dict[str, Any]:
    if isinstance(result, dict):
        raise BerthError("the pyfunc answers a dict: the Python runtime takes one output (an array, Series or frame)")
    array = np.asarray(result)
    if array.ndim == 0 or array.ndim > 2:
        raise BerthError(f"the pyfunc answers shape {list(array.shape)}: the Python runtime takes [N] or [N, K]")
    datatype = "FP64" if array.dtype.kind == "f" and array.dtype.itemsize == 8 else _NUMPY_KINDS.get(array.dtype.kind)
    if array.dtype == np.float32:
        datatype = "FP32"
    if datatype is None:
        raise BerthError(f"the pyfunc answers {array.dtype} values, which no v2 datatype carries")
    return {"name": OUTPUT, "datatype": datatype, "shape": [-1, *array.shape[1:]]}


def import_pyfunc(
    path: Path,
    mlmodel: dict[str, Any],
    *,
    name: str,
    repository: Path | None,
    push: Callable[[dict[str, bytes], dict[str, Any], str], int] | None = None,
    sample: pd.DataFrame | None,
    trust: bool,
    description: str | None,
    step: Callable[[str], None],
) -> tuple[int, Path | None, dict[str, Any]]:
    """Write the pyfunc at `path` as the next version of `name` in `repository`, or else hand its files, metadata and
    config to `push` (a server's registry; it answers the version): (version, directory or None, metadata)."""
    from berth.importer import write_repository_version

    loader = mlmodel["flavors"]["python_function"].get("loader_module") or "mlflow.pyfunc.model"
    if not trust:
        raise BerthError(
            f"the MLflow model at {path} is a python_function model ({loader}): nothing converts it to ONNX, so it "
            "is served by the Python runtime, and loading it runs the code its files hold (python_model.pkl is a "
            "cloudpickle). Pass --trust to import it (its config gets trust: true)"
        )
    inputs = _signature_inputs(mlmodel)
    if inputs is None and sample is None:
        raise BerthError(
            f"the MLflow model at {path} has no column signature: give --sample-data (its columns become the "
            "model's inputs), or log the model with a signature (mlflow.models.infer_signature)"
        )
    if inputs is None:
        assert sample is not None
        inputs = _sample_inputs(sample)
    elif sample is not None:
        missing = [i["name"] for i in inputs if i["name"] not in sample.columns]
        if missing:
            raise BerthError(f"--sample-data lacks the model's columns {', '.join(missing)}")
    step("loading the pyfunc")
    try:
        import mlflow.pyfunc
    except ImportError:
        raise BerthError("importing an MLflow pyfunc needs mlflow: pip install mlflow-skinny") from None
    try:
        model = mlflow.pyfunc.load_model(str(path))
        output = _output(model.predict(_rows(inputs, sample)))
    except BerthError:
        raise
    except Exception as e:  # the user's code: whatever it raises is the user's to fix
        raise BerthError(f"the MLflow model at {path} does not load and predict: {type(e).__name__}: {e}") from e
    metadata: dict[str, Any] = {
        "task": "other",
        "framework": "mlflow",
        "estimator": loader,
        "feature_names": [i["name"] for i in inputs],
        "lineage": {"source_digest": sha256_file(path / "MLmodel"), "source_format": "mlflow:python_function"},
        "extra": {"runtime": "python", "mlflow": {"run_id": mlmodel.get("run_id"), "loader_module": loader}},
    }
    created = mlmodel.get("utc_time_created")
    if isinstance(created, str):
        try:
            when = dt.datetime.fromisoformat(created).replace(tzinfo=dt.timezone.utc)
            metadata["trained_at"] = when.isoformat(timespec="seconds").replace("+00:00", "Z")
        except ValueError:
            pass
    if description:
        metadata["description"] = description
    config = {"name": name, "backend": "python", "trust": True, "max_batch_size": 0,
              "python": {"model_file": "MLmodel"}, "inputs": inputs, "outputs": [output]}  # fmt: skip
    step("registering")
    if repository is None:
        assert push is not None
        return push(version_files(path), metadata, yaml.safe_dump(config, sort_keys=False)), None, metadata
    existing = repository / name / "config.yaml"
    if existing.exists():
        try:
            current = yaml.safe_load(existing.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise BerthError(f"cannot read {existing}: {e}") from e
        if not isinstance(current, dict) or current.get("backend") != "python" or \
                (current.get("python") or {}).get("model_file") != "MLmodel":  # fmt: skip
            raise BerthError(f"model '{name}' in {repository} is not an MLflow model served by the Python runtime "
                             f"({existing}): import the pyfunc under another name")  # fmt: skip
    # The directory as MLflow wrote it, beside the metadata, through the repository's staging.
    version, directory = write_repository_version(
        repository, name, b"", metadata, files=path, config=yaml.safe_dump(config, sort_keys=False).encode()
    )
    return version, directory, metadata


def version_files(path: Path) -> dict[str, bytes]:
    """Every regular file under the MLflow directory `path` by its relative path (not __pycache__/), as a push
    carries a version that is a directory; a symbolic link is refused (the server would not follow it)."""
    files: dict[str, bytes] = {}
    for source in sorted(path.rglob("*")):
        relative = source.relative_to(path)
        if "__pycache__" in relative.parts:
            continue
        if source.is_symlink():
            raise BerthError(f"{source} is a symbolic link: a pushed version holds regular files only")
        if source.is_file():
            files[relative.as_posix()] = source.read_bytes()
    return files
