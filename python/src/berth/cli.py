"""`berth-py`: import, evaluate, optimize and batch-score models against a Berth server.

Errors the user can fix print one line (`berth-py: error: ...`) and exit 2.
Progress bars appear on a terminal only; in a pipe the output is the result.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from berth.errors import BerthError

T = TypeVar("T")


def _tty() -> bool:
    return sys.stderr.isatty()


def _size() -> dict[str, int]:
    # A terminal that reports no size (a fresh pty) would make tqdm print nothing.
    size = shutil.get_terminal_size()
    return {"ncols": size.columns or 80, "nrows": size.lines or 24}


class _Steps:
    """A progress bar over the named steps of an import, shown only on a terminal."""

    def __init__(self) -> None:
        self._bar: Any = None
        if _tty():
            from tqdm import tqdm

            self._bar = tqdm(total=None, bar_format="{desc} [{elapsed}]", file=sys.stderr, leave=False, **_size())

    def __call__(self, name: str) -> None:
        if self._bar is not None:
            self._bar.set_description_str(name)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _batches(items: Iterable[T], total: int) -> Iterator[T]:
    if not _tty():
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, total=total, file=sys.stderr, desc="evaluating", unit="batch", leave=False, **_size())


class _Rows:
    """A progress bar over input rows, shown only on a terminal (a total when the file says it)."""

    def __init__(self) -> None:
        self._bar: Any = None

    def total(self, rows: int | None) -> None:
        if _tty():
            from tqdm import tqdm

            self._bar = tqdm(total=rows, file=sys.stderr, desc="scoring", unit="row", unit_scale=True, leave=False,
                             **_size())  # fmt: skip

    def __call__(self, rows: int) -> None:
        if self._bar is not None:
            self._bar.update(rows)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _tls_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--ca-file", help="the CA bundle the server's certificate must chain to, for an https:// or "
                         "grpcs:// --url (default: $BERTH_CA_FILE, else the system's roots)")  # fmt: skip
    command.add_argument("--cert", help="a client certificate (PEM) for a server that wants mutual TLS "
                         "(default: $BERTH_CERT_FILE)")  # fmt: skip
    command.add_argument("--key", help="the client certificate's private key (PEM; default: $BERTH_KEY_FILE with "
                         "$BERTH_CERT_FILE, else in --cert's file)")  # fmt: skip


def _tls(args: argparse.Namespace) -> dict[str, Any]:
    """Client's TLS arguments from --ca-file, --cert and --key."""
    if args.key is not None and args.cert is None:
        raise BerthError("--key goes with --cert")
    cert = (args.cert, args.key) if args.key is not None else args.cert
    return {"ca_file": args.ca_file, "cert": cert}


def _parity_line(result: Any) -> str:
    if result.parity is None and result.metadata.get("extra", {}).get("runtime") == "python":
        return "parity: not measured (nothing was converted: the Python runtime serves the MLflow model itself)"
    if result.parity is None:
        return "parity: not measured (the file is ONNX already: it is the artifact)"
    return f"parity: {result.parity.describe()}: {'passed' if result.parity.passed else 'FAILED (--force)'}"


def _cmd_import(args: argparse.Namespace) -> int:
    from berth.importer import import_model

    # The frameworks' deprecation notices (torch.jit, the TorchScript exporter,
    # Keras) and TensorFlow's C++ start-up lines are not the user's to act on.
    for framework in ("torch", "tensorflow", "keras", "tf2onnx"):
        warnings.filterwarnings("ignore", module=framework)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    steps = _Steps()
    try:
        result = import_model(
            args.path,
            name=args.name,
            url=args.url,
            repository=args.repository,
            sample_data=args.sample_data,
            target=args.target,
            trust=args.trust,
            force=args.force,
            precision=args.precision,
            tolerance=args.tolerance,
            cv=args.cv,
            description=args.description,
            api_key=args.api_key,
            progress=steps,
            example_input=args.example_input,
            python_runtime=args.python_runtime,
            **_tls(args),
        )
    finally:
        steps.close()
    meta = result.metadata
    print(f"{meta['estimator']} ({meta['task']}) from {meta['lineage']['source_format']}")
    if "scan" in meta:
        scan = meta["scan"]
        print(f"scan: {len(scan['globals'])} globals, {'trusted by --trust' if scan['trusted'] else 'all allowed'}")
    print(_parity_line(result))
    for key, value in meta.get("metrics", {}).items():
        print(f"{key}: {value:.4g}")
    print(f"registered {result.name} version {result.version} at {result.location}")
    print(result.version)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from berth.client import Client, split_model_ref
    from berth.evaluation import evaluate

    result = evaluate(
        args.url, args.model, Path(args.data), args.target, api_key=args.api_key, batches=_batches, **_tls(args)
    )
    print(f"{result.name} version {result.version} ({result.task}) on {result.rows} rows of {args.data}")
    for key, value in result.metrics.items():
        print(f"{key}: {value:.6g}")
    if args.store:
        name, _ = split_model_ref(args.model)
        with Client(args.url, api_key=args.api_key, **_tls(args)) as client:
            client.store_evaluation(name, result.version, result.to_request())
        print(f"stored with {result.name} version {result.version}")
    if args.json:
        print(json.dumps({"model": result.name, "version": result.version, **result.to_request()}))
    return 0


