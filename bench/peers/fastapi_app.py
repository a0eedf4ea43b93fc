"""The "web framework + pickle" baseline: FastAPI serving a pickled scikit-learn model.

It answers the same v2 JSON request with the same response shape as Berth
(outputs `label` and `probabilities`), the way a team would write it by hand.
Run by bench/run.py in the peer venv:

    BENCH_MODEL_PICKLE=model.pkl uvicorn fastapi_app:app --workers 1 --app-dir bench/peers

The handler is `async def`: the model call takes microseconds, and on one
core a thread-pool hop (what a plain `def` handler gets) only adds cost, so
this is the baseline at its best.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Final

import numpy as np
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

MODEL_NAME: Final = os.environ.get("BENCH_MODEL_NAME", "iris_logreg")

with open(os.environ["BENCH_MODEL_PICKLE"], "rb") as _file:
    model = pickle.load(_file)


class InputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferRequest(BaseModel):
    id: str | None = None
    inputs: list[InputTensor]


app = FastAPI()


@app.get("/v2/health/ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}


@app.post(f"/v2/models/{MODEL_NAME}/infer")
async def infer(request: InferRequest) -> dict[str, Any]:
    if len(request.inputs) != 1 or request.inputs[0].datatype != "FP32":
        raise HTTPException(status_code=400, detail="expected one FP32 input")
    tensor = request.inputs[0]
    try:
        X = np.asarray(tensor.data, dtype=np.float32).reshape(tensor.shape)
    except ValueError as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    labels = model.predict(X)
    probabilities = model.predict_proba(X).astype(np.float32)
    response: dict[str, Any] = {
        "model_name": MODEL_NAME,
        "model_version": "1",
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": list(labels.shape), "data": labels.tolist()},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": list(probabilities.shape),
                "data": probabilities.ravel().tolist(),
            },
        ],
    }
    if request.id is not None:
        response["id"] = request.id
    return response
