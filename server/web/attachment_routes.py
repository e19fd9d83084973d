"""Attachments over HTTP (docs/protocol.md, "Attachments"):

- `POST /api/conversations/{id}/attachments` (multipart field `file`, `Authorization: Bearer`)
  → 201 `{"attachment": {...}}`; 401 / 403 / 404 / 413 / 415 / 429.
- `GET /api/attachments/{id}` and `GET /api/attachments/{id}/thumbnail`: participants only,
  `X-Content-Type-Options: nosniff`, a CSP that runs nothing, `Content-Disposition: attachment`
  for everything but images.
- `GET /api/internal/blobs/{sha256}`: another node of the cluster copying a blob (HMAC of the
  sha256 with the shared secret).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from server.background import TaskSet
from server.files.uploads import Prepared, Refused, prepare
from server.realtime.validation import ATTACHMENT_ID_RE
from server.storage.attachments import (
    BLOB_AUTH_HEADER,
    SHA256_RE,
    Attachments,
    BlobUnavailable,
    blob_token,
    new_attachment_id,
    public,
)
from server.storage.ratelimit import UserRateLimit
from server.storage.store import Store, now_iso
from server.tokens import Identity, TokenKey
from server.web.access import (
    ensure_participant,
    error,
    participant_identity,
    refusal,
    request_identity,
)

log = logging.getLogger("tradetalk.attachments")

CHUNK = 256 * 1024
WRITE_BYTES = 1 << 20
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the file
# Served files never run: no scripts, plugins, frames or forms, even if a browser renders them.
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, max-age=86400",
}


@dataclass(frozen=True)
class AttachmentLimits:
    """How large an upload may be, and whether images keep their location metadata."""

    max_bytes: int
    keep_location: bool = False


def disposition(kind: str, name: str) -> str:
    """`inline`/`attachment` with the name, ASCII fallback plus RFC 5987 UTF-8."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def receive_file(part: BodyPartReader, temp: Path, max_bytes: int) -> tuple[str, int] | None:
    """Stream the part into `temp`; (sha256, size), or None when it went over `max_bytes` (the
    rest is read and dropped, up to twice the limit, so the client hears the 413). Each 1 MB
    is hashed and written on a thread while the next one arrives."""
    digest = hashlib.sha256()
    size = 0
    pending: list[bytes] = []
    out = await asyncio.to_thread(open, temp, "wb")

    def sink(block: bytes) -> None:
        digest.update(block)  # hashlib releases the GIL on large blocks
        out.write(block)

    writing: asyncio.Future[None] | None = None
    try:
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                break
            pending.append(chunk)
            if sum(map(len, pending)) >= WRITE_BYTES:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(asyncio.to_thread(sink, b"".join(pending)))
                pending = []
        if writing is not None:
            await writing
        if pending and size <= max_bytes:
            await asyncio.to_thread(sink, b"".join(pending))
    finally:
        if writing is not None and not writing.done():
            await asyncio.wait([writing])
        await asyncio.to_thread(out.close)
    if size <= max_bytes:
        return digest.hexdigest(), size
    while size <= 2 * max_bytes and (chunk := await part.read_chunk(CHUNK)):
        size += len(chunk)
    return None


