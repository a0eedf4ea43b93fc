"""Berth's Python package: a client for the server, and importers that take a trained model to a
verified, registered ONNX version (see docs/python.md)."""

from berth.client import AsyncClient, Client, Prediction
from berth.errors import BerthError, ServerError
from berth.importer import ImportResult, import_model

__all__ = ["AsyncClient", "BerthError", "Client", "ImportResult", "Prediction", "ServerError", "import_model"]
__version__ = "0.1.0"
