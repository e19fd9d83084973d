"""MediaRoom with real aiortc peers and real media (loopback, no ICE servers)."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from aiortc import AudioStreamTrack
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError

from media.errors import InvalidSdpError, MediaError, PeerExistsError
from media.fanout import LIVE_FANOUTS, LIVE_TRACKS, VideoFanout
from media.room import LIVE_PEER_CONNECTIONS, MediaRoom
from tests.support.rtc_clients import MovingPatternTrack, RtcClient, payload_types, wait_until

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
KO_WAV = SHARED / "testdata" / "speech" / "ko_test.wav"


class Call:
    """A room plus the test's client peers, wired with in-process signalling."""

    def __init__(self, **room_options) -> None:
        self.clients: dict[str, RtcClient] = {}
        self.pcm: dict[str, list[bytes]] = {}
        self.removed: list[tuple[str, str]] = []
        self.room = MediaRoom(
            "test",
            renegotiate=self._renegotiate,
            on_audio=lambda pid, pcm: self.pcm.setdefault(pid, []).append(pcm),
            on_peer_removed=lambda pid, reason: self.removed.append((pid, reason)),
            **room_options,
        )

    async def _renegotiate(self, peer_id: str, offer_sdp: str) -> str:
        return await self.clients[peer_id].answer(offer_sdp)

    async def join(self, client: RtcClient, **options) -> RtcClient:
        self.clients[client.name] = client
        answer = await self.room.add_peer(client.name, await client.offer(), **options)
        await client.accept(answer)
        return client

    async def close(self) -> None:
        await self.room.close()
        for client in self.clients.values():
            await client.close()


def tap_settled(call: Call, peer: str, quiet: float = 1.0):
    """A predicate: the peer's tapped PCM has not grown for `quiet` seconds (its source ended)."""
    seen = {"bytes": -1, "since": time.monotonic()}

    def settled() -> bool:
        size = sum(len(chunk) for chunk in call.pcm.get(peer, []))
        now = time.monotonic()
        if size != seen["bytes"]:
            seen.update(bytes=size, since=now)
        return size > 0 and now - seen["since"] >= quiet

    return settled


def wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def envelope(samples: np.ndarray, hop: int = 320) -> np.ndarray:
    """RMS energy per 20 ms."""
    n = len(samples) // hop
    return np.sqrt((samples[: n * hop].reshape(n, hop) ** 2).mean(axis=1))


def best_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 50) -> float:
    """Highest Pearson correlation of two envelopes over lags of ±max_lag hops."""
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        x, y = (a[lag:], b) if lag >= 0 else (a, b[-lag:])
        n = min(len(x), len(y))
        if n < 50:
            continue
        best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


async def test_call_forwards_media_taps_audio_and_keyframes_late_joiner() -> None:
    call = Call()
    try:
        player = MediaPlayer(str(KO_WAV))
        a = await call.join(RtcClient("alice", [player.audio, MovingPatternTrack(320, 240)]))
        started = time.monotonic()
        b = await call.join(RtcClient("bob", [AudioStreamTrack(), MovingPatternTrack(160, 120)]))

        # bob gets alice's audio and video in his join answer; alice gets bob's by renegotiation
        await wait_until(
            lambda: b.count("alice", "video") > 10 and b.count("alice", "audio") > 10, 5
        )
        await wait_until(lambda: a.count("bob", "video") > 10, 5)
        assert (320, 240) in b.video_sizes
        assert (160, 120) in a.video_sizes
        assert a.renegotiations >= 1

        # a late joiner (viewer: recvonly, publishes nothing) gets a picture at once
        t0 = time.monotonic()
        carol = await call.join(RtcClient("carol", recv_only=("audio", "video")), publish=False)
        await wait_until(lambda: carol.count("alice", "video") > 0, 3)
        first_frame = carol.first_frame["alice/video"] - t0
        await wait_until(lambda: carol.count("bob", "video") > 0, 5)
        print(f"late joiner: first video frame {first_frame * 1000:.0f} ms after join")
        assert first_frame < 1.5

        stats = call.room.stats()
        print("stats", stats)
        # two publishers x (audio, video): one encoder each, whatever the number of viewers
        assert stats["sources"] == 4
        assert stats["video_encoders"] == 2 and stats["audio_encoders"] == 2
        assert stats["subscriptions"] == 4 + 2 + 2  # carol: 4, bob: alice's 2, alice: bob's 2
        assert stats["per_sender_encoders"] == 0
        alice_video = next(f for f in call.room.fanouts("alice") if f.kind == "video")
        assert alice_video.subscribers == 2
        assert alice_video.keyframes >= 2  # first subscriber + carol's join

        # a real RTCP PLI from carol's receiver forces a keyframe on alice's shared encoder
        out = call.room._peers["carol"].outputs[alice_video]
        receiver = next(
            t.receiver for t in carol.pc.getTransceivers() if t.mid == out.transceiver.mid
        )
        await asyncio.sleep(alice_video.min_keyframe_gap)
        before = alice_video.keyframes
        await receiver._send_rtcp_pli(out.transceiver.sender._ssrc)
        await wait_until(lambda: alice_video.keyframes > before, 1)

        # the audio tap: ~3.9 s of 16 kHz mono PCM shaped like the WAV, once the WAV has played
        # (it starts when the connection is up, which a busy machine can delay by a second)
        await wait_until(lambda: time.monotonic() - started > 5.0, 6)
        await wait_until(tap_settled(call, "alice"), 10, step=0.25)
        pcm = b"".join(call.pcm["alice"])
        tapped = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        reference = wav_samples(KO_WAV)
        duration = len(tapped) / 16000
        print(f"tap: {duration:.2f} s of PCM for a {len(reference) / 16000:.2f} s WAV")
        assert abs(duration - len(reference) / 16000) < 0.6
        corr = best_correlation(envelope(tapped), envelope(reference))
        print(f"tap envelope correlation with the WAV: {corr:.3f}")
        assert corr > 0.8
        assert "bob" in call.pcm  # bob's (silent) microphone is tapped too
        assert "carol" not in call.pcm  # a viewer publishes nothing
    finally:
        await call.close()
    assert call.room.stats()["peer_connections"] == 0


