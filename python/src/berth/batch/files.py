"""Reading input files in chunks, and appending output chunks so that a crash loses at most the chunk in flight.

Formats go by the file's extension: `.csv`, `.jsonl` (or `.ndjson`) and
`.parquet`. Inputs are streamed (pyarrow's CSV reader and Parquet
`iter_batches`, JSON lines one by one), re-cut into chunks of exactly
`chunk_rows` rows, so the same file always gives the same chunks: a resumed
run skips the chunks a checkpoint counts and carries on from the next.
A record that is not a row (a CSV line with the wrong number of fields, a
JSON line that does not parse) is handed back with the chunk it was read
in, for the errors file.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from berth.errors import BerthError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_CSV_BLOCK_BYTES = 1 << 20


def format_of(path: Path, what: str) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BerthError(f"the {what} {path} is not .csv, .jsonl or .parquet (the format goes by the extension)")
    return fmt


@dataclass
class Chunk:
    frame: pd.DataFrame
    first_row: int  # 0-based index of the chunk's first row among the rows read
    invalid: list[dict[str, Any]] = field(default_factory=list)  # records that are not rows: line, reason, text
    records: int = 0  # input records the chunk consumed (its rows and the invalid ones)


def input_columns(path: Path) -> list[str]:
    """The input's column names (CSV header, Parquet schema, the first JSON line's keys)."""
    if not path.is_file():
        raise BerthError(f"the input {path} does not exist")
    fmt = format_of(path, "input")
    try:
        if fmt == "csv":
            with path.open(newline="", encoding="utf-8-sig") as f:  # pyarrow skips a byte-order mark too
                header = next(csv.reader(f), None)
            if not header:
                raise BerthError(f"the input {path} is empty: it has no header")
            return header
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    try:
                        doc = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(doc, dict):
                        return [str(k) for k in doc]
        raise BerthError(f"the input {path} has no JSON object on any line")
    except UnicodeDecodeError as e:
        raise BerthError(f"the input {path} is not UTF-8 text: {e}") from e
    except OSError as e:
        raise BerthError(f"cannot read the input {path}: {e}") from e
    except Exception as e:  # pyarrow's errors for a file that is not Parquet
        if isinstance(e, BerthError):
            raise
        raise BerthError(f"the input {path} is not a readable {fmt} file: {e}") from e


def input_rows(path: Path) -> int | None:
    """The row count where the file says it without being read (Parquet), else None."""
    if format_of(path, "input") == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def read_chunks(path: Path, columns: list[str], numeric: set[str], chunk_rows: int) -> Iterator[Chunk]:
    """`path`'s `columns` in chunks of `chunk_rows` rows; the `numeric` ones as float64 where every cell parses."""
    fmt = format_of(path, "input")
    invalid: list[dict[str, Any]] = []
    if fmt == "jsonl":
        tables: Iterator[Any] = _json_tables(path, columns, invalid)
    elif fmt == "csv":
        tables = _csv_tables(path, columns, invalid)
    else:
        tables = _parquet_tables(path, columns)
    first_row = 0
    pending: list[Any] = []
    pending_rows = 0
    try:
        for table in tables:
            pending.append(table)
            pending_rows += _rows(table)
            while pending_rows >= chunk_rows:
                chunk, pending, pending_rows = _cut(pending, chunk_rows)
                yield Chunk(_frame(chunk, numeric), first_row, list(invalid), _rows(chunk) + len(invalid))
                first_row += _rows(chunk)
                invalid.clear()
    except BerthError:
        raise
    except Exception as e:  # pyarrow's ArrowInvalid for a file it cannot read past some point
        raise BerthError(f"cannot read the input {path} past row {first_row + pending_rows}: {e}") from e
    if pending_rows or invalid:
        chunk, _, _ = _cut(pending, pending_rows) if pending else (None, [], 0)
        frame = _frame(chunk, numeric) if chunk is not None else pd.DataFrame(columns=columns)
        yield Chunk(frame, first_row, list(invalid), len(frame) + len(invalid))


def _cut(tables: list[Any], rows: int) -> tuple[Any, list[Any], int]:
    """The first `rows` rows of `tables` (Arrow tables, or pandas frames for JSON lines) and the rest."""
    if isinstance(tables[0], pd.DataFrame):
        whole = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
        rest = whole.iloc[rows:].reset_index(drop=True)
        return whole.iloc[:rows].reset_index(drop=True), ([rest] if len(rest) else []), len(rest)
    import pyarrow as pa

    whole = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    rest = whole.slice(rows)
    return whole.slice(0, rows), ([rest] if rest.num_rows else []), rest.num_rows


def _rows(table: Any) -> int:
    return len(table) if isinstance(table, pd.DataFrame) else int(table.num_rows)


def _frame(table: Any, numeric: set[str]) -> pd.DataFrame:
    """A pandas frame of the chunk: numeric feature columns cast to float64 in Arrow when every cell parses."""
    if isinstance(table, pd.DataFrame):
        return table  # JSON lines: values as JSON typed them; the row checks parse the rest
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if name in numeric and pa.types.is_string(column.type):
            # A cell that is not a number leaves the column as text: the row checks name it.
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                column = pc.cast(column, pa.float64())
        columns[name] = column
    frame = pa.table(columns).to_pandas()
    for name in numeric & set(frame.columns):
        if frame[name].dtype.kind in "iub":
            frame[name] = frame[name].astype(np.float64)
    return frame


