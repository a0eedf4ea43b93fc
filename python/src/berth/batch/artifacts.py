"""A registered version's ONNX artifact and metadata, from a server, a registry store or a model repository.

`NAME`, `NAME:VERSION` and `NAME@ALIAS` resolve as the server resolves them
(docs/registry.md): a number names itself, an alias the version it points
at, and no version the `production` alias, else the latest active version.
Every artifact is checked against the SHA-256 digest the registry recorded
for it, so the bytes scored are the version's, whichever door they came
through.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from berth.batch import postgres
from berth.client import Client, ClientCert, split_model_ref
from berth.errors import BerthError, ServerError
from berth.names import check_model_name

MODEL_FILE = "model.onnx"  # the ONNX backend's file name in a version directory
_METADATA_FILE = "metadata.json"  # written by `berth-py import --repository`
_VERSION_RECORD_FILE = "berth-version.json"  # written by a push: {"source", "created_by", "metadata"}
_DEFAULT_ALIAS = "production"


@dataclass
class Artifact:
    """One version of a model: its ONNX bytes, digest and recorded metadata."""

    name: str
    version: int
    digest: str
    body: bytes = field(repr=False)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelRef:
    name: str
    version: str | None  # a number, an alias, or None for the default

    @staticmethod
    def parse(ref: str) -> ModelRef:
        name, version = split_model_ref(ref)
        check_model_name(name)
        return ModelRef(name, version)

    def __str__(self) -> str:
        if self.version is None:
            return self.name
        return f"{self.name}:{self.version}" if self.version.isdigit() else f"{self.name}@{self.version}"


def sha256(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _check_digest(ref: str, version: int, body: bytes, recorded: str | None) -> str:
    digest = sha256(body)
    if recorded and digest != recorded:
        raise BerthError(
            f"the artifact of {ref} version {version} has digest {digest}, and the registry recorded {recorded}: "
            "the file changed after it was registered"
        )
    return digest


def _pick(ref: ModelRef, versions: dict[int, Any], aliases: dict[str, int], where: str) -> int:
    """The version number `ref` names among the active `versions`."""
    if not versions:
        raise BerthError(f"model '{ref.name}' has no active version in {where}")
    if ref.version is None:
        number = aliases.get(_DEFAULT_ALIAS, max(versions))
    elif ref.version.isdigit():
        number = int(ref.version)
    elif ref.version in aliases:
        number = aliases[ref.version]
    else:
        known = ", ".join(sorted(aliases)) or "none"
        raise BerthError(f"model '{ref.name}' has no alias '{ref.version}' in {where} (its aliases: {known})")
    if number not in versions:
        raise BerthError(f"model '{ref.name}' has no active version {number} in {where}")
    return number


def from_server(
    ref: ModelRef, url: str, *, api_key: str | None = None, pin: int | None = None,
    ca_file: str | None = None, cert: ClientCert | None = None,
) -> Artifact:  # fmt: skip
    """The version through the server's registry routes (the artifact route needs the admin scope)."""
    with Client(url, api_key=api_key, ca_file=ca_file, cert=cert) as client:
        try:
            model = client.registry_model(ref.name)
        except ServerError as e:
            raise BerthError(f"cannot read model '{ref.name}' from the registry at {url}: {e}") from e
        records = {
            int(v["version"]): v for v in model.get("versions", []) if v.get("state") not in ("ARCHIVED", "DELETED")
        }
        aliases = {str(k): int(v) for k, v in (model.get("aliases") or {}).items()}
        if pin is not None:
            number = pin
        elif ref.version is None and model.get("default_version") is not None:
            number = int(model["default_version"])
        else:
            number = _pick(ref, records, aliases, url)
        if number not in records:
            raise BerthError(f"model '{ref.name}' has no active version {number} at {url}")
        record = records[number]
        path = f"/v2/registry/models/{quote(ref.name, safe='')}/versions/{number}/artifact"
        try:
            body = client.get_bytes(path)
        except ServerError as e:
            hint = " (the artifact route needs an admin key)" if e.status in (401, 403) else ""
            raise BerthError(f"cannot fetch version {number} of '{ref.name}' from {url}{hint}: {e}") from e
    digest = _check_digest(ref.name, number, body, record.get("digest"))
    metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    return Artifact(ref.name, number, digest, body, dict(metadata or {}))


def _sqlite_path(registry: str) -> Path:
    if registry.startswith("sqlite:"):
        return Path(registry[len("sqlite:") :])
    raise BerthError(f"--registry '{registry}' is neither sqlite:PATH nor postgresql://USER@HOST:PORT/DB")


