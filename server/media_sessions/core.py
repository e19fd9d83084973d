"""One media-session core for calls and tours.

A media session is one `media.MediaRoom` whose members have roles: a *speaker* publishes and
subscribes (everyone in a call), a *host* only publishes (a tour's supplier), a *viewer* only
subscribes. Publishers are recognized once each (`SpeakerSubtitles`). `MediaSessions` does,
once for both kinds: the room and its callbacks, joining and leaving, the server's re-offers,
the speakers' recognizers, ending, the session's ownership record in Redis, and handing a
session to another node (drain) or taking one over (node loss). `Calls` and `Tours` subclass
it and say who may join in which role, where subtitle lines go and which events tell clients.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import socketio

from media.errors import InvalidSdpError, MediaError
from media.negotiation import keep_candidates
from media.room import MediaRoom
from server.background import TaskSet
from server.config import Settings
from server.handlers.chat import Chat
from server.media_sessions.reoffers import PendingAnswers
from server.media_sessions.subtitles import FinalLine, SpeakerSubtitles
from server.realtime import validation as v
from server.realtime.errors import NOT_FOUND, AppError
from server.storage.media_records import MediaRecord, MediaRecords
from server.tokens import Identity

log = logging.getLogger("tradetalk.media")

MEDIA_ERROR = "media_error"
SHUTTING_DOWN = "server shutting down"
SPEAKER, HOST, VIEWER = "speaker", "host", "viewer"
PUBLISHERS = (SPEAKER, HOST)
SUBSCRIBERS = (SPEAKER, VIEWER)


@dataclass
class Member:
    """One socket in a media session, in one role."""

    sid: str
    peer_id: str
    identity: Identity
    role: str
    lang: str  # the language the member speaks
    subtitle_lang: str  # the language the member reads subtitles in
    node: str  # the node the member's socket is connected to
    subtitles: SpeakerSubtitles | None = None

    @property
    def publishes(self) -> bool:
        """Whether the member's camera and microphone go to the others."""
        return self.role in PUBLISHERS

    @property
    def subscribes(self) -> bool:
        """Whether the member receives the publishers' media."""
        return self.role in SUBSCRIBERS


@dataclass
class MediaSession:
    """A running call or tour on this node."""

    id: str
    room: MediaRoom
    started_wall: float = field(default_factory=time.time)
    epoch: int = 0  # +1 each time another node takes the session over
    members: dict[str, Member] = field(default_factory=dict)
    pending: PendingAnswers = field(default_factory=PendingAnswers)
    ending: bool = False  # ending or handed over: a new start gets a new session

    @property
    def started(self) -> float:
        """The session's start on the monotonic clock (subtitle times count from it)."""
        return time.monotonic() - (time.time() - self.started_wall)

    def member_by_peer(self, peer_id: str) -> Member | None:
        """The member whose media peer id this is."""
        return next((m for m in self.members.values() if m.peer_id == peer_id), None)

    def in_role(self, *roles: str) -> list[Member]:
        """The members in any of `roles`."""
        return [m for m in self.members.values() if m.role in roles]


S = TypeVar("S", bound=MediaSession)


