"""The aiohttp application: Socket.IO server, HTTP routes, and their lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import socketio
from aiohttp import web

from server import metrics
from server.background import Periodic, TaskSet
from server.cluster.bus import Bus, DropSocketBody
from server.cluster.failover import Failover
from server.cluster.nodes import NodeRegistry
from server.cluster.redis_manager import PooledRedisManager, blocking_pool
from server.cluster.router import Router
from server.cluster.tour_relays import RELAY_ROUTE, TourRelays
from server.config import Settings
from server.events import dispatch_chat_events, install_caps, route_media_events, serve_bus
from server.handlers.bounds import Bounds, MediaKind
from server.handlers.chat import Chat
from server.handlers.quotes import Quotes
from server.media_sessions.calls import Calls
from server.media_sessions.core import MediaServices
from server.media_sessions.tours import Tours
from server.realtime.dispatch import REDIS_AWAY, UNAVAILABLE_MESSAGE, Dispatcher
from server.realtime.errors import LIMIT_REACHED, UNAUTHORIZED, UNAVAILABLE
from server.realtime.sessions import Session, user_room
from server.realtime.socket_server import SocketServer
from server.recognition.hub import RecognitionHub
from server.shutdown import Stopping
from server.storage.attachments import Attachments, BlobStore
from server.storage.languages import Languages
from server.storage.media_records import MediaRecords
from server.storage.presence import Presence
from server.storage.quotes import QuoteStore
from server.storage.ratelimit import HourlyQuota, UserRateLimit
from server.storage.store import Store
from server.storage.tour_archive import TourArchive
from server.storage.translation_cache import RedisTranslationCache
from server.tokens import TokenError, verify_token
from server.warmup import Warmup
from server.web.attachment_routes import AttachmentLimits, add_attachment_routes
from server.web.capabilities import add_capability_routes
from server.web.health import add_health_route
from server.web.quote_export import add_quote_routes
from server.web.tour_routes import add_tour_routes
from server.web.transcripts import add_transcript_routes
from server.web.web_routes import (
    add_metrics_routes,
    add_static_routes,
    add_web_routes,
    polling_body_limit,
)
from translation.service import TranslationService
from translation.translator import Translator

log = logging.getLogger("tradetalk")

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", dict)


def web_client_dir() -> Path:
    """Where the static browser client lives."""
    return Path(str(files("web_client")))


@dataclass(frozen=True)
class Step:
    """One part of a node's lifecycle: what `start()` does for it (in list order) and what
    `stop()` does (in reverse order, each bounded and logged under `name`)."""

    name: str
    start: Callable[[], Awaitable[Any] | None] | None = None
    stop: Callable[[], Awaitable[Any]] | None = None


class Realtime:
    """One node: its services, built in dependency order; its connections; its lifecycle."""

    def __init__(
        self, settings: Settings, redis_url: str, translator: Translator | None = None
    ) -> None:
        self.settings = settings
        self.keys = settings.token_key()
        limits = settings.limits
        node = self.node_id = settings.node_id
        # connections: Redis (storage, bus) and Socket.IO (its rooms shared through Redis)
        self.redis_url = redis_url
        self.redis = blocking_pool(redis_url, settings.redis_max_connections)
        self.manager = PooledRedisManager(redis_url, "tradetalk", settings.redis_max_connections)
        self.sio = SocketServer(
            async_mode="aiohttp",
            client_manager=self.manager,
            cors_allowed_origins=[],
            max_http_buffer_size=limits.max_payload_bytes,
        )
        self.sessions: dict[str, Session] = {}
        self.bus = Bus(redis_url, node, timeout_s=settings.forward_timeout_s)
        # storage
        self.store = Store(self.redis)
        self.presence = Presence(self.redis, settings.heartbeat_s)
        self.languages = Languages(self.redis)
        self.records = MediaRecords(self.redis, ttl_s=max(30.0, 10 * settings.node_ttl_s))
        self.rate_limit = UserRateLimit(self.redis, limits.rate_per_second, limits.rate_burst)
        self.blobs = BlobStore(settings.data_dir / "attachments", node)
        # engines: the translator is given (tests) or loaded at start, off the event loop
        self.translator = translator
        self._owns_translator = translator is None
        self.translation = TranslationService(
            translator, shared_cache=RedisTranslationCache(self.redis)
        )
        self._build_components(settings)
        self._wire_events()
        # background work
        self._tasks = TaskSet()
        self._heartbeat = Periodic("presence heartbeat", settings.heartbeat_s / 3, self._beat)
        self.warmup = Warmup(settings.data_dir, settings.media)
        self.stopping = Stopping(settings.stop_timeout_s)
        self.owns_process = False  # `tradetalk serve`: this is the process's only server
        self.lifecycle = self._lifecycle()
        metrics.add_source(self)
        metrics.add_source(self.recognition)

    def _build_components(self, settings: Settings) -> None:
        """The components, in dependency order, each given its collaborators."""
        node, limits = settings.node_id, settings.limits
        self.registry = node_registry(self.redis, settings, self.load)
        self.attachments = Attachments(
            self.redis, self.blobs, node, settings.secret, registry=self.registry
        )
        self.chat = Chat(
            self.sio,
            self.store,
            self.presence,
            self.languages,
            self.translation,
            limits,
            attachments=self.attachments,
        )
        self.quotes = Quotes(self.chat, QuoteStore(self.redis))
        # speech recognition: in this process, or on `tradetalk worker`s when any is alive
        self.recognition = RecognitionHub(self.redis_url, self.redis, node, settings.cluster)
        media = MediaServices(
            self.sio,
            settings,
            self.records,
            self.languages,
            self.translation,
            node,
            settings.media_address,
            recognizers=self.recognition.open_recognizer,
        )
        self.calls = Calls(media, self.chat, self.store)
        self.tours = Tours(media, TourArchive(self.redis))
        # a tour's viewers beyond the owner's share are served by relay nodes
        self.relays = TourRelays(self.tours, self.bus, self.registry, settings, self.sio)
        self.tours.relays = self.relays
        self.dispatcher = Dispatcher(self.sio, self.sessions, self.rate_limit)
        self.router = Router(node, self.bus, self.dispatcher, self.registry, self.records)
        self.failover = Failover(
            node, self.registry, self.records, self.bus, [self.calls, self.tours], settings.cluster
        )
        created = HourlyQuota(self.redis, "created")
        kept: list[MediaKind] = [self.calls, self.tours]
        self.bounds = Bounds(limits, self.records, created, self.sessions, self.drop_media, kept)

    def _wire_events(self) -> None:
        """Every event (`server/events.py`): chat and quotes on this node, calls and tours on
        their owner node, the caps before and counters after, the bus operations other nodes
        ask of this one; then the connection events."""
        dispatch_chat_events(self.dispatcher, self.chat, self.quotes)
        route_media_events(self.router, self.calls, self.tours)
        install_caps(self.dispatcher, self.bounds)
        serve_bus(self.bus, self.router, self.failover, self._drop_forwarded, self.relays)
        self.sio.on("connect", self.connect)
        self.sio.on("disconnect", self.disconnect)

    def _lifecycle(self) -> list[Step]:
        """Everything that starts and stops, in start order (stopped in reverse)."""
        return [
            Step("translation engines", self._load_translation, self._close_translation),
            Step("redis connections", stop=self.redis.aclose),
            # uploads a crash cut short are removed; fetches of other nodes' copies stop
            Step("attachment fetches", self._clean_uploads, self.attachments.close),
            Step("socket.io manager", stop=self.manager.close),
            Step("presence", self._beat, self._sweep_self),
            Step("bus", self.bus.start, self.bus.close),
            Step("node registry", self._register, lambda: self.registry.stop(forget=True)),
            Step("recognition workers", self.recognition.start, self.recognition.stop),
            Step("peer connections left", stop=self._close_peer_connections),
            Step("tours", stop=self.tours.close),
            Step("tour relays", stop=self.relays.close),
            Step("calls", stop=self.calls.close),
            Step("node check", self.failover.start, self.failover.stop),
            Step("idle sweep", self.bounds.start, self.bounds.stop),
            # the first call here must not wait for a model, a cold recognizer or codec:
            # /healthz says ready once they are warm
            Step("background tasks", self._warm, lambda: self._tasks.cancel(timeout=2)),
            Step("presence heartbeat", self._heartbeat.start, self._heartbeat.stop),
        ]

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Accept a socket only with a valid token in `auth={"token": ...}`."""
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            identity = verify_token(self.keys, token)
        except TokenError as exc:
            refuse(UNAUTHORIZED, str(exc))
        limit = self.settings.limits.max_sockets_per_user
        try:
            identity = replace(identity, lang=await self.languages.register(identity))
            await self.chat.directory.register(identity)
            count = await self.presence.connect(identity.id, sid, limit)
        except REDIS_AWAY as exc:
            metrics.REDIS_ERRORS.inc()
            log.warning("refusing a socket: redis unavailable (%s)", exc)
            refuse(UNAVAILABLE, UNAVAILABLE_MESSAGE)
        if count < 0:
            refuse(LIMIT_REACHED, f"a user may have at most {limit} sockets open")
        self.sessions[sid] = Session(identity, node=self.node_id)
        await self.sio.enter_room(sid, user_room(identity.id))
        if count == 1:
            with contextlib.suppress(*REDIS_AWAY):
                await self.chat.announce_presence(identity.id, True)

    async def disconnect(self, sid: str, reason: Any = None) -> None:
        """Forget the socket; announce the user offline when it was their last one."""
        await self.drop_media(sid)
        session = self.sessions.pop(sid, None)
        try:
            if session is not None and await self.presence.disconnect(session.identity.id, sid):
                await self.chat.announce_presence(session.identity.id, False)
        except REDIS_AWAY as exc:  # the heartbeat sweep clears it once Redis is back
            log.warning("socket %s left while redis was unavailable (%s)", sid, exc)

    async def drop_media(self, sid: str) -> None:
        """A socket is gone: leave its calls and tours here and on every other node."""
        await self.calls.drop_socket(sid)
        await self.tours.drop_socket(sid)
        try:
            await self.bus.broadcast("drop_socket", DropSocketBody(sid=sid))
        except Exception as exc:  # the owners drop it when its media fails
            log.warning("could not tell the other nodes that %s left (%s)", sid, exc)

    async def _drop_forwarded(self, body: DropSocketBody) -> None:
        await self.calls.drop_socket(body["sid"])
        await self.tours.drop_socket(body["sid"])

    def load(self) -> dict[str, float]:
        """This node's media load for placement: sessions, peers, and the speakers it
        recognizes itself (those a worker recognizes are counted apart)."""
        sessions = [*self.calls.sessions.values(), *self.tours.sessions.values()]
        members = [m for s in sessions for m in s.members.values()]
        speakers = sum(1 for m in members if m.subtitles is not None and m.subtitles.alive)
        return {
            "sessions": len(sessions),
            # peer connections here: relayed viewers count on their relay node
            "peers": sum(1 for m in members if m.relay is None) + self.relays.peers(),
            **self.recognition.recognition_load(speakers),
        }

    def gauges(self) -> dict[str, float]:
        """This process's live numbers for `/metrics`."""
        calls, tours = self.calls.stats(), self.tours.stats()
        backlog = dropped = 0
        sessions = [*self.calls.sessions.values(), *self.tours.sessions.values()]
        streams = [m.subtitles for s in sessions for m in s.members.values()]
        for subtitles in streams:
            captions = subtitles.captions if subtitles is not None else None
            if captions is not None:
                backlog += captions.backlog
                dropped += captions.dropped_bytes
        stats = self.translation.stats if self.translation is not None else None
        rooms = [s.room.stats() for s in sessions] + [
            r.room.stats() for r in self.relays.relayed.values()
        ]
        return {
            **self.relays.gauges(),
            "video_encoders": sum(r["video_encoders"] for r in rooms),
            "audio_encoders": sum(r["audio_encoders"] for r in rooms),
            "per_sender_encoders": sum(r["per_sender_encoders"] for r in rooms),
            "video_keyframes": sum(r["keyframes"] for r in rooms),
            "sockets": len(self.sessions),
            "calls": calls["calls"],
            "call_members": calls["members"],
            "tours": tours["tours"],
            "tour_viewers": tours["viewers"],
            "speakers_recognized": calls["recognizers"] + tours["recognizers"],
            "recognizer_backlog_chunks": backlog,
            "recognizer_dropped_audio_bytes": dropped,
            "translations_computed": stats.computed if stats else 0,
            "translation_cache_hits": stats.cache_hits + stats.shared_hits if stats else 0,
        }

    async def start(self) -> None:
        """Load and warm the translation engines, then start every part in `lifecycle` order:
        presence, bus, node registry (registered before the first socket is served), node
        check, idle sweep, warm-up, presence heartbeat."""
        for step in self.lifecycle:
            if step.start is not None:
                started = step.start()
                if inspect.isawaitable(started):
                    await started

    async def _load_translation(self) -> None:
        """Load the engines (unless given) and start them before serving, not on the first
        message."""
        from translation.registry import build_translator

        if self.translator is None:
            self.translator = await asyncio.to_thread(build_translator, self.settings.data_dir)
            self.translation.use(self.translator)
        await self.translation.warm(self.translator.pairs())

    async def _close_translation(self) -> None:
        self.translation.close()
        if self._owns_translator and self.translator is not None:
            await asyncio.to_thread(self.translator.close)

    async def _clean_uploads(self) -> None:
        await asyncio.to_thread(self.blobs.clean_temp)

    async def _register(self) -> None:
        self.registry.start()
        await self.registry.beat()

    def _warm(self) -> None:
        self._tasks.spawn(self.warmup.run())

    async def _beat(self) -> None:
        """Presence: this instance is alive; sockets of dead instances are swept."""
        await self.presence.heartbeat()
        for user in await self.presence.sweep():
            await self.chat.announce_presence(user, False)

    async def drain(self, finish_s: float | None = None) -> int:
        """Stop taking calls and tours and hand the running ones to other nodes (SIGTERM), each
        one's open lines within `finish_s` when given; returns how many moved."""
        try:
            moved = await self.failover.drain(finish_s)
            await self.relays.drain()
            return moved
        except Exception:
            log.exception("drain failed; the calls left here end")
            return 0

    async def end_sessions(self, finish_s: float | None = None) -> tuple[int, int]:
        """End the calls and tours still here (nowhere to move them): open lines finished
        first (within `finish_s`), members told `call.ended` / `tour.ended` ("server shutting
        down")."""
        calls, tours = await asyncio.gather(
            self.calls.end_all(finish_s=finish_s), self.tours.end_all(finish_s=finish_s)
        )
        return calls, tours

    async def close_sockets(self) -> int:
        """Disconnect every socket of this process (on shutdown), so clients reconnect elsewhere;
        returns how many."""
        sids = list(self.sessions)
        await asyncio.gather(*(self.sio.disconnect(sid) for sid in sids), return_exceptions=True)
        await self.sio.shutdown()
        return len(sids)

    async def shutdown(self) -> None:
        """SIGTERM / Ctrl-C, while the sockets are still connected: hand the calls and tours
        to other nodes, end the rest (their members hear why), then close the sockets."""
        stopping = self.stopping
        stopping.begin()
        log.info(
            "stopping: %d sockets, %d calls and %d tours here",
            len(self.sessions),
            len(self.calls.sessions),
            len(self.tours.sessions),
        )
        # Budget (× the bound): the open lines (a recognizer behind on a busy machine decodes
        # its backlog first) until 0.55 (drain) / 0.6 (end); sockets 0.7; aiohttp's wait for
        # its connections ≈ 1 s; the rest of the stop 0.9; the embedded Redis last.
        drain = self.drain(finish_s=stopping.left(0.55))
        moved = await stopping.step("drain", drain, until=0.6)
        if moved:
            log.info("stopping: handed %d calls and tours to other nodes", moved)
        end = self.end_sessions(finish_s=stopping.left(0.6))
        ended = await stopping.step("end the calls and tours left", end, until=0.65)
        if ended:
            log.info("stopping: ended %d calls and %d tours (server shutting down)", *ended)
        closed = await stopping.step("close sockets", self.close_sockets(), until=0.7)
        if closed is not None:
            log.info("stopping: closed %d sockets", closed)

    async def stop(self) -> None:
        """Stop every part in reverse `lifecycle` order; each step is bounded by the stop's
        deadline and logged."""
        for step in reversed(self.lifecycle):
            if step.stop is not None:
                await self.stopping.step(step.name, step.stop())
        log.info("stopping: done in %.2f s", self.stopping.elapsed())

    async def _close_peer_connections(self) -> None:
        if self.owns_process:  # one server per process: what no room closed goes too
            await close_peer_connections()

    async def _sweep_self(self) -> None:
        for user in await self.presence.sweep(include_self=True):
            await self.chat.announce_presence(user, False)


