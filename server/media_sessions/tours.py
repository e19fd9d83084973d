"""Virtual factory tours: one supplier streams camera and microphone to many viewers, each
reading the host's words in their own language, and asking questions in theirs.

Media goes through one `media.MediaRoom` per tour: the host publishes (publish=True,
subscribe=False), viewers only subscribe (publish=False, so whatever a viewer's offer sends is
ignored). The host's speech is recognized once (`subtitles.SpeakerSubtitles`); the open line
and each final line are translated once per language present among the viewers and sent to the
Socket.IO room of that language with that language's translation only (`core.MediaSessions`).
Lines and questions are kept (`storage.tour_archive.TourArchive`) and outlive the tour
(`GET /api/tours/{id}/transcript`).

A tour is a media session (`core.MediaSessions`) with one *host* member (publishes, is
recognized) and *viewers* (subscribe); it runs on one node and moves like a call.
"""

from __future__ import annotations

import builtins
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from media.errors import MediaError
from media.room import MediaRoom
from server.media_sessions.core import (
    HOST,
    VIEWER,
    MediaServices,
    MediaSession,
    MediaSessions,
    Member,
)
from server.media_sessions.subtitles import FinalLine, translate_line
from server.realtime import validation as v
from server.realtime.dispatch import Handler
from server.realtime.errors import FORBIDDEN, AppError, ok_ack
from server.realtime.sessions import Session, user_room
from server.realtime.validation import TOUR_ID_RE
from server.storage.media_records import MediaRecord
from server.storage.store import now_iso
from server.storage.tour_archive import TourArchive
from server.tokens import Identity
from translation.errors import TranslationNote

if TYPE_CHECKING:
    from server.media_sessions.relay_links import ViewerRelays

log = logging.getLogger("tradetalk.tours")

TOUR_FULL = "tour_full"
RELAY_LOST = "media server lost"  # a relayed viewer's node died: re-join (as on owner loss)


@dataclass(frozen=True)
class TourLimits:
    """Limits of tours; `TRADETALK_TOUR_MAX_VIEWERS` sets `max_viewers`,
    `TRADETALK_TOUR_LOCAL_VIEWERS` `local_viewers` (viewers the owner node serves itself before
    it hands the next ones to relay nodes)."""

    max_viewers: int = 50
    local_viewers: int = 20
    max_title_chars: int = 200
    max_invite: int = 200
    max_question_chars: int = 500

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> TourLimits:
        """Limits with overrides from the environment."""
        env = dict(os.environ if env is None else env)
        local = env.get("TRADETALK_TOUR_LOCAL_VIEWERS")
        return cls(
            max_viewers=int(env.get("TRADETALK_TOUR_MAX_VIEWERS") or cls.max_viewers),
            local_viewers=max(0, int(local)) if local else cls.local_viewers,
        )


def tour_room(tour_id: str) -> str:
    """The Socket.IO room of a tour's viewers (partial subtitles, `tour.ended`)."""
    return f"tour:{tour_id}"


def lang_room(tour_id: str, lang: str) -> str:
    """The room of a tour's sockets that read subtitles in `lang` (the host is in its own)."""
    return f"tour:{tour_id}:{lang}"


def identity_dict(identity: Identity) -> dict[str, str]:
    """An identity as kept in a record."""
    return {"id": identity.id, "name": identity.name, "role": identity.role, "lang": identity.lang}


@dataclass
class Tour(MediaSession):
    """A running tour: the host member publishes, viewers subscribe."""

    title: str = ""
    lang: str = ""
    host: Identity = field(default_factory=lambda: Identity("", "", "supplier", "en"))
    host_sid: str = ""
    invite: list[str] | None = None
    started_at: str = ""

    @property
    def host_member(self) -> Member | None:
        """The host's publishing membership, once it publishes."""
        return next(iter(self.in_role(HOST)), None)

    @property
    def host_peer(self) -> str | None:
        """The host's media peer id, once it publishes."""
        member = self.host_member
        return member.peer_id if member else None

    @property
    def viewers(self) -> dict[str, Member]:
        """The viewers by socket id."""
        return {m.sid: m for m in self.in_role(VIEWER)}

    def may_watch(self, user_id: str) -> bool:
        """Open tours admit any signed-in user; private ones the invited."""
        return may_watch(self.invite, self.host.id, user_id)

    def languages(self) -> set[str]:
        """Subtitle languages of the viewers now."""
        return {w.subtitle_lang for w in self.in_role(VIEWER)}