class Elsewhere(Exception):
    """The session asked for runs on another node (started there at the same moment)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id


class MediaSessions(Generic[S]):
    """The sessions of one kind on this node, and everything calls and tours do alike."""

    kind: ClassVar[str] = "session"
    id_field: ClassVar[str] = "id"  # the payload field naming the session (call_id / tour_id)
    offer_event: ClassVar[str] = ""  # server re-offer event
    left_event: ClassVar[str] = ""  # the room dropped a member by itself
    moved_event: ClassVar[str] = ""  # the session continues on another node: re-join

    def __init__(
        self,
        sio: socketio.AsyncServer,
        chat: Chat,
        settings: Settings,
        records: MediaRecords,
        node_id: str,
        media_address: str | None = None,
    ) -> None:
        self.sio = sio
        self.chat = chat
        self.settings = settings
        self.records = records
        self.node_id = node_id
        self.media_address = media_address
        self.sessions: dict[str, S] = {}
        self._tasks = TaskSet()

    # ------------------------------------------------------------------ what a kind says

    def rooms_of(self, session: S, member: Member) -> list[str]:
        """The Socket.IO rooms a member's socket is in while it is a member."""
        raise NotImplementedError

    def public(self, session: S) -> dict[str, Any]:
        """The session as sent to clients."""
        raise NotImplementedError

    def record(self, session: S) -> dict[str, Any]:
        """What another node needs to take the session over (kind-specific fields)."""
        raise NotImplementedError

    def restore(self, record: MediaRecord, room: MediaRoom) -> S:
        """The session again, from its record, on a fresh room (no members yet)."""
        raise NotImplementedError

    def moved_to(self, session: S) -> list[str]:
        """Where the moved event goes (default: the members' rooms)."""
        return [self.room_name(session)]

    def room_name(self, session: S) -> str:
        """The Socket.IO room every member of the session is in."""
        return f"{self.kind}:{session.id}"

    async def partial(self, session: S, member: Member, text: str) -> None:
        """A speaker's partial result."""

    async def final(self, session: S, member: Member, line: FinalLine) -> None:
        """A speaker's finished line: translate, send, keep."""

    async def member_removed(self, session: S, member: Member) -> None:
        """After a member left (the session still runs)."""

    async def ended(self, session: S, reason: str, ended_by: Identity | None) -> None:
        """After the session ended: tell the clients."""

    async def peer_lost(self, session: S, member: Member, reason: str) -> None:
        """The room dropped a member's peer by itself (no answer, connection failed)."""
        payload = {self.id_field: session.id, "reason": reason}
        await self.sio.emit(self.left_event, payload, to=member.sid)
        await self.remove_member(session, member.sid, reason)

    async def socket_gone(self, session: S, sid: str) -> None:
        """A member's socket disconnected."""
        await self.remove_member(session, sid, "disconnected")

    # ------------------------------------------------------------------ the session

    def new_room(self, session_id: str) -> MediaRoom:
        """A media room whose callbacks come back to this kind."""
        return MediaRoom(
            session_id,
            renegotiate=lambda peer, offer: self._renegotiate(session_id, peer, offer),
            on_audio=lambda peer, pcm: self._on_audio(session_id, peer, pcm),
            on_peer_removed=lambda peer, reason: self._on_removed(session_id, peer, reason),
            ice_servers=self.settings.ice_servers,
            renegotiation_timeout=self.settings.limits.renegotiation_timeout_s,
        )

    def full_record(self, session: S) -> dict[str, Any]:
        """The ownership record: id, kind, owner, epoch, start, and the kind's fields."""
        return {
            "id": session.id,
            "kind": self.kind,
            "cluster": self.settings.cluster,
            "owner": self.node_id,
            "epoch": session.epoch,
            "started_wall": session.started_wall,
            **self.record(session),
        }

    async def keep(self, session: S) -> None:
        """Write the session's ownership record (on start and when its public view changes)."""
        await self.records.put(self.full_record(session))

    def running(self, session_id: str) -> S:
        """The running session, or `not_found`."""
        session = self.sessions.get(session_id)
        if session is None:
            raise AppError(NOT_FOUND, f"no running {self.kind} {session_id}")
        return session

    def member(self, session: S, sid: str) -> Member:
        """This socket's membership, or `not_found`."""
        member = session.members.get(sid)
        if member is None:
            raise AppError(NOT_FOUND, f"this socket is not in the {self.kind}")
        return member

    def new_member(
        self, sid: str, identity: Identity, role: str, lang: str, subtitle_lang: str, node: str
    ) -> Member:
        """A member with a fresh media peer id (not added yet)."""
        prefix = {SPEAKER: "p", HOST: "h", VIEWER: "v"}[role]
        return Member(sid, prefix + secrets.token_hex(6), identity, role, lang, subtitle_lang, node)

    async def add_member(self, session: S, member: Member, offer: str) -> str:
        """Answer the member's offer, put its socket in the session's rooms and start
        recognizing it if it publishes; returns the answer SDP."""
        if member.publishes:
            member.subtitles = SpeakerSubtitles(
                member.lang,
                self.settings.data_dir,
                spawn=self._tasks.spawn,
                on_partial=lambda text: self._partial(session, member, text),
                on_final=lambda line: self._final(session, member, line),
                origin=session.started,
                name=f"captions-{member.peer_id}",
            )
        session.members[member.sid] = member
        try:
            answer = await session.room.add_peer(
                member.peer_id, offer, publish=member.publishes, subscribe=member.subscribes
            )
        except InvalidSdpError as exc:
            session.members.pop(member.sid, None)
            raise v.invalid(f"bad offer: {exc}") from None
        except MediaError as exc:
            session.members.pop(member.sid, None)
            raise AppError(MEDIA_ERROR, str(exc)) from None
        except BaseException:
            session.members.pop(member.sid, None)
            raise
        for room in self.rooms_of(session, member):
            await self.sio.enter_room(member.sid, room)
        if member.subtitles is not None:
            self._tasks.spawn(member.subtitles.start())
        if self.media_address:
            answer = keep_candidates(answer, self.media_address)
        return answer

    async def remove_member(self, session: S, sid: str, reason: str) -> None:
        """A member leaves: its last line still goes out, then its peer and rooms go."""
        member = session.members.get(sid)
        if member is None:
            return
        await self._stop_subtitles(member)
        if session.members.pop(sid, None) is None:
            return
        session.pending.cancel(sid)
        await session.room.remove_peer(member.peer_id, reason)
        for room in self.rooms_of(session, member):
            await self.sio.leave_room(sid, room)
        if self.sessions.get(session.id) is session:
            await self.member_removed(session, member)

    async def end_session(
        self,
        session: S,
        reason: str,
        ended_by: Identity | None = None,
        finish_s: float | None = None,
    ) -> None:
        """End for everyone: every speaker's last line goes out, then the room, the recognizers
        and the record go, and the kind tells the clients. `finish_s` (a server stopping):
        the media stops first and the open lines get at most this long."""
        if self.sessions.get(session.id) is not session:
            return
        session.ending = True
        await self._finish_lines(session, finish_s)
        if self.sessions.pop(session.id, None) is None:
            return
        members = list(session.members.values())
        try:  # first: a start right after this one ended must not find it (17.10)
            await self.records.delete(self.full_record(session), owner=self.node_id)
        except Exception:
            log.exception("could not forget the record of %s %s", self.kind, session.id)
        await self._tear_down(session)
        await self.ended(session, reason, ended_by)  # while the members are still in its rooms
        for member in members:
            for room in self.rooms_of(session, member):
                await self.sio.leave_room(member.sid, room)

    async def withdraw(self, sid: str, data: Any) -> None:
        """Take back a membership `data` (a join's payload) gave `sid` (the join was answered
        too late for its client)."""
        session = (
            self.sessions.get(str(data.get(self.id_field))) if isinstance(data, dict) else None
        )
        if session is not None and sid in session.members:
            await self.remove_member(session, sid, "join answered too late")

    async def drop_socket(self, sid: str) -> None:
        """A socket disconnected (here or on another node): leave what it was in."""
        for session in list(self.sessions.values()):
            await self.socket_gone(session, sid)

    async def drop_node(self, node_id: str) -> None:
        """A node died: its sockets are gone, so are their memberships."""
        for session in list(self.sessions.values()):
            for member in [m for m in session.members.values() if m.node == node_id]:
                await self.socket_gone(session, member.sid)

    async def end_all(self, reason: str = SHUTTING_DOWN, finish_s: float | None = None) -> int:
        """End every session here at once (each finishes its open lines first, within
        `finish_s` when given); returns how many ended."""
        sessions = list(self.sessions.values())
        results = await asyncio.gather(
            *(self.end_session(s, reason, finish_s=finish_s) for s in sessions),
            return_exceptions=True,
        )
        for session, result in zip(sessions, results, strict=True):
            if isinstance(result, BaseException):
                log.error("%s %s did not end cleanly", self.kind, session.id, exc_info=result)
        return len(sessions)

    async def close(self) -> None:
        """End every session (server shutting down with no node to move them to) and stop the
        background tasks."""
        await self.end_all(SHUTTING_DOWN, finish_s=2.0)
        await self._tasks.cancel()

    def stats(self) -> dict[str, int]:
        """Live sessions, members, recognizer threads, pending offers, tasks (leak tests)."""
        members = [m for s in self.sessions.values() for m in s.members.values()]
        return {
            "sessions": len(self.sessions),
            "members": len(members),
            "recognizers": sum(1 for m in members if m.subtitles and m.subtitles.alive),
            "pending_offers": sum(len(s.pending) for s in self.sessions.values()),
            "tasks": self._tasks.running(),
        }

    # ------------------------------------------------------------------ moving between nodes

    async def hand_over(
        self, session: S, target: str, finish_s: float | None = None
    ) -> MediaRecord | None:
        """Give a session to node `target` (drain): every open line goes out first (within
        `finish_s`, the media stopped first, when given), then the record names the target;
        this node lets go of the media without telling anyone (the target does). Returns the
        moved record, or None if the session is not ours any more."""
        if self.sessions.get(session.id) is not session:
            return None
        session.ending = True
        await self._finish_lines(session, finish_s)
        record = await self.records.take_over(session.id, self.node_id, target)
        self.sessions.pop(session.id, None)
        await self._tear_down(session)
        return record

    async def adopt(self, record: MediaRecord, reason: str, tell: bool = True) -> S:
        """Run a session another node owned (it drained or died), from its record (which must
        already name this node); tell its members to re-join here."""
        existing = self.sessions.get(record["id"])
        if existing is not None:
            return existing
        session = self.restore(record, self.new_room(record["id"]))
        session.epoch = int(record.get("epoch") or 0)
        session.started_wall = float(record.get("started_wall") or time.time())
        self.sessions[session.id] = session
        await self.keep(session)
        if tell:
            payload = {self.id_field: session.id, "reason": reason, self.kind: self.public(session)}
            await self.sio.emit(self.moved_event, payload, to=self.moved_to(session))
        log.info("%s %s now runs here (%s)", self.kind, session.id, reason)
        return session

    async def let_go(self, session_id: str) -> None:
        """Another node took the session over while this one still ran it (a heartbeat was
        missed): drop the local media silently; the new owner has told the members."""
        session = self.sessions.pop(session_id, None)
        if session is not None:
            session.ending = True
            await self._stop_speakers(session)
            await self._tear_down(session)

    async def refresh_records(self) -> list[str]:
        """Push back the expiry of this node's records; returns ids now owned elsewhere."""
        lost = []
        for session in list(self.sessions.values()):
            record = await self.records.get(session.id)
            if record is not None and record.get("owner") != self.node_id:
                lost.append(session.id)
        owned = [self.full_record(s) for s in self.sessions.values() if s.id not in lost]
        await self.records.refresh(owned)
        return lost

    # ------------------------------------------------------------------ internals

    async def _tear_down(self, session: S) -> None:
        members = list(session.members.values())
        session.members.clear()
        session.pending.cancel()
        await session.room.close()
        for member in members:
            await self._stop_subtitles(member)

    async def _finish_lines(self, session: S, finish_s: float | None) -> None:
        """Close every speaker's open utterance and deliver its line. With `finish_s` (a stop)
        the room closes first (no more audio, and its decoding and encoding free the CPU the
        recognizers need) and the lines get at most `finish_s`."""
        if finish_s is None:
            await self._stop_speakers(session)
            return
        await session.room.close()
        try:
            await asyncio.wait_for(self._stop_speakers(session), finish_s)
        except TimeoutError:
            log.warning("%s %s: open lines not finished in %.1f s", self.kind, session.id, finish_s)

    async def _stop_speakers(self, session: S) -> None:
        """Close every speaker's open utterance together; their lines go out first."""
        await asyncio.gather(*(self._stop_subtitles(m) for m in list(session.members.values())))

    @staticmethod
    async def _stop_subtitles(member: Member) -> None:
        if member.subtitles is not None:
            await member.subtitles.stop()
            await member.subtitles.drain()

    def _on_audio(self, session_id: str, peer_id: str, pcm: bytes) -> None:
        session = self.sessions.get(session_id)
        member = session.member_by_peer(peer_id) if session else None
        if member is not None and member.subtitles is not None:
            member.subtitles.feed(pcm)

    def _on_removed(self, session_id: str, peer_id: str, reason: str) -> None:
        session = self.sessions.get(session_id)
        member = session.member_by_peer(peer_id) if session else None
        if session is not None and member is not None:
            self._tasks.spawn(self.peer_lost(session, member, reason))

    async def _renegotiate(self, session_id: str, peer_id: str, offer: str) -> str:
        """Send the re-offer to the member's socket and wait for its answer (the room times
        out)."""
        session = self.running(session_id)
        member = session.member_by_peer(peer_id)
        if member is None:
            raise MediaError(f"peer {peer_id} is not in {self.kind} {session_id}")
        if self.media_address:
            offer = keep_candidates(offer, self.media_address)
        payload = {self.id_field: session_id, "sdp": offer}
        return await session.pending.offer(self.sio, self.offer_event, payload, member.sid)

    def _current(self, session: S, member: Member) -> bool:
        return self.sessions.get(session.id) is session and (
            session.members.get(member.sid) is member
        )

    async def _partial(self, session: S, member: Member, text: str) -> None:
        if self._current(session, member):
            await self.partial(session, member, text)

    async def _final(self, session: S, member: Member, line: FinalLine) -> None:
        if self._current(session, member):
            await self.final(session, member, line)
