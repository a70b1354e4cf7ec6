"""ApiError: an HTTP status and a message the client can act on, sent in the response envelope."""

from __future__ import annotations


class ApiError(Exception):
    """A request failure answered with ``status`` and ``{errorCode: status, errorMsg: message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
