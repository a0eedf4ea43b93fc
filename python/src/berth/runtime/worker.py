"""The worker process: `python -m berth.runtime.worker --fd 3 --model-file PATH`.

Started by the server (src/backends/python/), it loads one model, says READY
with its signature, then answers INFER frames one at a time until the server
closes the socket. It exits when its parent is gone, even mid-request.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from berth.runtime import framing
from berth.runtime.models import BadInput, Runnable, load

# User code raising these was handed input it cannot use.
_INPUT_ERRORS = (BadInput, ValueError, TypeError, KeyError, IndexError)


def _watch_parent(parent: int) -> None:
    """Exits when the server is gone (reparented): no orphan survives a crashed server.

    PR_SET_PDEATHSIG would fire when the server *thread* that spawned the
    worker ends, which is any request thread: the parent's pid is watched instead.
    """
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def _cast(outputs: dict[str, np.ndarray], declared: dict[str, str]) -> dict[str, np.ndarray]:
    cast = {}
    for name, array in outputs.items():
        want = declared.get(name)
        if want is None:
            if array.dtype.kind in "OUS":
                cast[name] = array.astype(object)
            else:
                cast[name] = array
        elif want == "BYTES":
            cast[name] = array.astype(object)
        else:
            cast[name] = array.astype(framing.NUMPY_TYPES[want], copy=False)
    return cast


def _error_text(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) < 4000 else text[:4000] + "..."


def serve(sock: socket.socket, model: Runnable, declared: dict[str, str]) -> None:
    while True:
        body = framing.read_frame(sock)
        if body is None:
            return
        try:
            inputs, output_names = framing.decode_infer(body)
        except framing.FrameError as e:
            framing.write_frame(sock, framing.encode_error(framing.ERROR_INTERNAL, f"bad frame: {e}"))
            continue
        try:
            outputs = _cast(model.run(inputs, output_names), declared)
            reply = framing.encode_result(outputs)
        except _INPUT_ERRORS as e:
            reply = framing.encode_error(framing.ERROR_INVALID_ARGUMENT, _error_text(e))
        except Exception as e:  # noqa: BLE001 - any failure of user code is reported, the worker lives on
            traceback.print_exc(file=sys.stderr)
            reply = framing.encode_error(framing.ERROR_INTERNAL, _error_text(e))
        framing.write_frame(sock, reply)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="berth.runtime.worker")
    parser.add_argument("--fd", type=int, required=True, help="the socket to the server")
    parser.add_argument("--model-file", type=Path, required=True)
    parser.add_argument("--output", action="append", default=[], help="NAME=DATATYPE the config declares")
    args = parser.parse_args(argv)
    # The model's prints reach the server log line by line, not when a pipe's buffer fills.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    sock = socket.socket(fileno=args.fd)
    declared = dict(o.split("=", 1) for o in args.output)
    try:
        model = load(args.model_file)
        inputs, outputs = model.signature()
    except Exception as e:  # noqa: BLE001 - every load failure goes back to the server as the reason
        traceback.print_exc(file=sys.stderr)
        framing.write_frame(sock, framing.encode_error(framing.ERROR_INTERNAL, _error_text(e)))
        return 1
    framing.write_frame(sock, framing.encode_ready(inputs, outputs))
    try:
        serve(sock, model, declared)
    except (ConnectionError, framing.FrameError) as e:
        print(f"berth worker: stopping: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
