"""Payload validation for Socket.IO events: every field checked, errors raised as `invalid`."""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from typing import Any, Literal, overload

from media import sdp_check
from server.realtime.errors import INVALID, AppError
from server.tokens import LANG_RE, USER_ID_RE

CONVERSATION_ID_RE = re.compile(r"^c_[0-9a-f]{16}\Z")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
CALL_ID_RE = re.compile(r"^k_[0-9a-f]{16}\Z")
TOUR_ID_RE = re.compile(r"^t_[0-9a-f]{16}\Z")
ATTACHMENT_ID_RE = re.compile(r"^a_[0-9a-f]{16}\Z")


def invalid(message: str) -> AppError:
    """An `invalid` error."""
    return AppError(INVALID, message)


def payload(data: Any, allowed: AbstractSet[str]) -> dict[str, Any]:
    """The event payload as a dict with no fields outside `allowed`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise invalid("payload must be a JSON object")
    unknown = set(data) - allowed
    if unknown:
        raise invalid(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    return data


def conversation_id(data: dict[str, Any], field: str = "conversation_id") -> str:
    """A required, well-formed conversation id."""
    value = data.get(field)
    if not isinstance(value, str) or not CONVERSATION_ID_RE.match(value):
        raise invalid(f"{field} must be a conversation id like c_0123456789abcdef")
    return value


def user_id(value: Any, field: str) -> str:
    """A well-formed user id."""
    if not isinstance(value, str) or not USER_ID_RE.match(value):
        raise invalid(f"{field} must be a user id (1-64 letters, digits, _ . @ -)")
    return value


@overload
def message_id(data: dict[str, Any], field: str, required: Literal[True]) -> int: ...
@overload
def message_id(data: dict[str, Any], field: str, required: bool) -> int | None: ...
def message_id(data: dict[str, Any], field: str, required: bool) -> int | None:
    """A message id: a positive integer (ids count up from 1 within a conversation)."""
    value = data.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2**53:
        raise invalid(f"{field} must be a message id (a non-negative integer)")
    return value


@overload
def text(
    data: dict[str, Any], field: str, max_chars: int, required: Literal[True] = True
) -> str: ...
@overload
def text(data: dict[str, Any], field: str, max_chars: int, required: bool) -> str | None: ...
def text(data: dict[str, Any], field: str, max_chars: int, required: bool = True) -> str | None:
    """A string of 1..max_chars characters that isn't only whitespace."""
    value = data.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise invalid(f"{field} must be a string")
    if not value.strip():
        raise invalid(f"{field} must not be empty")
    if len(value) > max_chars:
        raise invalid(f"{field} is longer than {max_chars} characters")
    return value


def client_id(data: dict[str, Any]) -> str:
    """The client's idempotency key for a send."""
    value = data.get("client_id")
    if not isinstance(value, str) or not CLIENT_ID_RE.match(value):
        raise invalid("client_id must be 1-64 characters of letters, digits, _ . : -")
    return value


def attachment_ids(data: dict[str, Any], max_count: int) -> list[str]:
    """`attachments`: 1..max_count distinct attachment ids (absent or null: none)."""
    value = data.get("attachments")
    if value is None:
        return []
    if not isinstance(value, list) or not 1 <= len(value) <= max_count:
        raise invalid(f"attachments must be a list of 1-{max_count} attachment ids")
    for item in value:
        if not isinstance(item, str) or not ATTACHMENT_ID_RE.match(item):
            raise invalid("attachments[] must be attachment ids like a_0123456789abcdef")
    if len(set(value)) != len(value):
        raise invalid("attachments[] must not repeat an id")
    return value


def boolean(data: dict[str, Any], field: str) -> bool:
    """A required boolean."""
    value = data.get(field)
    if not isinstance(value, bool):
        raise invalid(f"{field} must be true or false")
    return value


def integer(data: dict[str, Any], field: str, low: int, high: int, default: int) -> int:
    """An optional integer in [low, high]."""
    value = data.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(f"{field} must be an integer from {low} to {high}")
    return value


def participants(data: dict[str, Any], max_count: int) -> list[str]:
    """A non-empty list of distinct, well-formed user ids (order kept)."""
    value = data.get("participants")
    if not isinstance(value, list) or not value:
        raise invalid("participants must be a non-empty list of user ids")
    if len(value) > max_count:
        raise invalid(f"at most {max_count} participants")
    ids = [user_id(v, "participants[]") for v in value]
    return list(dict.fromkeys(ids))


def lang(data: dict[str, Any], field: str = "lang") -> str:
    """A language code such as en, es, zh."""
    value = data.get(field)
    if not isinstance(value, str) or not LANG_RE.match(value):
        raise invalid(f"{field} must be a language code such as en, es, zh")
    return value


def glossary(data: dict[str, Any], max_terms: int, max_chars: int) -> dict[str, str | None]:
    """`terms`: an object of term -> fixed translation (string) or null (keep the term as is)."""
    value = data.get("terms")
    if not isinstance(value, dict):
        raise invalid("terms must be an object of term -> translation or null")
    if len(value) > max_terms:
        raise invalid(f"at most {max_terms} glossary terms")
    for term, fixed in value.items():
        if not term.strip() or len(term) > max_chars:
            raise invalid(f"glossary terms must be 1-{max_chars} characters")
        if fixed is not None and (not isinstance(fixed, str) or len(fixed) > max_chars):
            raise invalid(f"a term's translation must be null or a string of <= {max_chars} chars")
    return value


def call_id(data: dict[str, Any]) -> str:
    """A required, well-formed call id."""
    value = data.get("call_id")
    if not isinstance(value, str) or not CALL_ID_RE.match(value):
        raise invalid("call_id must be a call id like k_0123456789abcdef")
    return value


def sdp(data: dict[str, Any], kind: str, max_chars: int) -> str:
    """An SDP string of the given type (`offer` or `answer`), within the size limit."""
    value = data.get("sdp")
    if not isinstance(value, str) or not value.startswith("v=0"):
        raise invalid("sdp must be a session description starting with v=0")
    if len(value) > max_chars:
        raise invalid(f"sdp is longer than {max_chars} characters")
    if data.get("type", kind) != kind:
        raise invalid(f"type must be {kind!r}")
    reason = sdp_check.problem(value)
    if reason is not None:
        raise invalid(f"bad {kind}: {reason}")
    return value
