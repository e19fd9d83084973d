"""Error codes every ack uses, and the exception that carries one."""

from __future__ import annotations

from typing import Any

INVALID = "invalid"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
RATE_LIMITED = "rate_limited"
UNKNOWN_EVENT = "unknown_event"
UNAUTHORIZED = "unauthorized"
UNAVAILABLE = "unavailable"
LIMIT_REACHED = "limit_reached"
UNKNOWN_USER = "unknown_user"
CONFLICT = "conflict"
INTERNAL = "internal"


class AppError(Exception):
    """A request that fails with a stable `code` and a human-readable `message`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def ack(self) -> dict[str, Any]:
        """The error as an ack payload."""
        return error_ack(self.code, self.message)


def error_ack(code: str, message: str) -> dict[str, Any]:
    """`{"ok": false, "error": {"code", "message"}}`."""
    return {"ok": False, "error": {"code": code, "message": message}}


def ok_ack(**fields: Any) -> dict[str, Any]:
    """`{"ok": true, ...fields}`."""
    return {"ok": True, **fields}
