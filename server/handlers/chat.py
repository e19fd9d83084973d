"""Chat events: conversations, messages, history, typing, read receipts, presence, inbox."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any, Protocol

import socketio

from server.config import Limits
from server.realtime import validation as v
from server.realtime.dispatch import PENDING_TOKEN, RATE_LIMITED_MESSAGE, Handler
from server.realtime.errors import (
    FORBIDDEN,
    NOT_FOUND,
    RATE_LIMITED,
    UNKNOWN_USER,
    AppError,
    ok_ack,
)
from server.realtime.sessions import Session, conversation_room, user_room
from server.realtime.turns import commit_turn
from server.storage.attachments import Attachments
from server.storage.languages import Languages
from server.storage.presence import Presence
from server.storage.publication import MESSAGE, slot, unread_slot
from server.storage.ratelimit import Bucket
from server.storage.store import RateLimited, SendContext, StaleContext, Store, summary
from server.storage.users import Directory
from server.tokens import Identity
from translation.errors import FAILED, NO_PAIR, TranslationNote, translation_note
from translation.written_language import written_language

log = logging.getLogger("tradetalk.chat")


class Translating(Protocol):
    """What chat needs of `translation.service.TranslationService`."""

    async def translate_many(
        self, text: str, src: str, targets: Iterable[str], glossary: dict | None = None
    ) -> tuple[dict[str, str], dict[str, TranslationNote]]:
        """Translations by language, and a note (code and pair) for each missing language."""
        ...

    async def translate(
        self,
        text: str,
        src: str,
        dst: str,
        glossary: dict | None = None,
        *,
        background: bool = False,
    ) -> str:
        """One translation (`background`: on the worker that never delays a final)."""
        ...

    def background_turn(self) -> AbstractAsyncContextManager[None]:
        """Held while one background translation is picked and run (after foreground work)."""
        ...


class Chat:
    """The chat half of the protocol (see docs/protocol.md)."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        store: Store,
        presence: Presence,
        languages: Languages,
        translation: Translating | None,
        limits: Limits,
        attachments: Attachments | None = None,
    ) -> None:
        self.sio = sio
        self.store = store
        self.presence = presence
        self.languages = languages
        self.translation = translation
        self.limits = limits
        self.attachments = attachments  # None: messages carry no attachments
        self.directory = Directory(store.redis)

    def handlers(self) -> dict[str, Handler]:
        """Event name → handler, for the dispatcher (`server/events.py`)."""
        return {
            "conversation.create": self.create,
            "conversation.join": self.join,
            "message.send": self.send,
            "history.get": self.history,
            "typing": self.typing,
            "message.read": self.read,
            "inbox.list": self.inbox,
            "user.set_language": self.set_language,
            "glossary.get": self.get_glossary,
            "glossary.set": self.set_glossary,
        }

    async def conversation_for(self, identity: Identity, cid: str) -> dict[str, Any]:
        """The conversation if `identity` takes part in it; else not_found / forbidden."""
        conversation = await self.store.get_conversation(cid)
        if conversation is None:
            raise AppError(NOT_FOUND, f"no conversation {cid}")
        if identity.id not in conversation["participants"]:
            raise AppError(FORBIDDEN, "you are not a participant of this conversation")
        return conversation

    async def create(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """conversation.create {participants, title?}."""
        data = v.payload(data, {"participants", "title"})
        people = v.participants(data, self.limits.max_participants)
        title = v.text(data, "title", self.limits.max_title_chars, required=False)
        if session.identity.id not in people and len(people) >= self.limits.max_participants:
            raise v.invalid(f"at most {self.limits.max_participants} participants")
        unknown = await self.directory.unknown([p for p in people if p != session.identity.id])
        if unknown:
            raise AppError(
                UNKNOWN_USER,
                f"no user with id {', '.join(unknown)} has ever signed in; check the id or "
                "send them your invite link",
            )
        conversation = await self.store.create_conversation(session.identity, people, title)
        people_info = await self.directory.people(conversation["participants"])
        online = await self.presence.online(conversation["participants"])
        await self.sio.manager.emit_batch(
            self.inbox_updates(
                conversation,
                {p: None for p in conversation["participants"]},
                None,
                people_info,
                online,
            )
        )
        return ok_ack(conversation={**conversation, "people": people_info, "online": online})

    async def join(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """conversation.join {conversation_id, since?}: enter the live room, get what was missed."""
        data = v.payload(data, {"conversation_id", "since"})
        cid = v.conversation_id(data)
        since = v.message_id(data, "since", required=False)
        conversation = await self.conversation_for(session.identity, cid)
        await self.sio.enter_room(sid, conversation_room(cid))
        session.joined.add(cid)
        if since is None:
            messages, has_more = await self.store.messages_before(
                cid, None, self.limits.history_page_default
            )
        else:
            messages, has_more = await self.store.messages_after(cid, since, self.limits.replay_max)
        online = await self.presence.online(conversation["participants"])
        read = await self.store.read_markers(cid)
        people = await self.directory.people(conversation["participants"])
        return ok_ack(
            conversation={**conversation, "people": people},
            messages=messages,
            has_more=has_more,
            online=online,
            read=read,
        )

    async def send(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """message.send {conversation_id, client_id, text?, attachments?}: stored before the
        ack, fanned out. `text` may be left out when the message carries attachments."""
        data = v.payload(data, {"conversation_id", "client_id", "text", "attachments"})
        cid = v.conversation_id(data)
        client_id = v.client_id(data)
        files = v.attachment_ids(data, self.limits.max_attachments_per_message)
        text = v.text(data, "text", self.limits.max_text_chars, required=not files)
        me = session.identity
        # A retry is found by the store either way; reading first spares it the translation.
        context = None if files else self.store.send_context(cid)
        # The rate-limit token: taken by the store script when nothing but in-process work
        # comes before the store (the conversation at hand, nothing to read or translate),
        # else now, before any of that work.
        pending = PENDING_TOKEN.get()
        if pending is not None and not (
            context is not None
            and self.store.cached_conversation(cid) is not None
            and not self.targets(me, context.langs, self.source_lang(me, text, context.langs))
        ):
            await pending.take()
        conversation = await self.conversation_for(me, cid)
        bucket = pending.hand_over() if pending is not None and not pending.spent else None
        if context is None:
            earlier, langs, glossary = await self.store.prepare_send(conversation, me.id, client_id)
            if earlier is not None:
                async with commit_turn():  # answered after the socket's earlier sends
                    return ok_ack(message=earlier, duplicate=True)
        else:
            langs, glossary = context.langs, context.glossary
        attached = await self.attached(cid, me.id, files)
        fields = await self.composed(me, text, attached, langs, glossary)

        async def again() -> dict[str, Any]:
            _, langs, glossary = await self.store.prepare_send(conversation, me.id, client_id)
            return await self.composed(me, text, attached, langs, glossary)

        try:
            created, message = await self.post(
                conversation, me, client_id, fields, context, again, bucket
            )
        except RateLimited:
            raise AppError(RATE_LIMITED, RATE_LIMITED_MESSAGE) from None
        return ok_ack(message=message, duplicate=not created)

    async def composed(
        self,
        me: Identity,
        text: str | None,
        attached: list[dict[str, Any]],
        langs: dict[str, str | None],
        glossary: dict[str, str | None],
    ) -> dict[str, Any]:
        """A message's fields: its text translated for `langs` (none without text) and its
        attachments."""
        if text is None:
            fields: dict[str, Any] = {
                "text": "",
                "lang": langs.get(me.id) or me.lang,
                "translations": {},
            }
        else:
            fields = await self.translated(me, text, langs, glossary)
        if attached:
            fields["attachments"] = attached
        return fields

    async def attached(self, cid: str, sender: str, ids: list[str]) -> list[dict[str, Any]]:
        """Each attachment's metadata for a message; `invalid` unless all are the sender's
        uploads to this conversation."""
        if not ids:
            return []
        if self.attachments is None:
            raise v.invalid("this server takes no attachments")
        try:
            return await self.attachments.for_message(cid, sender, ids)
        except ValueError as exc:
            raise v.invalid(str(exc)) from None

    async def post(
        self,
        conversation: dict[str, Any],
        sender: Identity,
        client_id: str,
        fields: dict[str, Any],
        context: SendContext | None = None,
        again: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        bucket: Bucket | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """Store a history entry once per (sender, client_id) and deliver it: `message.new` to
        every participant's sockets, then `inbox.update`. Returns (created, entry).

        The store script itself publishes a new entry to the other processes (one round trip:
        stored and published together or not at all, `storage/publication.py`); this process's
        sockets get it once the script answered.

        `fields` translated for a remembered `context`: when a language or the glossary changed
        since, `again()` makes them anew from what Redis holds now. `bucket`: the sender's
        rate-limit token, taken by the store script (RateLimited when refused).

        In a `message.send`, this is its commit: it waits for the socket's earlier sends to be
        stored and delivered (`realtime/turns.py`)."""
        people = conversation["participants"]
        placeholders = {p: unread_slot(n) for n, p in enumerate(people, 1)}
        publication = self.sio.manager.publication(
            self.delivery(conversation, slot(MESSAGE), placeholders)
        )
        async with commit_turn():
            try:
                created, message, unread = await self.store.add_message(
                    conversation, sender, client_id, fields, context, publication, bucket
                )
            except StaleContext:
                if again is None:
                    raise
                created, message, unread = await self.store.add_message(
                    conversation, sender, client_id, await again(), None, publication
                )
            if created:
                await self.sio.manager.deliver_local(self.delivery(conversation, message, unread))
        return created, message

    def delivery(
        self, conversation: dict[str, Any], message: Any, unread: Mapping[str, Any]
    ) -> list[tuple[str, Any, dict[str, Any]]]:
        """A new entry's emits: `message.new` to every participant, then each one's
        `inbox.update` with their `unread` count."""
        rooms = [user_room(p) for p in conversation["participants"]]
        return [
            ("message.new", rooms, {"message": message}),
            *self.inbox_updates(conversation, unread, message),
        ]

    async def post_call_entry(
        self, conversation: dict[str, Any], call_id: str, fields: dict[str, Any], starter: str
    ) -> tuple[bool, dict[str, Any]]:
        """Store a call's one history entry (once per call id, however often asked) and send it
        as `message.new` to every participant; the inbox (preview, unread) is left as it is.
        `starter`: the id of who started the call (the entry's sender)."""
        people = await self.directory.people([starter])
        sender = {"id": starter, **people.get(starter, {})}
        created, entry = await self.store.add_call_entry(
            conversation["id"], sender, call_id, fields
        )
        if created:
            rooms = [user_room(p) for p in conversation["participants"]]
            await self.sio.emit("message.new", {"message": entry}, to=rooms)
        return created, entry

    async def translated(
        self,
        me: Identity,
        text: str,
        langs: dict[str, str | None],
        glossary: dict[str, str | None],
    ) -> dict[str, Any]:
        """Message fields: the text in the sender's language plus one translation per other
        participant language (`langs`: each participant's language). A language that can't be
        translated gets a note in `translation_error` (`{code, from, to}`, which the reader's
        client words in the reader's language) and the message goes out without it (never
        held back)."""
        src = self.source_lang(me, text, langs)
        targets = self.targets(me, langs, src)
        fields: dict[str, Any] = {"text": text, "lang": src, "translations": {}}
        if not targets:
            return fields
        if self.translation is None:
            fields["translation_error"] = {
                lang: translation_note(NO_PAIR, src, lang) for lang in targets
            }
            return fields
        try:
            translations, errors = await self.translation.translate_many(
                text, src, targets, glossary or None
            )
        except Exception:  # an engine failure must never drop the message
            log.exception("translation failed")
            translations = {}
            errors = {lang: translation_note(FAILED, src, lang) for lang in targets}
        fields["translations"] = translations
        if errors:
            fields["translation_error"] = errors
        return fields

    @staticmethod
    def source_lang(me: Identity, text: str | None, langs: dict[str, str | None]) -> str:
        """The language `me`'s `text` is in: theirs, unless its letters cannot be in it (a
        Chinese agent typing English: `translation.written_language`)."""
        declared = langs.get(me.id) or me.lang
        return written_language(text, declared) if text else declared

    @staticmethod
    def targets(me: Identity, langs: dict[str, str | None], src: str | None = None) -> list[str]:
        """The languages a message of `me` in `src` (default: theirs) is translated into for
        participants' `langs`."""
        src = src or langs.get(me.id) or me.lang
        return sorted({lang for p, lang in langs.items() if p != me.id and lang and lang != src})

    async def set_language(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """user.set_language {lang}: the language this user reads and writes in, from now on."""
        data = v.payload(data, {"lang"})
        lang = v.lang(data)
        me = session.identity
        await self.languages.set(me.id, lang)
        session.identity = replace(me, lang=lang)
        await self.sio.emit("user.language", {"user_id": me.id, "lang": lang}, to=user_room(me.id))
        return ok_ack(lang=lang)

    async def get_glossary(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """glossary.get {conversation_id}: the conversation's fixed term translations."""
        data = v.payload(data, {"conversation_id"})
        cid = v.conversation_id(data)
        await self.conversation_for(session.identity, cid)
        return ok_ack(terms=await self.store.glossary(cid))

    async def set_glossary(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """glossary.set {conversation_id, terms}: replace the conversation's glossary."""
        data = v.payload(data, {"conversation_id", "terms"})
        cid = v.conversation_id(data)
        terms = v.glossary(data, self.limits.glossary_max_terms, self.limits.glossary_max_chars)
        await self.conversation_for(session.identity, cid)
        await self.store.set_glossary(cid, terms)
        return ok_ack(terms=terms)

    @staticmethod
    def inbox_updates(
        conversation: dict[str, Any],
        unread: Mapping[str, int | None],
        last_message: dict[str, Any] | None,
        people: dict[str, dict[str, Any]] | None = None,
        online: dict[str, bool] | None = None,
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """`inbox.update` for each given participant's sockets, with their unread count (and
        the participants' names and languages, `people`, and whether each is connected,
        `online`, when given)."""
        updates = []
        for user, count in unread.items():
            entry = summary(conversation, last_message, count or 0, people)
            if online is not None:
                entry["online"] = online
            updates.append(("inbox.update", user_room(user), {"conversation": entry}))
        return updates

    async def history(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """history.get {conversation_id, before?, limit?}: a page of older messages."""
        data = v.payload(data, {"conversation_id", "before", "limit"})
        cid = v.conversation_id(data)
        before = v.message_id(data, "before", required=False)
        limit = v.integer(
            data, "limit", 1, self.limits.history_page_max, self.limits.history_page_default
        )
        await self.conversation_for(session.identity, cid)
        messages, has_more = await self.store.messages_before(cid, before, limit)
        return ok_ack(messages=messages, has_more=has_more)

    async def typing(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """typing {conversation_id, active}: relayed to the other participants."""
        data = v.payload(data, {"conversation_id", "active"})
        cid = v.conversation_id(data)
        active = v.boolean(data, "active")
        me = session.identity
        conversation = await self.conversation_for(me, cid)
        others = [user_room(p) for p in conversation["participants"] if p != me.id]
        if others:
            event = {"conversation_id": cid, "user_id": me.id, "active": active}
            await self.sio.emit("typing", event, to=others)
        return ok_ack()

    async def read(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """message.read {conversation_id, message_id}: move the read marker, tell the others."""
        data = v.payload(data, {"conversation_id", "message_id"})
        cid = v.conversation_id(data)
        message_id = v.message_id(data, "message_id", required=True)
        me = session.identity
        conversation = await self.conversation_for(me, cid)
        marker = await self.store.mark_read(cid, me.id, message_id)
        if marker is None:
            raise AppError(NOT_FOUND, f"no message {message_id} in this conversation")
        others = [user_room(p) for p in conversation["participants"] if p != me.id]
        if others:
            event = {"conversation_id": cid, "user_id": me.id, "message_id": marker}
            await self.sio.emit("read", event, to=others)
        [entry] = await self.store.summaries(me.id, [cid])
        await self.sio.emit("inbox.update", {"conversation": entry}, to=user_room(me.id))
        return ok_ack(message_id=marker, unread=entry["unread"])

    async def inbox(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """inbox.list {}: every conversation of the user, newest activity first, with each
        participant's name, language and presence (so the inbox shows who is online at once)."""
        v.payload(data, set())
        entries = await self.store.inbox(session.identity.id)
        everyone = sorted({p for entry in entries for p in entry["participants"]})
        people = await self.directory.people(everyone)
        online = await self.presence.online(everyone)
        for entry in entries:
            entry["people"] = {p: people[p] for p in entry["participants"]}
            entry["online"] = {p: online[p] for p in entry["participants"]}
        return ok_ack(conversations=entries)

    async def announce_presence(self, user: str, online: bool) -> None:
        """Tell everyone who shares a conversation with `user` that they came or went."""
        partners = await self.store.partners(user)
        if partners:
            rooms = [user_room(p) for p in partners]
            await self.sio.emit("presence", {"user_id": user, "online": online}, to=rooms)
