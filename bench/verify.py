"""Check that a target answers the benchmark request correctly before it is loaded.

A server that answers fast but wrong (an error status, another label) must
not make it into the table. Labels are compared exactly; probabilities, where
a server returns them, within a float32 tolerance (the peers compute in
scikit-learn's float64, Berth in ONNX Runtime's float32).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from model import BenchModel

LABEL_OUTPUTS: Final = ("label", "predict")  # Berth and the hand-written peers; MLServer's sklearn runtime
PROBABILITY_OUTPUTS: Final = ("probabilities", "predict_proba")
PROBABILITY_ATOL: Final = 1e-5
_TIMEOUT_S: Final = 10


class VerificationError(RuntimeError):
    """The target's answer was wrong or missing."""


@dataclass(frozen=True)
class Answer:
    """What one verified request returned."""

    response_bytes: int  # size of the response body (REST) or serialized message (gRPC)


def _check_outputs(outputs: Mapping[str, Sequence[float]], model: BenchModel, who: str) -> None:
    label_name = next((name for name in LABEL_OUTPUTS if name in outputs), None)
    if label_name is None:
        raise VerificationError(f"{who}: no label output among {sorted(outputs)}")
    label = outputs[label_name]
    if len(label) != 1 or int(label[0]) != model.expected_label:
        raise VerificationError(f"{who}: label {list(label)} != expected [{model.expected_label}]")
    probability_name = next((name for name in PROBABILITY_OUTPUTS if name in outputs), None)
    if probability_name is not None:
        got = np.asarray(outputs[probability_name], dtype=np.float64)
        want = np.asarray(model.expected_probabilities, dtype=np.float64)
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=PROBABILITY_ATOL):
            raise VerificationError(f"{who}: probabilities {got.tolist()} != expected {want.tolist()}")


def verify_rest(
    url: str, model: BenchModel, headers: dict[str, str] | None = None, ca_file: Path | None = None
) -> Answer:
    """POST the benchmark body to `url`; VerificationError unless the answer is right."""
    request = urllib.request.Request(
        url, data=model.rest_body, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file is not None else None
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S, context=context) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        raise VerificationError(f"POST {url}: HTTP {error.code}: {error.read()[:500]!r}") from None
    except (urllib.error.URLError, OSError) as error:
        raise VerificationError(f"POST {url}: {error}") from None
    try:
        document: Any = json.loads(body)
        outputs = {output["name"]: np.ravel(output["data"]).tolist() for output in document["outputs"]}
    except (ValueError, KeyError, TypeError) as error:
        raise VerificationError(f"POST {url}: not a v2 response ({error}): {body[:500]!r}") from None
    _check_outputs(outputs, model, f"POST {url}")
    return Answer(response_bytes=len(body))


def verify_grpc(
    address: str, model: BenchModel, headers: dict[str, str] | None = None, ca_file: Path | None = None
) -> Answer:
    """Call ModelInfer at `address` with tritonclient; VerificationError unless the answer is right."""
    try:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException
    except ImportError as error:
        raise VerificationError(f"tritonclient[grpc] is not installed in this venv: {error}") from None
    if ca_file is not None:
        client = grpcclient.InferenceServerClient(url=address, ssl=True, root_certificates=str(ca_file))
    else:
        client = grpcclient.InferenceServerClient(url=address)
    metadata = {k.lower(): v for k, v in (headers or {}).items()}
    try:
        infer_input = grpcclient.InferInput("X", [1, len(model.row)], "FP32")
        infer_input.set_data_from_numpy(np.asarray([model.row], dtype=np.float32))
        result = client.infer(model.name, [infer_input], client_timeout=_TIMEOUT_S, headers=metadata)
        response = result.get_response()
        outputs = {output.name: np.ravel(result.as_numpy(output.name)).tolist() for output in response.outputs}
        size = response.ByteSize()
    except InferenceServerException as error:
        raise VerificationError(f"ModelInfer at {address}: {error}") from None
    finally:
        client.close()
    _check_outputs(outputs, model, f"ModelInfer at {address}")
    return Answer(response_bytes=int(size))
