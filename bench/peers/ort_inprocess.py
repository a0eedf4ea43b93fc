"""The compute floor: ONNX Runtime's Python API running the model on one row, in process.

Prints one JSON object: calls made, calls per second and the per-call time
(mean, p50, p99) in microseconds. Run by bench/run.py pinned to the server
core, with one intra-op and one inter-op thread:

    python bench/peers/ort_inprocess.py --model model.onnx --row 5.1,3.5,1.4,0.2 --duration 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import onnxruntime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--row", required=True, help="comma-separated input values")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to measure")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds to run first, unmeasured")
    args = parser.parse_args()

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    feeds = {session.get_inputs()[0].name: np.array([[float(v) for v in args.row.split(",")]], dtype=np.float32)}
    output_names = [output.name for output in session.get_outputs()]

    warmup_end = time.perf_counter() + args.warmup
    while time.perf_counter() < warmup_end:
        session.run(output_names, feeds)

    # Each call timed on its own: perf_counter_ns costs well under 1% of a session.run call.
    timer = time.perf_counter_ns
    durations_ns: list[int] = []
    start = timer()
    end = start + int(args.duration * 1e9)
    now = start
    while now < end:
        session.run(output_names, feeds)
        after = timer()
        durations_ns.append(after - now)
        now = after
    per_call_us = np.array(durations_ns, dtype=np.float64) / 1e3
    calls = len(durations_ns)
    json.dump(
        {
            "onnxruntime": onnxruntime.__version__,
            "calls": calls,
            "calls_per_s": calls / ((now - start) / 1e9),
            "mean_us": float(per_call_us.mean()),
            "p50_us": float(np.percentile(per_call_us, 50)),
            "p99_us": float(np.percentile(per_call_us, 99)),
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
