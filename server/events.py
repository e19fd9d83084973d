"""Every Socket.IO event and bus operation of a node, and what runs for it, in one place.

- Chat and quote events (`chat.handlers()`: `conversation.create|join`, `message.send|read`,
  `history.get`, `typing`, `inbox.list`, `user.set_language`, `glossary.get|set`;
  `quotes.handlers()`: `quote.send|request|respond|get`) run on the socket's own node: they are
  registered on the dispatcher (`dispatch_chat_events`).
- Call and tour events (`calls.handlers()`, `tours.handlers()`) run on the node that owns the
  session (`cluster/router.py`): `MEDIA_ROUTES` names where the ones that are not addressed by
  their session id run, and what takes a forwarded one back when its sender gave up waiting.
- Guards run before a handler (an ack they return refuses the event) and follows after it
  (`CAPS` / `FOLLOWS`: the caps and counters of `handlers/bounds.py`).
- Bus operations between nodes: `event` (a forwarded event), `adopt` (take a session over),
  `drop_socket` (a socket is gone).

Every event goes through `realtime/dispatch.py` first (rate limit, error acks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from server.cluster.bus import Bus, DropSocketBody
from server.cluster.failover import Failover
from server.cluster.router import Locate, Router, Undo
from server.cluster.tour_relays import TourRelays
from server.handlers.bounds import MEDIA_JOINS, Bounds
from server.handlers.chat import Chat
from server.handlers.quotes import Quotes
from server.media_sessions.calls import Calls
from server.media_sessions.tours import Tours
from server.realtime.dispatch import Dispatcher, Follow, Guard
from server.realtime.validation import CALL_ID_RE, TOUR_ID_RE

# Call and tour events that do not run on the owner of the session their id names:
# event -> (where it runs: "place" a new session on the least-loaded media node, "conversation"
# the owner of the conversation's call, "here" this node; undo the join when late)
MEDIA_ROUTES: dict[str, tuple[str, bool]] = {
    "call.start": ("place_call", False),
    "call.get": ("conversation", False),
    "call.join": ("id", True),
    "tour.start": ("place", False),
    "tour.list": ("here", False),
    "tour.join": ("id", True),
    "tour.publish": ("id", True),
}


def dispatch_chat_events(dispatcher: Dispatcher, chat: Chat, quotes: Quotes) -> None:
    """Register every chat and quote event on the dispatcher (they run on the socket's node)."""
    for name, handler in {**chat.handlers(), **quotes.handlers()}.items():
        dispatcher.register(name, handler)


def route_media_events(router: Router, calls: Calls, tours: Tours) -> None:
    """Register every call and tour event on the router, each with its locator and undo."""
    by_call = router.by_id("call_id", CALL_ID_RE)
    by_tour = router.by_id("tour_id", TOUR_ID_RE)
    locators: dict[str, Locate | None] = {
        "place_call": router.place_call,
        "place": router.place,
        "conversation": router.by_conversation,
        "here": None,
    }
    for kind, by_id in ((calls, by_call), (tours, by_tour)):
        undo: Undo = kind.withdraw
        for name, handler in kind.handlers().items():
            where, undoable = MEDIA_ROUTES.get(name, ("id", False))
            locate = by_id if where == "id" else locators[where]
            router.register(name, handler, locate, undo if undoable else None)


def install_caps(dispatcher: Dispatcher, bounds: Bounds) -> None:
    """Put the per-user caps before their events and the counters after them."""
    caps: dict[str, Guard] = {
        "call.start": bounds.call_cap,
        "tour.start": bounds.tour_cap,
        "conversation.create": bounds.conversation_cap,
    }
    follows: list[tuple[str, Follow]] = [
        ("conversation.create", bounds.count_conversation),
        *((name, bounds.drop_if_gone) for name in MEDIA_JOINS),
    ]
    for name, guard in caps.items():
        dispatcher.before(name, guard)
    for name, follow in follows:
        dispatcher.after(name, follow)


def serve_bus(
    bus: Bus,
    router: Router,
    failover: Failover,
    drop_socket: Callable[[DropSocketBody], Awaitable[None]],
    relays: TourRelays,
) -> None:
    """The operations other nodes may ask of this one (tour relays: `tour_relay_join`,
    `tour_relay_answer`, `tour_relay_leave`)."""
    bus.on("event", router.serve)
    bus.on("adopt", failover.adopt)
    bus.on("drop_socket", drop_socket)
    relays.serve(bus)
