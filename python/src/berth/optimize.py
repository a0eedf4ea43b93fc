"""`berth-py optimize`: a quantized copy of a registered version, gated by parity like an import.

The server keeps a version's artifact, but has no route yet that hands it
back (GET /v2/registry/models/{m}/versions/{v}/artifact); until it has, this
command says so and changes nothing.
"""

from __future__ import annotations

from urllib.parse import quote

from berth.client import Client
from berth.errors import BerthError, ServerError
from berth.importer import ImportResult


def optimize(
    url: str, name: str, version: str, quantize: str, *, tolerance: float, force: bool, api_key: str | None = None
) -> ImportResult:
    if quantize != "dynamic-int8":
        raise BerthError(f"unknown quantization '{quantize}' (dynamic-int8 is the one there is)")
    path = f"/v2/registry/models/{quote(name, safe='')}/versions/{quote(version, safe='')}/artifact"
    with Client(url, api_key=api_key) as client:
        try:
            client.request("GET", path, idempotent=True)
        except ServerError as e:
            raise BerthError(
                f"cannot fetch version {version} of '{name}' to quantize it: the server has no artifact "
                f"download route yet ({e}); nothing was registered"
            ) from e
    raise BerthError("optimize needs the artifact download route, which this server does not have")