@pytest.mark.parametrize(
    "sdp",
    [
        "",
        "hello",
        "v=0\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
        None,
    ],
)
async def test_malformed_offer_is_a_media_error(sdp) -> None:
    room = MediaRoom("bad")
    with pytest.raises(InvalidSdpError):
        await room.add_peer("x", sdp)
    assert room.stats()["peers"] == 0 and room.stats()["peer_connections"] == 0
    await room.close()


async def test_truncated_offer_and_duplicate_peer() -> None:
    call = Call()
    try:
        client = RtcClient("dup", [MovingPatternTrack()])
        offer = await client.offer()
        with pytest.raises(InvalidSdpError):
            # no ICE credentials / fingerprint left
            await call.room.add_peer("cut", offer.split("a=ice-ufrag")[0])
        call.clients["dup"] = client
        await client.accept(await call.room.add_peer("dup", offer))
        with pytest.raises(PeerExistsError):
            await call.room.add_peer("dup", offer)
        assert isinstance(PeerExistsError("x"), MediaError)
        assert call.room.stats()["peers"] == 1
        assert await call.room.remove_peer("dup") is True
        assert await call.room.remove_peer("dup") is False
        assert call.room.stats()["peer_connections"] == 0
    finally:
        await call.close()


async def test_peer_that_never_answers_a_renegotiation_is_removed() -> None:
    call = Call(renegotiation_timeout=1.0)
    try:
        alice = await call.join(RtcClient("alice", [MovingPatternTrack()]))
        alice.answering = False  # alice will hang when asked to take bob's tracks
        bob = await call.join(RtcClient("bob", [MovingPatternTrack(160, 120)]))
        await wait_until(lambda: call.removed, 5)
        assert call.removed == [("alice", "no answer within 1 s")]
        assert call.room.peer_ids == ["bob"]
        assert await call.room.remove_peer("alice") is False  # already gone: a no-op
        # bob was renegotiated to drop alice's track; the room is consistent
        await wait_until(lambda: bob.renegotiations >= 1, 3)
        stats = call.room.stats()
        assert stats["peer_connections"] == 1 and stats["outputs"] == 0
        assert stats["sources"] == 1 and stats["subscriptions"] == 0
        assert alice.pc.connectionState in ("closed", "failed", "connected", "connecting")
    finally:
        await call.close()


async def test_slow_subscriber_drops_and_resumes_on_a_keyframe() -> None:
    source = MovingPatternTrack(320, 240, fps=30)
    fanout = VideoFanout("cam", max_queue=10)
    fanout.start(source)
    fast, slow = fanout.subscribe(), fanout.subscribe()
    got: list = []

    async def read() -> None:
        while True:
            got.append(await fast.recv())

    reader = asyncio.ensure_future(read())
    try:
        await asyncio.sleep(1.5)
        assert slow.queued <= 10 and slow.dropped > 0  # bounded: the unread viewer drops
        assert len(got) >= 0.8 * fanout.frames_encoded > 30  # the reader is not slowed
        assert got[0].is_keyframe and fanout.encoder_open
        # after an overflow the viewer's queue restarts on a keyframe forced on the encoder
        await wait_until(lambda: slow.queued > 0, 1)
        assert (await slow.recv()).is_keyframe
        assert fanout.keyframes >= 2
        assert all(p.pts > q.pts for p, q in zip(got[1:], got, strict=False))
    finally:
        reader.cancel()
        await fanout.close()
        source.stop()
    assert not fanout.running and not fanout.encoder_open
    with pytest.raises(MediaStreamError):  # the source is gone: subscribers end
        await slow.recv()


