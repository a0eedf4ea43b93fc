"""Berth's Python package: a client for the server, and importers that take a trained model to a
verified, registered ONNX version (see docs/python.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from berth.client import AsyncClient, Client, Prediction
from berth.errors import BerthError, ServerError

if TYPE_CHECKING:
    from berth.importer import ImportResult, import_model

__all__ = ["AsyncClient", "BerthError", "Client", "ImportResult", "Prediction", "ServerError", "import_model"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The importers pull in scikit-learn and skl2onnx (seconds): only when asked for.
    if name in ("import_model", "ImportResult"):
        from berth import importer

        return getattr(importer, name)
    raise AttributeError(f"module 'berth' has no attribute {name!r}")
