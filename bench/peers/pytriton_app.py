"""Triton Inference Server (through PyTriton) serving the pickled scikit-learn model.

PyTriton runs the tritonserver binary bundled in its wheel and binds a Python
function as the model, so Triton's own HTTP/gRPC front ends, scheduler and
dynamic batcher sit in front of the same scikit-learn call as the other
Python peers. Run by bench/run.py in the peer venv:

    python bench/peers/pytriton_app.py --pickle model.pkl --http-port P --grpc-port Q

Outputs: `label` INT64 [N, 1] and `probabilities` FP32 [N, 3] (a batched
Triton model has a batch dimension on every output).
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import signal
import sys
import sysconfig
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import numpy.typing as npt
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pickle", type=Path, required=True)
    parser.add_argument("--model-name", default="iris_logreg")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--http-threads", type=int, default=1)
    parser.add_argument("--workspace", type=Path, default=None, help="PyTriton's working files (default: its cache)")
    args = parser.parse_args()

    with args.pickle.open("rb") as file:
        model = pickle.load(file)

    @batch  # type: ignore[untyped-decorator]  # pytriton ships no type information
    def infer(X: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[Any]]:
        return {
            "label": model.predict(X).astype(np.int64).reshape(-1, 1),
            "probabilities": model.predict_proba(X).astype(np.float32),
        }

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)  # unwinds through serve() so that `with Triton` stops tritonserver

    signal.signal(signal.SIGTERM, stop)
    _use_own_libpython()
    logging.basicConfig(level=logging.WARNING)
    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=args.http_port,
        http_thread_count=args.http_threads,
        grpc_address="127.0.0.1",
        grpc_port=args.grpc_port,
        allow_metrics=False,
        log_verbose=0,
    )
    with Triton(config=config, workspace=args.workspace) as triton:
        triton.bind(
            model_name=args.model_name,
            infer_func=infer,
            inputs=[Tensor(name="X", dtype=np.float32, shape=(4,))],
            outputs=[
                Tensor(name="label", dtype=np.int64, shape=(1,)),
                Tensor(name="probabilities", dtype=np.float32, shape=(3,)),
            ],
            config=ModelConfig(max_batch_size=64),
            strict=True,
        )
        print("pytriton: serving", flush=True)
        triton.serve()
    return 0


def _use_own_libpython() -> None:
    """Make Triton's Python backend stub load this interpreter's libpython.

    The stub links libpython3.X.so by name; without this it may find the
    system's copy (Debian's 3.11.2) while importing this interpreter's
    standard library (say pyenv's 3.11.7), and the two disagree on internals
    (seen: `_thread.RLock` has no `_recursion_count`).
    """
    libdir = sysconfig.get_config_var("LIBDIR")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir:
        paths = [libdir, *filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":"))]
        os.environ["LD_LIBRARY_PATH"] = ":".join(paths)


if __name__ == "__main__":
    sys.exit(main())
