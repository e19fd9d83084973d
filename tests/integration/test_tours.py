"""Factory tours: a real aiortc host streaming Korean speech and video to aiortc viewers,
subtitles recognized once (real Vosk) and translated once per viewer language (real engines)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

import aiohttp
import pytest

from server.app import SERVICES, create_app
from server.config import Limits, Settings
from server.media_sessions.tours import TourLimits
from tests.support import finals, wait_until
from tests.support.call_clients import speech_with_pauses
from tests.support.peers import SECRET, SHARED, Peer, new_user, token_for
from tests.support.sdp_samples import sample_offer
from tests.support.tour_clients import TourClient

SPEECH = SHARED / "testdata" / "speech"
LATE_JOINER_BOUND_S = 2.0


@pytest.fixture
async def tour_app(aiohttp_server, redis_server, tmp_path, translator):
    """A server with tours (wired here until server/app.py does it) and a rate limit that
    leaves room for a dozen peers signalling at once."""
    settings = Settings(
        data_dir=tmp_path,
        secret=SECRET,
        limits=Limits(renegotiation_timeout_s=5.0, rate_per_second=500, rate_burst=500),
    )
    app = create_app(settings, redis_server.url, translator)
    realtime = app[SERVICES]["realtime"]
    tours = realtime.tours
    tours.limits = TourLimits(max_viewers=20)
    server = await aiohttp_server(app)
    return tours, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def people(tour_app):
    """Connects users; closes their sockets and peer connections after the test."""
    _, url = tour_app
    peers: list[Peer] = []
    clients: list[TourClient] = []

    async def make(lang: str, role: str = "buyer") -> Peer:
        peer = await Peer(new_user(role=role, lang=lang)).connect(url)
        peers.append(peer)
        return peer

    make.clients = clients
    yield make
    for client in clients:
        await client.close()
    for peer in peers:
        await peer.close()


async def test_tour_with_ten_viewers_in_two_languages(tour_app, people, tmp_path, translator):
    tours, url = tour_app
    host = await people("ko", role="supplier")
    english = [await people("en") for _ in range(5)]
    spanish = [await people("es") for _ in range(5)]
    paused_peer, late_peer = await people("en"), await people("es")

    started = await host.call("tour.start", {"title": "Line 3: CNC machining", "lang": "ko"})
    assert started["ok"], started
    tour = started["tour"]
    tid = tour["id"]
    assert tid.startswith("t_") and len(tid) == 18
    assert tour["host"] == {"id": host.id, "name": host.identity.name}
    assert (tour["lang"], tour["invite"], tour["viewers"]) == ("ko", None, 0)

    def client(peer: Peer, **kw) -> TourClient:
        made = TourClient(peer, **kw)
        people.clients.append(made)
        return made

    wav = speech_with_pauses(SPEECH / "ko_test.wav", tmp_path / "ko.wav", repeats=4)
    host_client = client(host, wav=wav, camera=True, fps=15)
    # the last Spanish viewer offers a camera of its own: a viewer's media must go nowhere
    viewers = [client(p) for p in english] + [client(p) for p in spanish[:4]]
    viewers.append(client(spanish[4], camera=True))

    # Half join before the host publishes (their media arrives by a server re-offer), half after.
    early = [english[0], english[1], spanish[0], spanish[1], spanish[4]]
    early_clients = [c for c in viewers if c.peer in early]
    acks = await asyncio.gather(*(c.join(tid) for c in early_clients))
    assert all(a["ok"] and a["type"] == "answer" for a in acks), acks
    published = await host_client.publish(tid)
    assert published["ok"] and published["captions"] == {"lang": "ko", "available": True}
    acks = await asyncio.gather(*(c.join(tid) for c in viewers if c not in early_clients))
    assert all(a["ok"] for a in acks), acks
    assert await host.wait_for("tour.viewers", lambda e: e["count"] == 10)
    paused = client(paused_peer, paused=True)
    assert (await paused.join(tid))["ok"]

    host_peer = tours.tours[tid].host_peer
    await wait_until(
        lambda: all(c.received("video") > 10 and c.received("audio") > 10 for c in viewers), 20
    )
    for c in viewers:  # only the host's media reaches viewers
        assert c.publishers() == {host_peer}, c.rtc.frames
        assert (320, 240) in c.rtc.video_sizes
    stats = tours.tours[tid].room.stats()
    assert stats["sources"] == 2 and stats["video_encoders"] == 1, stats
    assert stats["audio_encoders"] == 1 and stats["per_sender_encoders"] == 0, stats
    assert stats["subscriptions"] == 2 * 11, stats
    offer = await sample_offer()
    forbidden = await spanish[4].call("tour.publish", {"tour_id": tid, "sdp": offer})
    assert forbidden["error"]["code"] == "forbidden"

    # each viewer's first final, in its own language only
    for peer in english + spanish:
        await peer.wait_for("subtitle", lambda s: s["final"], timeout=40)
    switcher = spanish[1]
    switched = await switcher.call("tour.subtitles", {"tour_id": tid, "lang": "en"})
    assert switched == {"ok": True, "lang": "en"}

    # a late joiner starts at once
    late = client(late_peer)
    assert (await late.join(tid, subtitle_lang="es"))["ok"]
    await wait_until(lambda: late.received("video") > 0, 10)
    ttff = late.rtc.first_frame[f"{host_peer}/video"] - late.joined_at
    print(f"late joiner: first video frame {ttff * 1000:.0f} ms after the join ack")
    assert ttff < LATE_JOINER_BOUND_S

    # a viewer that stops reading does not stall the others
    before = [c.received("video") for c in viewers]
    await asyncio.sleep(2.0)
    gained = [c.received("video") - n for c, n in zip(viewers, before, strict=True)]
    print(f"video frames per viewer in 2 s beside a stalled one (15 fps source): {gained}")
    assert min(gained) >= 10, gained
    assert paused.rtc.pc.connectionState == "connected"

    # questions, translated for the host
    asked = await english[2].call("tour.ask", {"tour_id": tid, "text": "What is the price?"})
    assert asked["ok"], asked
    question = (await host.wait_for("tour.question"))["question"]
    assert question == asked["question"]
    asker = english[2]
    assert question["asker"] == {"id": asker.id, "name": asker.identity.name, "lang": "en"}
    expected = await asyncio.to_thread(translator.translate, "What is the price?", "en", "ko")
    assert question["translation"] == expected and question["lang"] == "en"
    asked = await spanish[2].call("tour.ask", {"tour_id": tid, "text": "¿Cuántas piezas hay?"})
    spanish_q = asked["question"]
    assert spanish_q["lang"] == "es" and spanish_q["id"] == 2
    expected_es = await asyncio.to_thread(translator.translate, spanish_q["text"], "es", "ko")
    assert spanish_q["translation"] == expected_es

    await wait_until(lambda: len(finals(switcher)) >= 2, 40)
    await host.call("tour.leave", {"tour_id": tid})
    for peer in [*english, *spanish, paused_peer, late_peer]:
        ended = await peer.wait_for("tour.ended")
        assert ended == {"tour_id": tid, "reason": "host left"}

    # finals: recognized once, translated per language, each viewer only its language
    lines = {}
    for peer in english + spanish + [late_peer]:
        got = finals(peer)
        assert all(len(s["translations"]) == 1 for s in got), got  # its own language only
        langs = [next(iter(s["translations"])) for s in got]
        if peer is switcher:
            assert langs[0] == "es" and langs[-1] == "en", langs
        else:
            assert set(langs) == {peer.identity.lang if peer is not late_peer else "es"}, langs
        for s in got:
            assert s["lang"] == "ko" and s["speaker"]["id"] == host.id
            [(lang, translation)] = s["translations"].items()
            lines.setdefault((s["start"], s["text"]), {})[lang] = translation
    assert {len(v) for v in lines.values()} == {2}  # every line reached both languages
    print(f"{len(lines)} final lines; first: {next(iter(lines.items()))}")
    for (_, text), by_lang in lines.items():
        for lang, translation in by_lang.items():
            assert translation == await asyncio.to_thread(translator.translate, text, "ko", lang)
    for peer in english + spanish:  # partials: the host's words, translated into its language only
        partials = [s for s in peer.events["subtitle"] if not s["final"]]
        assert all(p["lang"] == "ko" and p["tour_id"] == tid for p in partials)
        assert all(set(p["translations"]) <= {"en", "es"} for p in partials)
        assert all(len(p["translations"]) <= 1 for p in partials)
    # the host reads its own lines (nothing to translate), never its partials
    assert all(s["translations"] == {} for s in host.events["subtitle"])
    assert all(s["final"] for s in host.events["subtitle"])

    await wait_until(lambda: tours.stats() == dict.fromkeys(tours.stats(), 0), 10)
    assert not [t for t in threading.enumerate() if t.name.startswith("captions-")]

    # the transcript and the Q&A outlive the tour
    async with aiohttp.ClientSession() as http:
        base = f"{url}/api/tours/{tid}/transcript"
        auth = {"Authorization": f"Bearer {token_for(late_peer.identity)}"}
        async with http.get(base + "?format=json", headers=auth) as resp:
            assert resp.status == 200
            record = await resp.json()
        assert record["tour"]["id"] == tid and record["tour"]["end_reason"] == "host left"
        stored = {(x["start"], x["text"]): x["translations"] for x in record["lines"]}
        assert stored == {key: by_lang for key, by_lang in lines.items()}
        assert [q["text"] for q in record["questions"]] == ["What is the price?", spanish_q["text"]]
        async with http.get(base + "?format=srt", headers=auth) as resp:
            srt = await resp.text()
        first = record["lines"][0]
        assert srt.startswith("1\n00:00:") and first["text"] in srt
        assert first["translations"]["es"] in srt
        async with http.get(base + "?format=txt", headers=auth) as resp:
            txt = await resp.text()
        assert first["text"] in txt and "Q: " in txt and expected in txt
        outsider = {"Authorization": f"Bearer {token_for(new_user())}"}
        async with http.get(base, headers=outsider) as resp:
            assert resp.status == 403
        async with http.get(base) as resp:
            assert resp.status == 401
        async with http.get(f"{url}/api/tours/t_0000000000000000/transcript", headers=auth) as r:
            assert r.status == 404


async def test_permissions_limits_and_host_disconnect(tour_app, people):
    tours, _url = tour_app
    host, guest, other, stranger = (
        await people("en", role="supplier"),
        await people("es"),
        await people("en"),
        await people("en"),
    )
    buyer_start = await guest.call("tour.start", {"title": "Mine", "lang": "en"})
    assert buyer_start["error"]["code"] == "forbidden"
    for bad in (
        {"title": "", "lang": "en"},
        {"title": "x", "lang": "english"},
        {"title": "x", "lang": "en", "invite": "everyone"},
        {"title": "x", "lang": "en", "public": True},
    ):
        ack = await host.call("tour.start", bad)
        assert ack["error"]["code"] == "invalid", (bad, ack)
    started = await host.call(
        "tour.start", {"title": "Private", "lang": "en", "invite": [guest.id, other.id]}
    )
    tid = started["tour"]["id"]
    assert started["tour"]["invite"] == [guest.id, other.id]

    a, b, c = TourClient(guest), TourClient(other), TourClient(stranger)
    people.clients.extend([a, b, c])
    offer = await c.rtc.offer()
    join = {"tour_id": tid, "sdp": offer, "type": "offer"}
    cases = [
        (stranger, "tour.join", join, "forbidden"),
        (guest, "tour.join", {**join, "tour_id": "t_0000000000000000"}, "not_found"),
        (guest, "tour.join", {**join, "tour_id": "k_0000000000000000"}, "invalid"),
        (guest, "tour.join", {**join, "sdp": "v=0\r\ngarbage"}, "invalid"),
        (guest, "tour.join", {**join, "type": "answer"}, "invalid"),
        (guest, "tour.ask", {"tour_id": tid, "text": "hi"}, "not_found"),
        (guest, "tour.subtitles", {"tour_id": tid, "lang": "en"}, "not_found"),
        (guest, "tour.leave", {"tour_id": tid}, "not_found"),
        (guest, "tour.end", {"tour_id": tid}, "forbidden"),
        (guest, "tour.answer", {"tour_id": tid, "sdp": offer, "type": "answer"}, "not_found"),
        (host, "tour.join", join, "invalid"),  # the host publishes, it does not watch
    ]
    for peer, event, data, code in cases:
        ack = await peer.call(event, data)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, data, ack)

    tours.limits = replace(tours.limits, max_viewers=1)
    assert (await a.join(tid, subtitle_lang="es"))["ok"]
    assert await host.wait_for("tour.viewers", lambda e: e == {"tour_id": tid, "count": 1})
    full = await other.call("tour.join", {"tour_id": tid, "sdp": await b.rtc.offer()})
    assert full["error"]["code"] == "tour_full"
    assert (await guest.call("tour.join", join))["error"]["code"] == "invalid"  # joined already
    too_long = await guest.call("tour.ask", {"tour_id": tid, "text": "x" * 501})
    assert too_long["error"]["code"] == "invalid"
    publish = await guest.call("tour.publish", join)
    assert publish["error"]["code"] == "forbidden"

    assert (await guest.call("tour.leave", {"tour_id": tid})) == {"ok": True}
    assert await host.wait_for("tour.viewers", lambda e: e["count"] == 0)

    open_tour = (await host.call("tour.start", {"title": "Open", "lang": "en"}))["tour"]["id"]
    watcher = TourClient(stranger)
    people.clients.append(watcher)
    assert (await watcher.join(open_tour))["ok"]  # open: anyone signed in may watch
    assert (await host.call("tour.end", {"tour_id": open_tour})) == {"ok": True}
    ended = await stranger.wait_for("tour.ended")
    assert ended == {"tour_id": open_tour, "reason": "ended"}
    assert tours.stats()["tours"] == 1
    b2 = TourClient(other)
    people.clients.append(b2)
    assert (await b2.join(tid))["ok"]
    await asyncio.sleep(0.2)
    began = time.monotonic()
    await host.close()  # the host's socket goes away: the tour ends for everyone
    ended = await other.wait_for("tour.ended")
    assert ended == {"tour_id": tid, "reason": "host disconnected"}
    assert time.monotonic() - began < 5
    await wait_until(lambda: tours.stats() == dict.fromkeys(tours.stats(), 0), 10)
    gone = await other.call("tour.ask", {"tour_id": tid, "text": "still there?"})
    assert gone["error"]["code"] == "not_found"


async def test_tour_list_shows_open_and_inviting_tours_live(tour_app, people):
    tours, _url = tour_app
    host = await people("ko", role="supplier")
    invited, outsider = await people("en"), await people("es")
    assert (await outsider.call("tour.list", {})) == {"ok": True, "tours": []}
    assert (await outsider.call("tour.list", {"all": True}))["error"]["code"] == "invalid"
    assert (await outsider.call("tour.list", "x"))["error"]["code"] == "invalid"

    private = (
        await host.call(
            "tour.start", {"title": "Private line", "lang": "ko", "invite": [invited.id]}
        )
    )["tour"]
    public = (await host.call("tour.start", {"title": "Open line", "lang": "ko"}))["tour"]

    listed = await invited.wait_for("tour.listed", lambda e: e["tour"]["id"] == private["id"])
    assert listed["tour"] == private
    await outsider.wait_for("tour.listed", lambda e: e["tour"]["id"] == public["id"])
    await asyncio.sleep(0.3)  # the private tour's announcement would have arrived by now
    assert [e["tour"]["id"] for e in outsider.events["tour.listed"]] == [public["id"]]

    ids = lambda ack: [t["id"] for t in ack["tours"]]  # noqa: E731
    assert ids(await invited.call("tour.list")) == [private["id"], public["id"]]
    assert ids(await outsider.call("tour.list")) == [public["id"]]
    assert ids(await host.call("tour.list")) == [private["id"], public["id"]]

    viewer = TourClient(outsider)
    people.clients.append(viewer)
    assert (await viewer.join(public["id"]))["ok"]
    counted = await invited.wait_for(
        "tour.listed", lambda e: e["tour"]["id"] == public["id"] and e["tour"]["viewers"] == 1
    )
    assert counted["tour"]["title"] == "Open line"

    assert (await host.call("tour.end", {"tour_id": private["id"]})) == {"ok": True}
    gone = await invited.wait_for("tour.unlisted")
    assert gone == {"tour_id": private["id"], "reason": "ended"}
    assert ids(await invited.call("tour.list")) == [public["id"]]
    assert (await host.call("tour.end", {"tour_id": public["id"]})) == {"ok": True}
    await outsider.wait_for("tour.unlisted", lambda e: e["tour_id"] == public["id"])
    assert [e["tour_id"] for e in outsider.events["tour.unlisted"]] == [public["id"]]
    assert (await invited.call("tour.list")) == {"ok": True, "tours": []}
    assert tours.stats()["tours"] == 0


def test_export_says_which_translations_are_missing_and_why():
    from server.web.tour_routes import reader_notes, render_tour_txt
    from server.web.transcripts import render_srt, render_txt

    line = {
        "start": 1.0,
        "end": 2.5,
        "speaker": {"id": "s", "name": "Kim"},
        "lang": "ko",
        "text": "안녕하세요",
        "translations": {"en": "Hello"},
        "translation_error": {"zh": {"code": "no_pair", "from": "ko", "to": "zh"}},
    }
    # A line kept before notes existed: the engine's message, with the operator's command.
    legacy = {
        **line,
        "translation_error": {
            "zh": "no translation engine serves ko->zh; install "
            "one, e.g. `tradetalk models install translate-ko_en`"
        },
    }
    question = {"at": 3.0, "asker": {"name": "Li"}, "lang": "zh", "text": "多少钱?"}
    question |= {"translation": None, "translation_error": "no translation engine serves zh->ko"}
    lines, questions = reader_notes([line, legacy], [question], "ko")
    note = {"code": "no_pair", "from": "ko", "to": "zh"}
    assert [x["translation_error"] for x in lines] == [{"zh": note}, {"zh": note}]
    assert questions[0]["translation_error"] == {"code": "no_pair", "from": "zh", "to": "ko"}
    srt, txt = render_srt(lines), render_txt(lines)
    assert srt.count("[zh] 未翻译（本服务器不支持ko→zh翻译）") == 2, srt
    assert "    en: Hello" in txt
    assert txt.count("    zh: 未翻译（本服务器不支持ko→zh翻译）") == 2, txt
    asked = render_tour_txt([], questions)
    assert "    (번역되지 않음 (이 서버에는 zh→ko 번역이 없습니다))" in asked, asked
    assert "install" not in srt + txt + asked
