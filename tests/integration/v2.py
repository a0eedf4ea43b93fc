"""A thin KServe v2 (Open Inference Protocol) REST client and response checks."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import requests

from models import V2_NUMPY_DTYPES, Array, TrainedModel, graph_outputs

REQUEST_TIMEOUT_S: Final = 10.0


def model_path(model: str, version: int | str | None = None) -> str:
    path = f"/v2/models/{model}"
    return path if version is None else f"{path}/versions/{version}"


def infer_path(model: str, version: int | str | None = None) -> str:
    return f"{model_path(model, version)}/infer"


class V2Client:
    """requests on one keep-alive session, with paths relative to the server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=REQUEST_TIMEOUT_S)

    def post(self, path: str, body: Any = None) -> requests.Response:
        """POST `body` as JSON (no body when None)."""
        return self.session.post(self.base_url + path, json=body, timeout=REQUEST_TIMEOUT_S)

    def post_raw(self, path: str, data: bytes) -> requests.Response:
        """POST bytes as they are, labelled as JSON."""
        headers = {"Content-Type": "application/json"}
        return self.session.post(self.base_url + path, data=data, headers=headers, timeout=REQUEST_TIMEOUT_S)

    def infer(self, model: str, body: Any, version: int | str | None = None) -> requests.Response:
        return self.post(infer_path(model, version), body)

    def repository_index(self) -> list[dict[str, Any]]:
        response = self.post("/v2/repository/index")
        assert response.status_code == 200, response.text
        index: list[dict[str, Any]] = response.json()
        return index

    def connections_opened(self) -> int:
        """How many TCP connections the session has opened to the server so far."""
        pools = self.session.get_adapter(self.base_url).poolmanager.pools
        # urllib3 pool containers cannot be iterated, only their keys().
        return sum(int(pools[key].num_connections) for key in pools.keys())  # noqa: SIM118

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> V2Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def assert_error(response: requests.Response, status: int) -> str:
    """The response has `status` and a JSON body {"error": "<non-empty message>"}; returns the message."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text!r}"
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    body = response.json()
    message = body.get("error") if isinstance(body, dict) else None
    assert isinstance(message, str) and message, f"no error message in {response.text!r}"
    return message


def infer_ok(response: requests.Response) -> dict[str, Any]:
    """The JSON body of a successful inference response."""
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    return body


def decode_outputs(body: dict[str, Any]) -> dict[str, Array]:
    """The output tensors of an inference response as numpy arrays of their declared shape."""
    return {
        output["name"]: np.array(output["data"], dtype=V2_NUMPY_DTYPES[output["datatype"]]).reshape(
            output["shape"]
        )
        for output in body["outputs"]
    }


def output_fields(body: dict[str, Any]) -> dict[str, tuple[str, list[int]]]:
    """name -> (datatype, shape) of the outputs of an inference response."""
    return {output["name"]: (output["datatype"], output["shape"]) for output in body["outputs"]}


def expected_output_fields(model: TrainedModel, n_rows: int) -> dict[str, tuple[str, list[int]]]:
    """name -> (datatype, shape) of the graph outputs for a batch of n_rows."""
    return {
        spec.name: (spec.datatype, [n_rows if dim == -1 else dim for dim in spec.shape])
        for spec in graph_outputs(model.onnx_model)
    }


def as_text(array: Array | None) -> Array:
    """tritonclient decodes binary BYTES outputs as bytes objects; compare them as str."""
    assert array is not None
    if array.dtype == object and array.size and isinstance(array.flat[0], bytes):
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array)
    return array
