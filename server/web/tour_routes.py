"""`GET /api/tours/{id}/transcript?format=txt|srt|json`: a tour's lines and questions, as kept in
Redis (they outlive the tour)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.realtime.validation import TOUR_ID_RE
from server.storage.tour_archive import TourArchive
from server.tokens import TokenKey
from server.web.access import refusal, request_identity
from server.web.note_wording import note_text
from server.web.transcripts import FORMATS, clock, render_srt, render_txt
from translation.errors import as_note


def reader_notes(
    lines: list[dict[str, Any]], questions: list[dict[str, Any]], tour_lang: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Lines and questions with every `translation_error` as a note (`{code, from, to}`; entries
    kept before notes existed held the engine's message, which is not for readers)."""

    def line_notes(line: dict[str, Any]) -> dict[str, Any]:
        errors = line.get("translation_error")
        if not errors:
            return line
        notes = {lang: as_note(why, line["lang"], lang) for lang, why in errors.items()}
        return {**line, "translation_error": notes}

    def question_note(question: dict[str, Any]) -> dict[str, Any]:
        why = question.get("translation_error")
        if not why:
            return question
        return {**question, "translation_error": as_note(why, question["lang"], tour_lang)}

    return [line_notes(x) for x in lines], [question_note(q) for q in questions]


def question_lines(q: dict[str, Any]) -> list[str]:
    """A question as plain text: time, asker and language, then the host-language translation."""
    out = [f"[{clock(q['at'])}] Q: {q['asker']['name']} ({q['lang']}): {q['text']}"]
    if q.get("translation") and q["translation"] != q["text"]:
        out.append(f"    {q['translation']}")
    elif q.get("translation_error"):
        out.append(f"    ({note_text(as_note(q['translation_error'], q['lang'], '?'))})")
    return out


def render_tour_txt(lines: list[dict[str, Any]], questions: list[dict[str, Any]]) -> str:
    """Lines and questions in the order they happened (both in seconds of the tour's clock; a
    question asked while a line was spoken follows it)."""
    events = [(line["start"], 0, render_txt([line])) for line in lines]
    events += [(q["at"], 1, "\n".join(question_lines(q)) + "\n") for q in questions]
    return "".join(text for _, _, text in sorted(events, key=lambda e: (e[0], e[1])))


def add_tour_routes(app: web.Application, archive: TourArchive, secret: TokenKey) -> None:
    """`GET /api/tours/{id}/transcript?format=txt|srt|json`: for the host, the invited and
    everyone who joined (`Authorization: Bearer <token>` or `?token=`)."""

    async def transcript(request: web.Request) -> web.Response:
        tid = request.match_info["tid"]
        fmt = request.query.get("format", "json")
        if not TOUR_ID_RE.match(tid) or fmt not in FORMATS:
            raise web.HTTPBadRequest(text="bad tour id or format (txt, srt, json)")
        identity = request_identity(request, secret)
        kept = await archive.transcript(tid)
        if kept is None:
            raise refusal(404, "no such tour")
        meta = kept.meta
        allowed = {meta["host"]["id"], *(meta.get("invite") or []), *kept.access}
        if identity.id not in allowed:
            raise refusal(403, "not the host, invited or a viewer of this tour")
        lines, questions = reader_notes(kept.lines, kept.questions, meta["lang"])
        if fmt == "json":
            return web.json_response({"tour": meta, "lines": lines, "questions": questions})
        if fmt == "srt":
            text = render_srt(lines)
        else:
            text = render_tour_txt(lines, questions)
        return web.Response(
            text=text,
            content_type=FORMATS[fmt],
            headers={"Content-Disposition": f'attachment; filename="tour-{tid}.{fmt}"'},
        )

    app.router.add_get("/api/tours/{tid}/transcript", transcript)
