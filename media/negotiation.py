"""SDP checks and codec choices for the media room (thin helpers over aiortc)."""

from __future__ import annotations

import copy
from typing import Any

from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc import sdp as aiortc_sdp

from media.errors import InvalidSdpError

MAX_SDP_BYTES = 64 * 1024

#: the codec we encode per kind: the fan-out hands these packets to senders as they are
SEND_CODECS = {"video": "video/vp8", "audio": "audio/opus"}


def parse_sdp(text: object, kind: str = "offer") -> aiortc_sdp.SessionDescription:
    """Parse an offer/answer, or raise `InvalidSdpError` (aiortc itself accepts garbage)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidSdpError(f"empty {kind} SDP")
    if len(text) > MAX_SDP_BYTES:
        raise InvalidSdpError(f"{kind} SDP larger than {MAX_SDP_BYTES} bytes")
    if not text.lstrip().startswith("v=0"):
        raise InvalidSdpError(f"{kind} SDP must start with v=0")
    try:
        description = aiortc_sdp.SessionDescription.parse(text)
    except Exception as exc:  # aiortc raises ValueError, KeyError, IndexError...
        raise InvalidSdpError(f"unparseable {kind} SDP: {exc}") from exc
    if not any(m.kind in ("audio", "video") for m in description.media):
        raise InvalidSdpError(f"{kind} SDP has no audio or video m-line")
    for media in description.media:
        ice = media.ice.usernameFragment if media.ice is not None else None
        if media.kind in ("audio", "video") and not (ice and media.dtls):
            raise InvalidSdpError(f"{kind} SDP m-line {media.rtp.muxId} lacks ICE/DTLS")
    return description


def remote_sends(direction: str | None) -> bool:
    """Whether the SDP author sends media on an m-line with this direction."""
    return direction in ("sendrecv", "sendonly")


def remote_receives(direction: str | None) -> bool:
    """Whether the SDP author accepts media on an m-line with this direction."""
    return direction in ("sendrecv", "recvonly")


def direction_for(send: bool, receive: bool) -> str:
    """Our transceiver direction from what we send and receive."""
    return {
        (True, True): "sendrecv",
        (True, False): "sendonly",
        (False, True): "recvonly",
        (False, False): "inactive",
    }[(send, receive)]


def restrict_to_send_codec(transceiver: RTCRtpTransceiver) -> bool:
    """Limit a transceiver we send on to the codec we encode (VP8 / Opus, plus RTX).

    `setCodecPreferences` covers offers we create. For an offer already applied (we answer
    on the client's own m-line) aiortc has computed the common codecs, and the sender will
    use the first one, so we filter that list too (aiortc keeps it in `_codecs`). Returns
    False when the remote side does not support our codec on this m-line.
    """
    wanted = SEND_CODECS[transceiver.kind]
    prefs = [
        c
        for c in RTCRtpSender.getCapabilities(transceiver.kind).codecs
        if c.mimeType.lower() in (wanted, f"{transceiver.kind}/rtx")
    ]
    transceiver.setCodecPreferences(prefs)
    negotiated = list(getattr(transceiver, "_codecs", []) or [])
    if not negotiated:
        return True
    primary = [c for c in negotiated if c.mimeType.lower() == wanted]
    if not primary:
        return False
    pts = {c.payloadType for c in primary}
    rtx = [
        c
        for c in negotiated
        if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") in pts
    ]
    transceiver._codecs = primary + rtx
    return True


def learn_payload_types(media: list[Any], pts: dict[str, int], rtx: dict[int, int]) -> None:
    """Record the payload types a client's offer uses (mime type -> pt, rtx pt per apt)."""
    for m in media:
        for codec in m.rtp.codecs:
            mime = codec.mimeType.lower()
            if mime.endswith("/rtx"):
                apt = codec.parameters.get("apt")
                if isinstance(apt, int):
                    rtx.setdefault(apt, codec.payloadType)
            else:
                pts.setdefault(mime, codec.payloadType)


def keep_payload_types(
    offer_sdp: str,
    transceivers: list[RTCRtpTransceiver],
    negotiated: dict[str, list[Any]],
    client_pts: dict[str, int],
    client_rtx: dict[int, int],
) -> str:
    """Rewrite a re-offer from aiortc so payload types stay those already agreed.

    aiortc's `createOffer` renumbers every m-line with its own default payload types. A
    browser that offered VP8 as 96 (aiortc: 97) would then switch its sending payload type
    while our receiver keeps the first mapping, and bundled m-lines could map one payload
    type to two codecs. So: m-lines already negotiated keep their codec list; new ones use
    the client's own payload types for our codec (or free dynamic ones). Updates
    `negotiated` and each transceiver's codec list (aiortc's `_codecs`, used by its sender).
    """
    description = aiortc_sdp.SessionDescription.parse(offer_sdp)
    # new transceivers get their mid only in setLocalDescription: match by m-line index
    by_index = {t._get_mline_index(): t for t in transceivers}
    taken = set(client_pts.values()) | set(client_rtx.values())
    for codecs in negotiated.values():
        taken |= {c.payloadType for c in codecs}
    for index, media in enumerate(description.media):
        transceiver = by_index.get(index)
        if transceiver is None or media.kind not in ("audio", "video"):
            continue
        kept = negotiated.get(media.rtp.muxId)
        if kept is not None:
            codecs = kept
        else:
            codecs = _renumber(transceiver._codecs, client_pts, client_rtx, taken)
            negotiated[media.rtp.muxId] = codecs
        transceiver._codecs = copy.deepcopy(codecs)
        media.rtp.codecs = copy.deepcopy(codecs)
        media.fmt = [c.payloadType for c in codecs]
    return str(description)


def _renumber(
    codecs: list[Any], client_pts: dict[str, int], client_rtx: dict[int, int], taken: set[int]
) -> list[Any]:
    """Copies of `codecs` with the client's payload types where known, else free ones."""
    out: list[Any] = []
    primary_pt: dict[int, int] = {}

    def free(preferred: int | None, original: int) -> int:
        for pt in (preferred, original, *range(96, 128)):
            if pt is not None and pt not in taken and pt not in {c.payloadType for c in out}:
                return pt
        raise ValueError("no free payload type")

    for codec in codecs:
        if codec.mimeType.lower().endswith("/rtx"):
            continue
        new = copy.deepcopy(codec)
        known = client_pts.get(codec.mimeType.lower())
        new.payloadType = known if known is not None else free(None, codec.payloadType)
        primary_pt[codec.payloadType] = new.payloadType
        out.append(new)
    for codec in codecs:
        if not codec.mimeType.lower().endswith("/rtx"):
            continue
        apt = primary_pt.get(codec.parameters.get("apt"))
        if apt is None:
            continue
        new = copy.deepcopy(codec)
        new.payloadType = client_rtx.get(apt) or free(None, codec.payloadType)
        new.parameters = {**codec.parameters, "apt": apt}
        out.append(new)
    return out


def learn_extension_ids(media: list[Any], ids: dict[str, int]) -> None:
    """Record the RTP header-extension ids a client's offer uses (uri -> id)."""
    for m in media:
        for extension in m.rtp.headerExtensions:
            ids.setdefault(extension.uri, extension.id)


def keep_extension_ids(
    offer_sdp: str, transceivers: list[RTCRtpTransceiver], ids: dict[str, int]
) -> str:
    """Rewrite a re-offer from aiortc so header-extension ids stay those already agreed.

    aiortc numbers extensions afresh in every offer (sdes:mid = 1, ...), while the client's
    first offer chose the ids (Chrome: ssrc-audio-level = 1, ...). Chrome refuses an offer
    that gives an id in use a new meaning ("RTP extension ID reassignment not supported").
    Known uris get the client's id, new ones a free id; each transceiver's extension list
    (aiortc's `_headerExtensions`, which its sender uses) is updated to match. Updates `ids`.
    """
    description = aiortc_sdp.SessionDescription.parse(offer_sdp)
    by_index = {t._get_mline_index(): t for t in transceivers}
    for index, media in enumerate(description.media):
        if media.kind not in ("audio", "video"):
            continue
        for extension in media.rtp.headerExtensions:
            if extension.uri not in ids:
                used = set(ids.values())
                ids[extension.uri] = next(i for i in range(1, 256) if i not in used)
            extension.id = ids[extension.uri]
        transceiver = by_index.get(index)
        if transceiver is not None:
            transceiver._headerExtensions = copy.deepcopy(media.rtp.headerExtensions)
    return str(description)


def keep_candidates(sdp: str, address: str) -> str:
    """The SDP with only the ICE candidates on `address` (the node's media address); unchanged
    when no candidate is on it (the address is not one of this host's interfaces)."""
    lines = sdp.split("\r\n")

    def on_address(line: str) -> bool:
        parts = line.split()
        return len(parts) > 4 and parts[4] == address

    candidates = [line for line in lines if line.startswith("a=candidate:")]
    if not any(on_address(line) for line in candidates):
        return sdp
    return "\r\n".join(
        line for line in lines if not line.startswith("a=candidate:") or on_address(line)
    )