def _cmd_optimize(args: argparse.Namespace) -> int:
    from berth.optimize import optimize

    result = optimize(
        args.url, args.name, args.version, args.quantize, tolerance=args.tolerance,
        min_label_agreement=args.min_label_agreement, force=args.force,
        artifact=Path(args.artifact) if args.artifact else None,
        sample_data=Path(args.sample_data) if args.sample_data else None,
        holdout=Path(args.data) if args.data else None, target=args.target,
        max_metric_drop=args.max_metric_drop, api_key=args.api_key, **_tls(args),
    )  # fmt: skip

    print(f"parity rows: {result.metadata['extra']['optimized_from']['parity_rows']}")
    print(_parity_line(result))
    print(f"registered {result.name} version {result.version} at {result.location}")
    print(result.version)
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from berth.batch import run_batch

    if args.through_server and not args.url:
        raise BerthError("--through-server sends the rows to --url: give the server's URL")
    if not (args.url or args.registry or args.repository):
        raise BerthError(
            "give where the model is: --url URL, --registry sqlite:PATH|postgresql://... or --repository DIR"
        )
    if args.url and args.repository:
        raise BerthError("give one of --url and --repository")
    bar = _Rows()
    try:
        result = run_batch(
            args.model, Path(args.input), Path(args.output),
            url=None if args.through_server else args.url, registry=args.registry, repository=args.repository,
            through_server_url=args.url if args.through_server else None,
            errors=Path(args.errors) if args.errors else None, keep=args.keep or None,
            features=[c.strip() for c in args.features.split(",")] if args.features else None,
            chunk_rows=args.chunk_rows, restart=args.restart, overwrite=args.overwrite, max_chunks=args.max_chunks,
            threads=args.threads, api_key=args.api_key, progress=bar, total=bar.total, **_tls(args),
        )  # fmt: skip
    except KeyboardInterrupt:
        bar.close()
        print(f"berth-py: interrupted; the same command resumes from {args.output}.checkpoint.json", file=sys.stderr)
        return 130
    finally:
        bar.close()
    where = "through the server" if args.through_server else "in process"
    resumed = f", resumed after {result.resumed_from} chunk(s)" if result.resumed_from else ""
    print(f"{result.model} version {result.version} ({where}{resumed}): {result.rows} rows read, "
          f"{result.scored} scored, {result.failed} failed")  # fmt: skip
    if result.failed:
        print(f"failed rows and their reasons: {result.errors}")
    if not result.complete:
        print(f"stopped after {result.chunks} chunk(s); the same command resumes it")
        return 3
    print(f"wrote {result.output}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="berth-py", description="Import, evaluate and optimize models for Berth.")
    p.add_argument("--api-key", default=None, help="API key (default: $BERTH_API_KEY)")
    sub = p.add_subparsers(dest="command", required=True)

    imp = sub.add_parser("import", help="convert a trained model to ONNX, prove parity and register it")
    imp.add_argument(
        "path",
        help="a pickle/joblib/skops file, an XGBoost/LightGBM model file, a PyTorch .pt/.pth file, a TensorFlow "
        "SavedModel directory or .keras file, an ONNX file or an MLflow directory",
    )
    imp.add_argument("--name", required=True, help="the model's name on the server")
    where = imp.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the server to push the version to (http://host:port or https://...)")
    where.add_argument("--repository", help="write the version into this model repository directory instead")
    imp.add_argument("--sample-data", help="CSV of training rows: parity rows, baseline profile, --cv data")
    imp.add_argument("--target", help="the target column of --sample-data (left out of the features)")
    imp.add_argument(
        "--trust", action="store_true", help="load a pickle that references globals outside the allow-list"
    )
    imp.add_argument("--force", action="store_true", help="register even when parity fails")
    imp.add_argument("--cv", type=int, help="report K-fold cross-validation of the estimator on --sample-data")
    imp.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "float32", "float64-float32", "float64"],
        help="the ONNX graph's float types (auto: the first of float32, float64-float32 "
        "(a pipeline's transformers in float64, its estimator in float32) and float64 "
        "whose parity holds)",
    )
    imp.add_argument("--tolerance", type=float, default=1e-5, help="parity tolerance (default 1e-5)")
    imp.add_argument(
        "--example-input",
        help="a PyTorch/TensorFlow model's input shape, batch first, and dtype: 1,64 or 1,1,8,8:float32 "
        "(served as rows of 64 values; default: the model's signature, else --sample-data's width)",
    )
    imp.add_argument("--description", help="stored with the version")
    imp.add_argument(
        "--python-runtime", action="store_true",
        help="serve an MLflow model's python_function flavor with the Python runtime (with --trust) instead of "
        "converting its other flavor; a pyfunc-only model goes there anyway",
    )  # fmt: skip
    _tls_flags(imp)
    imp.set_defaults(run=_cmd_import)

    ev = sub.add_parser("evaluate", help="run a holdout through the served model and report its metrics")
    ev.add_argument("--url", required=True)
    ev.add_argument("model", help="NAME, NAME:VERSION or NAME@ALIAS")
    ev.add_argument("--data", required=True, help="the holdout CSV")
    ev.add_argument("--target", required=True, help="the holdout's target column")
    ev.add_argument("--store", action="store_true", help="record the metrics with the version in the registry")
    ev.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    _tls_flags(ev)
    ev.set_defaults(run=_cmd_evaluate)

    opt = sub.add_parser("optimize", help="quantize a version into a new one, gated by parity")
    opt.add_argument("--url", required=True)
    opt.add_argument("name")
    opt.add_argument("version")
    opt.add_argument("--quantize", required=True, choices=["dynamic-int8"])
    opt.add_argument("--tolerance", type=float, default=0.15, help="parity tolerance (default 0.15)")
    opt.add_argument(
        "--min-label-agreement",
        type=float,
        default=0.99,
        help="share of rows whose label must not change (default 0.99)",
    )
    opt.add_argument(
        "--artifact",
        help="the version's model.onnx, where the server has no download route (checked against the registry's digest)",
    )
    opt.add_argument("--sample-data", help="CSV of rows for parity (default: rows generated from the signature)")
    opt.add_argument("--data", help="a holdout CSV: the quantized model must not do worse on it")
    opt.add_argument("--target", help="the holdout's target column")
    opt.add_argument(
        "--max-metric-drop",
        type=float,
        default=0.01,
        help="the largest accuracy drop (or relative RMSE rise) allowed (default 0.01)",
    )
    opt.add_argument("--force", action="store_true", help="register even when a gate fails")
    _tls_flags(opt)
    opt.set_defaults(run=_cmd_optimize)

    bat = sub.add_parser(
        "batch",
        help="score a CSV, JSON-lines or Parquet file with a registered version",
        description="A stopped run resumes when the same command runs again (OUTPUT.checkpoint.json).",
    )
    bat.add_argument("--model", required=True, help="NAME, NAME:VERSION or NAME@ALIAS")
    src = bat.add_mutually_exclusive_group()
    src.add_argument("--url", help="the server: its registry hands over the artifact (admin scope), or with "
                     "--through-server its inference route scores the rows")  # fmt: skip
    src.add_argument("--registry", help="a registry store, read-only: sqlite:PATH (the artifact from the repository "
                     "beside it or --repository) or postgresql://USER[:PASSWORD]@HOST:PORT/DB (the artifact "
                     "from the store; the password also from PGPASSWORD or ~/.pgpass)")  # fmt: skip
    bat.add_argument("--repository", help="a model repository directory (DIR/NAME/VERSION/model.onnx)")
    bat.add_argument("--input", required=True, help="the rows: .csv, .jsonl or .parquet")
    bat.add_argument("--output", required=True, help="where predictions go: .csv, .jsonl or .parquet")
    bat.add_argument("--errors", help="the rows that failed, with the reason (default OUTPUT.errors.jsonl)")
    bat.add_argument("--keep", action="append", metavar="COL", help="copy this input column to the output (repeat)")
    bat.add_argument("--features", help="COL,COL,...: the input columns a one-input model takes, in order "
                     "(default: the version's recorded feature names)")  # fmt: skip
    bat.add_argument("--through-server", action="store_true", help="score through --url's inference route")
    bat.add_argument("--chunk-rows", type=int, default=50_000, help="rows per chunk (default 50000)")
    bat.add_argument("--threads", type=int, default=0, help="onnxruntime threads in process (default: all cores)")
    bat.add_argument("--restart", action="store_true", help="drop a stopped run's checkpoint and output; start over")
    bat.add_argument("--overwrite", action="store_true", help="replace an OUTPUT a finished run left")
    bat.add_argument("--max-chunks", type=int, help=argparse.SUPPRESS)  # test hook: stop as if interrupted
    _tls_flags(bat)
    bat.set_defaults(run=_cmd_batch)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except BerthError as e:
        print(f"berth-py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
