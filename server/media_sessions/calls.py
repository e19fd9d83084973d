"""Video calls inside a conversation: every member is a *speaker* of a media session (publishes
and subscribes), recognized in their language; the open line is translated while they speak,
each final line once per listener language (the conversation's glossary applies), kept in the
conversation's transcript, then sent to the call's room (`core.MediaSessions` does both). When
the call ends, the conversation's history gets one `kind: "call"` entry (duration, line count,
transcript link).

A call runs on one node (its media room is there); `server.cluster.router` forwards the call
events of sockets on other nodes to it, and `server.cluster.failover` moves it when its node
drains or dies.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import weakref
from dataclasses import dataclass
from typing import Any

from media.room import MediaRoom
from server.handlers.chat import Chat
from server.media_sessions.core import (
    SPEAKER,
    Elsewhere,
    MediaServices,
    MediaSession,
    MediaSessions,
    Member,
)
from server.media_sessions.subtitles import FinalLine
from server.realtime import validation as v
from server.realtime.dispatch import Handler
from server.realtime.errors import FORBIDDEN, AppError, ok_ack
from server.realtime.sessions import Session, user_room
from server.storage.media_records import MediaRecord
from server.storage.store import Store, now_iso
from server.tokens import Identity
from translation.errors import TranslationNote

log = logging.getLogger("tradetalk.calls")

CALL_FULL = "call_full"
ENTRY_RETRIES_S = (0.5, 1.0, 2.0)  # waits between tries to store a call's entry (Redis away)


def call_room(call_id: str) -> str:
    """The Socket.IO room of a call's joined sockets."""
    return f"call:{call_id}"


@dataclass
class Call(MediaSession):
    """A running call."""

    conversation: dict[str, Any] | None = None
    started_by: str = ""
    started_at: str = ""
    lines: int = 0

    @property
    def conversation_id(self) -> str:
        """The conversation the call belongs to."""
        assert self.conversation is not None
        return self.conversation["id"]

    @property
    def participants(self) -> list[str]:
        """The conversation's participants (who may join)."""
        assert self.conversation is not None
        return list(self.conversation["participants"])


def member_public(member: Member) -> dict[str, Any]:
    """A member as listed in `call.participants`."""
    return {
        "id": member.identity.id,
        "name": member.identity.name,
        "lang": member.subtitle_lang,
        "peer_id": member.peer_id,
    }


