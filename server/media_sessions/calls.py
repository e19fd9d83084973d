"""Video calls inside a conversation: Socket.IO signalling, media through `media.MediaRoom`,
live translated subtitles, and a bilingual transcript appended to the conversation's history.

A call lives in the server process that started it (its peer connections are there); with
several processes behind one address, route a conversation's sockets to one process (sticky
sessions) for calls. Chat keeps working across processes either way.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import socketio

from media.errors import InvalidSdpError, MediaError
from media.room import MediaRoom
from server.background import TaskSet
from server.config import Settings
from server.handlers.chat import Chat
from server.media_sessions.reoffers import PendingAnswers
from server.media_sessions.subtitles import FinalLine, SpeakerSubtitles, translate_line
from server.realtime import validation as v
from server.realtime.dispatch import Dispatcher
from server.realtime.errors import FORBIDDEN, NOT_FOUND, AppError, ok_ack
from server.realtime.sessions import Session, user_room
from server.storage.store import now_iso
from server.tokens import Identity
from server.web import metrics

log = logging.getLogger("tradetalk.calls")

CALL_FULL = "call_full"
MEDIA_ERROR = "media_error"


def call_room(call_id: str) -> str:
    """The Socket.IO room of a call's joined sockets."""
    return f"call:{call_id}"


@dataclass
class Member:
    """One socket in a call."""

    sid: str
    peer_id: str
    identity: Identity
    speaker_lang: str
    subtitle_lang: str
    subtitles: SpeakerSubtitles | None = None

    def public(self) -> dict[str, Any]:
        """As listed in `call.participants`."""
        return {
            "id": self.identity.id,
            "name": self.identity.name,
            "lang": self.subtitle_lang,
            "peer_id": self.peer_id,
        }


@dataclass
class Call:
    """A running call and its media room."""

    id: str
    conversation: dict[str, Any]
    started_by: str
    started_at: str
    room: MediaRoom
    started: float = field(default_factory=time.monotonic)
    members: dict[str, Member] = field(default_factory=dict)
    pending: PendingAnswers = field(default_factory=PendingAnswers)
    lines: int = 0

    def public(self) -> dict[str, Any]:
        """The call as sent to clients."""
        return {
            "id": self.id,
            "conversation_id": self.conversation["id"],
            "started_by": self.started_by,
            "started_at": self.started_at,
            "participants": [m.public() for m in self.members.values()],
        }

    def member_by_peer(self, peer_id: str) -> Member | None:
        """The member whose media peer id this is."""
        return next((m for m in self.members.values() if m.peer_id == peer_id), None)