def _threads() -> int:
    # the default executor keeps up to min(32, cpus + 4) idle workers once created: not a leak
    return sum(1 for t in threading.enumerate() if not t.name.startswith("asyncio_"))


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _one_call() -> None:
    call = Call()
    try:
        await call.join(RtcClient("host", [AudioStreamTrack(), MovingPatternTrack(160, 120)]))
        viewer = await call.join(RtcClient("viewer", recv_only=("audio", "video")), publish=False)
        await wait_until(lambda: viewer.count("host", "video") > 0, 5)
    finally:
        await call.close()


async def test_fifty_calls_leave_nothing_behind() -> None:
    await _one_call()  # warm-up: lazily created pools, codec tables, logging handlers
    gc.collect()
    await asyncio.sleep(0.2)
    tasks, threads, fds = len(asyncio.all_tasks()), _threads(), _fds()
    started = time.monotonic()
    for _ in range(50):
        await _one_call()
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.3)
    gc.collect()
    print(
        f"50 calls in {elapsed:.1f} s; tasks {tasks}->{len(asyncio.all_tasks())} "
        f"threads {threads}->{_threads()} fds {fds}->{_fds()}"
    )
    assert len(LIVE_PEER_CONNECTIONS) == 0
    assert len(LIVE_FANOUTS) == 0 and len(LIVE_TRACKS) == 0
    assert len(asyncio.all_tasks()) <= tasks
    assert _threads() <= threads
    assert _fds() <= fds + 4  # tolerance: nothing grows per call (50 calls ≈ 200 sockets)


# Chrome numbers opus 111, VP8 96 and its RTX 97; aiortc uses opus 96, VP8 97, RTX 98
CHROME_PTS = {96: 111, 97: 96, 98: 97, 99: 102, 100: 103, 101: 104, 102: 105}


async def test_reoffers_keep_a_browser_clients_payload_types() -> None:
    call = Call()
    try:
        alice = await call.join(
            RtcClient("alice", [AudioStreamTrack(), MovingPatternTrack()], payload_types=CHROME_PTS)
        )
        bob = await call.join(RtcClient("bob", [AudioStreamTrack(), MovingPatternTrack(160, 120)]))
        await wait_until(lambda: alice.count("bob", "video") > 5, 5)
        await wait_until(lambda: bob.count("alice", "video") > 5, 5)
        reoffer = payload_types(alice.offers[-1])
        assert len(reoffer) == 4  # alice's two m-lines + bob's audio and video
        for mid, codecs in reoffer.items():
            if "video/vp8" in codecs:
                assert codecs["video/vp8"] == 96 and codecs.get("rtx/96") == 97, (mid, codecs)
            else:
                assert codecs["audio/opus"] == 111, (mid, codecs)
        assert not any(96 in c.values() for c in reoffer.values() if "audio/opus" in c)
    finally:
        await call.close()


def shift_extmap_ids(sdp: str, by: int) -> str:
    """The offer with every RTP header-extension id moved up by `by` (as a browser numbers)."""
    return re.sub(r"^a=extmap:(\d+)", lambda m: f"a=extmap:{int(m[1]) + by}", sdp, flags=re.M)


def extmap_ids(sdp: str) -> dict[str, set[int]]:
    """uri -> the ids an SDP gives it."""
    ids: dict[str, set[int]] = {}
    for number, uri in re.findall(r"^a=extmap:(\d+)\S* (\S+)", sdp, flags=re.M):
        ids.setdefault(uri, set()).add(int(number))
    return ids


async def test_reoffers_keep_the_clients_header_extension_ids() -> None:
    """Chrome refuses a re-offer that reassigns an extension id; aiortc's own re-offers
    number extensions afresh, so the room must keep the ids the client chose."""
    call = Call()
    try:
        alice = RtcClient("alice", [AudioStreamTrack(), MovingPatternTrack()])
        offer = alice.offer

        async def browser_like_offer() -> str:
            return shift_extmap_ids(await offer(), 4)

        alice.offer = browser_like_offer
        alice = await call.join(alice)
        first = extmap_ids(alice.pc.remoteDescription.sdp)
        bob = await call.join(RtcClient("bob", [AudioStreamTrack(), MovingPatternTrack(160, 120)]))
        await wait_until(lambda: bob.count("alice", "video") > 5, 5)
        await wait_until(lambda: len(alice.offers) > 0, 5)
        reoffer = extmap_ids(alice.offers[-1])
        assert reoffer and all(len(ids) == 1 for ids in reoffer.values()), reoffer
        for uri, ids in first.items():
            assert reoffer.get(uri, ids) == ids, (uri, ids, reoffer.get(uri))
        assert min(min(ids) for ids in reoffer.values()) >= 5  # the client's ids, not 1..
    finally:
        await call.close()
