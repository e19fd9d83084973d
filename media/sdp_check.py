"""Checks on a client's SDP before the media engine sees it.

aiortc accepts some broken descriptions and only fails later in a background task (a missing
fingerprint, a candidate port out of range) or with an internal error (media sections that don't
match their mids). `problem(sdp)` names the first such fault so the event is answered `invalid`.
"""

from __future__ import annotations

import re

MAX_MEDIA_SECTIONS = 16
MID_RE = re.compile(r"[A-Za-z0-9_.+-]{1,32}\Z")
FINGERPRINT_RE = re.compile(r"[A-Za-z0-9-]{2,16} [0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){15,63}\Z")
ICE_RE = re.compile(r"[A-Za-z0-9+/]{1,256}\Z")
SETUP_VALUES = {"actpass", "active", "passive"}
TRANSPORTS = {"udp", "tcp"}


def _port(text: str, low: int) -> bool:
    return text.isascii() and text.isdigit() and low <= int(text) <= 65535


def _candidate(value: str) -> str | None:
    """Why an `a=candidate:` value is unusable, or None."""
    parts = value.split()
    if len(parts) < 8 or parts[6] != "typ":
        return "a candidate needs foundation, component, transport, priority, address, port, typ"
    _foundation, component, transport, priority, address, port = parts[:6]
    if not (component.isascii() and component.isdigit() and 1 <= int(component) <= 256):
        return "a candidate's component must be 1-256"
    if transport.lower() not in TRANSPORTS:
        return "a candidate's transport must be udp or tcp"
    if not (priority.isascii() and priority.isdigit() and int(priority) < 2**32):
        return "a candidate's priority must be a 32-bit number"
    if not address or len(address) > 255:
        return "a candidate needs an address"
    if not _port(port, 0 if transport.lower() == "tcp" else 1):
        return "a candidate's port must be 1-65535"
    return None


def problem(sdp: str) -> str | None:
    """The first reason this offer/answer can't be used, or None when it passes."""
    lines = [line.rstrip("\r") for line in sdp.split("\n") if line.strip()]
    session: list[str] = []
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    if not sections:
        return "an offer needs at least one media section (m=)"
    if len(sections) > MAX_MEDIA_SECTIONS:
        return f"at most {MAX_MEDIA_SECTIONS} media sections"
    session_attrs = _attributes(session)
    mids: set[str] = set()
    for section in sections:
        fields = section[0][2:].split()
        if len(fields) < 4 or not _port(fields[1].split("/")[0], 0):
            return "a media line must read m=<media> <port> <proto> <formats>"
        attrs = _attributes(section[1:])
        section_mids = attrs.get("mid", [])
        if len(section_mids) != 1 or not MID_RE.match(section_mids[0]):
            return "each media section needs exactly one a=mid of 1-32 letters or digits"
        if section_mids[0] in mids:
            return f"a=mid:{section_mids[0]} is used by two media sections"
        mids.add(section_mids[0])
        for name, pattern in (("fingerprint", FINGERPRINT_RE), ("ice-ufrag", ICE_RE)):
            values = attrs.get(name) or session_attrs.get(name) or []
            if not values or not all(pattern.match(value) for value in values):
                return f"each media section needs a valid a={name}"
        pwd = attrs.get("ice-pwd") or session_attrs.get("ice-pwd") or []
        if len(pwd) != 1 or not ICE_RE.match(pwd[0]):
            return "each media section needs one valid a=ice-pwd"
        setup = attrs.get("setup") or session_attrs.get("setup") or []
        if any(value not in SETUP_VALUES for value in setup):
            return "a=setup must be actpass, active or passive"
        for candidate in attrs.get("candidate", []):
            reason = _candidate(candidate)
            if reason:
                return reason
    return None


def _attributes(lines: list[str]) -> dict[str, list[str]]:
    """`a=name:value` lines as name -> values (flags get an empty value)."""
    found: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith("a="):
            name, _, value = line[2:].partition(":")
            found.setdefault(name, []).append(value.strip())
    return found