class Calls(MediaSessions[Call]):
    """The call half of the protocol (see docs/protocol.md)."""

    kind = "call"
    id_field = "call_id"
    offer_event = "rtc.offer"
    left_event = "call.left"
    moved_event = "call.moved"

    def __init__(self, services: MediaServices, chat: Chat, store: Store) -> None:
        super().__init__(services)
        self.chat = chat  # the conversation a call belongs to: who may join, its history entry
        self.store = store  # its glossary and transcript
        # a lock per conversation whose call is being started here (gone once unused)
        self._starting: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @property
    def calls(self) -> dict[str, Call]:
        """The calls running on this node."""
        return self.sessions

    def stats(self) -> dict[str, int]:
        """Live calls, members, recognizer threads, pending offers, tasks (leak tests)."""
        stats = super().stats()
        stats["calls"] = stats.pop("sessions")
        return stats

    def handlers(self) -> dict[str, Handler]:
        """Event name → handler, for the router."""
        return {
            "call.start": self.start,
            "call.get": self.get,
            "call.join": self.join,
            "call.leave": self.leave,
            "call.end": self.end,
            "call.subtitles": self.set_subtitles,
            "rtc.answer": self.rtc_answer,
        }

    # ------------------------------------------------------------------ events

    async def start(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """call.start {conversation_id}: start (or return the running) call of a conversation."""
        data = v.payload(data, {"conversation_id"})
        cid = v.conversation_id(data)
        conversation = await self.chat.conversation_for(session.identity, cid)
        lock = self._starting.setdefault(cid, asyncio.Lock())
        async with lock:  # one start of a conversation's call at a time on this node
            call = self.of_conversation(cid) or await self._new_call(session, conversation)
        return ok_ack(call=self.public(call), ice_servers=list(self.settings.ice_servers))

    async def _new_call(self, session: Session, conversation: dict[str, Any]) -> Call:
        """Start the conversation's call here, unless one runs on another node (`Elsewhere`)."""
        cid = conversation["id"]
        call_id = "k_" + secrets.token_hex(8)
        call = Call(call_id, self.new_room(call_id), conversation=conversation)
        call.started_by, call.started_at = session.identity.id, now_iso()
        await self.keep(call)
        winner = await self.records.claim_conversation(cid, call_id)
        if winner != call_id and await self._gone(winner):
            # the key names a call that ended (or is ending here): it must not block this one
            winner = await self.records.replace_conversation(cid, winner, call_id)
        if winner != call_id:  # another node started this conversation's call meanwhile
            await self.records.delete({"id": call_id})
            await call.room.close()
            raise Elsewhere(winner)
        self.sessions[call_id] = call
        rooms = [user_room(p) for p in call.participants]
        await self.sio.emit("call.started", {"call": self.public(call)}, to=rooms)
        return call

    async def _gone(self, call_id: str) -> bool:
        """Whether a call a conversation key names no longer runs: no record, or its record
        names this node, which ended it or is ending it."""
        if not call_id:
            return True
        record = await self.records.get(call_id)
        if record is None:
            return True
        running = self.sessions.get(call_id)
        return record.get("owner") == self.node_id and (running is None or running.ending)

    async def get(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """call.get {conversation_id}: the conversation's running call, or null."""
        data = v.payload(data, {"conversation_id"})
        cid = v.conversation_id(data)
        await self.chat.conversation_for(session.identity, cid)
        call = self.of_conversation(cid)
        return ok_ack(call=self.public(call) if call else None)

    async def join(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """call.join {call_id, sdp, type: "offer"} → the server's answer SDP."""
        data = v.payload(data, {"call_id", "sdp", "type", "subtitle_lang"})
        call = self._call_for(session, v.call_id(data))
        offer = v.sdp(data, "offer", self.settings.limits.max_sdp_chars)
        subtitle_lang = v.lang(data, "subtitle_lang") if "subtitle_lang" in data else None
        if sid in call.members:
            raise v.invalid("this socket already joined the call")
        cap = self.settings.limits.max_call_participants
        if len(call.members) >= cap:
            raise AppError(CALL_FULL, f"a call has at most {cap}")
        me = session.identity
        lang = await self.reader_language(me)
        member = self.new_member(sid, me, SPEAKER, lang, subtitle_lang or lang, session.node)
        answer = await self.add_member(call, member, offer)
        await self._announce(call)
        assert member.subtitles is not None
        captions = member.subtitles.status()
        return ok_ack(sdp=answer, type="answer", call=self.public(call), captions=captions)

    async def leave(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """call.leave {call_id}: leave; the call ends when its last member leaves."""
        data = v.payload(data, {"call_id"})
        call = self.running(v.call_id(data))
        self.member(call, sid)
        await self.remove_member(call, sid, "left")
        return ok_ack()

    async def end(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """call.end {call_id}: end the call for everyone (any conversation participant)."""
        data = v.payload(data, {"call_id"})
        call = self._call_for(session, v.call_id(data))
        await self.end_session(call, "ended", ended_by=session.identity)
        return ok_ack()

    async def set_subtitles(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """call.subtitles {call_id, lang}: the language this socket reads subtitles in."""
        data = v.payload(data, {"call_id", "lang"})
        call = self.running(v.call_id(data))
        lang = v.lang(data)
        self.member(call, sid).subtitle_lang = lang
        await self._announce(call)
        return ok_ack(lang=lang)

    # ------------------------------------------------------------------ the kind's hooks

    def of_conversation(self, cid: str) -> Call | None:
        """The conversation's call running on this node (not one that is ending)."""
        return next(
            (c for c in self.sessions.values() if c.conversation_id == cid and not c.ending),
            None,
        )

    def rooms_of(self, session: Call, member: Member) -> list[str]:
        return [call_room(session.id)]

    def session_id(self, data: dict[str, Any]) -> str:
        return v.call_id(data)

    def moved_to(self, session: Call) -> list[str]:
        return [call_room(session.id)]

    def reader_languages(self, session: Call, speaker: Member) -> set[str]:
        return {m.subtitle_lang for m in session.members.values() if m is not speaker}

    def subtitle_rooms(self, session: Call, speaker: Member) -> list[tuple[str, set[str] | None]]:
        # a few members: each line carries every member's language (a switch re-reads them)
        return [(call_room(session.id), None)]

    async def line_glossary(self, session: Call) -> dict[str, str | None] | None:
        return await self.store.glossary(session.conversation_id)

    def public(self, session: Call) -> dict[str, Any]:
        return {
            "id": session.id,
            "conversation_id": session.conversation_id,
            "started_by": session.started_by,
            "started_at": session.started_at,
            "participants": [member_public(m) for m in session.members.values()],
        }

    def record(self, session: Call) -> dict[str, Any]:
        return {
            "conversation_id": session.conversation_id,
            "conversation": session.conversation,
            "started_by": session.started_by,
            "started_at": session.started_at,
        }

    def restore(self, record: MediaRecord, room: MediaRoom) -> Call:
        call = Call(record["id"], room, conversation=record["conversation"])
        call.started_by, call.started_at = record["started_by"], record["started_at"]
        return call

    async def member_removed(self, session: Call, member: Member) -> None:
        if session.members:
            await self._announce(session)
        else:
            await self.end_session(session, "everyone left")

    async def ended(self, session: Call, reason: str, ended_by: Identity | None) -> None:
        event: dict[str, Any] = {"call_id": session.id, "reason": reason}
        if ended_by is not None:
            event["ended_by"] = {"id": ended_by.id, "name": ended_by.name}
        await self.sio.emit("call.ended", event, to=[user_room(p) for p in session.participants])
        await self._post_entry(session)

    async def _post_entry(self, call: Call) -> None:
        """The call's one history entry, after its last line was kept (idempotent per call id:
        a call that moved between nodes, or a retry, still has one)."""
        assert call.conversation is not None
        cid = call.conversation_id
        for wait in (*ENTRY_RETRIES_S, None):
            try:
                lines = await self.store.call_line_count(cid, call.id)
                fields = {
                    "call": {
                        "id": call.id,
                        "started_at": call.started_at,
                        "ended_at": now_iso(),
                        "duration_s": max(0, round(time.time() - call.started_wall)),
                        "lines": lines,
                        "transcript": transcript_path(cid, call.id),
                    }
                }
                await self.chat.post_call_entry(call.conversation, call.id, fields, call.started_by)
                return
            except Exception:
                if wait is None:
                    log.exception("could not store the history entry of call %s", call.id)
                    return
                await asyncio.sleep(wait)

    def _call_for(self, session: Session, call_id: str) -> Call:
        call = self.running(call_id)
        if session.identity.id not in call.participants:
            raise AppError(FORBIDDEN, "you are not a participant of this conversation")
        return call

    async def _announce(self, call: Call) -> None:
        rooms = [user_room(p) for p in call.participants]
        payload = {"call_id": call.id, "participants": self.public(call)["participants"]}
        await self.sio.emit("call.participants", payload, to=rooms)

    # ------------------------------------------------------------------ subtitles

    async def keep_line(
        self,
        session: Call,
        speaker: Member,
        line: FinalLine,
        translations: dict[str, str],
        errors: dict[str, TranslationNote],
    ) -> None:
        """The line in the conversation's transcript (a failure is logged: the line still
        goes out)."""
        call = session
        call.lines += 1
        entry: dict[str, Any] = {
            "call_id": call.id,
            "start": line.start,
            "end": line.end,
            "speaker": {"id": speaker.identity.id, "name": speaker.identity.name},
            "lang": line.lang,
            "text": line.text,
            "translations": translations,
            "ts": now_iso(),
        }
        if errors:
            entry["translation_error"] = errors
        # the epoch keeps the lines of a call that moved from colliding with its earlier ones
        line_id = (
            f"{call.id}.{call.epoch}.{call.lines}" if call.epoch else f"{call.id}.{call.lines}"
        )
        try:
            await self.store.add_transcript_line(call.conversation_id, call.id, line_id, entry)
        except Exception:
            log.exception("could not store a transcript line of call %s", call.id)


def transcript_path(cid: str, call_id: str) -> str:
    """Where a call's transcript downloads (`GET`, with the reader's token; add `&format=`)."""
    return f"/api/conversations/{cid}/transcript?call_id={call_id}"
