"""Runtime settings, read once from the environment."""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.tokens import TokenKey


@dataclass(frozen=True)
class Limits:
    """Explicit input and rate limits; every one is enforced by the server."""

    max_text_chars: int = 4000
    max_participants: int = 50
    max_title_chars: int = 200
    history_page_default: int = 50
    history_page_max: int = 100
    replay_max: int = 1000
    rate_per_second: float = 20.0
    rate_burst: int = 40
    max_payload_bytes: int = 1_000_000
    max_call_participants: int = 6
    max_sdp_chars: int = 32_000
    renegotiation_timeout_s: float = 10.0
    glossary_max_terms: int = 200
    glossary_max_chars: int = 100
    max_sockets_per_user: int = 20
    max_calls_per_user: int = 3
    max_tours_per_user: int = 3
    conversations_per_hour: int = 100
    idle_end_s: float = 60.0
    max_attachment_bytes: int = 25 * 1024 * 1024  # one uploaded file (413 over it)
    max_attachments_per_message: int = 10


@dataclass(frozen=True)
class Settings:
    """Where the server listens, where it keeps data and which Redis it uses."""

    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None
    data_dir: Path = Path("var")
    secret: bytes = b""
    redis_max_connections: int = 256
    dev: bool = False
    ice_servers: tuple[dict[str, Any], ...] = ()
    token_issuer: str | None = None
    token_audience: str | None = None
    metrics_token: str | None = None
    metrics_port: int | None = None
    limits: Limits = field(default_factory=Limits)
    node_id: str = field(default_factory=lambda: "n" + secrets.token_hex(4))
    # Nodes of one cluster (on one Redis) share calls and tours. `from_env` names it (default
    # "main"); built in code, a node is its own cluster unless given one (tests' servers).
    cluster: str = field(default_factory=lambda: "c" + secrets.token_hex(4))
    media: bool = True  # this node runs calls' and tours' media (else signalling only)
    media_address: str | None = None  # the address clients reach this node's media on
    node_ttl_s: float = 3.0  # a node silent this long is dead; its sessions move
    forward_timeout_s: float = 5.0  # a forwarded call/tour event unanswered → node_unavailable
    heartbeat_s: float = 30.0  # presence: a process silent this long has its sockets swept
    stop_timeout_s: float = 10.0  # SIGTERM / Ctrl-C: the process has exited within this long
    # `tradetalk serve` installs the default translation packages once ("auto"), or not ("off").
    # Built in code (tests' servers) it is off; `from_env` defaults to auto.
    provision: str = "off"
    # A speaker's open line is translated for its readers while they talk (else only finals).
    partial_translation: bool = True
    keep_location: bool = False  # images keep their EXIF GPS / XMP location (default: removed)

    def token_key(self) -> TokenKey:
        """The secret with the `iss`/`aud` claims tokens must carry."""
        return TokenKey(self.secret, self.token_issuer, self.token_audience)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from `PORT`, `HOST`, `REDIS_URL`, `TRADETALK_DATA`, `TRADETALK_SECRET`
        the per-user rate limit `TRADETALK_RATE_PER_SECOND` / `TRADETALK_RATE_BURST`, the caps
        `TRADETALK_MAX_SOCKETS_PER_USER`, `TRADETALK_MAX_CALLS_PER_USER`,
        `TRADETALK_MAX_TOURS_PER_USER`, `TRADETALK_CONVERSATIONS_PER_HOUR`, `TRADETALK_IDLE_END_S`,
        token claims `TRADETALK_TOKEN_ISSUER` / `TRADETALK_TOKEN_AUDIENCE`, and where `/metrics`
        is served: `TRADETALK_METRICS_TOKEN` (public port, bearer token) or
        `TRADETALK_METRICS_PORT` (its own loopback port); the node: `TRADETALK_NODE_ID`,
        `TRADETALK_CLUSTER`, `TRADETALK_MEDIA` (1; 0: signalling only), `TRADETALK_MEDIA_ADDRESS`,
        `TRADETALK_NODE_TTL_S` (3), `TRADETALK_FORWARD_TIMEOUT_S` (5), the presence
        heartbeat `TRADETALK_HEARTBEAT_S` (30), first-run model provisioning
        `TRADETALK_PROVISION` (auto; off), attachments `TRADETALK_ATTACHMENT_MAX_MB` (25) and
        `TRADETALK_KEEP_LOCATION` (0), and `TRADETALK_STOP_TIMEOUT_S` (10): a stop
        (SIGTERM, Ctrl-C) ends within this long."""
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("TRADETALK_DATA") or "var").resolve()
        secret_text = env.get("TRADETALK_SECRET")
        secret = secret_text.encode() if secret_text else load_or_create_secret(data_dir)
        limits = Limits(
            rate_per_second=float(env.get("TRADETALK_RATE_PER_SECOND") or Limits.rate_per_second),
            rate_burst=int(env.get("TRADETALK_RATE_BURST") or Limits.rate_burst),
            max_sockets_per_user=int(
                env.get("TRADETALK_MAX_SOCKETS_PER_USER") or Limits.max_sockets_per_user
            ),
            max_calls_per_user=int(
                env.get("TRADETALK_MAX_CALLS_PER_USER") or Limits.max_calls_per_user
            ),
            max_tours_per_user=int(
                env.get("TRADETALK_MAX_TOURS_PER_USER") or Limits.max_tours_per_user
            ),
            conversations_per_hour=int(
                env.get("TRADETALK_CONVERSATIONS_PER_HOUR") or Limits.conversations_per_hour
            ),
            idle_end_s=float(env.get("TRADETALK_IDLE_END_S") or Limits.idle_end_s),
            max_attachment_bytes=attachment_bytes(env.get("TRADETALK_ATTACHMENT_MAX_MB")),
        )
        metrics_port = env.get("TRADETALK_METRICS_PORT")
        node_id = env.get("TRADETALK_NODE_ID") or "n" + secrets.token_hex(4)
        if not NODE_ID_RE.match(node_id):
            raise SettingError(f"TRADETALK_NODE_ID={node_id!r}: use 1-40 of a-z A-Z 0-9 . _ -")
        provision = (env.get("TRADETALK_PROVISION") or "auto").strip().lower()
        if provision not in ("auto", "off"):
            raise SettingError(f"TRADETALK_PROVISION={provision!r}: use auto or off")
        return cls(
            keep_location=parse_flag(
                "TRADETALK_KEEP_LOCATION", env.get("TRADETALK_KEEP_LOCATION", "0")
            ),
            provision=provision,
            node_id=node_id,
            cluster=env.get("TRADETALK_CLUSTER") or "main",
            media=parse_flag("TRADETALK_MEDIA", env.get("TRADETALK_MEDIA", "1")),
            media_address=env.get("TRADETALK_MEDIA_ADDRESS") or None,
            node_ttl_s=positive("TRADETALK_NODE_TTL_S", env.get("TRADETALK_NODE_TTL_S"), 3.0),
            forward_timeout_s=positive(
                "TRADETALK_FORWARD_TIMEOUT_S", env.get("TRADETALK_FORWARD_TIMEOUT_S"), 5.0
            ),
            heartbeat_s=max(
                1.0, positive("TRADETALK_HEARTBEAT_S", env.get("TRADETALK_HEARTBEAT_S"), 30.0)
            ),
            stop_timeout_s=between(
                "TRADETALK_STOP_TIMEOUT_S", env.get("TRADETALK_STOP_TIMEOUT_S"), 10.0, 2.0, 120.0
            ),
            limits=limits,
            dev=parse_flag("TRADETALK_DEV", env.get("TRADETALK_DEV", "")),
            partial_translation=parse_flag(
                "TRADETALK_PARTIAL_TRANSLATION", env.get("TRADETALK_PARTIAL_TRANSLATION", "1")
            ),
            token_issuer=env.get("TRADETALK_TOKEN_ISSUER") or None,
            token_audience=env.get("TRADETALK_TOKEN_AUDIENCE") or None,
            metrics_token=env.get("TRADETALK_METRICS_TOKEN") or None,
            metrics_port=int(metrics_port) if metrics_port else None,
            ice_servers=tuple(json.loads(env.get("TRADETALK_ICE_SERVERS") or "[]")),
            host=env.get("HOST") or "127.0.0.1",
            port=int(env.get("PORT") or 8080),
            redis_url=env.get("REDIS_URL") or None,
            data_dir=data_dir,
            secret=secret,
        )


NODE_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,40}\Z")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")


class SettingError(ValueError):
    """An environment setting the server cannot start with."""


def parse_flag(name: str, value: str) -> bool:
    """A yes/no setting: 1/true/yes/on or 0/false/no/off (any case); anything else is an error."""
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingError(f"{name}={value!r}: use one of 1/true/yes/on or 0/false/no/off")


def positive(name: str, value: str | None, default: float) -> float:
    """A number of seconds above 0 (unset: `default`)."""
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise SettingError(f"{name}={value!r}: not a number of seconds") from None
    if not 0 < number < 86_400:
        raise SettingError(f"{name}={value!r}: must be above 0 seconds")
    return number


def between(name: str, value: str | None, default: float, low: float, high: float) -> float:
    """A number of seconds from `low` to `high` (unset: `default`)."""
    number = positive(name, value, default)
    if not low <= number <= high:
        raise SettingError(f"{name}={value!r}: must be {low:g} to {high:g} seconds")
    return number


def attachment_bytes(value: str | None) -> int:
    """`TRADETALK_ATTACHMENT_MAX_MB` (MB of 2^20 bytes, 0.001-2048; unset: 25) in bytes."""
    if not value:
        return Limits.max_attachment_bytes
    try:
        megabytes = float(value)
    except ValueError:
        raise SettingError(f"TRADETALK_ATTACHMENT_MAX_MB={value!r}: not a number") from None
    if not 0.001 <= megabytes <= 2048:
        raise SettingError(f"TRADETALK_ATTACHMENT_MAX_MB={value!r}: use 0.001 to 2048")
    return int(megabytes * 1024 * 1024)


def load_or_create_secret(data_dir: Path) -> bytes:
    """Return the signing secret kept in the data dir, generating it on first use."""
    path = data_dir / "secret"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_bytes().strip()
    try:
        os.write(fd, value)
    finally:
        os.close(fd)
    return value