def may_watch(invite: list[str] | None, host_id: str, user_id: str) -> bool:
    """Whether `user_id` may watch a tour with this invite list and host."""
    return invite is None or user_id in invite or user_id == host_id


class Tours(MediaSessions[Tour]):
    """The tour half of the protocol (see docs/protocol.md)."""

    kind = "tour"
    id_field = "tour_id"
    offer_event = "tour.offer"
    left_event = "tour.left"
    moved_event = "tour.moved"

    def __init__(
        self, services: MediaServices, archive: TourArchive, limits: TourLimits | None = None
    ) -> None:
        super().__init__(services)
        self.archive = archive  # what a tour leaves: meta, lines, questions, who joined
        self.limits = limits or TourLimits.from_env()
        self.relays: ViewerRelays | None = None  # viewers served by other media nodes

    @property
    def tours(self) -> dict[str, Tour]:
        """The tours running on this node."""
        return self.sessions

    def handlers(self) -> dict[str, Handler]:
        """Event name → handler, for the router."""
        return {
            "tour.start": self.start,
            "tour.list": self.list,
            "tour.publish": self.publish,
            "tour.join": self.join,
            "tour.answer": self.rtc_answer,
            "tour.subtitles": self.set_subtitles,
            "tour.ask": self.ask,
            "tour.leave": self.leave,
            "tour.end": self.end,
        }

    def stats(self) -> dict[str, int]:
        """Live tours, viewers, recognizer threads, pending offers, tasks (leak tests)."""
        stats = super().stats()
        stats["tours"] = stats.pop("sessions")
        stats["viewers"] = sum(len(t.viewers) for t in self.sessions.values())
        del stats["members"]
        return stats

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
        tid = "t_" + secrets.token_hex(8)
        tour = Tour(tid, self.new_room(tid), title=title or "", lang=lang, host=me, host_sid=sid)
        tour.invite, tour.started_at = invite, now_iso()
        self.sessions[tid] = tour
        await self.sio.enter_room(sid, lang_room(tid, lang))
        meta = {k: val for k, val in self.public(tour).items() if k != "viewers"}
        await self.archive.open(tid, meta)
        await self.keep(tour)
        await self._announce(tour, "tour.listed", {"tour": self.public(tour)})
        return ok_ack(tour=self.public(tour), ice_servers=list(self.settings.ice_servers))

    async def list(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.list {}: the running tours (on every node) this user may watch."""
        v.payload(data, set())
        me = session.identity.id
        tours = [
            r["public"]
            for r in await self.records.all()
            if r.get("kind") == self.kind and may_watch(r.get("invite"), r["host"]["id"], me)
        ]
        return ok_ack(tours=sorted(tours, key=lambda t: t["started_at"]))

    async def publish(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.publish {tour_id, sdp, type: "offer"}: the host's camera and microphone."""
        data = v.payload(data, {"tour_id", "sdp", "type"})
        tour = self.running(tour_id(data))
        offer = v.sdp(data, "offer", self.settings.limits.max_sdp_chars)
        if tour.host_member is not None:
            if sid == tour.host_sid:
                raise v.invalid("the host already publishes")
            raise AppError(FORBIDDEN, "only the host's socket publishes into a tour")
        if sid != tour.host_sid:
            if session.identity.id != tour.host.id:
                raise AppError(FORBIDDEN, "only the host's socket publishes into a tour")
            tour.host_sid = sid  # the host came back on another socket (its node died)
            await self.sio.enter_room(sid, lang_room(tour.id, tour.lang))
        host = self.new_member(sid, tour.host, HOST, tour.lang, tour.lang, session.node)
        answer = await self.add_member(tour, host, offer)
        assert host.subtitles is not None
        return ok_ack(sdp=answer, type="answer", captions=host.subtitles.status())

    async def join(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.join {tour_id, sdp, type: "offer", subtitle_lang?} → the answer SDP."""
        data = v.payload(data, {"tour_id", "sdp", "type", "subtitle_lang"})
        tour = self.running(tour_id(data))
        offer = v.sdp(data, "offer", self.settings.limits.max_sdp_chars)
        me = session.identity
        if not tour.may_watch(me.id):
            raise AppError(FORBIDDEN, "this tour is by invitation")
        if sid == tour.host_sid:
            raise v.invalid("the host publishes with tour.publish")
        if sid in tour.members:
            raise v.invalid("this socket already joined the tour")
        if len(tour.viewers) >= self.limits.max_viewers:
            raise AppError(TOUR_FULL, f"a tour has at most {self.limits.max_viewers} viewers")
        if "subtitle_lang" in data:
            subtitle_lang = v.lang(data, "subtitle_lang")
        else:
            subtitle_lang = await self.reader_language(me)
        viewer = self.new_member(sid, me, VIEWER, me.lang, subtitle_lang, session.node)
        answer = await self.add_member(tour, viewer, offer)
        await self.archive.grant(tour.id, me.id)
        await self._count(tour)
        return ok_ack(sdp=answer, type="answer", tour=self.public(tour))

    async def set_subtitles(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.subtitles {tour_id, lang}: switch this viewer's subtitle language."""
        data = v.payload(data, {"tour_id", "lang"})
        tour = self.running(tour_id(data))
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
        tour = self.running(tour_id(data))
        text = v.text(data, "text", self.limits.max_question_chars)
        assert text is not None
        me = self._viewer(tour, sid).identity
        lang = await self.reader_language(me)
        translations, errors = await translate_line(self.translation, text, lang, [tour.lang])
        question: dict[str, Any] = {
            "id": await self.archive.next_question_id(tour.id),
            "asker": {"id": me.id, "name": me.name, "lang": lang},
            "text": text,
            "lang": lang,
            "translation": text if lang == tour.lang else translations.get(tour.lang),
            "ts": now_iso(),
            "at": round(time.monotonic() - tour.started, 2),
        }
        if errors:
            question["translation_error"] = errors[tour.lang]
        await self.archive.add_question(tour.id, question)
        await self.sio.emit(
            "tour.question", {"tour_id": tour.id, "question": question}, to=tour.host_sid
        )
        return ok_ack(question=question)

    async def leave(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.leave {tour_id}: a viewer leaves; the host leaving ends the tour."""
        data = v.payload(data, {"tour_id"})
        tour = self.running(tour_id(data))
        if sid == tour.host_sid:
            await self.end_session(tour, "host left")
        else:
            self._viewer(tour, sid)
            await self.remove_member(tour, sid, "left")
        return ok_ack()

    async def end(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        """tour.end {tour_id}: the host ends the tour for everyone."""
        data = v.payload(data, {"tour_id"})
        tour = self.running(tour_id(data))
        if session.identity.id != tour.host.id:
            raise AppError(FORBIDDEN, "only the host ends a tour")
        await self.end_session(tour, "ended")
        return ok_ack()

    # ------------------------------------------------------------------ relays

    async def attach_media(self, session: Tour, member: Member, offer: str) -> str:
        """A viewer beyond `local_viewers` is served by a relay node when one is live (a relay
        that fails to answer: here after all)."""
        relays = self.relays
        if member.role == VIEWER and relays is not None:
            local = [m for m in session.viewers.values() if m.relay is None and m is not member]
            if len(local) >= self.limits.local_viewers:
                node = await relays.pick(member)
                if node is not None:
                    try:
                        answer = await relays.attach(session, member, offer, node)
                    except MediaError as exc:
                        log.warning("tour %s: relay %s failed (%s)", session.id, node, exc)
                    else:
                        member.relay = node
                        return answer
        return await super().attach_media(session, member, offer)

    async def detach_media(self, session: Tour, member: Member, reason: str) -> None:
        if member.relay is not None and self.relays is not None:
            await self.relays.detach(session.id, member)
        else:
            await super().detach_media(session, member, reason)

    async def answer_elsewhere(self, session: Tour, sid: str, answer: str) -> bool:
        member = session.members.get(sid)
        if member is None or member.relay is None or self.relays is None:
            return False
        return await self.relays.answer(session.id, member, answer)

    async def relay_gone(self, tour: Tour, node: str, reason: str = RELAY_LOST) -> None:
        """The link to relay `node` closed: the viewers it served are told `tour.moved`
        (`reason`: it died, "media server lost", or it drains) and re-join, served by another
        node or here."""
        if self.sessions.get(tour.id) is not tour or tour.ending:
            return
        if self.relays is not None and any(
            link.tour is tour and link.node == node for link in self.relays.links
        ):
            return  # a newer link to that node serves them
        for member in [m for m in tour.viewers.values() if m.relay == node]:
            await self.remove_member(tour, member.sid, reason)
            payload = {"tour_id": tour.id, "reason": reason, "tour": self.public(tour)}
            await self.sio.emit(self.moved_event, payload, to=member.sid)
            log.info("tour %s: viewer %s re-joins (relay %s lost)", tour.id, member.sid, node)

    async def drop_node(self, node_id: str) -> None:
        """A node died: its sockets' memberships go, and the viewers it relayed re-join."""
        await super().drop_node(node_id)
        for tour in list(self.sessions.values()):
            await self.relay_gone(tour, node_id)

    # ------------------------------------------------------------------ the kind's hooks

    def rooms_of(self, session: Tour, member: Member) -> builtins.list[str]:
        if member.role == HOST:  # the host's socket is in its language's room from tour.start
            return []
        return [tour_room(session.id), lang_room(session.id, member.subtitle_lang)]

    def session_id(self, data: dict[str, Any]) -> str:
        return tour_id(data)

    def moved_to(self, session: Tour) -> builtins.list[str]:
        return [tour_room(session.id), session.host_sid]

    def public(self, session: Tour) -> dict[str, Any]:
        return {
            "id": session.id,
            "title": session.title,
            "lang": session.lang,
            "host": {"id": session.host.id, "name": session.host.name},
            "invite": session.invite,
            "started_at": session.started_at,
            "viewers": len(session.viewers),
        }

    def record(self, session: Tour) -> dict[str, Any]:
        return {
            "title": session.title,
            "lang": session.lang,
            "host": identity_dict(session.host),
            "host_sid": session.host_sid,
            "invite": session.invite,
            "started_at": session.started_at,
            "public": self.public(session),
        }

    def restore(self, record: MediaRecord, room: MediaRoom) -> Tour:
        tour = Tour(record["id"], room, title=record["title"], lang=record["lang"])
        tour.host, tour.host_sid = Identity(**record["host"]), record["host_sid"]
        tour.invite, tour.started_at = record.get("invite"), record["started_at"]
        return tour

    async def socket_gone(self, session: Tour, sid: str) -> None:
        if sid == session.host_sid:
            await self.end_session(session, "host disconnected")
        else:
            await self.remove_member(session, sid, "disconnected")

    async def peer_lost(self, session: Tour, member: Member, reason: str) -> None:
        if member.role == HOST:
            await self.end_session(session, f"host media: {reason}")
        else:
            await super().peer_lost(session, member, reason)

    async def member_removed(self, session: Tour, member: Member) -> None:
        if member.role == VIEWER:
            await self._count(session)

    async def ended(self, session: Tour, reason: str, ended_by: Identity | None) -> None:
        event = {"tour_id": session.id, "reason": reason}
        await self.sio.emit("tour.ended", event, to=[tour_room(session.id), session.host_sid])
        await self._announce(session, "tour.unlisted", event)
        await self.sio.leave_room(session.host_sid, lang_room(session.id, session.lang))
        try:
            await self.archive.mark_ended(session.id, now_iso(), reason)
        except Exception:
            log.exception("could not mark tour %s ended", session.id)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _viewer(tour: Tour, sid: str) -> Member:
        viewer = tour.members.get(sid)
        if viewer is None or viewer.role != VIEWER:
            raise AppError("not_found", "this socket is not watching the tour")
        return viewer

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
        await self._announce(tour, "tour.listed", {"tour": self.public(tour)})
        await self.keep(tour)

    # ------------------------------------------------------------------ subtitles

    def reader_languages(self, session: Tour, speaker: Member) -> set[str]:
        return session.languages() | {session.lang}

    def subtitle_rooms(
        self, session: Tour, speaker: Member
    ) -> builtins.list[tuple[str, set[str] | None]]:
        # many viewers: each language's room gets its own language only (the host is in its own)
        languages = sorted(self.reader_languages(session, speaker))
        return [(lang_room(session.id, lang), {lang}) for lang in languages]

    async def keep_line(
        self,
        session: Tour,
        speaker: Member,
        line: FinalLine,
        translations: dict[str, str],
        errors: dict[str, TranslationNote],
    ) -> None:
        """The line in the tour's transcript (`TourArchive.add_line`)."""
        entry: dict[str, Any] = {
            "tour_id": session.id,
            "start": line.start,
            "end": line.end,
            "speaker": {"id": speaker.identity.id, "name": speaker.identity.name},
            "lang": line.lang,
            "text": line.text,
            "translations": translations,
        }
        if errors:
            entry["translation_error"] = errors
        await self.archive.add_line(session.id, entry)


def tour_id(data: dict[str, Any]) -> str:
    """A required, well-formed tour id."""
    value = data.get("tour_id")
    if not isinstance(value, str) or not TOUR_ID_RE.match(value):
        raise v.invalid("tour_id must be a tour id like t_0123456789abcdef")
    return value
