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
from server.realtime.validation import ATTACHMENT_ID_RE, CONVERSATION_ID_RE
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
from server.web.transcripts import request_identity

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


def error(status: int, code: str, message: str, **headers: str) -> web.Response:
    """An HTTP error with the protocol's error object."""
    body = {"ok": False, "error": {"code": code, "message": message}}
    return web.json_response(body, status=status, headers=headers or None)


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


def add_attachment_routes(
    app: web.Application,
    store: Store,
    attachments: Attachments,
    keys: TokenKey,
    limits: AttachmentLimits,
    rate_limit: UserRateLimit | None = None,
) -> None:
    """Register the upload, download, thumbnail and node-to-node blob routes."""
    blobs = attachments.store
    tasks = TaskSet()  # copies to other nodes, after the upload was answered

    async def participant(identity: Identity, cid: str) -> web.Response | None:
        conversation = await store.get_conversation(cid)
        if conversation is None:
            return error(404, "not_found", f"no conversation {cid}")
        if identity.id not in conversation["participants"]:
            return error(403, "forbidden", "you are not a participant of this conversation")
        return None

    async def upload(request: web.Request) -> web.StreamResponse:
        cid = request.match_info["cid"]
        identity = request_identity(request, keys)
        if not CONVERSATION_ID_RE.match(cid):
            return error(404, "not_found", "no such conversation")
        refused = await participant(identity, cid)
        if refused is not None:
            return refused
        if rate_limit is not None and not await rate_limit.allow(identity.id):
            return error(429, "rate_limited", "too many requests; retry later")
        too_big = f"a file may have at most {limits.max_bytes:,} bytes"
        length = request.content_length
        if length is not None and length > 2 * limits.max_bytes + MULTIPART_OVERHEAD:
            return error(413, "too_large", too_big, Connection="close")
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
        temp = await asyncio.to_thread(blobs.new_temp)
        try:
            received = await receive_file(part, temp, limits.max_bytes)
            if received is None:
                return error(413, "too_large", too_big, Connection="close")
            sha, size = received
            if size == 0:
                return error(400, "invalid", "the file is empty")
            name = part.filename or "file"
            try:
                prepared = await asyncio.to_thread(
                    prepare, temp, sha, size, name, limits.keep_location
                )
            except Refused as exc:
                return error(415, "unsupported_type", str(exc))
            meta = await keep(prepared, cid, identity)
        finally:
            temp.unlink(missing_ok=True)
        return web.json_response({"attachment": public(meta)}, status=201)

    async def keep(prepared: Prepared, cid: str, identity: Identity) -> dict[str, Any]:
        """Blobs durably on disk, then the metadata in Redis (the answer comes after both)."""
        thumb = None
        if prepared.thumbnail:
            thumb = await asyncio.to_thread(blobs.put_bytes, prepared.thumbnail)
        await asyncio.to_thread(blobs.commit, prepared.content, prepared.sha256)
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
        await attachments.save(meta)
        shas = [prepared.sha256, *([thumb] if thumb else [])]
        tasks.spawn(attachments.replicate(shas))
        return meta

    async def readable(request: web.Request) -> dict[str, Any] | web.Response:
        """The attachment's metadata if the requester may read it, else the error answer."""
        aid = request.match_info["aid"]
        identity = request_identity(request, keys)
        meta = await attachments.get(aid) if ATTACHMENT_ID_RE.match(aid) else None
        if meta is None:
            return error(404, "not_found", "no such attachment")
        refused = await participant(identity, meta["conversation_id"])
        return refused if refused is not None else meta

    async def serve(sha: str, headers: dict[str, str]) -> web.StreamResponse:
        try:
            path = await attachments.local_path(sha)
        except BlobUnavailable as exc:
            log.warning("%s", exc)
            return error(
                503, "unavailable", "the file is not reachable now; retry", **{"Retry-After": "5"}
            )
        return web.FileResponse(path, headers={**SAFE_HEADERS, **headers})

    async def download(request: web.Request) -> web.StreamResponse:
        meta = await readable(request)
        if isinstance(meta, web.Response):
            return meta
        mime = meta["mime"]
        inline = mime.startswith("image/") and mime != "image/vnd.dxf"
        content_type = f"{mime}; charset=utf-8" if mime.startswith("text/") else mime
        return await serve(
            meta["sha256"],
            {
                "Content-Type": content_type,
                "Content-Disposition": disposition(
                    "inline" if inline else "attachment", meta["name"]
                ),
            },
        )

    async def thumbnail(request: web.Request) -> web.StreamResponse:
        meta = await readable(request)
        if isinstance(meta, web.Response):
            return meta
        if not meta.get("thumb"):
            return error(404, "not_found", "this attachment has no thumbnail")
        stem = meta["name"].rpartition(".")[0] or meta["name"]
        return await serve(
            meta["thumb"],
            {
                "Content-Type": "image/jpeg",
                "Content-Disposition": disposition("inline", f"{stem}-thumbnail.jpg"),
            },
        )

    def node_asks(request: web.Request) -> str | None:
        """The blob's sha256 if the request carries the cluster's HMAC for it, else None."""
        sha = request.match_info["sha"]
        given = request.headers.get(BLOB_AUTH_HEADER, "")
        if SHA256_RE.match(sha) and hmac.compare_digest(given, blob_token(keys.secret, sha)):
            return sha
        return None

    async def internal_blob(request: web.Request) -> web.StreamResponse:
        sha = node_asks(request)
        if sha is None:
            return error(403, "forbidden", "nodes only")
        path = blobs.path(sha)
        if not os.path.isfile(path):  # noqa: ASYNC240 (one stat, no thread hop)
            return error(404, "not_found", "not on this node")
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})

    app.router.add_post("/api/conversations/{cid}/attachments", upload)
    app.router.add_get("/api/attachments/{aid}", download)
    app.router.add_get("/api/attachments/{aid}/thumbnail", thumbnail)

    async def pull_blob(request: web.Request) -> web.StreamResponse:
        """Another node asks this one to keep a copy of a blob (fetched from a holder)."""
        sha = node_asks(request)
        if sha is None:
            return error(403, "forbidden", "nodes only")
        try:
            await attachments.local_path(sha)
        except BlobUnavailable as exc:
            return error(503, "unavailable", str(exc))
        return web.json_response({"ok": True})

    async def stop_tasks(app: web.Application) -> None:
        await tasks.cancel(timeout=2)

    app.router.add_get("/api/internal/blobs/{sha}", internal_blob)
    app.router.add_post("/api/internal/blobs/{sha}/pull", pull_blob)
    app.on_shutdown.append(stop_tasks)
