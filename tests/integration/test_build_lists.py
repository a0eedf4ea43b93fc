"""Lists of targets kept in two build files agree: `make fuzz` builds and runs
every fuzz target whose seed corpus CMake replays (BERTH_FUZZ_TARGETS)."""

from __future__ import annotations

import re

from berth_server import REPO_ROOT


def make_list(name: str) -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(rf"^{name}\s*:?=(.*)$", text, re.MULTILINE)
    assert match, f"no {name} in the Makefile"
    return set(match.group(1).split())


def cmake_list(name: str) -> set[str]:
    match = re.search(rf"set\({name}\s+([^)]*)\)", (REPO_ROOT / "CMakeLists.txt").read_text())
    assert match, f"no {name} in CMakeLists.txt"
    return set(match.group(1).split())


def test_make_fuzz_runs_every_fuzz_target_cmake_knows() -> None:
    make, cmake = make_list("FUZZ_TARGETS"), cmake_list("BERTH_FUZZ_TARGETS")
    assert make == cmake, f"only in CMake: {sorted(cmake - make)}; only in the Makefile: {sorted(make - cmake)}"
    for name in cmake:
        assert (REPO_ROOT / "tests" / "fuzz" / f"{name}_fuzzer.cc").is_file(), name
        assert (REPO_ROOT / "tests" / "fuzz" / "corpus" / name).is_dir(), name
