"""One batch run: input file → chunks → scorer → OUTPUT and the errors file, resumable.

After each chunk the output and the errors file are appended and fsynced,
then a checkpoint beside OUTPUT (`OUTPUT.checkpoint.json`, replaced
atomically) records the chunks done and the two files' sizes. A run that
stops anywhere (a kill, a power cut, `max_chunks`) leaves a checkpoint; the
same command again cuts both files back to the recorded sizes (dropping a
half-written chunk), skips the chunks done and carries on, pinned to the
version the run started with. The checkpoint also records what the run was
(input file, model version and digest, columns, chunk size): a command that
differs is refused, naming the difference, rather than mixing two runs in
one file. A finished run removes its checkpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from berth.batch import files
from berth.batch.artifacts import ModelRef, load_artifact
from berth.batch.scoring import RowError, Scorer, check_columns, in_process, through_server
from berth.client import Client, ClientCert
from berth.errors import BerthError

CHECKPOINT_FORMAT = "berth-batch-checkpoint/1"
DEFAULT_CHUNK_ROWS = 50_000


@dataclass
class BatchResult:
    model: str
    version: int
    rows: int = 0  # input records read
    scored: int = 0
    failed: int = 0
    chunks: int = 0
    resumed_from: int = 0  # chunks a checkpoint had done before this run
    complete: bool = False
    output: Path = field(default_factory=Path)
    errors: Path = field(default_factory=Path)


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".checkpoint.json")


def default_errors_path(output: Path) -> Path:
    return output.with_name(output.name + ".errors.jsonl")


def _write_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        json.dump(state, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    # The rename itself must survive a power cut, or the old checkpoint would come back.
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BerthError(f"the checkpoint {path} is unreadable ({e}): remove it, or pass --restart") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise BerthError(f"{path} is not a berth-py batch checkpoint: remove it, or pass --restart")
    return state


def _identity(input_path: Path, scorer: Scorer, digest: str, chunk_rows: int, through: bool,
              output: Path, errors: Path) -> dict[str, Any]:  # fmt: skip
    stat = input_path.stat()
    return {
        "input": str(input_path.resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "version": scorer.version,
        "digest": digest,
        "features": scorer.signature.feature_names,
        "keep": scorer.keep,
        "chunk_rows": chunk_rows,
        "through_server": through,
        "errors": str(errors.resolve()),
    }


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f"{k} was {old.get(k)!r}, now {new.get(k)!r}" for k in new if old.get(k) != new.get(k)]


def _error_lines(chunk: files.Chunk, errors: list[RowError]) -> bytes:
    lines = [json.dumps({"row": e.row, "reason": e.reason, "values": e.values}, default=str) for e in errors]
    lines += [json.dumps(record) for record in chunk.invalid]
    return "".join(line + "\n" for line in lines).encode()


def run_batch(
    model: str,
    input_path: Path,
    output: Path,
    *,
    url: str | None = None,
    registry: str | None = None,
    repository: str | Path | None = None,
    through_server_url: str | None = None,
    errors: Path | None = None,
    keep: list[str] | None = None,
    features: list[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    restart: bool = False,
    overwrite: bool = False,
    max_chunks: int | None = None,
    threads: int = 0,
    api_key: str | None = None,
    ca_file: str | None = None,
    cert: ClientCert | None = None,
    progress: Callable[[int], None] | None = None,
    total: Callable[[int | None], None] | None = None,
) -> BatchResult:
    """Scores `input_path` into `output` with the version `model` names (see the module's docstring).

    `through_server_url` sends the rows to that server's inference route
    instead of running the artifact here. `max_chunks` stops after that many
    chunks, as an interruption would (a test hook). `progress(n)` is called
    with the records each chunk consumed; `total(n)` once with the input's
    row count (or None when the file does not say it).
    """
    if chunk_rows < 1:
        raise BerthError("--chunk-rows must be at least 1")
    ref = ModelRef.parse(model)
    errors = errors if errors is not None else default_errors_path(output)
    columns = files.input_columns(input_path)
    writer = files.Writer(output)
    marker = checkpoint_path(output)
    state = None if restart else _read_checkpoint(marker)
    pin = int(state["identity"]["version"]) if state else None
    client: Client | None = None
    try:
        if through_server_url is not None:
            client = Client(through_server_url, api_key=api_key, ca_file=ca_file, cert=cert)
            scorer = through_server(client, ref, pin=pin, keep=keep, features=features)
            digest = ""
        else:
            artifact = load_artifact(ref, url=url, registry=registry, repository=repository, api_key=api_key, pin=pin,
                                     ca_file=ca_file, cert=cert)  # fmt: skip
            scorer = in_process(artifact, keep=keep, features=features, threads=threads)
            digest = artifact.digest
        check_columns(scorer.signature, columns, str(input_path))
        missing_keep = [c for c in scorer.keep if c not in columns]
        if missing_keep:
            raise BerthError(f"--keep names column(s) the input {input_path} lacks: {', '.join(missing_keep)}")
        if state is None:
            # A fresh run: what an earlier run left is replaced only when asked to, and only now that this
            # run is known to start.
            left = [str(p) for p in (output, writer.parts, errors) if p.exists()]
            if left and not (overwrite or restart):
                raise BerthError(f"{', '.join(left)} exist(s), and no checkpoint says a run of {output} stopped: "
                                 "pass --overwrite to replace them")  # fmt: skip
            marker.unlink(missing_ok=True)
            writer.remove()
            errors.unlink(missing_ok=True)
        # Through a server, the version is pinned, not the address: a run may resume through another replica.
        identity = _identity(input_path, scorer, digest, chunk_rows, through_server_url is not None, output, errors)
        if state is not None and state.get("identity") != identity:
            raise BerthError(
                f"the checkpoint {marker} is of another run ({'; '.join(_differences(state['identity'], identity))}): "
                "run the same command to resume it, or pass --restart to start over"
            )
        if state is None:
            # Before the first chunk: a run killed while writing it must find a checkpoint that says "nothing yet".
            state = {"format": CHECKPOINT_FORMAT, "identity": identity, "chunks": 0, "rows": 0, "scored": 0,
                     "failed": 0, "output_size": 0, "errors_size": 0}  # fmt: skip
            _write_checkpoint(marker, state)
        done = int(state["chunks"])
        result = BatchResult(ref.name, scorer.version, output=output, errors=errors, resumed_from=done)
        writer.rewind(int(state["output_size"]))
        files.truncate(errors, int(state["errors_size"]))
        result.rows, result.scored, result.failed = int(state["rows"]), int(state["scored"]), int(state["failed"])
        result.chunks = done
        if total is not None:
            total(files.input_rows(input_path))
        if progress is not None and result.rows:
            progress(result.rows)
        needed = list(dict.fromkeys([*scorer.signature.feature_names, *scorer.keep]))
        numeric = {c for s in scorer.signature.inputs if s.kind != "string" for c in s.columns}
        ran = 0
        for index, chunk in enumerate(files.read_chunks(input_path, needed, numeric, chunk_rows)):
            if index < done:
                continue
            if max_chunks is not None and ran >= max_chunks:
                return result
            scored, failed = scorer.score(chunk.frame, chunk.first_row)
            output_size = writer.append(scored) if len(scored) else writer.size()
            error_bytes = _error_lines(chunk, failed)
            errors_size = files.fsync_append(errors, error_bytes) if error_bytes else _size(errors)
            result.chunks += 1
            result.rows += chunk.records
            result.scored += len(scored)
            result.failed += len(failed) + len(chunk.invalid)
            _write_checkpoint(marker, {
                "format": CHECKPOINT_FORMAT, "identity": identity, "chunks": result.chunks,
                "rows": result.rows, "scored": result.scored, "failed": result.failed,
                "output_size": output_size, "errors_size": errors_size,
            })  # fmt: skip
            ran += 1
            if progress is not None:
                progress(chunk.records)
        writer.finish(pd.DataFrame(columns=[*scorer.keep, *scorer.column_names()]))
        if errors.exists() and errors.stat().st_size == 0:
            errors.unlink()
        marker.unlink(missing_ok=True)
        result.complete = True
        return result
    finally:
        if client is not None:
            client.close()


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0
