"""Start, watch and stop the processes of a benchmark run.

Every server runs in its own session (process group), pinned to one core with
`taskset`, its output in a log file. Stopping sends SIGTERM to that group,
waits, then SIGKILLs whatever is left of the process tree recorded just
before, so a server that forks helpers in sessions of their own (PyTriton's
tritonserver) still goes away.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Final

HOST: Final = "127.0.0.1"
STOP_TIMEOUT_S: Final = 10.0
_POLL_INTERVAL_S: Final = 0.1
_CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on HOST right now (all bound at once, so distinct)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(port: int) -> bool:
    """True if something accepts TCP connections on HOST:port."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def pinned(command: Sequence[str], core: int | str) -> list[str]:
    """`command` under `taskset -c core`: it and every process it starts run on that core (or cpu list, "0,1")."""
    return ["taskset", "-c", str(core), *command]


# --- /proc -------------------------------------------------------------------


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat that the harness uses."""

    pid: int
    ppid: int
    start_ticks: int  # identifies the process together with pid (pids are reused)
    cpu_ticks: int  # utime + stime, all threads


def _read_stat(pid: int) -> ProcStat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    fields = raw.rpartition(")")[2].split()
    # fields[0] is field 3 of stat(5): state, ppid, ..., utime (14), stime (15), ..., starttime (22).
    return ProcStat(pid, int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12]))


def _all_stats() -> list[ProcStat]:
    stats = (_read_stat(int(entry)) for entry in os.listdir("/proc") if entry.isdigit())
    return [stat for stat in stats if stat is not None]


def process_tree(root: int) -> list[ProcStat]:
    """`root` and all its live descendants."""
    stats = _all_stats()
    children: dict[int, list[ProcStat]] = {}
    by_pid = {stat.pid: stat for stat in stats}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat)
    if root not in by_pid:
        return []
    tree, pending = [], [by_pid[root]]
    while pending:
        stat = pending.pop()
        tree.append(stat)
        pending.extend(children.get(stat.pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) used so far by `root` and its live descendants."""
    return sum(stat.cpu_ticks for stat in process_tree(root)) / _CLOCK_TICKS


def _same_process(stat: ProcStat) -> bool:
    now = _read_stat(stat.pid)
    return now is not None and now.start_ticks == stat.start_ticks


# --- Managed processes ---------------------------------------------------------


class StartupError(RuntimeError):
    """A server did not come up; the message carries the end of its log."""


@dataclass
class ManagedProcess:
    """A process started by the harness, in a session of its own, logging to `log_path`."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """CPU time of the whole process tree so far."""
        return tree_cpu_seconds(self.pid)

    def wait_until(self, ready: Callable[[], bool], *, timeout_s: float, what: str) -> None:
        """Poll `ready` until it is true; StartupError if the process exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise StartupError(f"{self.name} exited with code {code} before {what}:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(_POLL_INTERVAL_S)
        raise StartupError(f"{self.name}: no {what} within {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the process group; after STOP_TIMEOUT_S, SIGKILL what is left of the tree."""
        tree = process_tree(self.pid)
        if self.running():
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.process.wait()
        # Helpers that outlived the root (orphans are reparented, so they no longer show in its tree).
        survivors = [stat for stat in tree if stat.pid != self.pid and _same_process(stat)]
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while survivors and time.monotonic() < deadline:
            time.sleep(_POLL_INTERVAL_S)
            survivors = [stat for stat in survivors if _same_process(stat)]
        for stat in survivors:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stat.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def start_process(
    stack: ExitStack,
    name: str,
    command: Sequence[str],
    *,
    log_path: Path,
    core: int | str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Start `command` pinned to `core` (or a cpu list); `stack` stops it when it unwinds."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            pinned(command, core),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    managed = ManagedProcess(name, process, log_path)
    stack.callback(managed.stop)
    return managed
