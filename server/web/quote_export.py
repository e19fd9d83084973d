"""`GET /api/conversations/{id}/quotes/{quote_id}?format=json|pdf`: a quote for its
conversation's participants (same tokens as Socket.IO, `Authorization: Bearer <token>` or
`?token=`), the PDF in the reader's current language with the original beside it."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from server.handlers.chat import Translating
from server.realtime.validation import CONVERSATION_ID_RE
from server.storage.languages import Languages
from server.storage.quotes import QuoteStore
from server.storage.store import Store
from server.tokens import TokenKey
from server.trade.quote_pdf import render
from server.trade.quotes import QUOTE_ID_RE, reader_texts, texts
from server.web.access import participant_identity, refusal

FORMATS = ("json", "pdf")


async def reader_view(
    store: Store,
    service: Translating | None,
    version: dict[str, Any],
    lang: str,
    cid: str,
) -> dict[str, Any] | None:
    """The reader's texts of a version: stored at send time, or translated now when the reader
    has changed language since (a text that fails stays None). None for the author's language."""
    if lang == version["lang"]:
        return None
    stored = version.get("translations", {}).get(lang)
    if stored is not None:
        return stored
    if service is None:
        return reader_texts(version, [None] * len(texts(version)))
    glossary = await store.glossary(cid)
    src = version["lang"]
    results = await asyncio.gather(
        *(service.translate_many(t, src, [lang], glossary or None) for t in texts(version))
    )
    return reader_texts(version, [done.get(lang) for done, _ in results])


def add_quote_routes(
    app: web.Application,
    store: Store,
    quotes: QuoteStore,
    languages: Languages,
    translation: Translating | None,
    secret: TokenKey,
) -> None:
    """Register the quote export route."""

    async def export(request: web.Request) -> web.Response:
        cid, qid = request.match_info["cid"], request.match_info["qid"]
        fmt = request.query.get("format", "json")
        if not CONVERSATION_ID_RE.match(cid) or not QUOTE_ID_RE.match(qid) or fmt not in FORMATS:
            raise web.HTTPBadRequest(text="bad conversation id, quote id or format (json, pdf)")
        identity = await participant_identity(request, secret, store, cid)
        quote = await quotes.get(qid)
        if quote is None or quote["conversation_id"] != cid:
            raise refusal(404, "no such quote in this conversation")
        lang = (await languages.of([identity.id]))[identity.id] or identity.lang
        if fmt == "json":
            return web.json_response({"quote": quote, "lang": lang})
        latest = quote["versions"][-1]
        view = await reader_view(store, translation, latest, lang, cid)
        body = await asyncio.to_thread(render, quote, lang, view)
        name = f"quote-{qid}-v{latest['version']}-{lang}.pdf"
        return web.Response(
            body=body,
            content_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    app.router.add_get("/api/conversations/{cid}/quotes/{qid}", export)
