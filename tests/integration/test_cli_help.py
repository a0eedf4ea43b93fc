"""`berth SUBCOMMAND --help` (and -h) prints that command's usage on stdout and
exits 0, wherever it comes among the flags; nothing on stderr."""

from __future__ import annotations

import subprocess
from typing import Final

import pytest

from berth_server import berth_binary

CLI_TIMEOUT_S: Final = 30
# (command, text its usage holds)
COMMANDS: Final = [
    (("serve",), "berth serve --model-repository DIR [options]"),
    (("serve", "--http-port", "9000"), "Options for serve:"),
    (("keys",), "berth keys create"),
    (("keys", "create"), "berth keys create"),
    (("models",), "berth models list"),
    (("models", "promote"), "berth models promote"),
]


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize(("command", "usage"), COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_help_prints_the_usage_and_exits_0(command: tuple[str, ...], usage: str, flag: str) -> None:
    done = subprocess.run(
        [str(berth_binary()), *command, flag], capture_output=True, text=True, check=False, timeout=CLI_TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr
    assert usage in done.stdout
    assert done.stderr == ""


def test_serve_help_does_not_start_a_server() -> None:
    done = subprocess.run(
        [str(berth_binary()), "serve", "--model-repository", "/nonexistent/berth-help", "--help"],
        capture_output=True, text=True, check=False, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0
    assert "berth is serving" not in done.stdout + done.stderr
