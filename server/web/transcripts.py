"""`GET /api/conversations/{id}/transcript?format=txt|srt|json[&call_id=...]`: the bilingual
transcript of a conversation's calls, for its participants only (same tokens as Socket.IO,
given as `Authorization: Bearer <token>` or `?token=`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.realtime.validation import CALL_ID_RE, CONVERSATION_ID_RE
from server.storage.store import Store
from server.tokens import TokenKey
from server.web.access import participant_identity
from server.web.note_wording import note_text
from translation.errors import as_note

MAX_LINES = 20_000
FORMATS = {"txt": "text/plain", "srt": "application/x-subrip", "json": "application/json"}


def clock(seconds: float, separator: str = ".") -> str:
    """HH:MM:SS.mmm (SRT uses a comma)."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def to_line(entry: dict[str, Any]) -> dict[str, Any]:
    """A kept transcript line (or a `kind: "transcript"` history entry of earlier releases)
    as exported."""
    speaker = entry.get("speaker") or entry["sender"]
    return {
        "call_id": entry["call_id"],
        "start": entry["start"],
        "end": entry["end"],
        "speaker": {"id": speaker["id"], "name": speaker["name"]},
        "lang": entry["lang"],
        "text": entry["text"],
        "translations": entry.get("translations", {}),
        "translation_error": {
            lang: as_note(value, entry["lang"], lang)
            for lang, value in (entry.get("translation_error") or {}).items()
        },
    }


def untranslated(line: dict[str, Any]) -> list[tuple[str, str]]:
    """(language, note text) for each language the line could not be translated into."""
    errors = line.get("translation_error") or {}
    return sorted((lang, note_text(as_note(v, line["lang"], lang))) for lang, v in errors.items())


def render_srt(lines: list[dict[str, Any]]) -> str:
    """SubRip: each cue shows the speaker's words, then one line per translation."""
    cues = []
    for n, line in enumerate(lines, 1):
        body = [f"{line['speaker']['name']}: {line['text']}"]
        body += [f"[{lang}] {text}" for lang, text in sorted(line["translations"].items())]
        body += [f"[{lang}] {why}" for lang, why in untranslated(line)]
        span = f"{clock(line['start'], ',')} --> {clock(line['end'], ',')}"
        cues.append(f"{n}\n{span}\n" + "\n".join(body) + "\n")
    return "\n".join(cues)


def render_txt(lines: list[dict[str, Any]]) -> str:
    """Plain text: time, speaker and language, then the translations indented."""
    out = []
    for line in lines:
        out.append(
            f"[{clock(line['start'])}] {line['speaker']['name']} ({line['lang']}): {line['text']}"
        )
        out += [f"    {lang}: {text}" for lang, text in sorted(line["translations"].items())]
        out += [f"    {lang}: {why}" for lang, why in untranslated(line)]
    return "\n".join(out) + "\n"


async def legacy_lines(store: Store, cid: str) -> list[dict[str, Any]]:
    """Lines that earlier releases kept in the history itself (`kind: "transcript"`)."""
    top = await store.last_id(cid)
    entries = await store.messages_range(cid, max(1, top - MAX_LINES + 1), top)
    return [e for e in entries if e.get("kind") == "transcript"]


def add_transcript_routes(app: web.Application, store: Store, secret: TokenKey) -> None:
    """Register the transcript export route."""

    async def transcript(request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        fmt = request.query.get("format", "json")
        call_id = request.query.get("call_id")
        if not CONVERSATION_ID_RE.match(cid) or fmt not in FORMATS:
            raise web.HTTPBadRequest(text="bad conversation id or format (txt, srt, json)")
        if call_id is not None and not CALL_ID_RE.match(call_id):
            raise web.HTTPBadRequest(text="bad call_id")
        await participant_identity(request, secret, store, cid)
        lines = [
            to_line(e)
            for e in [
                *await legacy_lines(store, cid),
                *await store.transcript_lines(cid, MAX_LINES),
            ]
            if call_id is None or e["call_id"] == call_id
        ]
        if fmt == "json":
            return web.json_response({"conversation_id": cid, "lines": lines})
        text = render_srt(lines) if fmt == "srt" else render_txt(lines)
        name = f"transcript-{call_id or cid}.{fmt}"
        return web.Response(
            text=text,
            content_type=FORMATS[fmt],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    app.router.add_get("/api/conversations/{cid}/transcript", transcript)