class Calls:
    """The call half of the protocol (see docs/protocol.md)."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        dispatcher: Dispatcher,
        chat: Chat,
        settings: Settings,
    ) -> None:
        self.sio = sio
        self.chat = chat
        self.settings = settings
        self.limits = settings.limits
        self.calls: dict[str, Call] = {}
        self._tasks = TaskSet()
        for name, handler in {
            "call.start": self.start,
            "call.get": self.get,
            "call.join": self.join,
            "call.leave": self.leave,
            "call.end": self.end,
            "call.subtitles": self.set_subtitles,
            "rtc.answer": self.rtc_answer,
        }.items():
            dispatcher.register(name, handler)

    # ------------------------------------------------------------------ events

    async def start(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """call.start {conversation_id}: start (or return the running) call of a conversation."""
        data = v.payload(data, {"conversation_id"})
        cid = v.conversation_id(data)
        conversation = await self.chat.conversation_for(session.identity, cid)
        call = next((c for c in self.calls.values() if c.conversation["id"] == cid), None)
        if call is None:
            call_id = "k_" + secrets.token_hex(8)
            room = MediaRoom(
                call_id,
                renegotiate=lambda peer, offer: self._renegotiate(call_id, peer, offer),
                on_audio=lambda peer, pcm: self._on_audio(call_id, peer, pcm),
                on_peer_removed=lambda peer, reason: self._on_removed(call_id, peer, reason),
                ice_servers=self.settings.ice_servers,
                renegotiation_timeout=self.limits.renegotiation_timeout_s,
            )
            call = Call(call_id, conversation, session.identity.id, now_iso(), room)
            self.calls[call_id] = call
            rooms = [user_room(p) for p in conversation["participants"]]
            await self.sio.emit("call.started", {"call": call.public()}, to=rooms)
        return ok_ack(call=call.public(), ice_servers=list(self.settings.ice_servers))

    async def get(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """call.get {conversation_id}: the conversation's running call, or null."""
        data = v.payload(data, {"conversation_id"})
        cid = v.conversation_id(data)
        await self.chat.conversation_for(session.identity, cid)
        call = next((c for c in self.calls.values() if c.conversation["id"] == cid), None)
        return ok_ack(call=call.public() if call else None)

    async def join(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """call.join {call_id, sdp, type: "offer"} → the server's answer SDP."""
        data = v.payload(data, {"call_id", "sdp", "type", "subtitle_lang"})
        call = await self._call_for(session, v.call_id(data))
        offer = v.sdp(data, "offer", self.limits.max_sdp_chars)
        subtitle_lang = v.lang(data, "subtitle_lang") if "subtitle_lang" in data else None
        if sid in call.members:
            raise v.invalid("this socket already joined the call")
        if len(call.members) >= self.limits.max_call_participants:
            raise AppError(CALL_FULL, f"a call has at most {self.limits.max_call_participants}")
        me = session.identity
        lang = (await self.chat.languages.of([me.id]))[me.id] or me.lang
        member = Member(sid, "p" + secrets.token_hex(6), me, lang, subtitle_lang or lang)
        member.subtitles = SpeakerSubtitles(
            lang,
            self.settings.data_dir,
            spawn=self._tasks.spawn,
            on_partial=lambda text: self._partial(call, member, text),
            on_final=lambda line: self._final(call, member, line),
            origin=call.started,
            name=f"captions-{member.peer_id}",
        )
        call.members[sid] = member
        try:
            answer = await call.room.add_peer(member.peer_id, offer)
        except InvalidSdpError as exc:
            call.members.pop(sid, None)
            raise v.invalid(f"bad offer: {exc}") from None
        except MediaError as exc:
            call.members.pop(sid, None)
            raise AppError(MEDIA_ERROR, str(exc)) from None
        await self.sio.enter_room(sid, call_room(call.id))
        self._tasks.spawn(member.subtitles.start())
        await self._announce(call)
        captions = member.subtitles.status()
        return ok_ack(sdp=answer, type="answer", call=call.public(), captions=captions)

    async def rtc_answer(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """rtc.answer {call_id, sdp}: the client's answer to a server `rtc.offer`."""
        data = v.payload(data, {"call_id", "sdp", "type"})
        call = self._running(v.call_id(data))
        answer = v.sdp(data, "answer", self.limits.max_sdp_chars)
        if not call.pending.answer(sid, answer):
            raise AppError(NOT_FOUND, "no renegotiation is waiting for an answer")
        return ok_ack()

    async def leave(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """call.leave {call_id}: leave; the call ends when its last member leaves."""
        data = v.payload(data, {"call_id"})
        call = self._running(v.call_id(data))
        if sid not in call.members:
            raise AppError(NOT_FOUND, "this socket is not in the call")
        await self._remove(call, sid, "left")
        return ok_ack()

    async def end(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """call.end {call_id}: end the call for everyone (any conversation participant)."""
        data = v.payload(data, {"call_id"})
        call = await self._call_for(session, v.call_id(data))
        await self.end_call(call, "ended", ended_by=session.identity)
        return ok_ack()

    async def set_subtitles(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """call.subtitles {call_id, lang}: the language this socket reads subtitles in."""
        data = v.payload(data, {"call_id", "lang"})
        call = self._running(v.call_id(data))
        lang = v.lang(data)
        member = call.members.get(sid)
        if member is None:
            raise AppError(NOT_FOUND, "this socket is not in the call")
        member.subtitle_lang = lang
        await self._announce(call)
        return ok_ack(lang=lang)

    # ------------------------------------------------------------------ lifecycle

    async def drop_socket(self, sid: str) -> None:
        """A socket disconnected: leave every call it was in."""
        for call in list(self.calls.values()):
            if sid in call.members:
                await self._remove(call, sid, "disconnected")

    async def end_call(self, call: Call, reason: str, ended_by: Identity | None = None) -> None:
        """Close the media room and every recognizer; tell the conversation (and who ended it,
        when someone did)."""
        if self.calls.get(call.id) is not call:
            return
        # every speaker's last line still goes out (closed together, not one after another)
        await asyncio.gather(*(self._stop_captions(m) for m in list(call.members.values())))
        if self.calls.pop(call.id, None) is None:
            return
        members = list(call.members.values())
        call.members.clear()
        call.pending.cancel()
        await call.room.close()
        for member in members:
            await self._stop_captions(member)
            await self.sio.leave_room(member.sid, call_room(call.id))
        rooms = [user_room(p) for p in call.conversation["participants"]]
        event: dict[str, Any] = {"call_id": call.id, "reason": reason}
        if ended_by is not None:
            event["ended_by"] = {"id": ended_by.id, "name": ended_by.name}
        await self.sio.emit("call.ended", event, to=rooms)

    async def close(self) -> None:
        """End every call (server shutdown)."""
        for call in list(self.calls.values()):
            await self.end_call(call, "server shutting down")
        await self._tasks.cancel()

    def stats(self) -> dict[str, int]:
        """Live calls, members and recognizer threads (for leak tests)."""
        members = [m for c in self.calls.values() for m in c.members.values()]
        return {
            "calls": len(self.calls),
            "members": len(members),
            "recognizers": sum(1 for m in members if m.subtitles and m.subtitles.alive),
            "pending_offers": sum(len(c.pending) for c in self.calls.values()),
            "tasks": self._tasks.running(),
        }

    # ------------------------------------------------------------------ internals

    def _running(self, call_id: str) -> Call:
        call = self.calls.get(call_id)
        if call is None:
            raise AppError(NOT_FOUND, f"no running call {call_id} on this server")
        return call

    async def _call_for(self, session: Session, call_id: str) -> Call:
        call = self._running(call_id)
        if session.identity.id not in call.conversation["participants"]:
            raise AppError(FORBIDDEN, "you are not a participant of this conversation")
        return call

    async def _announce(self, call: Call) -> None:
        rooms = [user_room(p) for p in call.conversation["participants"]]
        payload = {"call_id": call.id, "participants": call.public()["participants"]}
        await self.sio.emit("call.participants", payload, to=rooms)

    async def _remove(self, call: Call, sid: str, reason: str) -> None:
        if sid not in call.members:
            return
        await self._stop_captions(call.members[sid])  # their last line still goes out
        member = call.members.pop(sid, None)
        if member is None:
            return
        call.pending.cancel(sid)
        await call.room.remove_peer(member.peer_id, reason)
        await self._stop_captions(member)
        await self.sio.leave_room(sid, call_room(call.id))
        if call.members:
            await self._announce(call)
        else:
            await self.end_call(call, "everyone left")

    def _on_removed(self, call_id: str, peer_id: str, reason: str) -> None:
        """The room dropped a peer by itself (no answer to an offer, connection failed)."""
        call = self.calls.get(call_id)
        member = call.member_by_peer(peer_id) if call else None
        if call is None or member is None:
            return

        async def forget() -> None:
            await self.sio.emit("call.left", {"call_id": call_id, "reason": reason}, to=member.sid)
            await self._remove(call, member.sid, reason)

        self._tasks.spawn(forget())

    async def _renegotiate(self, call_id: str, peer_id: str, offer: str) -> str:
        """Send `rtc.offer` to a member and wait for its `rtc.answer` (the room times out)."""
        call = self._running(call_id)
        member = call.member_by_peer(peer_id)
        if member is None:
            raise MediaError(f"peer {peer_id} is not in call {call_id}")
        payload = {"call_id": call_id, "sdp": offer}
        return await call.pending.offer(self.sio, "rtc.offer", payload, member.sid)

    # ------------------------------------------------------------------ captions

    async def _stop_captions(self, member: Member) -> None:
        if member.subtitles is not None:
            await member.subtitles.stop()

    def _on_audio(self, call_id: str, peer_id: str, pcm: bytes) -> None:
        call = self.calls.get(call_id)
        member = call.member_by_peer(peer_id) if call else None
        if member is not None and member.subtitles is not None:
            member.subtitles.feed(pcm)

    def _subtitle(self, call: Call, member: Member, text: str, final: bool) -> dict[str, Any]:
        return {
            "call_id": call.id,
            "speaker": {"id": member.identity.id, "name": member.identity.name},
            "lang": member.speaker_lang,
            "text": text,
            "final": final,
        }

    async def _partial(self, call: Call, member: Member, text: str) -> None:
        """A partial, in the speaker's language, to the other members."""
        if call.members.get(member.sid) is not member:
            return
        payload = self._subtitle(call, member, text, final=False)
        await self.sio.emit("subtitle", payload, room=call_room(call.id), skip_sid=member.sid)

    async def _final(self, call: Call, member: Member, line: FinalLine) -> None:
        """Translate a finished utterance once per listener language, send it, keep it."""
        if call.members.get(member.sid) is not member:
            return
        listeners = {m.subtitle_lang for m in call.members.values() if m is not member}
        glossary = None
        if listeners - {member.speaker_lang} and self.chat.translation is not None:
            glossary = await self.chat.store.glossary(call.conversation["id"])
        translations, errors = await translate_line(
            self.chat.translation, line.text, member.speaker_lang, listeners, glossary
        )
        payload = self._subtitle(call, member, line.text, final=True)
        payload.update(translations=translations, start=line.start, end=line.end)
        if errors:
            payload["translation_error"] = errors
        await self.sio.emit("subtitle", payload, room=call_room(call.id))
        metrics.subtitle_sent(call.started + line.end)
        call.lines += 1
        entry = {
            "kind": "transcript",
            "call_id": call.id,
            "text": line.text,
            "lang": member.speaker_lang,
            "translations": translations,
            "start": line.start,
            "end": line.end,
        }
        if errors:
            entry["translation_error"] = errors
        speaker = Identity(
            member.identity.id, member.identity.name, member.identity.role, member.speaker_lang
        )
        try:
            await self.chat.post(call.conversation, speaker, f"{call.id}.{call.lines}", entry)
        except Exception:
            log.exception("could not store a transcript line of call %s", call.id)
