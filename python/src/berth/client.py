"""A client for a Berth server: predictions over REST or gRPC, and the registry routes.

`Client("http://host:8000").predict("iris", X)` takes a numpy array, a pandas
DataFrame or a list of dicts and returns a `Prediction`: `labels` and
`probabilities` for a classifier, `values` for a regressor, and every output
under `outputs`. `Client("grpc://host:8001")` speaks gRPC (tritonclient).
`Client("grpcs://host:8001")` is gRPC over TLS. `AsyncClient` is the same
over httpx, for asyncio.

TLS (https://, grpcs://): `ca_file=` (default $BERTH_CA_FILE, else the
system's/certifi's roots) is the CA bundle the server's certificate must
chain to; `cert=` is a client certificate for mutual TLS: a (certificate,
key) pair of PEM files, or one PEM file holding both (default
$BERTH_CERT_FILE and $BERTH_KEY_FILE, as the `berth` command line reads them). `verify=False` turns
the server's check off (REST only; never in production).

Timeouts apply to every call. Only idempotent calls are retried, and only
when the connection failed (nothing reached the server): an inference is a
pure function of its inputs, so it is retried; a push is not.
An API key (`api_key=` or $BERTH_API_KEY) goes as `Authorization: Bearer`.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import numpy as np
import requests

from berth.errors import BerthError, ServerError

_V2_TO_NUMPY = {
    "BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_,
}  # fmt: skip
T = TypeVar("T")
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 2
_BACKOFF_S = 0.2


@dataclass
class Prediction:
    """A model's answer: `labels`/`probabilities` (classifiers) or `values` (regressors), and every output."""

    model_version: str
    outputs: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray | None:
        return self.outputs.get("label")

    @property
    def probabilities(self) -> np.ndarray | None:
        return self.outputs.get("probabilities")

    @property
    def values(self) -> np.ndarray | None:
        if "variable" in self.outputs:
            return self.outputs["variable"]
        rest = [v for k, v in self.outputs.items() if k not in ("label", "probabilities")]
        return rest[0] if rest else None


ClientCert = str | tuple[str, str]


def _cert_from_environment() -> ClientCert | None:
    """$BERTH_CERT_FILE (and $BERTH_KEY_FILE, else the key in the same file), as the C++ CLI reads them."""
    cert_file = os.environ.get("BERTH_CERT_FILE") or None
    key_file = os.environ.get("BERTH_KEY_FILE") or None
    if cert_file is None:
        if key_file is not None:
            raise BerthError("$BERTH_KEY_FILE goes with $BERTH_CERT_FILE (the client certificate)")
        return None
    return (cert_file, key_file) if key_file is not None else cert_file


@dataclass(frozen=True)
class _Tls:
    """A client's TLS settings, checked: the files exist, and they go with a TLS scheme."""

    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    verify: bool

    @staticmethod
    def of(url: str, scheme: str, ca_file: str | None, verify: bool, cert: ClientCert | None) -> _Tls:
        secure = scheme in ("https", "grpcs")
        if not secure and (ca_file is not None or cert is not None or not verify):
            raise BerthError(f"'{url}' is not TLS: ca_file, cert and verify need https:// or grpcs://")
        if ca_file is None and secure:
            ca_file = os.environ.get("BERTH_CA_FILE") or None
        if cert is None and secure:
            cert = _cert_from_environment()
        cert_file, key_file = (cert, cert) if isinstance(cert, str) else (cert or (None, None))
        for what, path in (("CA file", ca_file), ("client certificate", cert_file), ("client key", key_file)):
            if path is not None and not os.access(path, os.R_OK):
                raise BerthError(f"cannot read the {what} {path}")
        if scheme == "grpcs" and not verify:
            raise BerthError("gRPC over TLS always checks the server's certificate: give its CA as ca_file")
        return _Tls(ca_file, cert_file, key_file, verify)

    def requests_verify(self) -> bool | str:
        return self.ca_file if self.verify and self.ca_file else self.verify

    def requests_cert(self) -> tuple[str, str] | None:
        return (self.cert_file, self.key_file) if self.cert_file and self.key_file else None

    def ssl_context(self) -> Any:
        """For httpx: the CA (else certifi's roots) and the client certificate; False when verify is off."""
        if not self.verify and self.cert_file is None:
            return False
        import certifi

        context = ssl.create_default_context(cafile=self.ca_file or certifi.where())
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _tls_failure(url: str, e: Exception) -> BerthError:
    return BerthError(
        f"TLS with the Berth server at {url} failed: {e} (is its certificate signed by the CA given as "
        "--ca-file / ca_file / $BERTH_CA_FILE, and does it want a client certificate: --cert/--key?)"
    )


