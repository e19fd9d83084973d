"""A fix for a race in aioice (the ICE library under aiortc) that leaks a task per peer.

`Connection.connect()` starts the consent-freshness task (RFC 7675) once its check list
completes. When `close()` runs while `connect()` is waiting for that result, `connect()` can
still resume with "completed" afterwards and start the task on the already-closed connection;
with no nominated pairs left, the task then wakes every ~5 s forever. A peer that leaves during
negotiation hits exactly this. The patch makes the consent task end at once on a connection
that is closing; everything else is aioice's own code.
"""

from __future__ import annotations

from aioice.ice import Connection

_query_consent = Connection.query_consent


async def _query_consent_unless_closing(self: Connection) -> None:
    if getattr(self, "_closing", False):
        return
    await _query_consent(self)


def apply() -> None:
    """Install the patch (idempotent)."""
    if Connection.query_consent is not _query_consent_unless_closing:
        Connection.query_consent = _query_consent_unless_closing  # type: ignore[method-assign]


apply()
