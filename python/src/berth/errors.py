"""The one exception type the package raises for a problem the user can fix."""

from __future__ import annotations


class BerthError(Exception):
    """A clear, user-facing error: bad input, an unsafe file, a refused import, a server's refusal.

    `berth-py` prints its message and exits with status 2; other exceptions are
    bugs and keep their traceback.
    """


class ServerError(BerthError):
    """The server answered with an error status; `status` is the HTTP status (or 0 for gRPC)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