def split_model_ref(ref: str) -> tuple[str, str | None]:
    """NAME, NAME:VERSION or NAME@ALIAS → (name, version-or-alias or None)."""
    for sep in ("@", ":"):
        if sep in ref:
            name, _, version = ref.partition(sep)
            if not name or not version:
                raise BerthError(f"'{ref}' is not NAME, NAME:VERSION or NAME@ALIAS")
            return name, version
    return ref, None


def _auth_headers(api_key: str | None) -> dict[str, str]:
    key = api_key if api_key is not None else os.environ.get("BERTH_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def _error_text(status: int, body: bytes) -> str:
    try:
        message = json.loads(body).get("error")
    except (ValueError, AttributeError):
        message = None
    return str(message) if message else body.decode(errors="replace")[:500] or f"HTTP {status}"


MAX_METADATA_BYTES = 1 << 20  # the server's limit on Berth-Metadata-Length


def encode_metadata(metadata: dict[str, Any]) -> bytes:
    """The metadata as the push sends it; refused here, naming its size, when the server would refuse it."""
    try:
        body = json.dumps(metadata, separators=(",", ":"), allow_nan=False).encode()
    except ValueError as e:
        raise BerthError(f"the version's metadata holds a number JSON cannot carry: {e}") from e
    if len(body) > MAX_METADATA_BYTES:
        sizes = {k: len(json.dumps(v, allow_nan=False)) for k, v in metadata.items()}
        largest = max(sizes, key=lambda k: sizes[k])
        raise BerthError(
            f"the version's metadata is {len(body)} bytes, and the server takes at most {MAX_METADATA_BYTES} "
            f"(its largest part is '{largest}', {sizes[largest]} bytes)"
        )
    return body


def recorded_features(model: dict[str, Any], version: str | None) -> list[str] | None:
    """The feature_names recorded for the version `version` names in a GET /v2/registry/models/{m} answer."""
    number = version if version is None or version.isdigit() else model.get("aliases", {}).get(version)
    number = model.get("default_version") if number is None else number
    for entry in model.get("versions", []):
        names = (entry.get("metadata") or {}).get("feature_names")
        if str(entry.get("version")) == str(number) and isinstance(names, list) and names:
            return [str(n) for n in names]
    return None


def config_feature_names(config: dict[str, Any]) -> tuple[bool, list[str] | None]:
    """(known, names) from a model configuration (GET .../config, gRPC ModelConfig): the version's recorded
    feature names, None when it has none; known is False when the server does not say (it has no registry).
    """
    parameter = (config.get("parameters") or {}).get("feature_names")
    if not isinstance(parameter, dict) or not isinstance(parameter.get("string_value"), str):
        return False, None
    try:
        names = json.loads(parameter["string_value"])
    except ValueError:
        return False, None
    if not isinstance(names, list):
        return False, None
    return True, [str(n) for n in names] or None


def _unreported_order(url: str, name: str) -> str:
    return (f"the server at {url} does not report the feature names of model '{name}' (it runs without a registry "
            "store, or is not Berth)")  # fmt: skip


def _server_error(method: str, path: str, status: int, body: bytes) -> ServerError:
    return ServerError(f"{method} {path}: {status} {_error_text(status, body)}", status)


def _model_path(name: str, version: str | None) -> str:
    path = f"/v2/models/{quote(name, safe='')}"
    return path if version is None else f"{path}/versions/{quote(str(version), safe='')}"


def _is_frame(X: Any) -> bool:
    # Checked by name: importing pandas costs a second that a numpy-only caller need not pay.
    return any(c.__module__.startswith("pandas") and c.__name__ == "DataFrame" for c in type(X).__mro__)


def to_frame(X: Any) -> Any:
    """A DataFrame for a DataFrame or a list of dicts; an array otherwise."""
    if _is_frame(X):
        return X
    if isinstance(X, list) and X and all(isinstance(r, dict) for r in X):
        import pandas as pd

        return pd.DataFrame.from_records(X)
    return np.asarray(X)


def encode_inputs(
    X: Any, inputs: list[dict[str, Any]], feature_names: list[str] | None = None, unknown_order: str | None = None
) -> list[tuple[str, str, np.ndarray]]:
    """(name, datatype, array) per model input for X, checked against the model's input metadata.

    With `feature_names` (the version's, from the registry), a DataFrame fed to
    a one-input model is put in that column order, so a reordered frame cannot
    silently feed the wrong features. `unknown_order` (why the server could
    not say whether the version has feature names) refuses a frame of several
    columns for a one-input model rather than guess its order.
    """
    data = to_frame(X)
    if not inputs:
        raise BerthError("the model declares no inputs")
    if _is_frame(data) and len(inputs) > 1:
        missing = [i["name"] for i in inputs if i["name"] not in data.columns]
        if missing:
            raise BerthError(
                f"the model takes the columns {', '.join(i['name'] for i in inputs)}; "
                f"the data lacks {', '.join(missing)}"
            )
        blocks = [(i, data[[i["name"]]].to_numpy()) for i in inputs]
    elif len(inputs) == 1:
        if _is_frame(data) and feature_names:
            missing = [c for c in feature_names if c not in data.columns]
            if missing:
                raise BerthError(f"the model's features are {', '.join(feature_names)}; the data lacks "
                                 f"{', '.join(missing)}")  # fmt: skip
            data = data[feature_names]
        elif _is_frame(data) and unknown_order is not None and data.shape[1] > 1:
            raise BerthError(
                f"cannot check the column order of the DataFrame (or list of dicts): {unknown_order}. "
                "Pass a numpy array with the columns in the model's order instead"
            )
        array = data.to_numpy() if _is_frame(data) else data
        blocks = [(inputs[0], array)]
    else:
        raise BerthError(
            f"the model takes {len(inputs)} inputs ({', '.join(i['name'] for i in inputs)}): "
            "pass a DataFrame or a list of dicts with those columns"
        )
    encoded = []
    for spec, array in blocks:
        datatype = spec["datatype"]
        shape = [int(d) for d in spec.get("shape", [])]
        if array.ndim == 1 and len(shape) == 2:
            array = array.reshape(-1, 1)
        if len(shape) == array.ndim and any(d not in (-1, a) for d, a in zip(shape[1:], array.shape[1:], strict=True)):
            raise BerthError(f"input '{spec['name']}' has shape {shape}; the data has {list(array.shape)}")
        if datatype == "BYTES":
            array = np.vectorize(lambda v: v if isinstance(v, bytes) else str(v).encode(), otypes=[object])(array)
        else:
            try:
                array = np.asarray(array, dtype=_V2_TO_NUMPY[datatype])
            except (ValueError, TypeError) as e:
                raise BerthError(f"input '{spec['name']}' takes {datatype}, and the data is not ({e})") from e
        encoded.append((spec["name"], datatype, array))
    return encoded


def _json_body(encoded: list[tuple[str, str, np.ndarray]]) -> dict[str, Any]:
    def data(datatype: str, array: np.ndarray) -> list[Any]:
        if datatype == "BYTES":
            return [v.decode(errors="surrogateescape") for v in array.reshape(-1)]
        return array.reshape(-1).tolist()

    return {"inputs": [{"name": n, "datatype": t, "shape": list(a.shape), "data": data(t, a)} for n, t, a in encoded]}


def decode_response(body: dict[str, Any]) -> Prediction:
    outputs: dict[str, np.ndarray] = {}
    for out in body.get("outputs", []):
        dtype = _V2_TO_NUMPY.get(out.get("datatype", ""), np.object_)
        outputs[out["name"]] = np.asarray(out["data"], dtype=dtype).reshape(out["shape"])
    return Prediction(str(body.get("model_version", "")), outputs)


class Client:
    """A Berth server at `url` (http://, https://, grpc:// or grpcs://host:port); TLS as the module says."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        ca_file: str | None = None,
        verify: bool = True,
        cert: ClientCert | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "grpc", "grpcs") or not parts.netloc:
            raise BerthError(
                f"'{url}' is not a server URL (http://host:port, https://..., grpc://host:port or grpcs://...)"
            )
        tls = _Tls.of(url, parts.scheme, ca_file, verify, cert)
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.headers = _auth_headers(api_key)
        self._grpc: Any = None
        self._metadata: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._features: dict[tuple[str, str | None], list[str] | None] = {}
        self._unknown_order: dict[tuple[str, str | None], str | None] = {}
        if parts.scheme in ("grpc", "grpcs"):
            try:
                import tritonclient.grpc as grpcclient
            except ImportError as e:
                raise BerthError("gRPC needs tritonclient: pip install 'berth[grpc]'") from e
            self._grpc = grpcclient.InferenceServerClient(
                parts.netloc, ssl=parts.scheme == "grpcs", root_certificates=tls.ca_file,
                private_key=tls.key_file, certificate_chain=tls.cert_file,
            )  # fmt: skip
        self._session = requests.Session()
        # Given with each request: a Session's own verify loses to $REQUESTS_CA_BUNDLE (requests#3829).
        self._tls = {"verify": tls.requests_verify(), "cert": tls.requests_cert()}

    def close(self) -> None:
        self._session.close()
        if self._grpc is not None:
            self._grpc.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # REST plumbing ---------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One REST call: the decoded JSON answer, or ServerError with the server's message."""
        if self._grpc is not None:
            raise BerthError("registry calls need the REST address (http:// or https://), not grpc:// or grpcs://")
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            try:
                response = self._session.request(
                    method,
                    self.url + path,
                    json=json_body,
                    data=data,
                    headers={**self.headers, **(headers or {})},
                    timeout=self.timeout,
                    **self._tls,
                )
                break
            except requests.exceptions.SSLError as e:
                raise _tls_failure(self.url, e) from e
            except requests.ConnectionError as e:
                if attempt + 1 == attempts:
                    raise BerthError(f"cannot reach the Berth server at {self.url}: {e}") from e
                time.sleep(_BACKOFF_S * (2**attempt))
            except requests.Timeout as e:
                raise BerthError(f"the Berth server at {self.url} did not answer within {self.timeout} s") from e
        if response.status_code >= 400:
            raise _server_error(method, path, response.status_code, response.content)
        return response.json() if response.content else None

    def get_bytes(self, path: str) -> bytes:
        """A GET whose answer is bytes (an artifact); ServerError on an error status."""
        for attempt in range(1 + self.retries):
            try:
                response = self._session.get(self.url + path, headers=self.headers, timeout=self.timeout, **self._tls)
                break
            except requests.exceptions.SSLError as e:
                raise _tls_failure(self.url, e) from e
            except requests.ConnectionError as e:
                if attempt == self.retries:
                    raise BerthError(f"cannot reach the Berth server at {self.url}: {e}") from e
                time.sleep(_BACKOFF_S * (2**attempt))
            except requests.Timeout as e:
                raise BerthError(f"the Berth server at {self.url} did not answer within {self.timeout} s") from e
        if response.status_code >= 400:
            raise _server_error("GET", path, response.status_code, response.content)
        return response.content

    # Models ----------------------------------------------------------------

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        key = (name, version)
        if key not in self._metadata:
            if self._grpc is not None:
                self._metadata[key] = self._grpc_call(name, lambda: self._grpc.get_model_metadata(
                    name, version or "", headers=self.headers, as_json=True, client_timeout=self.timeout
                ))  # fmt: skip
            else:
                self._metadata[key] = self.request("GET", _model_path(name, version), idempotent=True)
        return self._metadata[key]

    def feature_names(self, name: str, version: str | None = None) -> list[str] | None:
        """The feature_names the registry recorded for the version `version` names (None when unknown).

        Read from the version's configuration, over either door; from an older
        server's registry route over REST.
        """
        key = (name, version)
        if key not in self._features:
            known, names = False, None
            with contextlib.suppress(ServerError):
                if self._grpc is not None:
                    config = self._grpc_call(name, lambda: self._grpc.get_model_config(
                        name, version or "", headers=self.headers, as_json=True, client_timeout=self.timeout
                    ))  # fmt: skip
                    known, names = config_feature_names(config.get("config", {}))
                else:
                    path = _model_path(name, version) + "/config"
                    known, names = config_feature_names(self.request("GET", path, idempotent=True))
            if not known and self._grpc is None:  # a server older than the config's parameter
                with contextlib.suppress(ServerError):
                    names = recorded_features(self.registry_model(name), version)
                    known = names is not None
            self._features[key] = names
            self._unknown_order[key] = None if known else _unreported_order(self.url, name)
        return self._features[key]

    def predict(self, name: str, X: Any, *, version: str | int | None = None) -> Prediction:
        """Run X through model `name` (version: a number or an alias; None: the default)."""
        v = None if version is None else str(version)
        inputs = self.model_metadata(name, v).get("inputs", [])
        encoded = encode_inputs(X, inputs, self.feature_names(name, v), self._unknown_order[(name, v)])
        if self._grpc is not None:
            return self._predict_grpc(name, v, encoded)
        body = self.request("POST", _model_path(name, v) + "/infer", idempotent=True, json_body=_json_body(encoded))
        return decode_response(body)

    def _predict_grpc(self, name: str, version: str | None, encoded: list[tuple[str, str, np.ndarray]]) -> Prediction:
        import tritonclient.grpc as grpcclient

        inputs = []
        for n, t, a in encoded:
            tensor = grpcclient.InferInput(n, list(a.shape), t)
            tensor.set_data_from_numpy(a)
            inputs.append(tensor)
        result = self._grpc_call(name, lambda: self._grpc.infer(
            name, inputs, model_version=version or "", headers=self.headers, client_timeout=self.timeout
        ))  # fmt: skip
        response = result.get_response(as_json=True)
        outputs = {o["name"]: result.as_numpy(o["name"]) for o in response.get("outputs", [])}
        return Prediction(str(response.get("model_version", "")), outputs)

    def _grpc_call(self, what: str, call: Callable[[], T]) -> T:
        """One gRPC call, retried while the server is UNAVAILABLE (nothing reached it); ServerError otherwise."""
        from tritonclient.utils import InferenceServerException

        for attempt in range(1 + self.retries):
            try:
                return call()
            except InferenceServerException as e:
                unavailable = "UNAVAILABLE" in str(e.status())
                if unavailable and attempt < self.retries:
                    time.sleep(_BACKOFF_S * (2**attempt))
                    continue
                message = str(e.message())
                if unavailable and self.url.startswith("grpcs:") and ("SSL" in message or "handshake" in message):
                    raise _tls_failure(self.url, e) from e
                raise ServerError(f"{what}: {message}") from e
        raise AssertionError("unreachable")

    # Registry --------------------------------------------------------------

    def push(self, name: str, artifact: bytes, metadata: dict[str, Any], config: str | None = None) -> int:
        """Register `artifact` as the next version of `name` with `metadata`; the version number.

        `config`, the model's config.yaml as text, makes a first push create the model with it
        (a `backend: python` model, say); a push to an existing model may repeat its config, and
        one that differs is refused (409) with nothing stored."""
        return self._push(name, metadata, config, None, [artifact])

    def push_files(
        self, name: str, files: dict[str, bytes], metadata: dict[str, Any], config: str | None = None
    ) -> int:
        """Register a version that is a directory (the Python runtime's model.py beside its side
        modules, or an MLflow model) as the next version of `name`: every file by its path inside
        the version's directory ("features.py", "pkg/__init__.py"). `config` as for `push`. The
        version number."""
        listing = json.dumps({"files": [{"name": n, "size": len(b)} for n, b in files.items()]}).encode()
        return self._push(name, metadata, config, listing, list(files.values()))

    def _push(
        self, name: str, metadata: dict[str, Any], config: str | None, listing: bytes | None, payload: list[bytes]
    ) -> int:
        """POST /v2/registry/models/{name}/versions: the framed parts (metadata, config, file list), then `payload`."""
        header = encode_metadata(metadata)
        headers = {"Content-Type": "application/octet-stream", "Berth-Metadata-Length": str(len(header))}
        parts = [header]
        if config is not None:
            text = config.encode()
            if not text or len(text) > 1 << 20:
                raise BerthError("a pushed config must be 1 byte to 1 MiB of text")
            headers["Berth-Config-Length"] = str(len(text))
            parts.append(text)
        if listing is not None:
            headers["Berth-Files-Length"] = str(len(listing))
            parts.append(listing)
        answer = self.request(
            "POST",
            f"/v2/registry/models/{quote(name, safe='')}/versions",
            idempotent=False,
            data=b"".join([*parts, *payload]),
            headers=headers,
        )
        return int(answer["version"])

    def registry_model(self, name: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.request("GET", f"/v2/registry/models/{quote(name, safe='')}", idempotent=True)
        return answer

    def store_evaluation(self, name: str, version: str, evaluation: dict[str, Any]) -> Any:
        path = f"/v2/registry/models/{quote(name, safe='')}/versions/{quote(version, safe='')}/evaluations"
        return self.request("POST", path, idempotent=False, json_body=evaluation)


class AsyncClient:
    """`Client`'s predictions for asyncio (REST over httpx)."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        ca_file: str | None = None,
        verify: bool = True,
        cert: ClientCert | None = None,
    ) -> None:
        import httpx

        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise BerthError(f"AsyncClient speaks REST: '{url}' is not an http:// or https:// URL")
        tls = _Tls.of(url, scheme, ca_file, verify, cert)
        self.url = url.rstrip("/")
        self.retries = retries
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=timeout, headers=_auth_headers(api_key),
            verify=tls.ssl_context() if scheme == "https" else True,
        )  # fmt: skip
        self._metadata: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._features: dict[tuple[str, str | None], list[str] | None] = {}
        self._unknown_order: dict[tuple[str, str | None], str | None] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        import asyncio

        import httpx

        for attempt in range(1 + self.retries):
            try:
                response = await self._http.request(method, path, json=body)
                break
            except httpx.TimeoutException as e:
                raise BerthError(f"the Berth server at {self.url} did not answer in time") from e
            except httpx.TransportError as e:
                # A refused certificate shows as a failed connect, or (TLS 1.3: the
                # server checks the client's after the handshake) a failed read.
                if "SSL" in str(e):
                    raise _tls_failure(self.url, e) from e
                if not isinstance(e, httpx.ConnectError) or attempt == self.retries:
                    raise BerthError(f"cannot reach the Berth server at {self.url}: {e}") from e
                await asyncio.sleep(_BACKOFF_S * (2**attempt))
            except ssl.SSLError as e:  # httpx passes a TLS alert on a read through unwrapped
                raise _tls_failure(self.url, e) from e
        if response.status_code >= 400:
            raise _server_error(method, path, response.status_code, response.content)
        return response.json()

    async def predict(self, name: str, X: Any, *, version: str | int | None = None) -> Prediction:
        v = None if version is None else str(version)
        if (name, v) not in self._metadata:
            self._metadata[(name, v)] = await self._call("GET", _model_path(name, v))
            known, names = False, None
            with contextlib.suppress(ServerError):
                known, names = config_feature_names(await self._call("GET", _model_path(name, v) + "/config"))
            if not known:
                with contextlib.suppress(ServerError):
                    registry = await self._call("GET", f"/v2/registry/models/{quote(name, safe='')}")
                    names = recorded_features(registry, v)
                    known = names is not None
            self._features[(name, v)] = names
            self._unknown_order[(name, v)] = None if known else _unreported_order(self.url, name)
        inputs = self._metadata[(name, v)].get("inputs", [])
        encoded = encode_inputs(X, inputs, self._features[(name, v)], self._unknown_order[(name, v)])
        return decode_response(await self._call("POST", _model_path(name, v) + "/infer", _json_body(encoded)))