def node_registry(
    redis: aioredis.Redis, settings: Settings, load: Callable[[], dict[str, float]]
) -> NodeRegistry:
    """This node's entry in the cluster: its id, media role and address, URL, load."""
    return NodeRegistry(
        redis,
        settings.node_id,
        ttl_s=settings.node_ttl_s,
        media=settings.media,
        media_address=settings.media_address,
        url=f"http://{settings.host}:{settings.port}",
        load=load,
        cluster=settings.cluster,
    )


async def close_peer_connections() -> int:
    """Close any WebRTC peer connection still open (each holds a decoder thread the
    interpreter would wait for at exit); returns how many were left."""
    from media.room import LIVE_PEER_CONNECTIONS, stop_decoders

    left = [pc for pc in list(LIVE_PEER_CONNECTIONS) if pc.connectionState != "closed"]
    if left:
        log.warning("stopping: %d peer connections were still open; closing them", len(left))
        for pc in left:  # now, whatever happens to the closes
            stop_decoders(pc)
        await asyncio.gather(*(pc.close() for pc in left), return_exceptions=True)
    return len(left)


def refuse(code: str, message: str) -> None:
    """Refuse a Socket.IO connection: the client's `connect_error` carries `{code, message}`."""
    raise socketio.exceptions.ConnectionRefusedError(
        f"{code}: {message}", {"code": code, "message": message}
    )


