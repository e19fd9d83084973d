"""Virtual factory tours: one supplier streams camera and microphone to many viewers, each
reading the host's words in their own language, and asking questions in theirs.

Media goes through one `media.MediaRoom` per tour: the host publishes (publish=True,
subscribe=False), viewers only subscribe (publish=False, so whatever a viewer's offer sends is
ignored). The host's speech is recognized once (`subtitles.SpeakerSubtitles`); each final
line is translated once per language present among the viewers and sent to the Socket.IO room
of that language only. Lines and questions are kept in Redis under
`tt:tour:{id}:*` and outlive the tour (`GET /api/tours/{id}/transcript`).

A tour lives in the server process that started it (like a call).
"""

from __future__ import annotations

import json
import logging
import os
import re
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
from server.storage.store import PREFIX, now_iso
from server.tokens import Identity
from server.web import metrics

log = logging.getLogger("tradetalk.tours")

TOUR_FULL = "tour_full"
MEDIA_ERROR = "media_error"
TOUR_ID_RE = re.compile(r"^t_[0-9a-f]{16}\Z")
MAX_EXPORT = 20_000


@dataclass(frozen=True)
class TourLimits:
    """Limits of tours; `TRADETALK_TOUR_MAX_VIEWERS` sets `max_viewers`."""

    max_viewers: int = 50
    max_title_chars: int = 200
    max_invite: int = 200
    max_question_chars: int = 500

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> TourLimits:
        """Limits with overrides from the environment."""
        env = dict(os.environ if env is None else env)
        return cls(max_viewers=int(env.get("TRADETALK_TOUR_MAX_VIEWERS") or cls.max_viewers))


def tour_room(tour_id: str) -> str:
    """The Socket.IO room of a tour's viewers (partial subtitles, `tour.ended`)."""
    return f"tour:{tour_id}"


def lang_room(tour_id: str, lang: str) -> str:
    """The room of a tour's sockets that read subtitles in `lang` (the host is in its own)."""
    return f"tour:{tour_id}:{lang}"


def tour_key(tour_id: str, *parts: str) -> str:
    """Redis key of a tour: `tt:tour:{id}` (meta), `…:lines`, `…:questions`, `…:access`."""
    return PREFIX + ":".join(("tour", tour_id, *parts))


@dataclass
class Viewer:
    """One socket watching a tour."""

    sid: str
    peer_id: str
    identity: Identity
    subtitle_lang: str


@dataclass
class Tour:
    """A running tour and its media room."""

    id: str
    title: str
    lang: str
    host: Identity
    host_sid: str
    invite: list[str] | None
    started_at: str
    room: MediaRoom
    started: float = field(default_factory=time.monotonic)
    host_peer: str | None = None
    subtitles: SpeakerSubtitles | None = None
    viewers: dict[str, Viewer] = field(default_factory=dict)
    pending: PendingAnswers = field(default_factory=PendingAnswers)
    questions: int = 0

    def public(self) -> dict[str, Any]:
        """The tour as sent to clients."""
        return {
            "id": self.id,
            "title": self.title,
            "lang": self.lang,
            "host": {"id": self.host.id, "name": self.host.name},
            "invite": self.invite,
            "started_at": self.started_at,
            "viewers": len(self.viewers),
        }

    def may_watch(self, user_id: str) -> bool:
        """Open tours admit any signed-in user; private ones the invited."""
        return self.invite is None or user_id in self.invite or user_id == self.host.id

    def viewer_by_peer(self, peer_id: str) -> Viewer | None:
        """The viewer whose media peer id this is."""
        return next((w for w in self.viewers.values() if w.peer_id == peer_id), None)

    def languages(self) -> set[str]:
        """Subtitle languages of the viewers now."""
        return {w.subtitle_lang for w in self.viewers.values()}


