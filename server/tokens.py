"""Signed, expiring identity tokens: base64url(JSON claims) + "." + base64url(HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import asdict, dataclass

ROLES = ("buyer", "supplier", "agent")
USER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
MAX_TOKEN_CHARS = 2048
DEFAULT_TTL = 7 * 24 * 3600


class TokenError(ValueError):
    """A token that can't be accepted; the message says why."""


@dataclass(frozen=True)
class Identity:
    """Who a socket is: taken only from its verified token."""

    id: str
    name: str
    role: str
    lang: str

    def public(self) -> dict[str, str]:
        """The identity as embedded in messages and events."""
        return asdict(self)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_identity(user_id: str, name: str, role: str, lang: str) -> Identity:
    """Validate identity fields; raise TokenError naming the bad one."""
    if not isinstance(user_id, str) or not USER_ID_RE.match(user_id):
        raise TokenError("user id must be 1-64 characters of letters, digits, _ . @ -")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise TokenError("name must be 1-100 characters")
    if role not in ROLES:
        raise TokenError(f"role must be one of {', '.join(ROLES)}")
    if not isinstance(lang, str) or not LANG_RE.match(lang):
        raise TokenError("lang must be a language code such as en, es, zh")
    return Identity(user_id, name.strip(), role, lang)


def issue_token(secret: bytes, identity: Identity, ttl: int = DEFAULT_TTL) -> str:
    """Sign a token for `identity` that expires `ttl` seconds from now."""
    if ttl <= 0:
        raise TokenError("ttl must be positive")
    now = int(time.time())
    claims = {
        "sub": identity.id,
        "name": identity.name,
        "role": identity.role,
        "lang": identity.lang,
        "iat": now,
        "exp": now + ttl,
    }
    body = _b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    sig = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}"


def verify_token(secret: bytes, token: object, now: float | None = None) -> Identity:
    """Return the identity of a valid token, or raise TokenError with the reason."""
    if not token:
        raise TokenError("missing token")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise TokenError("malformed token")
    body, sig = token.split(".")
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, expected):
        raise TokenError("bad token signature")
    try:
        claims = json.loads(_unb64(body))
        exp = claims["exp"]
        identity = check_identity(claims["sub"], claims["name"], claims["role"], claims["lang"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError("malformed token") from exc
    if not isinstance(exp, int) or exp <= (time.time() if now is None else now):
        raise TokenError("token expired")
    return identity