def _csv_tables(path: Path, columns: list[str], invalid: list[dict[str, Any]]) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    def on_invalid(row: Any) -> str:
        reason = f"the line has {row.actual_columns} fields; the header has {row.expected_columns}"
        body = row.text.rstrip("\r\n")
        if "\n" in body:
            reason += f" (the record runs over {body.count(chr(10)) + 1} lines: a quote left open?)"
        invalid.append({
            "line": row.number if row.number is not None and row.number >= 0 else None,
            "reason": reason,
            "text": row.text[:1000],
            "bytes": len(row.text.encode()),
        })  # fmt: skip
        return "skip"

    header = input_columns(path)
    reader = pcsv.open_csv(
        path,
        # One thread and a fixed block size: the same file gives the same batches, so resuming skips exactly.
        read_options=pcsv.ReadOptions(use_threads=False, block_size=_CSV_BLOCK_BYTES),
        parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=False),
        # Every cell as text: a number is parsed per column, so one bad cell fails its row, not the file.
        convert_options=pcsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()), include_columns=columns, strings_can_be_null=True
        ),
    )
    for batch in reader:
        yield pa.Table.from_batches([batch])


def _parquet_tables(path: Path, columns: list[str]) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=65536, columns=columns):
        yield pa.Table.from_batches([batch])


def _json_tables(path: Path, columns: list[str], invalid: list[dict[str, Any]]) -> Iterator[pd.DataFrame]:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", errors="surrogateescape") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError as e:
                invalid.append({"line": number, "reason": f"the line is not JSON: {e}", "text": line[:1000]})
                continue
            if not isinstance(doc, dict):
                invalid.append({"line": number, "reason": "the line is not a JSON object", "text": line[:1000]})
                continue
            rows.append({c: doc.get(c) for c in columns})
            if len(rows) == 8192:
                yield pd.DataFrame.from_records(rows, columns=columns)
                rows = []
    if rows:
        yield pd.DataFrame.from_records(rows, columns=columns)


# Output ------------------------------------------------------------------


def fsync_append(path: Path, data: bytes) -> int:
    """Appends `data` to `path` and fsyncs it; the file's new size."""
    with path.open("ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
        return f.tell()


def truncate(path: Path, size: int) -> None:
    """Cuts `path` back to `size` bytes (what a crash wrote past the last checkpoint)."""
    if not path.exists():
        if size:
            raise BerthError(f"{path} is gone, and the checkpoint says {size} bytes of it were written")
        return
    if path.stat().st_size < size:
        raise BerthError(f"{path} is shorter than the checkpoint says it was: it changed since the run stopped")
    with path.open("r+b") as f:
        f.truncate(size)


class Writer:
    """Appends scored chunks to OUTPUT: CSV and JSON lines in place, Parquet as one part file per chunk.

    A Parquet file cannot be appended to, so chunks go to `OUTPUT.parts/`
    and `finish()` joins them into OUTPUT (streamed: one part in memory).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = format_of(path, "output")
        self.parts = path.with_name(path.name + ".parts")

    def size(self) -> int:
        """What the checkpoint records: bytes written (CSV, JSON lines) or parts written (Parquet)."""
        if self.format == "parquet":
            return len(list(self.parts.glob("part-*.parquet"))) if self.parts.is_dir() else 0
        return self.path.stat().st_size if self.path.exists() else 0

    def rewind(self, size: int) -> None:
        """Drops whatever was written after the checkpoint that recorded `size`."""
        if self.format != "parquet":
            truncate(self.path, size)
            return
        for part in sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []:
            if int(part.stem.split("-")[1]) >= size:
                part.unlink()
        for tmp in self.parts.glob("*.tmp") if self.parts.is_dir() else []:
            tmp.unlink()

    def append(self, frame: pd.DataFrame) -> int:
        """Writes one chunk's rows durably; the new size()."""
        if self.format == "csv":
            header = not self.path.exists() or self.path.stat().st_size == 0
            return fsync_append(self.path, frame.to_csv(index=False, header=header).encode())
        if self.format == "jsonl":
            text = (
                frame.to_json(orient="records", lines=True, force_ascii=False, double_precision=15)
                if len(frame)
                else ""
            )
            if text and not text.endswith("\n"):
                text += "\n"
            return fsync_append(self.path, text.encode())
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.parts.mkdir(exist_ok=True)
        index = self.size()
        final = self.parts / f"part-{index:06d}.parquet"
        tmp = final.with_suffix(".tmp")
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        return index + 1

    def finish(self, empty: pd.DataFrame) -> None:
        """Completes OUTPUT (a header-only CSV or an empty Parquet file when no row scored)."""
        if self.format == "csv":
            if not self.path.exists() or self.path.stat().st_size == 0:
                fsync_append(self.path, empty.to_csv(index=False).encode())
            return
        if self.format == "jsonl":
            self.path.touch()
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []
        tmp = self.path.with_name(self.path.name + ".tmp")
        # One schema for all parts: a part whose text column was all empty has it as Arrow's null type.
        schemas = [pq.read_schema(part).remove_metadata() for part in parts]
        schema = (
            pa.unify_schemas(schemas, promote_options="permissive")
            if schemas
            else pa.Table.from_pandas(empty, preserve_index=False).schema
        )
        with pq.ParquetWriter(tmp, schema) as writer:
            for part in parts:
                writer.write_table(pq.read_table(part).cast(schema))
        os.replace(tmp, self.path)
        shutil.rmtree(self.parts, ignore_errors=True)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.parts, ignore_errors=True)