class Tours:
    """The tour half of the protocol (see docs/tours.md)."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        dispatcher: Dispatcher,
        chat: Chat,
        settings: Settings,
        limits: TourLimits | None = None,
    ) -> None:
        self.sio = sio
        self.chat = chat
        self.settings = settings
        self.limits = limits or TourLimits.from_env()
        self.tours: dict[str, Tour] = {}
        self._tasks = TaskSet()
        for name, handler in {
            "tour.start": self.start,
            "tour.list": self.list,
            "tour.publish": self.publish,
            "tour.join": self.join,
            "tour.answer": self.rtc_answer,
            "tour.subtitles": self.set_subtitles,
            "tour.ask": self.ask,
            "tour.leave": self.leave,
            "tour.end": self.end,
        }.items():
            dispatcher.register(name, handler)

    @property
    def redis(self) -> Any:
        """The shared Redis client (the chat store's)."""
        return self.chat.store.redis

    # ------------------------------------------------------------------ events

    async def start(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.start {title, lang, invite?}: suppliers only."""
        data = v.payload(data, {"title", "lang", "invite"})
        me = session.identity
        if me.role != "supplier":
            raise AppError(FORBIDDEN, "only suppliers can host tours")
        title = v.text(data, "title", self.limits.max_title_chars)
        lang = v.lang(data)
        invite = None
        if data.get("invite") is not None:
            raw = data["invite"]
            if not isinstance(raw, list) or len(raw) > self.limits.max_invite:
                raise v.invalid(f"invite must be a list of at most {self.limits.max_invite} ids")
            invite = list(dict.fromkeys(v.user_id(u, "invite[]") for u in raw))
        tour_id = "t_" + secrets.token_hex(8)
        room = MediaRoom(
            tour_id,
            renegotiate=lambda peer, offer: self._renegotiate(tour_id, peer, offer),
            on_audio=lambda peer, pcm: self._on_audio(tour_id, peer, pcm),
            on_peer_removed=lambda peer, reason: self._on_removed(tour_id, peer, reason),
            ice_servers=self.settings.ice_servers,
            renegotiation_timeout=self.settings.limits.renegotiation_timeout_s,
        )
        tour = Tour(tour_id, title or "", lang, me, sid, invite, now_iso(), room)
        self.tours[tour_id] = tour
        await self.sio.enter_room(sid, lang_room(tour_id, lang))
        meta = {k: val for k, val in tour.public().items() if k != "viewers"}
        await self.redis.set(tour_key(tour_id), json.dumps(meta))
        await self._announce(tour, "tour.listed", {"tour": tour.public()})
        return ok_ack(tour=tour.public(), ice_servers=list(self.settings.ice_servers))

    async def list(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.list {}: the running tours this user may watch (open, inviting them, or theirs)."""
        v.payload(data, set())
        me = session.identity.id
        tours = [t.public() for t in self.tours.values() if t.may_watch(me)]
        return ok_ack(tours=sorted(tours, key=lambda t: t["started_at"]))

    async def publish(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.publish {tour_id, sdp, type: "offer"}: the host's camera and microphone."""
        data = v.payload(data, {"tour_id", "sdp", "type"})
        tour = self._running(tour_id(data))
        offer = v.sdp(data, "offer", self.settings.limits.max_sdp_chars)
        if sid != tour.host_sid:
            raise AppError(FORBIDDEN, "only the host's socket publishes into a tour")
        if tour.host_peer is not None:
            raise v.invalid("the host already publishes")
        tour.host_peer = "h" + secrets.token_hex(6)
        tour.subtitles = SpeakerSubtitles(
            tour.lang,
            self.settings.data_dir,
            spawn=self._tasks.spawn,
            on_partial=lambda text: self._partial(tour, text),
            on_final=lambda line: self._final(tour, line),
            origin=tour.started,
            name=f"captions-{tour.host_peer}",
        )
        answer = await self._add_peer(tour, tour.host_peer, offer, publish=True)
        self._tasks.spawn(tour.subtitles.start())
        return ok_ack(sdp=answer, type="answer", captions=tour.subtitles.status())

    async def join(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.join {tour_id, sdp, type: "offer", subtitle_lang?} → the answer SDP."""
        data = v.payload(data, {"tour_id", "sdp", "type", "subtitle_lang"})
        tour = self._running(tour_id(data))
        offer = v.sdp(data, "offer", self.settings.limits.max_sdp_chars)
        me = session.identity
        if not tour.may_watch(me.id):
            raise AppError(FORBIDDEN, "this tour is by invitation")
        if sid == tour.host_sid:
            raise v.invalid("the host publishes with tour.publish")
        if sid in tour.viewers:
            raise v.invalid("this socket already joined the tour")
        if len(tour.viewers) >= self.limits.max_viewers:
            raise AppError(TOUR_FULL, f"a tour has at most {self.limits.max_viewers} viewers")
        if "subtitle_lang" in data:
            subtitle_lang = v.lang(data, "subtitle_lang")
        else:
            subtitle_lang = (await self.chat.languages.of([me.id]))[me.id] or me.lang
        viewer = Viewer(sid, "v" + secrets.token_hex(6), me, subtitle_lang)
        tour.viewers[sid] = viewer
        try:
            answer = await self._add_peer(tour, viewer.peer_id, offer, publish=False)
        except AppError:
            tour.viewers.pop(sid, None)
            raise
        await self.sio.enter_room(sid, tour_room(tour.id))
        await self.sio.enter_room(sid, lang_room(tour.id, subtitle_lang))
        await self.redis.sadd(tour_key(tour.id, "access"), me.id)
        await self._count(tour)
        return ok_ack(sdp=answer, type="answer", tour=tour.public())

    async def rtc_answer(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.answer {tour_id, sdp}: the client's answer to a server `tour.offer`."""
        data = v.payload(data, {"tour_id", "sdp", "type"})
        tour = self._running(tour_id(data))
        answer = v.sdp(data, "answer", self.settings.limits.max_sdp_chars)
        if not tour.pending.answer(sid, answer):
            raise AppError(NOT_FOUND, "no renegotiation is waiting for an answer")
        return ok_ack()

    async def set_subtitles(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.subtitles {tour_id, lang}: switch this viewer's subtitle language."""
        data = v.payload(data, {"tour_id", "lang"})
        tour = self._running(tour_id(data))
        lang = v.lang(data)
        viewer = self._viewer(tour, sid)
        if lang != viewer.subtitle_lang:
            await self.sio.leave_room(sid, lang_room(tour.id, viewer.subtitle_lang))
            viewer.subtitle_lang = lang
            await self.sio.enter_room(sid, lang_room(tour.id, lang))
        return ok_ack(lang=lang)

    async def ask(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.ask {tour_id, text}: a viewer's question, translated for the host."""
        data = v.payload(data, {"tour_id", "text"})
        tour = self._running(tour_id(data))
        text = v.text(data, "text", self.limits.max_question_chars)
        assert text is not None
        viewer = self._viewer(tour, sid)
        me = viewer.identity
        lang = (await self.chat.languages.of([me.id]))[me.id] or me.lang
        translations, errors = await translate_line(self.chat.translation, text, lang, [tour.lang])
        tour.questions += 1
        question: dict[str, Any] = {
            "id": tour.questions,
            "asker": {"id": me.id, "name": me.name, "lang": lang},
            "text": text,
            "lang": lang,
            "translation": text if lang == tour.lang else translations.get(tour.lang),
            "ts": now_iso(),
            "at": round(time.monotonic() - tour.started, 2),
        }
        if errors:
            question["translation_error"] = errors[tour.lang]
        await self.redis.rpush(tour_key(tour.id, "questions"), json.dumps(question))
        await self.sio.emit(
            "tour.question", {"tour_id": tour.id, "question": question}, to=tour.host_sid
        )
        return ok_ack(question=question)

    async def leave(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.leave {tour_id}: a viewer leaves; the host leaving ends the tour."""
        data = v.payload(data, {"tour_id"})
        tour = self._running(tour_id(data))
        if sid == tour.host_sid:
            await self.end_tour(tour, "host left")
        else:
            self._viewer(tour, sid)
            await self._remove(tour, sid, "left")
        return ok_ack()

    async def end(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.end {tour_id}: the host ends the tour for everyone."""
        data = v.payload(data, {"tour_id"})
        tour = self._running(tour_id(data))
        if session.identity.id != tour.host.id:
            raise AppError(FORBIDDEN, "only the host ends a tour")
        await self.end_tour(tour, "ended")
        return ok_ack()

    # ------------------------------------------------------------------ lifecycle

    async def drop_socket(self, sid: str) -> None:
        """A socket disconnected: end the tours it hosts, leave those it watches."""
        for tour in list(self.tours.values()):
            if tour.host_sid == sid:
                await self.end_tour(tour, "host disconnected")
            elif sid in tour.viewers:
                await self._remove(tour, sid, "disconnected")

    async def end_tour(self, tour: Tour, reason: str) -> None:
        """Tell everyone, close the media room and the recognizer; the record stays."""
        if self.tours.get(tour.id) is not tour:
            return
        if tour.subtitles is not None:  # the open utterance and a line on its way still go out
            await tour.subtitles.stop()
            await tour.subtitles.drain()
        if self.tours.pop(tour.id, None) is None:
            return
        viewers = list(tour.viewers.values())
        tour.viewers.clear()
        tour.pending.cancel()
        event = {"tour_id": tour.id, "reason": reason}
        await self.sio.emit("tour.ended", event, to=[tour_room(tour.id), tour.host_sid])
        await self._announce(tour, "tour.unlisted", event)
        await tour.room.close()
        for viewer in viewers:
            await self.sio.leave_room(viewer.sid, tour_room(tour.id))
            await self.sio.leave_room(viewer.sid, lang_room(tour.id, viewer.subtitle_lang))
        await self.sio.leave_room(tour.host_sid, lang_room(tour.id, tour.lang))
        try:
            raw = await self.redis.get(tour_key(tour.id))
            if raw:
                meta = {**json.loads(raw), "ended_at": now_iso(), "end_reason": reason}
                await self.redis.set(tour_key(tour.id), json.dumps(meta))
        except Exception:
            log.exception("could not mark tour %s ended", tour.id)

    async def close(self) -> None:
        """End every tour (server shutdown)."""
        for tour in list(self.tours.values()):
            await self.end_tour(tour, "server shutting down")
        await self._tasks.cancel()

    def stats(self) -> dict[str, int]:
        """Live tours, viewers and recognizer threads (for leak tests)."""
        return {
            "tours": len(self.tours),
            "viewers": sum(len(t.viewers) for t in self.tours.values()),
            "recognizers": sum(1 for t in self.tours.values() if t.subtitles and t.subtitles.alive),
            "pending_offers": sum(len(t.pending) for t in self.tours.values()),
            "tasks": self._tasks.running(),
        }

    # ------------------------------------------------------------------ internals

    def _running(self, tid: str) -> Tour:
        tour = self.tours.get(tid)
        if tour is None:
            raise AppError(NOT_FOUND, f"no running tour {tid} on this server")
        return tour

    @staticmethod
    def _viewer(tour: Tour, sid: str) -> Viewer:
        viewer = tour.viewers.get(sid)
        if viewer is None:
            raise AppError(NOT_FOUND, "this socket is not watching the tour")
        return viewer

    async def _add_peer(self, tour: Tour, peer_id: str, offer: str, *, publish: bool) -> str:
        try:
            return await tour.room.add_peer(peer_id, offer, publish=publish, subscribe=not publish)
        except InvalidSdpError as exc:
            raise v.invalid(f"bad offer: {exc}") from None
        except MediaError as exc:
            raise AppError(MEDIA_ERROR, str(exc)) from None
        finally:
            if publish and peer_id not in tour.room.peer_ids:
                tour.host_peer = None

    async def _announce(self, tour: Tour, event: str, payload: dict[str, Any]) -> None:
        """Tell whoever may watch `tour` (every socket for an open tour; else the invited and
        the host) that it appeared in or left their `tour.list`."""
        if tour.invite is None:
            await self.sio.emit(event, payload)
        else:
            rooms = [user_room(u) for u in dict.fromkeys([tour.host.id, *tour.invite])]
            await self.sio.emit(event, payload, to=rooms)

    async def _count(self, tour: Tour) -> None:
        payload = {"tour_id": tour.id, "count": len(tour.viewers)}
        await self.sio.emit("tour.viewers", payload, to=tour.host_sid)
        await self._announce(tour, "tour.listed", {"tour": tour.public()})

    async def _remove(self, tour: Tour, sid: str, reason: str) -> None:
        viewer = tour.viewers.pop(sid, None)
        if viewer is None:
            return
        tour.pending.cancel(sid)
        await tour.room.remove_peer(viewer.peer_id, reason)
        await self.sio.leave_room(sid, tour_room(tour.id))
        await self.sio.leave_room(sid, lang_room(tour.id, viewer.subtitle_lang))
        if tour.id in self.tours:
            await self._count(tour)

    def _on_removed(self, tid: str, peer_id: str, reason: str) -> None:
        """The room dropped a peer by itself (no answer to an offer, connection failed)."""
        tour = self.tours.get(tid)
        if tour is None:
            return
        if peer_id == tour.host_peer:
            self._tasks.spawn(self.end_tour(tour, f"host media: {reason}"))
            return
        viewer = tour.viewer_by_peer(peer_id)
        if viewer is None:
            return

        async def forget() -> None:
            await self.sio.emit("tour.left", {"tour_id": tid, "reason": reason}, to=viewer.sid)
            await self._remove(tour, viewer.sid, reason)

        self._tasks.spawn(forget())

    async def _renegotiate(self, tid: str, peer_id: str, offer: str) -> str:
        """Send `tour.offer` to a viewer and wait for its `tour.answer` (the room times out)."""
        tour = self._running(tid)
        viewer = tour.viewer_by_peer(peer_id)
        if viewer is None:
            raise MediaError(f"peer {peer_id} is not a viewer of tour {tid}")
        payload = {"tour_id": tid, "sdp": offer}
        return await tour.pending.offer(self.sio, "tour.offer", payload, viewer.sid)

    # ------------------------------------------------------------------ subtitles

    def _on_audio(self, tid: str, peer_id: str, pcm: bytes) -> None:
        tour = self.tours.get(tid)
        if tour is not None and peer_id == tour.host_peer and tour.subtitles is not None:
            tour.subtitles.feed(pcm)

    def _speaker(self, tour: Tour) -> dict[str, str]:
        return {"id": tour.host.id, "name": tour.host.name}

    async def _partial(self, tour: Tour, text: str) -> None:
        """Partials, in the host's language, to every viewer."""
        if tour.id not in self.tours:
            return
        payload = {
            "tour_id": tour.id,
            "speaker": self._speaker(tour),
            "lang": tour.lang,
            "text": text,
            "final": False,
        }
        await self.sio.emit("subtitle", payload, room=tour_room(tour.id))

    async def _final(self, tour: Tour, line: FinalLine) -> None:
        """Translate once per viewer language; each language room gets its own line."""
        if tour.id not in self.tours:
            return
        languages = tour.languages() | {tour.lang}
        translations, errors = await translate_line(
            self.chat.translation, line.text, tour.lang, languages
        )
        base = {
            "tour_id": tour.id,
            "speaker": self._speaker(tour),
            "lang": tour.lang,
            "text": line.text,
            "final": True,
            "start": line.start,
            "end": line.end,
        }
        for lang in sorted(languages):
            payload = {**base, "target_lang": lang}
            if lang == tour.lang:
                payload["translation"] = line.text
            else:
                payload["translation"] = translations.get(lang)
                if lang in errors:
                    payload["translation_error"] = errors[lang]
            await self.sio.emit("subtitle", payload, room=lang_room(tour.id, lang))
        metrics.subtitle_sent(tour.started + line.end)
        entry = {
            "tour_id": tour.id,
            "start": line.start,
            "end": line.end,
            "speaker": self._speaker(tour),
            "lang": tour.lang,
            "text": line.text,
            "translations": translations,
        }
        if errors:
            entry["translation_error"] = errors
        await self.redis.rpush(tour_key(tour.id, "lines"), json.dumps(entry))


def tour_id(data: dict[str, Any]) -> str:
    """A required, well-formed tour id."""
    value = data.get("tour_id")
    if not isinstance(value, str) or not TOUR_ID_RE.match(value):
        raise v.invalid("tour_id must be a tour id like t_0123456789abcdef")
    return value
