"""Quote events: quote.request (an RFQ), quote.send, quote.respond (accept, decline, counter),
quote.get. Every quote and every change of its state is a `kind: "quote"` entry of the
conversation's history, delivered like a message (docs/protocol.md, Quotes)."""

from __future__ import annotations

import asyncio
from typing import Any

from server.handlers.chat import Chat
from server.realtime import validation as v
from server.realtime.dispatch import Handler
from server.realtime.errors import CONFLICT, FORBIDDEN, LIMIT_REACHED, NOT_FOUND, AppError, ok_ack
from server.realtime.sessions import Session
from server.storage.quotes import QuoteStore, new_quote_id
from server.storage.store import now_iso
from server.tokens import Identity
from server.trade.quotes import (
    ACTIONS,
    TERM_FIELDS,
    FieldInvalid,
    QuoteLimits,
    expired,
    parse_terms,
    quote_id,
    reader_texts,
    texts,
)

ENVELOPE = frozenset({"conversation_id", "client_id", "in_reply_to"})
RESPONSE = frozenset({"conversation_id", "client_id", "quote_id", "action", "version"})
STATUS_AFTER = {"accept": "accepted", "decline": "declined", "counter": "open"}


class Quotes:
    """The quote half of the trade conversation; history and delivery go through `Chat`."""

    def __init__(
        self,
        chat: Chat,
        store: QuoteStore,
        limits: QuoteLimits | None = None,
    ) -> None:
        self.chat = chat
        self.store = store
        self.limits = limits or QuoteLimits()

    def handlers(self) -> dict[str, Handler]:
        """Event name → handler, for the dispatcher (`server/events.py`)."""
        return {
            "quote.send": self.send,
            "quote.request": self.request,
            "quote.respond": self.respond,
            "quote.get": self.get,
        }

    async def send(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """quote.send {conversation_id, client_id, items, incoterm, place?, lead_time_days,
        valid_until, payment_terms?, notes?, in_reply_to?}: a priced quote."""
        return await self._open(session, data, "quote")

    async def request(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """quote.request {…the same without prices}: a request for quotation (RFQ)."""
        return await self._open(session, data, "rfq")

    async def _open(self, session: Session, data: Any, kind: str) -> dict[str, Any]:
        data = v.payload(data, ENVELOPE | TERM_FIELDS)
        cid = v.conversation_id(data)
        client_id = v.client_id(data)
        terms = parse_terms(data, kind == "quote", self.limits)
        in_reply_to = quote_id(data, "in_reply_to", required=False)
        me = session.identity
        conversation = await self.chat.conversation_for(me, cid)
        if in_reply_to is not None:
            answered = await self.store.get(in_reply_to)
            if answered is None or answered["conversation_id"] != cid:
                raise FieldInvalid("in_reply_to", "names no quote of this conversation")
        earlier, langs, glossary = await self.chat.store.prepare_send(
            conversation, me.id, client_id
        )
        action = "send" if kind == "quote" else "request"
        if earlier is not None:
            return self._repeat(earlier, action, None)
        qid = new_quote_id()
        version = await self._version(me, qid, kind, 1, None, in_reply_to, terms, langs, glossary)
        created, qid = await self.store.create(cid, me.id, client_id, kind, version, in_reply_to)
        if not created:  # a retry after the quote was stored but not its history entry
            stored = await self.store.get(qid)
            version = stored["versions"][0] if stored else version
        entry = {"kind": "quote", "quote_id": qid, "action": action, "version": 1}
        entry |= {"status": "open", "quote": version}
        posted, message = await self.chat.post(conversation, me, client_id, entry)
        return ok_ack(message=message, quote_id=qid, duplicate=not posted)

    async def respond(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """quote.respond {conversation_id, client_id, quote_id, action, version?, …terms of a
        counter}: accept, decline or counter the quote's latest version."""
        data = v.payload(data, RESPONSE | TERM_FIELDS)
        cid = v.conversation_id(data)
        client_id = v.client_id(data)
        qid = quote_id(data, "quote_id", required=True)
        action = data.get("action")
        if action not in ACTIONS:
            raise FieldInvalid("action", f"must be one of {', '.join(ACTIONS)}")
        expected = v.message_id(data, "version", required=False)
        if action == "counter":
            terms = parse_terms(data, True, self.limits)
        else:
            extra = sorted(TERM_FIELDS & set(data))
            if extra:
                raise FieldInvalid(extra[0], "is only given with action counter")
            terms = None
        me = session.identity
        conversation = await self.chat.conversation_for(me, cid)
        quote = await self.store.get(qid)
        if quote is None or quote["conversation_id"] != cid:
            raise AppError(NOT_FOUND, f"no quote {qid} in this conversation")
        if quote["kind"] == "rfq" and action != "decline":
            raise FieldInvalid(
                "action",
                "of a request for quotation can only be decline (answer it with quote.send)",
            )
        earlier, langs, glossary = await self.chat.store.prepare_send(
            conversation, me.id, client_id
        )
        if earlier is not None:
            return self._repeat(earlier, action, qid)
        latest = quote["versions"][-1]
        expected = quote["version"] if expected is None else expected
        if action == "accept" and quote["status"] == "open" and expired(latest):
            raise AppError(CONFLICT, f"this quote expired after {latest['valid_until']}")
        now = now_iso()
        version = closed = None
        if terms is not None:
            version = await self._version(
                me, qid, quote["kind"], expected + 1, expected, None, terms, langs, glossary
            )
        else:
            closed = {"action": action, "version": expected, "by": me.public(), "at": now}
        entry = {
            "kind": "quote",
            "quote_id": qid,
            "action": action,
            "version": expected + 1 if version else expected,
            "status": STATUS_AFTER[action],
            "quote": version,
        }
        outcome, detail = await self.store.respond(
            qid,
            me.id,
            client_id,
            action,
            expected,
            entry,
            version,
            closed,
            self.limits.max_versions,
        )
        if outcome == "gone":
            raise AppError(NOT_FOUND, f"no quote {qid} in this conversation")
        if outcome == "closed":
            raise AppError(CONFLICT, f"this quote is {detail}: it can no longer change")
        if outcome == "stale":
            raise AppError(CONFLICT, f"version {detail} is the latest; answer that one")
        if outcome == "own":
            raise AppError(FORBIDDEN, "you cannot accept, decline or counter your own version")
        if outcome == "max":
            raise AppError(
                LIMIT_REACHED, f"a quote has at most {self.limits.max_versions} versions"
            )
        posted, message = await self.chat.post(conversation, me, client_id, detail)
        return ok_ack(message=message, duplicate=outcome == "duplicate" or not posted)

    async def get(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """quote.get {conversation_id, quote_id}: the quote with every version and its state."""
        data = v.payload(data, {"conversation_id", "quote_id"})
        cid = v.conversation_id(data)
        qid = quote_id(data, "quote_id", required=True)
        await self.chat.conversation_for(session.identity, cid)
        return ok_ack(quote=await self.quote_of(cid, qid))

    async def quote_of(self, cid: str, qid: str) -> dict[str, Any]:
        """The conversation's quote `qid`; not_found otherwise."""
        quote = await self.store.get(qid)
        if quote is None or quote["conversation_id"] != cid:
            raise AppError(NOT_FOUND, f"no quote {qid} in this conversation")
        return quote

    @staticmethod
    def _repeat(earlier: dict[str, Any], action: str, qid: str | None) -> dict[str, Any]:
        """The ack of a retried event whose history entry is stored already."""
        same = earlier.get("kind") == "quote" and earlier.get("action") == action
        if not same or (qid is not None and earlier.get("quote_id") != qid):
            raise FieldInvalid("client_id", "was already used for another message of yours")
        return ok_ack(message=earlier, quote_id=earlier["quote_id"], duplicate=True)

    async def _version(
        self,
        me: Identity,
        qid: str,
        kind: str,
        number: int,
        answers: int | None,
        in_reply_to: str | None,
        terms: dict[str, Any],
        langs: dict[str, str | None],
        glossary: dict[str, str | None],
    ) -> dict[str, Any]:
        """One version of a quote: its terms in the author's language, plus each other
        participant's view of the products, payment terms and notes (translated as chat
        messages are, glossary and trade terms applied); a language that failed gets a note."""
        fields = await asyncio.gather(
            *(self.chat.translated(me, text, langs, glossary) for text in texts(terms))
        )
        src = langs.get(me.id) or me.lang
        targets = sorted({lang for f in fields for lang in f["translations"]})
        errors: dict[str, Any] = {}
        for f in fields:
            for lang, note in (f.get("translation_error") or {}).items():
                errors.setdefault(lang, note)
        translations = {
            lang: reader_texts(terms, [f["translations"].get(lang) for f in fields])
            for lang in targets
        }
        version = {
            "quote_id": qid,
            "kind": kind,
            "version": number,
            "answers": answers,
            "in_reply_to": in_reply_to,
            "by": me.public(),
            "at": now_iso(),
            "lang": src,
            **terms,
            "translations": translations,
        }
        if errors:
            version["translation_error"] = errors
        return version
