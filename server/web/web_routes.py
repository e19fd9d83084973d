"""HTTP routes of the browser client: the vendored Socket.IO client, client config, dev tokens.

`add_web_routes(app, settings)` adds:

- `GET /vendor/socket.io.esm.min.js` (and its `.map`): the ESM build of `socket.io-client`,
  installed from the npm registry into `web_client/node_modules` (never committed).
- `GET /api/client-config` → `{"dev": bool, "max_attachment_bytes": int}`: whether the page offers
  the dev sign-in form, and the largest file it may attach.
- `POST /api/dev/token {name, role, lang, user_id?}` → `{token, user: {id, name, role, lang}}`,
  only when the server runs in dev mode (`TRADETALK_DEV=1`); the route does not exist otherwise.
  `user_id` (an id this browser was given before for the same name) is kept, so signing in again
  keeps one's conversations; it must be the name's slug plus the 6-hex suffix.

`add_static_routes(app, root)` serves the client's own files under `/static/` (`css/*.css`,
`js/*.js`, `js/strings/*.js`) and nothing else of the package; `add_metrics_routes(app, settings)`
adds `/metrics` behind a bearer token when `TRADETALK_METRICS_TOKEN` is set.
"""

from __future__ import annotations

import hmac
import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from server import metrics
from server.config import Settings
from server.tokens import TokenError, TokenKey, check_identity, issue_token

DEV_TOKEN_TTL = 12 * 3600
VENDOR_FILES = {
    "socket.io.esm.min.js": "socket.io-client/dist/socket.io.esm.min.js",
    "socket.io.esm.min.js.map": "socket.io-client/dist/socket.io.esm.min.js.map",
}
MAX_BODY_BYTES = 4096
STATIC_FILE_RE = re.compile(r"(css/[a-z0-9_-]+\.css|js/(strings/)?[a-z0-9_-]+\.js)", re.ASCII)


def node_modules_dir() -> Path:
    """Where `npm install --prefix web_client` put the browser packages."""
    return Path(str(files("web_client"))) / "node_modules"


def user_id_for(name: str) -> str:
    """A fresh user id from a display name: a lowercase ASCII slug plus a random suffix."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-")
    return f"{slug or 'user'}-{secrets.token_hex(3)}"


def id_fits_name(user_id: object, name: str) -> bool:
    """Whether `user_id` is one `user_id_for(name)` could have given."""
    if not isinstance(user_id, str):
        return False
    slug, _, suffix = user_id.rpartition("-")
    expected = user_id_for(name).rpartition("-")[0]
    return bool(re.fullmatch(r"[0-9a-f]{6}", suffix)) and slug == expected


def vendor_handler(relative: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler serving one file of node_modules, or 404 naming the setup step."""

    async def handler(request: web.Request) -> web.StreamResponse:
        path = node_modules_dir() / relative
        if not path.is_file():
            raise web.HTTPNotFound(
                text=f"{relative} is not installed: run `npm install --prefix web_client`"
            )
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    return handler


def client_config_handler(
    dev: bool, max_attachment_bytes: int | None = None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`GET /api/client-config` → what the page needs to know before sign-in (and the largest
    attachment, so the page refuses a larger file before uploading it)."""
    config: dict[str, Any] = {"dev": dev}
    if max_attachment_bytes:
        config["max_attachment_bytes"] = max_attachment_bytes

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(config)

    return handler


def bad_request(message: str) -> web.Response:
    """400 with `{"ok": false, "error": {"code": "invalid", "message"}}`."""
    return web.json_response(
        {"ok": False, "error": {"code": "invalid", "message": message}}, status=400
    )


def dev_token_handler(secret: TokenKey) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`POST /api/dev/token {name, role, lang, user_id?}` → a 12-hour token, for `user_id` when
    it fits the name (a returning browser), else for a new user id."""

    async def handler(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return bad_request("body too large")
        try:
            data: Any = await request.json()
        except ValueError:
            return bad_request("body must be a JSON object")
        if not isinstance(data, dict):
            return bad_request("body must be a JSON object")
        unknown = set(data) - {"name", "role", "lang", "user_id"}
        if unknown:
            return bad_request(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        name = data.get("name")
        try:
            name_text = name if isinstance(name, str) else ""
            previous = data.get("user_id")
            if previous is not None and not id_fits_name(previous, name_text):
                return bad_request("user_id does not belong to that name")
            user_id = previous or user_id_for(name_text)
            identity = check_identity(user_id, name, data.get("role"), data.get("lang"))
        except TokenError as exc:
            return bad_request(str(exc))
        token = issue_token(secret, identity, DEV_TOKEN_TTL)
        return web.json_response({"token": token, "user": identity.public()})

    return handler


def add_web_routes(app: web.Application, settings: Settings) -> None:
    """Add the client's vendor files and config; the dev token endpoint only in dev mode."""
    for name, relative in VENDOR_FILES.items():
        app.router.add_get(f"/vendor/{name}", vendor_handler(relative))
    dev = settings.dev
    max_bytes = settings.limits.max_attachment_bytes
    app.router.add_get("/api/client-config", client_config_handler(dev, max_bytes))
    if dev:
        app.router.add_post("/api/dev/token", dev_token_handler(settings.token_key()))


def add_static_routes(app: web.Application, root: Path) -> None:
    """`GET /static/{css,js}/NAME` from the client dir: its stylesheets and modules only."""

    async def handler(request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"]
        path = root / relative
        if not STATIC_FILE_RE.fullmatch(relative) or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    app.router.add_get("/static/{path:.*}", handler)


def add_metrics_routes(app: web.Application, settings: Settings) -> None:
    """`GET /metrics` (Prometheus text) with `Authorization: Bearer <TRADETALK_METRICS_TOKEN>`;
    not on the public port at all without a token (use `TRADETALK_METRICS_PORT` then)."""
    token = settings.metrics_token
    if not token:
        return
    expected = f"Bearer {token}".encode()

    async def handler(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise web.HTTPUnauthorized(text="metrics need Authorization: Bearer <token>")
        body, content_type = metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get("/metrics", handler)


def polling_body_limit(max_bytes: int) -> Middleware:
    """Answer 413 at once to a Socket.IO polling POST over the packet limit (engine.io would
    drop the session and leave the request hanging)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if request.method == "POST" and length is not None and length > max_bytes:
            if request.path.startswith("/socket.io"):
                return web.Response(status=413, text=f"payload over {max_bytes} bytes")
        return await handler(request)

    return middleware
