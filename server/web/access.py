"""Who an HTTP request is, and whether they take part in a conversation; the one error shape
of the HTTP API: `{"ok": false, "error": {code, message}}` (as a Socket.IO error ack).

`request_identity` answers 401 without a valid token (`Authorization: Bearer <token>` or
`?token=`, the same tokens as Socket.IO); `participant_identity` (and `ensure_participant`)
also 404 for an unknown conversation and 403 for someone not in it.
"""

from __future__ import annotations

import json

from aiohttp import web

from server.realtime.validation import CONVERSATION_ID_RE
from server.storage.store import Store
from server.tokens import Identity, TokenError, TokenKey, verify_token

STATUS_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found"}


def error_body(code: str, message: str) -> dict[str, object]:
    """The error object every HTTP error of the API carries."""
    return {"ok": False, "error": {"code": code, "message": message}}


def error(status: int, code: str, message: str, **headers: str) -> web.Response:
    """An HTTP error answer with the protocol's error object."""
    return web.json_response(error_body(code, message), status=status, headers=headers or None)


def refusal(status: int, message: str) -> web.HTTPException:
    """A 401 / 403 / 404 to raise, with the protocol's error object."""
    exception = {401: web.HTTPUnauthorized, 403: web.HTTPForbidden, 404: web.HTTPNotFound}[status]
    body = json.dumps(error_body(STATUS_CODES[status], message))
    return exception(text=body, content_type="application/json")


def request_identity(request: web.Request, secret: TokenKey) -> Identity:
    """Who an HTTP request is, from `Authorization: Bearer <token>` or `?token=`; 401 if
    the token is missing or not valid."""
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else request.query.get("token")
    try:
        return verify_token(secret, token)
    except TokenError as exc:
        raise refusal(401, str(exc)) from None


async def participant_identity(
    request: web.Request, secret: TokenKey, store: Store, cid: str
) -> Identity:
    """The requester, a participant of conversation `cid`: 401 without a valid token, 404
    for an unknown conversation, 403 for someone not in it."""
    identity = request_identity(request, secret)
    await ensure_participant(store, identity, cid)
    return identity


async def ensure_participant(store: Store, identity: Identity, cid: str) -> None:
    """404 for an unknown conversation, 403 if `identity` is not in it."""
    conversation = await store.get_conversation(cid) if CONVERSATION_ID_RE.match(cid) else None
    if conversation is None:
        raise refusal(404, f"no conversation {cid}")
    if identity.id not in conversation["participants"]:
        raise refusal(403, "you are not a participant of this conversation")
