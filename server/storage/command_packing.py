"""Redis commands packed by hiredis in one call.

redis-py's hiredis packer still passes every argument through its own Python encoder first; the
chat store's script call has about forty arguments (keys, the message, the publication's
pieces), and that loop cost as much as the JSON encoding of the message (bench/chat.py
profile). `FastPacker` hands plain arguments (str, bytes, int, float) to `hiredis.pack_command`
directly — the same bytes (UTF-8 strings, `repr` numbers) — and leaves anything else (a
command name with a space, a bool, a memoryview) to redis-py's packer, which splits or refuses
it as before.
"""

from __future__ import annotations

from typing import Any

import hiredis
import redis.asyncio as aioredis


class FastPacker:
    """A connection's command packer: hiredis straight, else redis-py's own (`fallback`)."""

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback

    def pack(self, *args: Any) -> list[bytes]:
        """The command's bytes (one chunk)."""
        name = args[0]
        if type(name) is str and " " not in name:
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # a bool, None, a memoryview...: redis-py's packer decides
                pass
        return self._fallback.pack(*args)


class FastPackingPool(aioredis.BlockingConnectionPool):
    """A blocking pool whose connections pack with `FastPacker` (when they pack with hiredis
    and encode strings as strict UTF-8, which is what `FastPacker` writes)."""

    def make_connection(self) -> Any:
        connection = super().make_connection()
        packer = getattr(connection, "_command_packer", None)
        encoder = connection.encoder
        if packer is not None and (encoder.encoding, encoder.encoding_errors) == (
            "utf-8",
            "strict",
        ):
            connection._command_packer = FastPacker(packer)
        return connection
