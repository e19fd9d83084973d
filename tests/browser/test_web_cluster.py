"""Calls and tours in real browsers across several `tradetalk serve` processes on one real Redis:
the buyer's page on signalling-only process A, the supplier's on signalling-only process B, the
media on process C or D. When the process holding the media goes away — SIGTERM (drain), then,
after a restart, kill -9 — both pages show that the call moved and play each other's video again
by themselves (no click), with the subtitle lines so far still on screen; a tour's host publishes
again and its viewer joins again. When the page's own process dies and comes back, the page joins
again too. A reloaded page rings for a call already running. On one server: a page whose socket
drops re-joins, and a refused re-join offers a Rejoin button.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Page, expect

from server.storage.embedded_redis import EmbeddedRedis, free_port
from tests.browser.conftest import sign_in
from tests.support.peers import ServerProcess

# Every call.moved event and every text the call's note showed, as the page saw them.
RECORD = """() => {
  window.moved = [];
  window.notes = [];
  tradetalk.connection.addEventListener("server", ({ detail: { event, data } }) => {
    if (event === "call.moved") window.moved.push({ ...data, at: performance.now() });
  });
  const note = document.querySelector("#call-view .call-note");
  new MutationObserver(() => {
    const text = note.textContent;
    if (text && window.notes.at(-1) !== text) window.notes.push(text);
  }).observe(note, { childList: true, characterData: true, subtree: true });
}"""

CALL_STATE = """() => { const a = tradetalk.call.active; return a && {
  signaling: a.pc.signalingState, ice: a.pc.iceConnectionState, conn: a.pc.connectionState,
  tiles: [...a.tiles.keys()], participants: a.call.participants,
  note: document.querySelector('#call-view .call-note').textContent,
  notes: window.notes, moved: window.moved }; }"""

REMOTE_VIDEO_PLAYS = """() => [...document.querySelectorAll('#call-view .tile.remote video')]
  .some((v) => v.videoWidth > 0 && v.readyState >= 2 && !v.paused)"""

# Every final subtitle line the page receives, as the server sent it.
RECORD_FINALS = """() => {
  window.finals = [];
  tradetalk.connection.addEventListener("server", ({ detail: { event, data } }) => {
    if (event === "subtitle" && data.final) window.finals.push({ ...data, at: performance.now() });
  });
}"""

# The page's own member of the call reads subtitles in `lang`.
MY_SUBTITLE_LANG = """(lang) => (tradetalk.call.active?.call.participants || [])
  .some((m) => m.id === tradetalk.me.id && m.lang === lang)"""

# The page's current connection, kept to tell it from the one a re-join makes.
MARK_PC = "() => { window.markedPc = tradetalk.call.active.pc; }"
NEW_PC = "() => tradetalk.call.active && tradetalk.call.active.pc !== window.markedPc"


@dataclass
class Node:
    """One `tradetalk serve` process of the cluster and the node id it was given."""

    name: str
    node_id: str
    media: bool
    server: ServerProcess

    @property
    def url(self) -> str:
        return self.server.url


class Cluster:
    """Redis plus signalling-only nodes A, B and media nodes C, D (started one by one)."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.env = env or {}  # added to every node's settings
        self.redis = EmbeddedRedis(folder / "redis")
        self.nodes: dict[str, Node] = {}
        self.retired: list[Node] = []
        self.db: redis.Redis | None = None

    def start(self) -> None:
        self.redis.start()
        self.db = redis.Redis.from_url(self.redis.url, decode_responses=True)
        for name, media in (("A", False), ("B", False), ("C", True), ("D", True)):
            self.add(name, f"n{name.lower()}1", media)
        for node in self.nodes.values():
            healthy(node)

    def add(self, name: str, node_id: str, media: bool, port: int | None = None) -> Node:
        env = {
            "TRADETALK_DEV": "1",
            "TRADETALK_NODE_ID": node_id,
            "TRADETALK_MEDIA": "1" if media else "0",
            **self.env,
        }
        folder = self.folder / node_id
        server = ServerProcess(folder, self.redis.url, port or free_port(), env=env)
        node = Node(name, node_id, media, server.spawn())
        self.nodes[name] = node
        return node

    def owner(self, call_id: str) -> dict:
        """The call's `tt:media:{id}` record (owner node id, epoch)."""
        assert self.db is not None
        raw = self.db.get(f"tt:media:{call_id}")
        assert raw, f"no tt:media:{call_id} in Redis: {self.db.keys('tt:*')}"
        return json.loads(raw)

    def registered(self, node_id: str) -> bool:
        """Whether the node's heartbeat key is in Redis (it expires TTL after its last beat)."""
        assert self.db is not None
        return bool(self.db.exists(f"tt:node:{node_id}"))

    def node_of(self, node_id: str) -> Node:
        for node in self.nodes.values():
            if node.node_id == node_id:
                return node
        raise AssertionError(f"owner {node_id} is none of {list(self.nodes)}: {self.logs()}")

    def logs(self, lines: int = 30) -> str:
        out = []
        for node in [*self.nodes.values(), *self.retired]:
            text = node.server.log.read_text(errors="replace") if node.server.log.exists() else ""
            tail = "\n".join(text.splitlines()[-lines:])
            out.append(f"--- {node.name} ({node.node_id}) {node.server.log}\n{tail}")
        return "\n".join(out)

    def stop(self) -> None:
        for node in [*self.nodes.values(), *self.retired]:
            node.server.kill()
        if self.db is not None:
            self.db.close()
        self.redis.stop()


