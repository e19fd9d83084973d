"""Signed, expiring identity tokens: standard JWTs (HS256) with `sub`, `name`, `role`, `lang`,
`iat`, `exp` and, when the server is set to require them, `iss` and `aud`.

Any JWT library can mint them with the server secret; other algorithms (`none` included) are
refused, and so are the pre-JWT tokens (`body.signature`) with a reason saying so.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Any, TypeGuard

import jwt

ROLES = ("buyer", "supplier", "agent")
USER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")
LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?\Z")
MAX_TOKEN_CHARS = 2048
DEFAULT_TTL = 7 * 24 * 3600
ALGORITHM = "HS256"
CLOCK_SKEW_S = 30


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


def _unicode(text: str) -> bool:
    """True when the text is valid Unicode (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_identity(user_id: object, name: object, role: object, lang: object) -> Identity:
    """Validate identity fields; raise TokenError naming the bad one."""
    if not isinstance(user_id, str) or not USER_ID_RE.match(user_id):
        raise TokenError("user id must be 1-64 characters of letters, digits, _ . @ -")
    if not isinstance(name, str) or not name.strip() or len(name) > 100 or not _unicode(name):
        raise TokenError("name must be 1-100 characters")
    if not isinstance(role, str) or role not in ROLES:
        raise TokenError(f"role must be one of {', '.join(ROLES)}")
    if not isinstance(lang, str) or not LANG_RE.match(lang):
        raise TokenError("lang must be a language code such as en, es, zh")
    return Identity(user_id, name.strip(), role, lang)


@dataclass(frozen=True)
class TokenKey:
    """The signing secret plus the `iss`/`aud` claims tokens must carry (None: not checked)."""

    secret: bytes
    issuer: str | None = None
    audience: str | None = None

    @classmethod
    def of(cls, secret: bytes, issuer: str | None, audience: str | None) -> TokenKey:
        """The secret with its required claims."""
        return cls(secret, issuer, audience)


def token_key(key: bytes | TokenKey) -> TokenKey:
    """A key as given: a bare secret requires no `iss`/`aud`."""
    return key if isinstance(key, TokenKey) else TokenKey(key)


def issue_token(secret: bytes | TokenKey, identity: Identity, ttl: int = DEFAULT_TTL) -> str:
    """An HS256 JWT for `identity` that expires `ttl` seconds from now (with the key's
    `iss`/`aud` when it has them)."""
    if ttl <= 0:
        raise TokenError("ttl must be positive")
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": identity.id,
        "name": identity.name,
        "role": identity.role,
        "lang": identity.lang,
        "iat": now,
        "exp": now + ttl,
    }
    key = token_key(secret)
    if key.issuer:
        claims["iss"] = key.issuer
    if key.audience:
        claims["aud"] = key.audience
    return jwt.encode(claims, key.secret, algorithm=ALGORITHM)


def _claims(key: TokenKey, token: str) -> dict[str, Any]:
    issuer, audience = key.issuer, key.audience
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise TokenError(f"token algorithm must be {ALGORITHM}")
        claims: dict[str, Any] = jwt.decode(
            token,
            key.secret,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={
                "require": [
                    "sub",
                    "exp",
                    "iat",
                    *(["iss"] if issuer else []),
                    *(["aud"] if audience else []),
                ],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        return claims
    except jwt.InvalidSignatureError:
        raise TokenError("bad token signature") from None
    except jwt.InvalidIssuerError:
        raise TokenError("wrong token issuer") from None
    except jwt.InvalidAudienceError:
        raise TokenError("wrong token audience") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidTokenError:
        raise TokenError("malformed token") from None


def verify_token(secret: bytes | TokenKey, token: object, now: float | None = None) -> Identity:
    """Return the identity of a valid HS256 JWT, or raise TokenError with the reason."""
    if not token:
        raise TokenError("missing token")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise TokenError("malformed token")
    if token.count(".") == 1:
        raise TokenError("old-format token (before JWT): mint a new one with `tradetalk token`")
    if token.count(".") != 2:
        raise TokenError("malformed token")
    claims = _claims(token_key(secret), token)
    now = time.time() if now is None else now
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _number(exp) or not _number(iat):
        raise TokenError("malformed token")
    if exp <= now - CLOCK_SKEW_S:
        raise TokenError("token expired")
    if iat > now + CLOCK_SKEW_S:
        raise TokenError("token issued in the future")
    try:
        return check_identity(
            claims["sub"], claims.get("name"), claims.get("role"), claims.get("lang")
        )
    except TypeError:
        raise TokenError("malformed token") from None


def _number(value: object) -> TypeGuard[int | float]:
    """A JSON number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
