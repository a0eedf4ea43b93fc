"""Runs the KServe SDK's v2 clients in a process of their own.

kserve and tritonclient.grpc both register the `inference.*` protobuf
messages in the default descriptor pool, so they cannot be imported into one
interpreter. test_kserve_client.py calls this script:

    kserve_client_run.py {rest,grpc} URL MODEL INPUTS.npz OUTPUTS.npz

It checks readiness, infers with the inputs (REST: JSON tensors; gRPC: raw
contents) and writes the outputs, plus the echoed request id, to OUTPUTS.npz.
"""

from __future__ import annotations

import asyncio
import sys

import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest
from kserve.inference_client import RESTConfig
from kserve.protocol.infer_type import InferResponse

DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "object": "BYTES"}


def request(model: str, inputs: dict[str, np.ndarray], binary: bool) -> InferRequest:
    infer_inputs = []
    for name, tensor in inputs.items():
        infer_input = InferInput(name, list(tensor.shape), DATATYPES[str(tensor.dtype)])
        infer_input.set_data_from_numpy(tensor, binary_data=binary)
        infer_inputs.append(infer_input)
    return InferRequest(model_name=model, infer_inputs=infer_inputs, request_id=f"kserve-{model}")


async def run_rest(url: str, model: str, inputs: dict[str, np.ndarray]) -> InferResponse:
    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    try:
        assert await client.is_server_ready(url)
        assert await client.is_model_ready(url, model)
        response = await client.infer(url, request(model, inputs, binary=False), model)
        assert isinstance(response, InferResponse)
        return response
    finally:
        await client.close()


async def run_grpc(address: str, model: str, inputs: dict[str, np.ndarray]) -> InferResponse:
    client = InferenceGRPCClient(address, retries=0)
    try:
        assert await client.is_server_ready()
        assert await client.is_model_ready(model)
        return await client.infer(request(model, inputs, binary=True))
    finally:
        await client.close()


def main(protocol: str, url: str, model: str, inputs_path: str, outputs_path: str) -> None:
    with np.load(inputs_path, allow_pickle=True) as npz:
        inputs = {name: npz[name] for name in npz.files}
    run = run_rest if protocol == "rest" else run_grpc
    response = asyncio.run(run(url, model, inputs))
    outputs = {output.name: output.as_numpy() for output in response.outputs}
    np.savez(outputs_path, **outputs, __id__=np.array(response.id or ""), allow_pickle=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