def healthy(node: Node, timeout: float = 60) -> None:
    """Wait until the node's /healthz says Redis is reachable (sync: Playwright owns the loop)."""
    process = node.server.process
    assert process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{node.name} exited: {node.server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(node.url + "/healthz", timeout=2) as resp:
                if json.loads(resp.read())["redis"]:
                    return
        except urllib.error.HTTPError as exc:  # 503 while the node warms up, with its body
            if exc.code == 503 and json.loads(exc.read())["redis"]:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{node.name} not healthy in {timeout}s: {node.server.log.read_text()}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Its own Redis: a server of another test on the session's Redis would be a media node too."""
    cluster = Cluster(tmp_path)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def wait_remote_video(page: Page, timeout_ms: int = 30000) -> None:
    """Until the page plays someone else's video (frames decoded, size known)."""
    try:
        page.wait_for_function(REMOTE_VIDEO_PLAYS, timeout=timeout_ms)
    except Exception:
        raise AssertionError(f"no remote video: {page.evaluate(CALL_STATE)}") from None


# The moved note as each page shows it: the buyer reads English, the supplier Korean.
MOVED_NOTE = {
    ("en", "media server restarting"): (
        "Call moved to another server (media server restarting) — reconnecting…"
    ),
    ("en", "media server lost"): "Call moved to another server (media server lost) — reconnecting…",
    ("ko", "media server restarting"): (
        "통화가 다른 서버로 옮겨졌습니다(미디어 서버 재시작 중) — 다시 연결하는 중…"
    ),
    (
        "ko",
        "media server lost",
    ): "통화가 다른 서버로 옮겨졌습니다(미디어 서버 연결 끊김) — 다시 연결하는 중…",
}


def moved_again(page: Page, count: int, reason: str, timeout_ms: int = 30000) -> None:
    """Until the page got its `count`-th call.moved (with `reason`), showed the note (in the
    page's language), and plays the other side's video on a new connection."""
    try:
        page.wait_for_function(f"() => window.moved.length >= {count}", timeout=timeout_ms)
    except Exception:
        raise AssertionError(f"no call.moved: {page.evaluate(CALL_STATE)}") from None
    event = page.evaluate(f"() => window.moved[{count - 1}]")
    assert event["reason"] == reason, event
    page.wait_for_function(NEW_PC, timeout=timeout_ms)
    wait_remote_video(page, timeout_ms)
    expected = MOVED_NOTE[(page.evaluate("tradetalk.lang"), reason)]
    notes = page.evaluate("() => window.notes")
    assert expected in notes, notes
    # The note is cleared once the new join is acked (the listener has no caption note).
    expect(page.locator("#call-view .call-note")).not_to_have_text(expected)
    expect(page.locator("#call-rejoin")).to_be_hidden()


def test_call_moves_between_media_processes_in_the_browser(
    cluster: Cluster, new_page, shot, korean_mic_browser, media_browser
) -> None:
    began = time.monotonic()
    a, b = cluster.nodes["A"], cluster.nodes["B"]
    buyer = new_page(on=media_browser)
    supplier = new_page(on=korean_mic_browser)
    for page, who in ((buyer, "buyer"), (supplier, "supplier")):
        page.on(
            "console",
            lambda m, who=who: m.type in ("error", "warning") and print(who, m.type, m.text),
        )
    sign_in(buyer, a.url, "Ann Buyer", "buyer", "en")
    supplier_id = sign_in(supplier, b.url, "김민수 Supplier", "supplier", "ko")
    buyer.get_by_label("Start a conversation with (user id)").fill(supplier_id)
    buyer.get_by_label("Subject (optional)").fill("Moving call")
    buyer.get_by_role("button", name="Start").click()
    expect(buyer.locator("#conv-title")).to_have_text("Moving call")
    supplier.locator("#inbox-list li.inbox-item a").click()
    expect(supplier.locator("#conv-title")).to_have_text("Moving call")
    buyer.evaluate(RECORD_FINALS)

    # The buyer (on A) starts the call, the supplier (on B) joins it: media is on C or D. The
    # supplier's page reloads while it rings: call.get (answered from B) rings the banner again.
    buyer.get_by_role("button", name="Call", exact=True).click()
    expect(buyer.locator("#call-view")).to_be_visible()
    expect(supplier.locator("#call-start")).to_have_text("통화 참여")
    supplier.reload()
    banner = supplier.locator("#call-banner")
    expect(banner).to_be_visible(timeout=15000)
    expect(banner).to_contain_text("Ann Buyer")
    supplier.locator("#call-banner-join").click()
    wait_remote_video(buyer)
    wait_remote_video(supplier)
    call_id = buyer.evaluate("tradetalk.call.active.call.id")
    assert supplier.evaluate("tradetalk.call.active.call.id") == call_id
    placed = cluster.owner(call_id)
    first = cluster.node_of(placed["owner"])
    assert first.media and first.name in ("C", "D"), (placed, cluster.logs())
    other = cluster.nodes["D" if first.name == "C" else "C"]
    print(
        f"\ncall {call_id} on {first.name} ({placed}); video both ways after "
        f"{time.monotonic() - began:.1f} s"
    )

    # A Korean line is subtitled for the buyer before anything moves.
    final = buyer.locator("#call-view .subtitle.final[data-original-lang='ko']")
    expect(final.first).to_be_visible(timeout=60000)
    lines_before = buyer.evaluate("tradetalk.call.board.lines.length")
    # The buyer reads Spanish subtitles from now on: the re-joins keep that choice.
    buyer.locator("#call-subtitle-lang").select_option("es")
    buyer.wait_for_function(MY_SUBTITLE_LANG, arg="es")
    for page in (buyer, supplier):
        page.evaluate(RECORD)
        page.evaluate(MARK_PC)
    shot(buyer, "buyer-before-drain")
    shot(supplier, "supplier-before-drain")

    # 1. SIGTERM the owner: it drains, the call moves to the other media node.
    killed_at = time.monotonic()
    first.server.process.send_signal(signal.SIGTERM)
    buyer.wait_for_function("() => window.moved.length >= 1", timeout=30000)
    shot(buyer, "buyer-moving")  # the note, unless the re-join was quicker than the screenshot
    for page in (buyer, supplier):
        moved_again(page, 1, "media server restarting")
    print(f"media again {time.monotonic() - killed_at:.1f} s after SIGTERM of {first.name}")
    assert first.server.process.wait(30) == 0, cluster.logs()
    cluster.retired.append(cluster.nodes.pop(first.name))
    moved = cluster.owner(call_id)
    assert moved["owner"] == other.node_id, (moved, cluster.logs())
    assert moved["epoch"] > placed["epoch"], (placed, moved)
    # The subtitle lines so far are still there; the names are back on the tiles.
    assert buyer.evaluate("tradetalk.call.board.lines.length") >= lines_before
    expect(final.first).to_be_visible()
    expect(buyer.locator("#call-view .tile.remote .tile-name")).to_have_text("김민수 Supplier")
    expect(supplier.locator("#call-view .tile.remote .tile-name")).to_have_text("Ann Buyer")
    buyer.wait_for_function(MY_SUBTITLE_LANG, arg="es")
    expect(buyer.locator("#call-subtitle-lang")).to_have_value("es")
    shot(buyer, "buyer-after-drain")
    shot(supplier, "supplier-after-drain")

    # Subtitles go on after the move: a new Korean line reaches the buyer.
    seen = buyer.evaluate("tradetalk.call.board.lines.length")
    buyer.wait_for_function(f"() => tradetalk.call.board.lines.length > {seen}", timeout=60000)

    # 2. A restarted first node takes sessions again; kill -9 the owner: the call is re-placed.
    restarted = cluster.add(first.name, f"n{first.name.lower()}2", True)
    healthy(restarted)
    for page in (buyer, supplier):
        page.evaluate(MARK_PC)
    killed_at = time.monotonic()
    other.server.kill()
    for page in (buyer, supplier):
        moved_again(page, 2, "media server lost")
    print(f"media again {time.monotonic() - killed_at:.1f} s after kill -9 of {other.name}")
    cluster.retired.append(cluster.nodes.pop(other.name))
    lost = cluster.owner(call_id)
    assert lost["owner"] == restarted.node_id, (lost, cluster.logs())
    assert lost["epoch"] > moved["epoch"], (moved, lost)
    expect(final.first).to_be_visible()
    buyer.wait_for_function(MY_SUBTITLE_LANG, arg="es")
    # call.subtitles reaches the third owner too.
    buyer.locator("#call-subtitle-lang").select_option("en")
    buyer.wait_for_function(MY_SUBTITLE_LANG, arg="en")
    shot(buyer, "buyer-after-kill")
    shot(supplier, "supplier-after-kill")

    # Every line once: no line is sent again by the node that took the call over.
    finals = buyer.evaluate("() => window.finals")
    for line in finals:
        print(f"{line['at'] / 1000:6.1f} s  [{line['start']}-{line['end']}] {line['text']}")
    # The Korean speaker's lines (the buyer's fake microphone beeps: the speech guard keeps
    # Whisper from writing a line for it, tests/integration/test_whisper_speech.py proves that
    # apart).
    spans = [(line["start"], line["end"]) for line in finals if line["lang"] == "ko"]
    assert spans and len(set(spans)) == len(spans), spans
    assert spans == sorted(spans), spans

    # The call still ends normally, for both.
    supplier.get_by_role("button", name="모두 종료").click()
    expect(supplier.locator("#call-view")).to_be_hidden(timeout=15000)
    expect(buyer.locator("#call-view .call-note")).to_have_text(
        re.compile("The call was ended by 김민수 Supplier")
    )
    # The transcript has every line the buyer was sent, once: those of the three owners.
    finals = buyer.evaluate("() => window.finals")
    cid = buyer.evaluate("tradetalk.conversation.id")
    response = buyer.request.get(
        f"{a.url}/api/conversations/{cid}/transcript?format=json",
        headers={"Authorization": f"Bearer {buyer.evaluate('tradetalk.token')}"},
    )
    assert response.ok, response.text()
    stored = [(line["start"], line["text"]) for line in response.json()["lines"]]
    sent = [(line["start"], line["text"]) for line in finals]
    assert stored == sent, (stored, sent)
    # Moved twice, ended once: the conversation has one entry for the call, counting every line.
    entry = buyer.locator("#messages li.msg.call-entry")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text(re.compile(rf", {len(stored)} lines? — transcript$"))
    expect(supplier.locator("#messages li.msg.call-entry")).to_have_count(1)
    assert not buyer.errors and not supplier.errors, (buyer.errors, supplier.errors)
    print(f"cluster call test took {time.monotonic() - began:.1f} s")


FAKE_LINES = """() => { for (let i = 1; i <= 3; i += 1) tradetalk.call.onSubtitle({
  call_id: tradetalk.call.active.call.id, speaker: { id: "x", name: "Earlier Speaker" },
  lang: "en", text: `line ${i} before the drop`, final: true, translations: {}, start: i, end: i });
}"""


def test_a_call_page_joins_again_after_its_socket_drops_and_by_the_rejoin_button(
    new_page, web_server, shot, media_browser
) -> None:
    """One server: the page's socket drops mid-call (the server drops its member), comes back,
    and the page joins again by itself; a refused re-join shows the error and a Rejoin button
    that works once the refusal's cause is gone. The subtitle lines so far stay on screen."""
    buyer = new_page(on=media_browser)
    supplier = new_page(on=media_browser)
    sign_in(buyer, web_server, "Ann Buyer", "buyer", "en")
    supplier_id = sign_in(supplier, web_server, "Sam Supplier", "supplier", "en")
    buyer.get_by_label("Start a conversation with (user id)").fill(supplier_id)
    buyer.get_by_role("button", name="Start").click()
    supplier.locator("#inbox-list li.inbox-item a").click()
    buyer.get_by_role("button", name="Call", exact=True).click()
    supplier.locator("#call-start").click()
    wait_remote_video(buyer)
    wait_remote_video(supplier)
    buyer.evaluate(RECORD)
    buyer.evaluate(FAKE_LINES)
    history = buyer.locator("#call-view .subtitle-history")
    expect(history).to_contain_text("line 1 before the drop")
    buyer.evaluate(MARK_PC)

    # The socket drops; the page keeps the call on screen and joins again once it is back.
    buyer.evaluate("tradetalk.connection.socket.io.engine.close()")
    buyer.wait_for_function(NEW_PC, timeout=15000)
    wait_remote_video(buyer)
    wait_remote_video(supplier)
    notes = buyer.evaluate("() => window.notes")
    assert "Connection lost — rejoining the call when it is back…" in notes, notes
    expect(history).to_contain_text("line 1 before the drop")
    expect(buyer.locator("#call-view .subtitles")).to_contain_text("line 3 before the drop")
    expect(supplier.locator("#call-view .tile.remote")).to_have_count(1)
    shot(buyer, "buyer-rejoined-after-socket-drop")

    # A re-join the server refuses (this socket is still in the call): the refusal, worded by the
    # page (never the server's English message), and Rejoin.
    buyer.evaluate(MARK_PC)
    buyer.evaluate(
        """() => { const call = tradetalk.call.active.call; tradetalk.call.onEvent(
          "call.moved", { call_id: call.id, reason: "media server lost", call }); }"""
    )
    note = buyer.locator("#call-view .call-note")
    expect(note).to_have_text(
        "Could not rejoin the call: the server refused (invalid)", timeout=15000
    )
    rejoin = buyer.locator("#call-rejoin")
    expect(rejoin).to_be_visible()
    assert "Call moved to another server (media server lost) — reconnecting…" in buyer.evaluate(
        "() => window.notes"
    )
    shot(buyer, "buyer-rejoin-refused")
    buyer.evaluate(
        "() => tradetalk.connection.request('call.leave', {call_id: tradetalk.call.active.call.id})"
    )
    rejoin.click()
    wait_remote_video(buyer)
    expect(rejoin).to_be_hidden()
    expect(note).not_to_contain_text("rejoin")  # (a "not subtitled" note may stay)
    expect(history).to_contain_text("line 1 before the drop")
    shot(buyer, "buyer-rejoined-by-button")
    supplier.locator("#call-end").click()
    expect(buyer.locator("#call-view .call-note")).to_have_text(
        "The call was ended by Sam Supplier."
    )
    assert not buyer.errors and not supplier.errors, (buyer.errors, supplier.errors)


# ----- tours --------------------------------------------------------------------------------------

RECORD_TOUR = """() => {
  window.moved = [];
  window.notes = [];
  tradetalk.connection.addEventListener("server", ({ detail: { event, data } }) => {
    if (event === "tour.moved") window.moved.push({ ...data, at: performance.now() });
  });
  const note = document.querySelector("#tour-note");
  new MutationObserver(() => {
    const text = note.textContent;
    if (text && window.notes.at(-1) !== text) window.notes.push(text);
  }).observe(note, { childList: true, characterData: true, subtree: true });
  window.markedPc = tradetalk.tour.active.pc;
}"""
TOUR_NEW_PC = "() => tradetalk.tour.active && tradetalk.tour.active.pc !== window.markedPc"
TOUR_VIDEO_PLAYS = """() => { const v = document.querySelector('#tour-video');
  return Boolean(v && v.videoWidth > 0 && v.readyState >= 2 && !v.paused); }"""
TOUR_STATE = """() => { const a = tradetalk.tour.active; return a && {
  host: a.host, conn: a.pc.connectionState, note: document.querySelector('#tour-note').textContent,
  notes: window.notes, moved: window.moved }; }"""


def wait_tour_video(page: Page, timeout_ms: int = 30000) -> None:
    """Until the page plays the tour's video (the host: its own preview)."""
    try:
        page.wait_for_function(TOUR_VIDEO_PLAYS, timeout=timeout_ms)
    except Exception:
        raise AssertionError(f"no tour video: {page.evaluate(TOUR_STATE)}") from None


def host_tour(host: Page, title: str) -> str:
    """Start a tour from the host form; its share link once published."""
    host.locator("#tours-link").click()
    host.locator("#tour-title").fill(title)
    host.locator("#tour-start").click()
    expect(host.locator("#tour-count")).to_have_text(re.compile("0"), timeout=30000)
    expect(host.locator("#tour-note")).not_to_contain_text("Starting")
    return host.locator("#tour-share").input_value()


def watch_across(
    cluster: Cluster, new_page, browser, title: str, viewer_lang: str
) -> tuple[Page, Page, str]:
    """An English host's page on node A starts `title`; a viewer's page on node B, signed in
    with `viewer_lang`, watches it. Returns (host, viewer, tour id)."""
    a, b = cluster.nodes["A"], cluster.nodes["B"]
    host = new_page(on=browser)
    viewer = new_page(on=browser)
    sign_in(host, a.url, "Hana Host", "supplier", "en")
    sign_in(viewer, b.url, "Vic Viewer", "buyer", viewer_lang)
    share = host_tour(host, title)
    viewer.goto(share.replace(a.url, b.url))
    wait_tour_video(viewer)
    expect(host.locator("#tour-count")).to_have_text("1 watching")
    return host, viewer, host.evaluate("tradetalk.tour.active.tour.id")


def test_a_tour_viewer_joins_again_after_its_socket_drops(
    new_page, web_server, shot, media_browser
) -> None:
    host = new_page(on=media_browser)
    viewer = new_page(on=media_browser)
    sign_in(host, web_server, "Hana Host", "supplier", "en")
    sign_in(viewer, web_server, "Vic Viewer", "buyer", "en")
    share = host_tour(host, "Drop test")
    viewer.goto(share)
    wait_tour_video(viewer)
    expect(host.locator("#tour-count")).to_have_text("1 watching")
    viewer.evaluate(RECORD_TOUR)

    viewer.evaluate("tradetalk.connection.socket.io.engine.close()")
    viewer.wait_for_function(TOUR_NEW_PC, timeout=15000)
    wait_tour_video(viewer)
    notes = viewer.evaluate("() => window.notes")
    assert "Connection lost — rejoining the tour when it is back…" in notes, notes
    expect(viewer.locator("#tour-note")).to_be_hidden()
    expect(host.locator("#tour-count")).to_have_text("1 watching")
    shot(viewer, "viewer-rejoined-after-socket-drop")
    host.locator("#tour-end").click()
    expect(viewer.locator("#tour-note")).to_have_text("The tour has ended.")
    assert not host.errors and not viewer.errors, (host.errors, viewer.errors)


def test_tour_moves_between_media_processes_in_the_browser(
    cluster: Cluster, new_page, shot, media_browser
) -> None:
    """The host's page on A, a viewer's on B; SIGTERM of the media owner, then kill -9 of the
    next one: the host publishes again and the viewer joins again, both by themselves."""
    host, viewer, tour_id = watch_across(cluster, new_page, media_browser, "Moving tour", "en")
    placed = cluster.owner(tour_id)
    first = cluster.node_of(placed["owner"])
    assert first.name in ("C", "D"), placed
    other = cluster.nodes["D" if first.name == "C" else "C"]
    for page in (host, viewer):
        page.evaluate(RECORD_TOUR)
    shot(viewer, "viewer-before-drain")

    def tour_moved(count: int, reason: str) -> None:
        for page in (host, viewer):
            try:
                page.wait_for_function(f"() => window.moved.length >= {count}", timeout=30000)
                page.wait_for_function(TOUR_NEW_PC, timeout=30000)
            except Exception:
                raise AssertionError(f"{page.evaluate(TOUR_STATE)}\n{cluster.logs()}") from None
            event = page.evaluate(f"() => window.moved[{count - 1}]")
            assert event["reason"] == reason, event
            wait_tour_video(page)
            expected = f"Tour moved to another server ({reason}) — reconnecting…"
            assert expected in page.evaluate("() => window.notes")
            expect(page.locator("#tour-rejoin")).to_be_hidden()
            expect(page.locator("#tour-note")).not_to_contain_text("moved")

    first.server.process.send_signal(signal.SIGTERM)
    tour_moved(1, "media server restarting")
    assert first.server.process.wait(30) == 0, cluster.logs()
    cluster.retired.append(cluster.nodes.pop(first.name))
    assert cluster.owner(tour_id)["owner"] == other.node_id
    # The viewer's picture is the host's again, on the new connection.
    viewer.wait_for_function(
        "() => document.querySelector('#tour-video').srcObject?.getVideoTracks()"
        ".some((t) => t.readyState === 'live')"
    )
    expect(host.locator("#tour-count")).to_have_text("1 watching")
    shot(viewer, "viewer-after-drain")
    shot(host, "host-after-drain")

    # A restarted node, then kill -9 of the owner: the tour moves again; questions still reach
    # the host (kept from before the moves, too).
    viewer.locator("#tour-question").fill("Before the crash?")
    viewer.locator("#tour-ask-send").click()
    expect(host.locator("#tour-questions .tour-question")).to_have_count(1)
    restarted = cluster.add(first.name, f"n{first.name.lower()}2", True)
    healthy(restarted)
    for page in (host, viewer):
        page.evaluate("() => { window.markedPc = tradetalk.tour.active.pc; }")
    other.server.kill()
    tour_moved(2, "media server lost")
    cluster.retired.append(cluster.nodes.pop(other.name))
    assert cluster.owner(tour_id)["owner"] == restarted.node_id
    viewer.locator("#tour-question").fill("After the crash?")
    viewer.locator("#tour-ask-send").click()
    expect(host.locator("#tour-questions .tour-question")).to_have_count(2)
    ids = host.evaluate("() => tradetalk.tour.questions.map((q) => q.id)")
    assert ids == [1, 2], ids  # numbered on, not again from 1, by the node that took over
    expect(host.locator("#tour-count")).to_have_text("1 watching")
    shot(viewer, "viewer-after-kill")
    shot(host, "host-after-kill")
    host.locator("#tour-end").click()
    expect(viewer.locator("#tour-note")).to_have_text("The tour has ended.")
    assert not host.errors and not viewer.errors, (host.errors, viewer.errors)


def test_a_call_page_whose_signalling_process_dies_joins_again_when_it_is_back(
    cluster: Cluster, new_page, shot, media_browser
) -> None:
    """kill -9 of the buyer's own process A (not the media owner): its member is dropped once A's
    heartbeat lapses; A is restarted on its port and the buyer's page, whose socket comes back
    by itself, joins the call again with no click. The supplier sees the buyer again, once."""
    a, b = cluster.nodes["A"], cluster.nodes["B"]
    buyer = new_page(on=media_browser)
    supplier = new_page(on=media_browser)
    sign_in(buyer, a.url, "Ann Buyer", "buyer", "en")
    supplier_id = sign_in(supplier, b.url, "Sam Supplier", "supplier", "en")
    buyer.get_by_label("Start a conversation with (user id)").fill(supplier_id)
    buyer.get_by_role("button", name="Start").click()
    supplier.locator("#inbox-list li.inbox-item a").click()
    buyer.get_by_role("button", name="Call", exact=True).click()
    supplier.locator("#call-start").click()
    wait_remote_video(buyer)
    wait_remote_video(supplier)
    call_id = buyer.evaluate("tradetalk.call.active.call.id")
    owner = cluster.owner(call_id)["owner"]
    buyer.evaluate(RECORD)
    buyer.evaluate(MARK_PC)

    a.server.kill()
    note = buyer.locator("#call-view .call-note")
    expect(note).to_have_text("Connection lost — rejoining the call when it is back…")
    expect(buyer.locator("#status")).to_contain_text("Reconnecting")
    shot(buyer, "buyer-signalling-lost")
    deadline = time.monotonic() + 15
    while cluster.registered(a.node_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not cluster.registered(a.node_id), "A's heartbeat key outlived its TTL"
    # The owner drops the members whose sockets were on A: the supplier is alone.
    try:
        supplier.wait_for_function(
            "() => tradetalk.call.active.call.participants.length === 1", timeout=10000
        )
    except Exception:
        raise AssertionError(f"{supplier.evaluate(CALL_STATE)}\n{cluster.logs()}") from None
    expect(supplier.locator("#call-view .tile.remote")).to_have_count(0)

    restarted = cluster.add("A", a.node_id, False, port=a.server.port)
    cluster.retired.append(a)
    healthy(restarted)
    expect(buyer.locator("#status")).to_be_hidden(timeout=15000)
    buyer.wait_for_function(NEW_PC, timeout=15000)
    wait_remote_video(buyer)
    wait_remote_video(supplier)
    expect(supplier.locator("#call-view .tile.remote")).to_have_count(1)
    expect(supplier.locator("#call-view .tile.remote .tile-name")).to_have_text("Ann Buyer")
    expect(note).not_to_contain_text("rejoin")
    assert cluster.owner(call_id)["owner"] == owner  # the media never moved
    shot(buyer, "buyer-back-after-restart")
    shot(supplier, "supplier-sees-buyer-again")
    supplier.locator("#call-end").click()
    expect(note).to_have_text("The call was ended by Sam Supplier.")
    assert not buyer.errors and not supplier.errors, (buyer.errors, supplier.errors)


# Every refused request of the page: event and error code.
RECORD_REFUSALS = """() => {
  window.refusals = [];
  const connection = tradetalk.connection;
  const request = connection.request.bind(connection);
  connection.request = async (event, data, timeoutMs) => {
    try {
      return await request(event, data, timeoutMs);
    } catch (error) {
      window.refusals.push({ event, code: error.code, message: error.message });
      throw error;
    }
  };
}"""


def test_a_join_sent_while_the_owner_is_dead_is_retried_until_the_call_moved(
    cluster: Cluster, new_page, shot, media_browser
) -> None:
    """The supplier presses Join right after the owner's kill -9, before the cluster noticed:
    the forwarded `call.start` / `call.join` is refused `node_unavailable`, the page asks again
    with backoff, and the join lands on the node the call moved to — no click beyond the first."""
    a, b = cluster.nodes["A"], cluster.nodes["B"]
    buyer = new_page(on=media_browser)
    supplier = new_page(on=media_browser)
    sign_in(buyer, a.url, "Ann Buyer", "buyer", "en")
    supplier_id = sign_in(supplier, b.url, "Sam Supplier", "supplier", "en")
    buyer.get_by_label("Start a conversation with (user id)").fill(supplier_id)
    buyer.get_by_role("button", name="Start").click()
    supplier.locator("#inbox-list li.inbox-item a").click()
    buyer.get_by_role("button", name="Call", exact=True).click()
    expect(buyer.locator("#call-view .tile.local")).to_be_visible()
    buyer.wait_for_function("() => tradetalk.call.active?.pc?.remoteDescription")
    join = supplier.locator("#call-start")
    expect(join).to_have_text("Join call")
    call_id = buyer.evaluate("tradetalk.call.active.call.id")
    owner = cluster.node_of(cluster.owner(call_id)["owner"])
    other = cluster.nodes["D" if owner.name == "C" else "C"]
    supplier.evaluate(RECORD_REFUSALS)
    buyer.evaluate(RECORD)
    buyer.evaluate(MARK_PC)

    owner.server.kill()
    join.click()
    try:
        wait_remote_video(supplier, 40000)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{supplier.evaluate('window.refusals')}") from None
    moved_again(buyer, 1, "media server lost")
    wait_remote_video(buyer)
    refusals = supplier.evaluate("() => window.refusals")
    print(f"\nsupplier's refused requests: {refusals}")
    assert refusals, "the join was not refused: the owner was not dead yet?"
    assert {r["code"] for r in refusals} == {"node_unavailable"}, refusals
    assert len(refusals) <= 4, refusals  # then the page would have given up
    assert cluster.owner(call_id)["owner"] == other.node_id
    expect(supplier.locator("#call-view .call-note")).not_to_contain_text("Could not")
    cluster.retired.append(cluster.nodes.pop(owner.name))
    shot(supplier, "supplier-joined-after-retries")
    supplier.locator("#call-end").click()
    expect(buyer.locator("#call-view .call-note")).to_have_text(
        "The call was ended by Sam Supplier."
    )
    assert not buyer.errors and not supplier.errors, (buyer.errors, supplier.errors)


def test_a_tour_host_whose_signalling_process_dies(
    cluster: Cluster, new_page, shot, media_browser
) -> None:
    """kill -9 of the host's own process A: its viewers are told the tour ended, and the host's
    page, once its socket is back, says so too (a tour ends with its host's socket)."""
    a, b = cluster.nodes["A"], cluster.nodes["B"]
    host = new_page(on=media_browser)
    viewer = new_page(on=media_browser)
    sign_in(host, a.url, "Hana Host", "supplier", "en")
    sign_in(viewer, b.url, "Vic Viewer", "buyer", "en")
    share = host_tour(host, "Host crash")
    viewer.goto(share.replace(a.url, b.url))
    wait_tour_video(viewer)
    host.evaluate(RECORD_TOUR)

    a.server.kill()
    expect(host.locator("#tour-note")).to_have_text(
        "Connection lost — rejoining the tour when it is back…"
    )
    expect(viewer.locator("#tour-note")).to_have_text(
        "The tour has ended (the host lost the connection).", timeout=15000
    )
    shot(viewer, "viewer-told-host-gone")
    restarted = cluster.add("A", a.node_id, False, port=a.server.port)
    cluster.retired.append(a)
    healthy(restarted)
    expect(host.locator("#tour-note")).to_have_text(
        "The tour ended while you were away.", timeout=20000
    )
    expect(host.locator("#tour-rejoin")).to_be_hidden()
    shot(host, "host-back-tour-gone")
    assert not host.errors and not viewer.errors, (host.errors, viewer.errors)


def test_a_call_whose_media_processes_all_die_ends_for_both(
    cluster: Cluster, new_page, shot, media_browser
) -> None:
    """kill -9 of both media processes: nowhere to move the call, so it ends, and both pages say
    why instead of waiting in a call that no longer exists."""
    a, b = cluster.nodes["A"], cluster.nodes["B"]
    buyer = new_page(on=media_browser)
    supplier = new_page(on=media_browser)
    sign_in(buyer, a.url, "Ann Buyer", "buyer", "en")
    supplier_id = sign_in(supplier, b.url, "Sam Supplier", "supplier", "en")
    buyer.get_by_label("Start a conversation with (user id)").fill(supplier_id)
    buyer.get_by_role("button", name="Start").click()
    supplier.locator("#inbox-list li.inbox-item a").click()
    buyer.get_by_role("button", name="Call", exact=True).click()
    supplier.locator("#call-start").click()
    wait_remote_video(buyer)
    wait_remote_video(supplier)
    call_id = buyer.evaluate("tradetalk.call.active.call.id")

    cluster.nodes["C"].server.kill()
    cluster.nodes["D"].server.kill()
    for page in (buyer, supplier):
        expect(page.locator("#call-view .call-note")).to_have_text(
            "The call ended (media server lost).", timeout=15000
        )
        page.wait_for_function("() => tradetalk.call.active === null")
    shot(buyer, "buyer-call-ended-no-media")
    assert cluster.db is not None and not cluster.db.exists(f"tt:media:{call_id}")
    # Starting a call now is refused for a reason the page shows (no media node).
    buyer.get_by_role("button", name="Call", exact=True).click()
    expect(buyer.locator("#call-view .call-note")).to_contain_text(
        "Could not join the call", timeout=20000
    )
    shot(buyer, "buyer-no-media-node")
    assert not buyer.errors and not supplier.errors, (buyer.errors, supplier.errors)


def test_sigterm_of_the_last_media_process_ends_the_call_cleanly(
    cluster: Cluster, new_page, shot, media_browser
) -> None:
    """The other media process is gone; SIGTERM of the owner has nowhere to hand the call to: it
    ends it ("server shutting down") and exits 0, and both pages say so."""
    a, b = cluster.nodes["A"], cluster.nodes["B"]
    buyer = new_page(on=media_browser)
    supplier = new_page(on=media_browser)
    sign_in(buyer, a.url, "Ann Buyer", "buyer", "en")
    supplier_id = sign_in(supplier, b.url, "Sam Supplier", "supplier", "en")
    buyer.get_by_label("Start a conversation with (user id)").fill(supplier_id)
    buyer.get_by_role("button", name="Start").click()
    supplier.locator("#inbox-list li.inbox-item a").click()
    buyer.get_by_role("button", name="Call", exact=True).click()
    supplier.locator("#call-start").click()
    wait_remote_video(buyer)
    wait_remote_video(supplier)
    call_id = buyer.evaluate("tradetalk.call.active.call.id")
    owner = cluster.node_of(cluster.owner(call_id)["owner"])
    spare = cluster.nodes["D" if owner.name == "C" else "C"]
    spare.server.kill()
    deadline = time.monotonic() + 15
    while cluster.registered(spare.node_id) and time.monotonic() < deadline:
        time.sleep(0.2)

    owner.server.process.send_signal(signal.SIGTERM)
    for page in (buyer, supplier):
        expect(page.locator("#call-view .call-note")).to_have_text(
            "The call ended (the server is shutting down).", timeout=20000
        )
    assert owner.server.process.wait(30) == 0, cluster.logs()
    shot(supplier, "supplier-call-ended-shutdown")
    assert not buyer.errors and not supplier.errors, (buyer.errors, supplier.errors)