class AttachmentRoutes:
    """The handlers of the attachment routes, sharing the stores, keys and limits."""

    def __init__(
        self,
        store: Store,
        attachments: Attachments,
        keys: TokenKey,
        limits: AttachmentLimits,
        rate_limit: UserRateLimit | None = None,
    ) -> None:
        self.store = store
        self.attachments = attachments
        self.blobs = attachments.store
        self.keys = keys
        self.limits = limits
        self.rate_limit = rate_limit
        self.tasks = TaskSet()  # copies to other nodes, after the upload was answered

    # --- upload

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """`POST /api/conversations/{cid}/attachments`: one file, kept, then answered."""
        cid = request.match_info["cid"]
        identity = await participant_identity(request, self.keys, self.store, cid)
        if self.rate_limit is not None and not await self.rate_limit.allow(identity.id):
            return error(429, "rate_limited", "too many requests; retry later")
        length = request.content_length
        if length is not None and length > 2 * self.limits.max_bytes + MULTIPART_OVERHEAD:
            return self.too_large()
        part = await file_part(request)
        if isinstance(part, web.Response):
            return part
        temp = await asyncio.to_thread(self.blobs.new_temp)
        try:
            prepared = await self.receive(part, temp)
            if isinstance(prepared, web.Response):
                return prepared
            meta = await self.keep(prepared, cid, identity)
        finally:
            temp.unlink(missing_ok=True)
        return web.json_response({"attachment": public(meta)}, status=201)

    def too_large(self) -> web.Response:
        message = f"a file may have at most {self.limits.max_bytes:,} bytes"
        return error(413, "too_large", message, Connection="close")

    async def receive(self, part: BodyPartReader, temp: Path) -> Prepared | web.Response:
        """The uploaded file on disk in `temp`, checked and prepared, or the error answer."""
        received = await receive_file(part, temp, self.limits.max_bytes)
        if received is None:
            return self.too_large()
        sha, size = received
        if size == 0:
            return error(400, "invalid", "the file is empty")
        name = part.filename or "file"
        keep_location = self.limits.keep_location
        try:
            return await asyncio.to_thread(prepare, temp, sha, size, name, keep_location)
        except Refused as exc:
            return error(415, "unsupported_type", str(exc))

    async def keep(self, prepared: Prepared, cid: str, identity: Identity) -> dict[str, Any]:
        """Blobs durably on disk, then the metadata in Redis (the answer comes after both)."""
        thumb = None
        if prepared.thumbnail:
            thumb = await asyncio.to_thread(self.blobs.put_bytes, prepared.thumbnail)
        await asyncio.to_thread(self.blobs.commit, prepared.content, prepared.sha256)
        meta = {
            "id": new_attachment_id(),
            "conversation_id": cid,
            "uploader": identity.id,
            "name": prepared.name,
            "mime": prepared.kind.mime,
            "size": prepared.size,
            "sha256": prepared.sha256,
            "width": prepared.width,
            "height": prepared.height,
            "thumb": thumb,
            "created_at": now_iso(),
        }
        await self.attachments.save(meta)
        shas = [prepared.sha256, *([thumb] if thumb else [])]
        self.tasks.spawn(self.attachments.replicate(shas))
        return meta

    # --- download

    async def readable(self, request: web.Request) -> dict[str, Any]:
        """The attachment's metadata if the requester may read it (401 / 404 / 403 else)."""
        aid = request.match_info["aid"]
        identity = request_identity(request, self.keys)
        meta = await self.attachments.get(aid) if ATTACHMENT_ID_RE.match(aid) else None
        if meta is None:
            raise refusal(404, "no such attachment")
        await ensure_participant(self.store, identity, meta["conversation_id"])
        return meta

    async def serve(self, sha: str, headers: dict[str, str]) -> web.StreamResponse:
        """A blob from this node (fetched from a holder first if need be), served safely."""
        try:
            path = await self.attachments.local_path(sha)
        except BlobUnavailable as exc:
            log.warning("%s", exc)
            return error(
                503, "unavailable", "the file is not reachable now; retry", **{"Retry-After": "5"}
            )
        return web.FileResponse(path, headers={**SAFE_HEADERS, **headers})

    async def download(self, request: web.Request) -> web.StreamResponse:
        """`GET /api/attachments/{aid}`: images inline, everything else as a download."""
        meta = await self.readable(request)
        mime = meta["mime"]
        inline = mime.startswith("image/") and mime != "image/vnd.dxf"
        content_type = f"{mime}; charset=utf-8" if mime.startswith("text/") else mime
        kind = "inline" if inline else "attachment"
        headers = {
            "Content-Type": content_type,
            "Content-Disposition": disposition(kind, meta["name"]),
        }
        return await self.serve(meta["sha256"], headers)

    async def thumbnail(self, request: web.Request) -> web.StreamResponse:
        """`GET /api/attachments/{aid}/thumbnail`: an image's JPEG thumbnail."""
        meta = await self.readable(request)
        if not meta.get("thumb"):
            return error(404, "not_found", "this attachment has no thumbnail")
        stem = meta["name"].rpartition(".")[0] or meta["name"]
        headers = {
            "Content-Type": "image/jpeg",
            "Content-Disposition": disposition("inline", f"{stem}-thumbnail.jpg"),
        }
        return await self.serve(meta["thumb"], headers)

    # --- between nodes

    def node_asks(self, request: web.Request) -> str | None:
        """The blob's sha256 if the request carries the cluster's HMAC for it, else None."""
        sha = request.match_info["sha"]
        given = request.headers.get(BLOB_AUTH_HEADER, "")
        if SHA256_RE.match(sha) and hmac.compare_digest(given, blob_token(self.keys.secret, sha)):
            return sha
        return None

    async def internal_blob(self, request: web.Request) -> web.StreamResponse:
        """`GET /api/internal/blobs/{sha}`: another node copies a blob this one holds."""
        sha = self.node_asks(request)
        if sha is None:
            return error(403, "forbidden", "nodes only")
        path = self.blobs.path(sha)
        if not os.path.isfile(path):  # noqa: ASYNC240 (one stat, no thread hop)
            return error(404, "not_found", "not on this node")
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})

    async def pull_blob(self, request: web.Request) -> web.StreamResponse:
        """`POST /api/internal/blobs/{sha}/pull`: another node asks this one to keep a copy of
        a blob (fetched from a holder)."""
        sha = self.node_asks(request)
        if sha is None:
            return error(403, "forbidden", "nodes only")
        try:
            await self.attachments.local_path(sha)
        except BlobUnavailable as exc:
            return error(503, "unavailable", str(exc))
        return web.json_response({"ok": True})

    async def stop_tasks(self, app: web.Application) -> None:
        """On shutdown: the copies to other nodes still running stop."""
        await self.tasks.cancel(timeout=2)


async def file_part(request: web.Request) -> BodyPartReader | web.Response:
    """The multipart field `file` of an upload, or the 400 answer."""
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        return error(400, "invalid", "send the file as multipart/form-data, field `file`")
    part = await reader.next()
    while part is not None and (not isinstance(part, BodyPartReader) or part.name != "file"):
        await part.release()
        part = await reader.next()
    if part is None:
        return error(400, "invalid", "no multipart field `file`")
    return part


def add_attachment_routes(
    app: web.Application,
    store: Store,
    attachments: Attachments,
    keys: TokenKey,
    limits: AttachmentLimits,
    rate_limit: UserRateLimit | None = None,
) -> AttachmentRoutes:
    """Register the upload, download, thumbnail and node-to-node blob routes."""
    routes = AttachmentRoutes(store, attachments, keys, limits, rate_limit)
    app.router.add_post("/api/conversations/{cid}/attachments", routes.upload)
    app.router.add_get("/api/attachments/{aid}", routes.download)
    app.router.add_get("/api/attachments/{aid}/thumbnail", routes.thumbnail)
    app.router.add_get("/api/internal/blobs/{sha}", routes.internal_blob)
    app.router.add_post("/api/internal/blobs/{sha}/pull", routes.pull_blob)
    app.on_shutdown.append(routes.stop_tasks)
    return routes
