#!/usr/bin/env python3
"""`optimize --quantize dynamic-int8` on an MLP: size and latency before/after, and the parity it kept.

The MLP (StandardScaler + 2x256 ReLU layers, breast cancer data) is converted
as `berth-py import` converts it, then quantized as `berth-py optimize` does.
Latency is one row per call through onnxruntime in process, one thread, the
median of --calls calls after a warm-up: the model's own cost, without the
server's (which is the same for both). Run it alone:

    .venv/bin/python bench/python_optimize.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from berth import convert, parity
from berth.optimize import quantize_dynamic_int8
from berth.sources import Source


def latency_us(model: parity.OnnxModel, signature: convert.Signature, rows: object, calls: int) -> float:
    feeds = signature.feeds(rows)  # type: ignore[arg-type]
    single = {k: v[:1] for k, v in feeds.items()}
    for _ in range(100):
        model.session.run(None, single)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        model.session.run(None, single)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    data = load_breast_cancer(as_frame=True)
    X = data.data.rename(columns=lambda c: str(c).replace(" ", "_"))
    model = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=300, random_state=0)
    ).fit(X, data.target)
    source = Source(model, "sklearn", "pickle", "", Path("."))
    signature = convert.signature_of(model, X, convert.FLOAT32)
    original_bytes = convert.to_onnx(source, signature).SerializeToString()
    quantized_bytes = quantize_dynamic_int8(original_bytes)
    original, quantized = parity.OnnxModel(original_bytes), parity.OnnxModel(quantized_bytes)
    figures = parity.compare(original.run(signature, X), quantized.run(signature, X), 0.05, min_label_agreement=0.99)
    before = latency_us(original, signature, X, args.calls)
    after = latency_us(quantized, signature, X, args.calls)
    print("| | size | latency, 1 row (median) |\n| --- | --- | --- |")
    print(f"| float32 | {len(original_bytes) / 1024:.0f} KiB | {before:.1f} µs |")
    print(f"| dynamic int8 | {len(quantized_bytes) / 1024:.0f} KiB | {after:.1f} µs |")
    print(f"\nparity on the {len(X)} training rows: {figures.describe()}: {'kept' if figures.passed else 'LOST'}")
    print(f"labels unchanged vs scikit-learn: {np.mean(quantized.run(signature, X).labels == model.predict(X)):.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