async def index(request: web.Request) -> web.FileResponse:
    """The browser client."""
    return web.FileResponse(web_client_dir() / "index.html")


def create_app(
    settings: Settings, redis_url: str, translator: Translator | None = None
) -> web.Application:
    """Build the application for one server process on the given Redis.

    `translator` (a `translation.translator.Translator`) is built from the data dir's installed
    engines when not given; tests pass one shared across the session.
    """
    keys = settings.token_key()
    app = web.Application(
        client_max_size=settings.limits.max_payload_bytes,
        middlewares=[polling_body_limit(settings.limits.max_payload_bytes)],
    )
    app[SETTINGS] = settings
    realtime = Realtime(settings, redis_url, translator)
    app[SERVICES] = {"realtime": realtime}
    realtime.sio.attach(app)
    recognition = realtime.recognition.describe
    add_health_route(app, realtime.redis, realtime.registry, realtime.warmup, recognition)
    app.router.add_get("/", index)
    add_static_routes(app, web_client_dir())
    add_metrics_routes(app, settings)
    add_web_routes(app, settings)
    add_transcript_routes(app, realtime.store, keys)
    add_tour_routes(app, realtime.tours.archive, keys)
    app.router.add_get(RELAY_ROUTE, realtime.relays.serve_link)  # node-to-node, signed
    add_quote_routes(
        app, realtime.store, realtime.quotes.store, realtime.languages, realtime.translation, keys
    )
    add_capability_routes(app, realtime.translation, settings.data_dir)
    add_attachment_routes(
        app,
        realtime.store,
        realtime.attachments,
        keys,
        AttachmentLimits(settings.limits.max_attachment_bytes, settings.keep_location),
        realtime.rate_limit,
    )

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await realtime.start()
        yield
        await realtime.stop()

    async def on_shutdown(app: web.Application) -> None:
        await realtime.shutdown()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    return app