def _read_store(path: Path, name: str) -> tuple[dict[int, dict[str, Any]], dict[str, int]]:
    if not path.is_file():
        raise BerthError(f"the registry store {path} does not exist")
    try:
        # Read-only, so a store a running server holds is never written here.
        db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute(
                "SELECT version, digest, metadata FROM versions WHERE model = ? AND status = 'active'", (name,)
            ).fetchall()
            alias_rows = db.execute("SELECT alias, version FROM aliases WHERE model = ?", (name,)).fetchall()
        finally:
            db.close()
    except sqlite3.Error as e:
        raise BerthError(f"cannot read the registry store {path}: {e}") from e
    versions = {}
    for number, digest, metadata in rows:
        try:
            parsed = json.loads(metadata) if metadata else {}
        except ValueError:
            parsed = {}
        versions[int(number)] = {"digest": str(digest), "metadata": parsed if isinstance(parsed, dict) else {}}
    return versions, {str(a): int(v) for a, v in alias_rows}


def _version_dirs(root: Path, name: str) -> dict[int, Path]:
    model_dir = root / name
    if not model_dir.is_dir():
        raise BerthError(f"the model repository {root} has no model '{name}'")
    found = {}
    for child in model_dir.iterdir():
        if child.name.isdigit() and int(child.name) > 0 and (child / MODEL_FILE).is_file():
            found[int(child.name)] = child
    return found


def _directory_metadata(version_dir: Path) -> dict[str, Any]:
    for file, key in ((_VERSION_RECORD_FILE, "metadata"), (_METADATA_FILE, None)):
        path = version_dir / file
        if path.is_file():
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise BerthError(f"cannot read {path}: {e}") from e
            found = doc.get(key) if key and isinstance(doc, dict) else doc
            if isinstance(found, dict):
                return found
    return {}


def from_postgres(ref: ModelRef, url: str, *, pin: int | None = None) -> Artifact:
    """The version a PostgreSQL store records, its bytes from the store itself (read-only)."""

    def choose(versions: dict[int, Any], aliases: dict[str, int], where: str) -> int:
        return pin if pin is not None else _pick(ref, versions, aliases, where)

    number, record, body, _ = postgres.read_version(url, ref.name, choose)
    digest = _check_digest(ref.name, number, body, record["digest"])
    return Artifact(ref.name, number, digest, body, record["metadata"])


def from_store(ref: ModelRef, registry: str, repository: Path | None = None, *, pin: int | None = None) -> Artifact:
    """The version a registry store records.

    A PostgreSQL store (postgresql://...) holds the artifacts' bytes itself. A SQLite store keeps records, not artifacts: the file is
    `REPOSITORY/NAME/VERSION/model.onnx`, the repository being `--repository`
    or, for the default store `REPOSITORY/.berth/registry.db`, its grandparent.
    """
    if postgres.is_postgres_url(registry):
        return from_postgres(ref, registry, pin=pin)
    path = _sqlite_path(registry)
    versions, aliases = _read_store(path, ref.name)
    number = pin if pin is not None else _pick(ref, versions, aliases, str(path))
    if number not in versions:
        raise BerthError(f"model '{ref.name}' has no active version {number} in {path}")
    if repository is None:
        if path.parent.name != ".berth":
            raise BerthError(f"the store {path} keeps no artifacts: give the model repository with --repository DIR")
        repository = path.parent.parent
    file = repository / ref.name / str(number) / MODEL_FILE
    if not file.is_file():
        raise BerthError(f"version {number} of '{ref.name}' has no {MODEL_FILE} under {repository}")
    body = file.read_bytes()
    digest = _check_digest(ref.name, number, body, versions[number]["digest"])
    return Artifact(ref.name, number, digest, body, versions[number]["metadata"])


def from_repository(ref: ModelRef, repository: Path, *, pin: int | None = None) -> Artifact:
    """The version in a model repository directory; aliases from its default store when it has one."""
    store = repository / ".berth" / "registry.db"
    if store.is_file():
        return from_store(ref, f"sqlite:{store}", repository, pin=pin)
    dirs = _version_dirs(repository, ref.name)
    number = pin if pin is not None else _pick(ref, dict.fromkeys(dirs), {}, str(repository))
    if number not in dirs:
        raise BerthError(f"model '{ref.name}' has no version {number} in {repository}")
    body = (dirs[number] / MODEL_FILE).read_bytes()
    return Artifact(ref.name, number, sha256(body), body, _directory_metadata(dirs[number]))


def load_artifact(
    ref: str | ModelRef,
    *,
    url: str | None = None,
    registry: str | None = None,
    repository: str | Path | None = None,
    api_key: str | None = None,
    pin: int | None = None,
    ca_file: str | None = None,
    cert: ClientCert | None = None,
) -> Artifact:
    """The version `ref` names, from exactly one of a server `url`, a `registry` store or a `repository`.

    `pin` fetches that version number whatever `ref` names now (a resumed run).
    """
    model = ModelRef.parse(ref) if isinstance(ref, str) else ref
    root = Path(repository) if repository is not None else None
    if url is not None:
        return from_server(model, url, api_key=api_key, pin=pin, ca_file=ca_file, cert=cert)
    if registry is not None:
        return from_store(model, registry, root, pin=pin)
    if root is not None:
        return from_repository(model, root, pin=pin)
    raise BerthError(
        "give where the model is: --url URL, --registry sqlite:PATH|postgresql://... or --repository DIR"
    )
