"""Model names as the server accepts them."""

from __future__ import annotations

import re

from berth.errors import BerthError

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_model_name(name: str) -> None:
    """A model name is 1 to 128 characters of letters, digits, '_', '.', '-', starting with a letter or digit."""
    if not _MODEL_NAME.fullmatch(name) or ".." in name:
        raise BerthError(f"'{name}' is not a model name (letters, digits, '_', '.', '-'; at most 128)")
