"""`GET /healthz`: whether Redis answers and the node is warm (503 with the reason until it is),
and this node's id, media role, drain state and where it recognizes speech, and what models
to install (for the operator)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from server.cluster.nodes import NodeRegistry
from server.warmup import Warmup
from server.web.capabilities import MODELS


def add_health_route(
    app: web.Application,
    redis: aioredis.Redis,
    node: NodeRegistry,
    warmup: Warmup,
    recognition: Callable[[], str] | None = None,
) -> None:
    """Register `GET /healthz`; `recognition()` says where speech is recognized
    (`in-process` or `workers: N`)."""

    async def healthz(request: web.Request) -> web.Response:
        try:
            redis_ok = bool(await asyncio.wait_for(redis.ping(), timeout=2))
        except (aioredis.RedisError, OSError, TimeoutError):
            redis_ok = False
        body: dict[str, Any] = {
            "ok": redis_ok and warmup.ready,
            "ready": warmup.ready,
            "redis": redis_ok,
            "node": node.node_id,
            "media": node.media,
            "draining": node.draining,
            "recognition": recognition() if recognition is not None else "in-process",
            "models": request.app[MODELS].operator(),  # for the operator: what to install
        }
        if not warmup.ready:
            body["reason"] = warmup.reason
        return web.json_response(body, status=200 if warmup.ready else 503)

    app.router.add_get("/healthz", healthz)
