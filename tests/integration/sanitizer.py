"""Which build of the server the integration tests run against.

`make asan` sets BERTH_SANITIZER for its integration pass. Tests whose
subject is the Python side (converters, Spark), which the sanitizers do not
look into and whose server traffic other tests already cover, run once, on
the plain build of `make test`.
"""

from __future__ import annotations

import os
from typing import Final

import pytest

SANITIZED: Final = bool(os.environ.get("BERTH_SANITIZER"))

plain_build_only = pytest.mark.skipif(
    SANITIZED, reason="the Python side's test; `make test` runs it on the plain build"
)
