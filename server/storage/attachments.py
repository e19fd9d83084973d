"""Attachments: content-addressed files under `TRADETALK_DATA/attachments`, metadata in Redis,
and fetching a file this node lacks from a node that has it (a cluster of local stores).

Files: `attachments/blobs/ab/cd/abcd…` named by their sha256; written to `attachments/tmp/{node}/`,
fsynced, renamed into place, and the directories fsynced, before anything refers to them.
Redis (prefix `tt:`):
- `att:{id}`     JSON: {id, conversation_id, uploader, name, mime, size, sha256, width?,
                 height?, thumb (sha256 of the JPEG thumbnail or null), created_at}
- `blob:{sha}`   set: ids of the nodes whose store holds that blob

A node asked for a blob it lacks reads `blob:{sha}`, finds each holder's URL in the cluster
registry (`tt:node:{id}`), GETs `/api/internal/blobs/{sha}` there (authenticated by an HMAC
of the sha256 with the cluster's shared secret), checks the sha256, keeps the copy and adds
itself to `blob:{sha}`. After an upload the node asks one other live node of its cluster to copy
it the same way (in the background), so a file outlives the loss of any one node. With one
shared volume mounted as every node's `TRADETALK_DATA/attachments`, every blob is local and
nothing is fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import redis.asyncio as aioredis

from server.storage.keys import PREFIX, text
from server.storage.node_records import NodeInfo, node_key

log = logging.getLogger("tradetalk.attachments")

SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
BLOB_AUTH_HEADER = "X-TradeTalk-Blob-Auth"
PUBLIC_FIELDS = ("id", "name", "mime", "size", "sha256", "width", "height")
FETCH_CHUNK = 1 << 20


class LiveNodes(Protocol):
    """The node registry, as the copies to other nodes need it."""

    async def live(self) -> list[NodeInfo]: ...


def new_attachment_id() -> str:
    """A fresh attachment id: `a_` + 16 hex digits."""
    return "a_" + secrets.token_hex(8)


def public(meta: dict[str, Any]) -> dict[str, Any]:
    """What clients see of an attachment: {id, name, mime, size, sha256, width?, height?,
    thumbnail} (`thumbnail`: whether `GET /api/attachments/{id}/thumbnail` has one)."""
    shown = {k: meta[k] for k in PUBLIC_FIELDS if meta.get(k) is not None}
    shown["thumbnail"] = bool(meta.get("thumb"))
    return shown


def fsync_dir(path: Path) -> None:
    """fsync a directory, so a rename or a new entry in it survives a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    """Files named by their sha256 under `root` (blocking calls: run them in a thread). Each
    node writes its uploads in progress to its own `tmp/{node}` (one shared volume is safe)."""

    def __init__(self, root: Path, node_id: str = "local") -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.tmp = self.root / "tmp" / node_id
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        """Where the blob `sha` lives (whether or not it is there)."""
        return self.blobs / sha[:2] / sha[2:4] / sha

    def has(self, sha: str) -> bool:
        """Whether the blob is here."""
        return self.path(sha).is_file()

    def new_temp(self) -> Path:
        """A fresh empty file in the store's temp dir (same file system as the blobs)."""
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="up-")
        os.close(fd)
        return Path(name)

    def commit(self, temp: Path, sha: str) -> Path:
        """Move a fully written temp file into place as blob `sha`, durably: the file is
        fsynced, renamed, and the directories that changed are fsynced. An existing blob (the
        same content) is kept and the temp file removed."""
        target = self.path(sha)
        if target.is_file():
            temp.unlink(missing_ok=True)
            return target
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        created = [d for d in (target.parent.parent, target.parent) if not d.exists()]
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        fsync_dir(target.parent)
        for directory in reversed(created):
            fsync_dir(directory.parent)
        return target

    def put_bytes(self, data: bytes) -> str:
        """Store `data` durably; its sha256."""
        sha = hashlib.sha256(data).hexdigest()
        if self.has(sha):
            return sha
        temp = self.new_temp()
        temp.write_bytes(data)
        self.commit(temp, sha)
        return sha

    def clean_temp(self) -> int:
        """Remove temp files left by a crash mid-upload; how many."""
        removed = 0
        for leftover in self.tmp.glob("*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
                removed += 1
        return removed


def blob_token(secret: bytes, sha: str) -> str:
    """The HMAC a node shows another to read blob `sha` from it."""
    return hmac.new(bytes(secret), f"blob:{sha}".encode(), hashlib.sha256).hexdigest()


class BlobUnavailable(Exception):
    """No reachable node holds the blob (its holders are down); retry later."""


class Attachments:
    """Attachment metadata in Redis and blobs in this node's store, fetched from other nodes
    on a miss."""

    def __init__(
        self,
        redis: aioredis.Redis,
        store: BlobStore,
        node_id: str,
        secret: bytes,
        fetch_timeout_s: float = 60.0,
        registry: LiveNodes | None = None,
        copies: int = 1,
    ) -> None:
        self.registry = registry
        self.copies = copies
        self.redis = redis
        self.store = store
        self.node_id = node_id
        self.secret = bytes(secret)
        self.fetch_timeout_s = fetch_timeout_s
        self._http: aiohttp.ClientSession | None = None
        self._fetching: dict[str, asyncio.Future[Path]] = {}

    @staticmethod
    def key(*parts: str) -> str:
        """A namespaced key."""
        return PREFIX + ":".join(parts)

    async def save(self, meta: dict[str, Any]) -> None:
        """Record an attachment whose blobs this node holds (committed already)."""
        shas = [meta["sha256"], *([meta["thumb"]] if meta.get("thumb") else [])]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key("att", meta["id"]), json.dumps(meta, ensure_ascii=False))
            for sha in shas:
                pipe.sadd(self.key("blob", sha), self.node_id)
            await pipe.execute()

    async def get(self, attachment_id: str) -> dict[str, Any] | None:
        """The attachment's metadata, or None."""
        raw = await self.redis.get(self.key("att", attachment_id))
        return json.loads(raw) if raw else None

    async def many(self, ids: Iterable[str]) -> list[dict[str, Any] | None]:
        """Metadata of each id (None where unknown), in order."""
        ids = list(ids)
        if not ids:
            return []
        raws = await self.redis.mget([self.key("att", i) for i in ids])
        return [json.loads(r) if r else None for r in raws]

    async def for_message(self, cid: str, sender: str, ids: list[str]) -> list[dict[str, Any]]:
        """What a message carries of each attachment (public metadata, in the order given);
        ValueError unless every id is an upload of `sender` to conversation `cid`."""
        metas = await self.many(ids)
        for attachment_id, meta in zip(ids, metas, strict=True):
            if meta is None or meta["conversation_id"] != cid or meta["uploader"] != sender:
                raise ValueError(
                    f"attachment {attachment_id} is not one you uploaded to this conversation"
                )
        return [public(meta) for meta in metas if meta is not None]

    async def local_path(self, sha: str) -> Path:
        """The blob's path on this node, fetched from a node that holds it when missing here;
        BlobUnavailable when no holder answers."""
        path = self.store.path(sha)
        if os.path.isfile(path):  # noqa: ASYNC240 (one stat: cheaper than a thread hop)
            return path
        running = self._fetching.get(sha)
        if running is None:
            running = asyncio.ensure_future(self._fetch(sha))
            self._fetching[sha] = running
            running.add_done_callback(lambda _: self._fetching.pop(sha, None))
        return await asyncio.shield(running)

    async def _fetch(self, sha: str) -> Path:
        """Copy blob `sha` from the first holder that answers; sha256 checked before it is kept."""
        holders = sorted(text(h) for h in await self.redis.smembers(self.key("blob", sha)))
        holders = [h for h in holders if h != self.node_id]
        if not holders:
            raise BlobUnavailable(f"no node holds blob {sha}")
        raws = await self.redis.mget([node_key(h) for h in holders])
        problems = []
        for holder, raw in zip(holders, raws, strict=True):
            if raw is None:
                problems.append(f"{holder}: not running")
                continue
            url = NodeInfo.from_json(raw).url
            if not url:
                problems.append(f"{holder}: no url")
                continue
            try:
                path = await self._fetch_from(url, sha)
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                problems.append(f"{holder}: {exc}")
                continue
            await self.redis.sadd(self.key("blob", sha), self.node_id)
            log.info("fetched blob %s from %s", sha[:12], holder)
            return path
        raise BlobUnavailable(f"blob {sha[:12]}… not reachable ({'; '.join(problems)})")

    async def _fetch_from(self, base_url: str, sha: str) -> Path:
        temp = await asyncio.to_thread(self.store.new_temp)
        digest = hashlib.sha256()
        try:
            headers = {BLOB_AUTH_HEADER: blob_token(self.secret, sha)}
            async with self.client().get(
                f"{base_url}/api/internal/blobs/{sha}", headers=headers
            ) as r:
                if r.status != 200:
                    raise ValueError(f"HTTP {r.status}")
                out = await asyncio.to_thread(open, temp, "wb")
                try:
                    async for chunk in r.content.iter_chunked(FETCH_CHUNK):
                        digest.update(chunk)
                        await asyncio.to_thread(out.write, chunk)
                finally:
                    await asyncio.to_thread(out.close)
            if digest.hexdigest() != sha:
                raise ValueError("sha256 mismatch")
            return await asyncio.to_thread(self.store.commit, temp, sha)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def client(self) -> aiohttp.ClientSession:
        """The HTTP client for node-to-node requests (made on first use)."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.fetch_timeout_s, sock_connect=3)
            )
        return self._http

    async def replicate(self, shas: list[str]) -> int:
        """Ask `copies` other live nodes of the cluster (least loaded first) to copy these
        blobs from us, so a file outlives this node; how many nodes took them. Failures are
        logged: the blobs stay here and are fetched on demand."""
        if self.registry is None or self.copies < 1:
            return 0
        nodes = [n for n in await self.registry.live() if n.id != self.node_id and n.url]
        done = 0
        for node in nodes:
            try:
                for sha in shas:
                    headers = {BLOB_AUTH_HEADER: blob_token(self.secret, sha)}
                    url = f"{node.url}/api/internal/blobs/{sha}/pull"
                    async with self.client().post(url, headers=headers) as r:
                        if r.status != 200:
                            raise ValueError(f"HTTP {r.status}")
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                log.warning("could not copy blobs to %s (%s)", node.id, exc)
                continue
            done += 1
            if done >= self.copies:
                break
        return done

    async def close(self) -> None:
        """Close the HTTP client used for fetches."""
        if self._http is not None:
            await self._http.close()
            self._http = None
