"""The Python runtime's worker: the process a Berth server starts to run a model that ONNX cannot express.

`python -m berth.runtime.worker` is started by the server (backend `python`); see docs/python.md.
"""
