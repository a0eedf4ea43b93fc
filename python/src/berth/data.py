"""Reading the user's CSV files (sample rows, holdouts) with errors that name the problem."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from berth.errors import BerthError


def read_csv(path: Path, *, what: str) -> pd.DataFrame:
    """The rows of `path`; empty, unreadable or headerless files are refused."""
    if not path.is_file():
        raise BerthError(f"the {what} {path} does not exist")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise BerthError(f"the {what} {path} is empty: it has no header and no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise BerthError(f"the {what} {path} is not a readable CSV file: {e}") from e
    if frame.empty:
        raise BerthError(f"the {what} {path} has no rows (only a header)")
    return frame


def split_target(frame: pd.DataFrame, target: str | None, path: Path) -> tuple[pd.DataFrame, np.ndarray | None]:
    """(features, target values); a target column the file lacks is an error naming the columns it has."""
    if target is None:
        return frame, None
    if target not in frame.columns:
        raise BerthError(
            f"the target column '{target}' is not in {path} (its columns: {', '.join(map(str, frame.columns))})"
        )
    values = frame[target].to_numpy()
    if pd.isna(values).any():
        raise BerthError(f"the target column '{target}' of {path} has empty values")
    return frame.drop(columns=[target]), values


def dataset_record(path: Path, rows: int) -> dict[str, Any]:
    """The metadata's `dataset`: name, digest, uri and row count of a CSV file."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"name": path.name, "digest": "sha256:" + digest, "uri": path.resolve().as_uri(), "rows": rows}
