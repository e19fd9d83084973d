"""One media-session core for calls and tours.

A media session is one `media.MediaRoom` whose members have roles: a *speaker* publishes and
subscribes (everyone in a call), a *host* only publishes (a tour's supplier), a *viewer* only
subscribes. Publishers are recognized once each (`SpeakerSubtitles`). `MediaSessions` does,
once for both kinds: the room and its callbacks, joining and leaving, the server's re-offers,
the speakers' recognizers, their subtitles (the open line translated while they speak, and
each final line translated once per reader language, kept, then sent: one `subtitle` shape for
both kinds), answering re-offers, ending, the session's ownership record in Redis, and handing a
session to another node (drain) or taking one over (node loss). `Calls` and `Tours` subclass
it and say who may join in which role, which rooms read subtitles in which languages, where a
final line is kept and which events tell clients.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import socketio

from media.errors import InvalidSdpError, MediaError
from media.negotiation import keep_candidates
from media.room import MediaRoom
from server import metrics
from server.background import TaskSet
from server.config import Settings
from server.handlers.chat import Translating
from server.media_sessions import caption_timing
from server.media_sessions.live_lines import LiveLine
from server.media_sessions.reoffers import PendingAnswers
from server.media_sessions.subtitles import (
    FinalLine,
    OpenRecognizer,
    SpeakerSubtitles,
    translate_line,
)
from server.realtime import validation as v
from server.realtime.errors import NOT_FOUND, AppError, ok_ack
from server.realtime.sessions import Session
from server.storage.languages import Languages
from server.storage.media_records import MediaRecord, MediaRecords
from server.tokens import Identity
from translation.errors import TranslationNote, TranslationUnavailable
from translation.retranslation import Shown
from translation.speech_engines import WHISPER

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
    live: LiveLine | None = None  # the open line as its readers see it (publishers)
    relay: str | None = None  # the node serving this member's media when not this one (tours)

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


@dataclass(frozen=True)
class MediaServices:
    """What every media-session kind is given by the composition root (`server/app.py`)."""

    sio: socketio.AsyncServer
    settings: Settings
    records: MediaRecords  # who owns which session (cluster)
    languages: Languages  # the language each user reads
    translation: Translating | None  # subtitles in the readers' languages (None: untranslated)
    node_id: str
    media_address: str | None = None  # the address this node's media is reached at
    #: where speakers' recognizers come from (None: this process; the app gives the workers')
    recognizers: OpenRecognizer | None = None


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

    def __init__(self, services: MediaServices) -> None:
        self.sio = services.sio
        self.settings = services.settings
        self.records = services.records
        self.languages = services.languages
        self.translation = services.translation
        self.node_id = services.node_id
        self.media_address = services.media_address
        self.recognizers = services.recognizers
        self.sessions: dict[str, S] = {}
        self._tasks = TaskSet()
        self._trace = caption_timing.tracing()

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

    def session_id(self, data: dict[str, Any]) -> str:
        """The well-formed session id a payload names (`invalid` otherwise)."""
        raise NotImplementedError

    def moved_to(self, session: S) -> list[str]:
        """Where the moved event goes."""
        raise NotImplementedError

    def reader_languages(self, session: S, speaker: Member) -> set[str]:
        """The languages `speaker`'s lines are read in now (their own included if read)."""
        raise NotImplementedError

    def subtitle_rooms(self, session: S, speaker: Member) -> list[tuple[str, set[str] | None]]:
        """Where `speaker`'s subtitles go: (room, the languages its sockets read; None: all
        of `reader_languages`). Each room gets the translations into its languages only."""
        raise NotImplementedError

    async def line_glossary(self, session: S) -> dict[str, str | None] | None:
        """The glossary applied to the session's lines (default: none; trade terms apply)."""
        return None

    async def keep_line(
        self,
        session: S,
        speaker: Member,
        line: FinalLine,
        translations: dict[str, str],
        errors: dict[str, TranslationNote],
    ) -> None:
        """Keep a final line with its translations (before it is shown)."""
        raise NotImplementedError

    async def member_removed(self, session: S, member: Member) -> None:
        """After a member left (the session still runs)."""

    async def ended(self, session: S, reason: str, ended_by: Identity | None) -> None:
        """After the session ended: tell the clients."""

    async def attach_media(self, session: S, member: Member, offer: str) -> str:
        """Serve the member's media (this node's room); the answer SDP."""
        return await session.room.add_peer(
            member.peer_id, offer, publish=member.publishes, subscribe=member.subscribes
        )

    async def detach_media(self, session: S, member: Member, reason: str) -> None:
        """Stop serving the member's media."""
        await session.room.remove_peer(member.peer_id, reason)

    async def answer_elsewhere(self, session: S, sid: str, answer: str) -> bool:
        """A re-offer answer no offer here waits for: another node's, if any (tour relays)."""
        return False

    async def peer_lost(self, session: S, member: Member, reason: str) -> None:
        """The room dropped a member's peer by itself (no answer, connection failed)."""
        payload = {self.id_field: session.id, "reason": reason}
        await self.sio.emit(self.left_event, payload, to=member.sid)
        await self.remove_member(session, member.sid, reason)

    async def socket_gone(self, session: S, sid: str) -> None:
        """A member's socket disconnected."""
        await self.remove_member(session, sid, "disconnected")

    # ------------------------------------------------------------------ shared events

    async def rtc_answer(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """`rtc.answer` / `tour.answer {<id_field>, sdp}`: the client's answer to a server
        re-offer."""
        data = v.payload(data, {self.id_field, "sdp", "type"})
        running = self.running(self.session_id(data))
        answer = v.sdp(data, "answer", self.settings.limits.max_sdp_chars)
        if not running.pending.answer(sid, answer) and not await self.answer_elsewhere(
            running, sid, answer
        ):
            raise AppError(NOT_FOUND, "no renegotiation is waiting for an answer")
        return ok_ack()

    async def reader_language(self, identity: Identity) -> str:
        """The language a user reads (and speaks) in: their setting, else their token's."""
        return (await self.languages.of([identity.id]))[identity.id] or identity.lang

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
                on_partial=lambda text, utterance: self._partial(session, member, text, utterance),
                on_final=lambda line: self._final(session, member, line),
                on_closing=lambda text, _: self._prefetch_final(session, member, text),
                origin=session.started,
                name=f"captions-{member.peer_id}",
                recognizers=self.recognizers,
            )
            member.live = LiveLine(
                member.lang,
                targets=lambda: self._partial_languages(session, member),
                agreed=lambda: member.subtitles is not None and member.subtitles.engine == WHISPER,
                translate=lambda text, lang: self._translate_partial(session, member, text, lang),
                emit=lambda text, shown: self._send_partial(session, member, text, shown),
                spawn=self._tasks.spawn,
                turn=self._partial_turn,
            )
        session.members[member.sid] = member
        try:
            answer = await self.attach_media(session, member, offer)
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
        await self.detach_media(session, member, reason)
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
        if member.live is not None:
            member.live.stop()

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

    # ------------------------------------------------------------------ subtitles

    async def _partial(self, session: S, member: Member, text: str, utterance: int) -> None:
        if self._current(session, member) and member.live is not None:
            member.live.partial(text, utterance)

    async def _final(self, session: S, member: Member, line: FinalLine) -> None:
        if self._current(session, member):
            await self.final(session, member, line)

    def _subtitle(
        self, session: S, speaker: Member, text: str, lang: str | None = None
    ) -> dict[str, Any]:
        """A subtitle's common fields; `lang`: the line's language (a final may be heard in
        English from anyone, `FinalLine.lang`), else the speaker's."""
        return {
            self.id_field: session.id,
            "speaker": {"id": speaker.identity.id, "name": speaker.identity.name},
            "lang": lang or speaker.lang,
            "text": text,
        }

    def _partial_languages(self, session: S, member: Member) -> set[str]:
        if not self.settings.partial_translation:
            return set()
        return self.reader_languages(session, member)

    def _partial_turn(self) -> AbstractAsyncContextManager[None]:
        """An open line's turn to translate: the service's background lane (see LiveLine)."""
        service = self.translation
        return service.background_turn() if service is not None else nullcontext()

    async def _translate_partial(
        self, session: S, member: Member, text: str, lang: str
    ) -> str | None:
        """The open line's stable prefix in `lang` (None: no engine for the pair)."""
        service = self.translation
        if service is None:
            return None
        glossary = await self.line_glossary(session)
        try:
            translated = await service.translate(
                text, member.lang, lang, glossary or None, background=True
            )
            return str(translated)
        except TranslationUnavailable:
            return None
        except Exception:
            log.exception("a partial %s->%s translation failed", member.lang, lang)
            return None

    async def _send_partial(
        self, session: S, member: Member, text: str, shown: dict[str, Shown]
    ) -> None:
        """The open line to every reader but the speaker: the source so far and, per reader
        language, its translation (`committed` characters of it steady)."""
        base = {**self._subtitle(session, member, text), "final": False}
        for room, langs in self.subtitle_rooms(session, member):
            mine = {lang: s for lang, s in shown.items() if langs is None or lang in langs}
            payload = {
                **base,
                "translations": {lang: s.text for lang, s in mine.items()},
                "committed": {lang: s.committed for lang, s in mine.items()},
            }
            await self.sio.emit("subtitle", payload, room=room, skip_sid=member.sid)

    async def final(self, session: S, member: Member, line: FinalLine) -> None:
        """A speaker's finished line: translated once per reader language (trade terms and
        the session's glossary apply), kept, then sent in place of the open line."""
        live = member.live
        try:
            await self._send_final(session, member, line, live)
        finally:  # whatever happened, the open line moves on to the next utterance
            if live is not None:
                live.finished(line.utterance)
        metrics.subtitle_sent(session.started + line.end)

    async def _translate_final(
        self, session: S, member: Member, text: str, lang: str | None = None
    ) -> tuple[dict[str, str], dict[str, TranslationNote]]:
        """A line in every reader language (trade terms and the session's glossary apply);
        `lang`: the line's language (default: the speaker's)."""
        src = lang or member.lang
        languages = self.reader_languages(session, member)
        glossary = None
        if languages - {src} and self.translation is not None:
            glossary = await self.line_glossary(session)
        return await translate_line(self.translation, text, src, languages, glossary)

    async def _prefetch_final(self, session: S, member: Member, text: str) -> None:
        """An utterance is closing and `text` was its latest partial, which its Vosk final
        almost always repeats: translate it now, while the recognizer decodes the closing
        silence, so the final finds its translation done or running (the service coalesces
        and caches). Whisper decodes its final afresh: nothing to guess there."""
        subtitles = member.subtitles
        if subtitles is None or subtitles.engine == WHISPER or not self._current(session, member):
            return
        await self._translate_final(session, member, text)

    async def _send_final(
        self, session: S, member: Member, line: FinalLine, live: LiveLine | None
    ) -> None:
        translations, errors = await self._translate_final(session, member, line.text, line.lang)
        line.timing["translated"] = time.monotonic()
        # Kept before it is shown: a reader never sees a line the transcript lacks (kill -9).
        await self.keep_line(session, member, line, translations, errors)
        line.timing["kept"] = time.monotonic()
        base = {**self._subtitle(session, member, line.text, line.lang), "final": True}
        base.update(start=line.start, end=line.end)
        lock: AbstractAsyncContextManager[Any] = live.lock if live is not None else nullcontext()
        async with lock:  # after the open line's last snapshot, before the next line's first
            for room, langs in self.subtitle_rooms(session, member):
                mine = {k: t for k, t in translations.items() if langs is None or k in langs}
                payload = {**base, "translations": mine}
                notes = {k: n for k, n in errors.items() if langs is None or k in langs}
                if notes:
                    payload["translation_error"] = notes
                await self.sio.emit("subtitle", payload, room=room)
            if live is not None:
                live.finished(line.utterance)
        if self._trace:
            line.timing["emitted"] = time.monotonic()
            caption_timing.log_final(member.identity.id, line.utterance, line.timing)
