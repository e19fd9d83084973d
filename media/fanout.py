"""Encode once per source, hand the same packets to every subscriber.

aiortc's `RTCRtpSender` encodes every frame its track returns, once per sender: N viewers of
one camera cost N VP8 encoders. But when the track's `recv()` returns an `av.Packet` instead
of a frame, the sender skips encoding and only packetizes it (aiortc 1.16,
`RTCRtpSender._next_encoded_frame` → `Encoder.pack`): the RTP payloads come from
`bytes(packet)` (VP8: split at 1300 bytes behind a payload descriptor with
`partition_start=1` on the first piece, the same framing aiortc uses for its own libvpx
output) and the RTP timestamp from `packet.pts` in `packet.time_base`, offset by that
sender's random origin. The codec is not checked, so the sender's negotiated codec must be
the one we encode (VP8, Opus) — `media.negotiation` takes care of that.
`pack` only reads the packet, so one `av.Packet` object serves every subscriber.

A `Fanout` consumes one decoded source track (aiortc's receiver always decodes), encodes
each frame once with PyAV, and pushes the packets into every subscriber's `PacketTrack`, a
bounded queue. A subscriber that falls behind drops packets instead of buffering without
limit; for video it then waits for the next keyframe, which it requests from the shared
encoder (as does a new subscriber, and a viewer's PLI/FIR).
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import itertools
import logging
import time
import weakref
from collections.abc import Callable
from typing import cast

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame

logger = logging.getLogger(__name__)

VIDEO_CLOCK = fractions.Fraction(1, 90000)
AUDIO_RATE = 48000
AUDIO_CLOCK = fractions.Fraction(1, AUDIO_RATE)
OPUS_FRAME = 960  # 20 ms at 48 kHz
TAP_RATE = 16000

LIVE_FANOUTS: weakref.WeakSet[Fanout] = weakref.WeakSet()
LIVE_TRACKS: weakref.WeakSet[PacketTrack] = weakref.WeakSet()
_track_numbers = itertools.count(1)


class PacketTrack(MediaStreamTrack):
    """One subscriber's bounded queue of shared, pre-encoded packets, used as a sender's track."""

    def __init__(self, source: Fanout, max_queue: int, track_id: str | None = None) -> None:
        super().__init__()
        self.kind = source.kind
        if track_id:
            self._id = track_id
        self._source: Fanout | None = source
        self._queue: collections.deque[av.Packet] = collections.deque()
        self._max_queue = max_queue
        self._ready = asyncio.Event()
        self._ended = False
        #: video only: drop packets until a keyframe (new subscriber, or after an overflow)
        self.needs_keyframe = source.kind == "video"
        self.delivered = 0
        self.dropped = 0
        LIVE_TRACKS.add(self)

    @property
    def queued(self) -> int:
        """Packets waiting to be read."""
        return len(self._queue)

    def push(self, packet: av.Packet) -> None:
        """Queue a packet without blocking; on overflow drop (video: until the next keyframe)."""
        if self._ended:
            return
        if self.needs_keyframe:
            if not packet.is_keyframe:
                self.dropped += 1
                return
            self.needs_keyframe = False
        if len(self._queue) >= self._max_queue:
            if self.kind == "video":
                self.dropped += len(self._queue)
                self._queue.clear()
                if not packet.is_keyframe:
                    self.dropped += 1
                    self.needs_keyframe = True
                    if self._source is not None:  # rate-limited: a laggard can't flood others
                        self._source.request_keyframe()
                    return
            else:
                self._queue.popleft()
                self.dropped += 1
        self._queue.append(packet)
        self._ready.set()

    async def recv(self) -> av.Packet:
        """The next packet; raises `MediaStreamError` once the source or this track ended."""
        while not self._queue:
            if self._ended or self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        self.delivered += 1
        return self._queue.popleft()

    def request_keyframe(self) -> None:
        """A PLI/FIR from this subscriber: ask the shared encoder for a keyframe."""
        if self._source is not None:
            self._source.request_keyframe()

    def end(self) -> None:
        """The source is gone: wake the reader, which then gets `MediaStreamError`."""
        self._ended = True
        self._queue.clear()
        self._ready.set()

    def stop(self) -> None:
        """Unsubscribe (called by aiortc when the sender stops, or by the room)."""
        source, self._source = self._source, None
        if source is not None:
            source.unsubscribe(self)
        self.end()
        super().stop()


class Fanout:
    """One published source track: consumed once, encoded once, shared with all subscribers."""

    kind = ""

    def __init__(self, source_id: str, *, max_queue: int) -> None:
        self.source_id = source_id
        self.max_queue = max_queue
        self.frames_in = 0
        self.frames_encoded = 0
        self._subscribers: set[PacketTrack] = set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        LIVE_FANOUTS.add(self)

    @property
    def subscribers(self) -> int:
        """How many subscriber tracks are attached."""
        return len(self._subscribers)

    @property
    def running(self) -> bool:
        """Whether the pump task is alive."""
        return self._task is not None and not self._task.done()

    @property
    def encoder_open(self) -> bool:
        """Whether this fanout currently holds an encoder."""
        raise NotImplementedError

    def start(self, track: MediaStreamTrack) -> None:
        """Start consuming `track` (a decoded remote track) on the running loop."""
        self._task = asyncio.get_running_loop().create_task(
            self._pump(track), name=f"fanout-{self.kind}-{self.source_id}"
        )

    def subscribe(self, track_id: str | None = None) -> PacketTrack:
        """A new subscriber track; video asks the encoder for a keyframe at once."""
        track = PacketTrack(self, self.max_queue, track_id)
        if self._closed:
            track.end()
            return track
        self._subscribers.add(track)
        self.request_keyframe(urgent=True)
        return track

    def unsubscribe(self, track: PacketTrack) -> None:
        """Detach a subscriber track."""
        self._subscribers.discard(track)

    def request_keyframe(self, urgent: bool = False) -> None:
        """Ask for the next encoded frame to be a keyframe (no-op for audio)."""

    async def close(self) -> None:
        """Stop the pump, end every subscriber and release the encoder; idempotent."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        self._end_subscribers()
        self._release()

    def _end_subscribers(self) -> None:
        subscribers, self._subscribers = self._subscribers, set()
        for track in subscribers:
            track.end()

    async def _pump(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                # aiortc types recv() as frame or packet; a decoded track gives frames
                frame = cast(av.frame.Frame, await track.recv())
                self.frames_in += 1
                try:
                    self._on_frame(frame)
                    if not self._subscribers:
                        self._idle()
                        continue
                    packets = await self._encode(frame)
                except Exception:  # a bad frame must not kill the source
                    logger.exception("%s %s: frame dropped", self.kind, self.source_id)
                    continue
                self.frames_encoded += 1
                for packet in packets:
                    for subscriber in list(self._subscribers):
                        subscriber.push(packet)
        except MediaStreamError:
            pass
        finally:
            self._end_subscribers()
            self._source_ended()

    def _on_frame(self, frame: av.frame.Frame) -> None:
        """Hook called for every decoded frame, subscribers or not."""

    def _idle(self) -> None:
        """Hook called for a frame nobody subscribes to (nothing is encoded)."""

    def _source_ended(self) -> None:
        """Hook called once the source track ended (or the fanout was closed)."""

    async def _encode(self, frame: av.frame.Frame) -> list[av.Packet]:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError


class VideoFanout(Fanout):
    """Decoded video → one PyAV libvpx VP8 encoder → the same packets to every subscriber.

    Encoding runs in the default executor (like aiortc's own), one frame at a time per source.
    RTP timestamps come from our own 90 kHz clock (monotonic, strictly increasing).
    """

    kind = "video"

    def __init__(
        self,
        source_id: str,
        *,
        max_queue: int = 30,
        bitrate: int = 800_000,
        cpu_used: int = 6,
        min_keyframe_gap: float = 0.5,
    ) -> None:
        super().__init__(source_id, max_queue=max_queue)
        self.bitrate = bitrate
        self.cpu_used = cpu_used
        self.min_keyframe_gap = min_keyframe_gap
        self.keyframes = 0
        self._codec: VideoCodecContext | None = None
        self._size: tuple[int, int] | None = None
        self._want_keyframe = False
        self._urgent_keyframe = False
        self._last_keyframe = float("-inf")
        self._t0 = time.monotonic()
        self._last_pts = -1

    @property
    def encoder_open(self) -> bool:
        return self._codec is not None

    def request_keyframe(self, urgent: bool = False) -> None:
        """Next frame is a keyframe. Urgent (a new subscriber) is honoured on the next frame;
        others (PLI/FIR, a subscriber recovering from overflow) at most every
        `min_keyframe_gap` seconds, so one lossy viewer cannot make everyone's stream mostly
        keyframes."""
        self._want_keyframe = True
        self._urgent_keyframe = self._urgent_keyframe or urgent

    def _idle(self) -> None:
        # nobody watches: free the encoder; the next subscriber starts on a keyframe anyway
        self._release()

    def _next_pts(self) -> int:
        pts = max(int((time.monotonic() - self._t0) * 90000), self._last_pts + 1)
        self._last_pts = pts
        return pts

    async def _encode(self, frame: av.frame.Frame) -> list[av.Packet]:
        assert isinstance(frame, VideoFrame)
        now = time.monotonic()
        force = self._want_keyframe and (
            self._urgent_keyframe or now - self._last_keyframe >= self.min_keyframe_gap
        )
        if force:
            self._want_keyframe = self._urgent_keyframe = False
        pts = self._next_pts()
        loop = asyncio.get_running_loop()
        packet = await loop.run_in_executor(None, self._encode_sync, frame, pts, force)
        if packet is None:
            return []
        if packet.is_keyframe:
            self.keyframes += 1
            self._last_keyframe = now
        return [packet]

    def _open(self, width: int, height: int) -> VideoCodecContext:
        codec = av.CodecContext.create("libvpx", "w")
        codec.width = width
        codec.height = height
        codec.pix_fmt = "yuv420p"
        codec.time_base = VIDEO_CLOCK
        codec.bit_rate = self.bitrate
        codec.gop_size = 3000  # keyframes on demand only
        codec.qmin = 4
        codec.qmax = 56
        codec.thread_count = 2 if width * height > 640 * 480 else 1
        codec.options = {
            "deadline": "realtime",
            "cpu-used": str(self.cpu_used),
            "lag-in-frames": "0",
            "minrate": str(self.bitrate),
            "maxrate": str(self.bitrate),
            "bufsize": str(self.bitrate),
            "undershoot-pct": "95",
            "overshoot-pct": "15",
            "static-thresh": "1",
            "max-intra-rate": "300",
        }
        return codec

    def _encode_sync(self, frame: VideoFrame, pts: int, force: bool) -> av.Packet | None:
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        size = (frame.width, frame.height)
        if self._codec is None or self._size != size:
            self._codec = self._open(*size)
            self._size = size
        frame.pts = pts
        frame.time_base = VIDEO_CLOCK
        frame.pict_type = PictureType.I if force else PictureType.NONE
        packets = self._codec.encode(frame)
        if not packets:
            return None
        if len(packets) == 1:
            packet = packets[0]
        else:  # not expected with lag-in-frames=0; keep one packet per frame
            packet = av.Packet(b"".join(bytes(p) for p in packets))
            packet.is_keyframe = any(p.is_keyframe for p in packets)
        packet.pts = pts
        packet.dts = pts
        packet.time_base = VIDEO_CLOCK
        return packet

    def _release(self) -> None:
        self._codec = None
        self._size = None


class AudioFanout(Fanout):
    """Decoded audio → speech tap (16 kHz mono s16) and one Opus encoder shared by subscribers.

    The tap runs for every frame, subscribed or not: exactly one per publisher. `on_pcm` is a
    synchronous callable on the event loop; it must not block (push into a queue). When the
    source track ends, `on_pcm(b"")` is called once: no more audio will come.
    """

    kind = "audio"

    def __init__(
        self,
        source_id: str,
        *,
        on_pcm: Callable[[bytes], None] | None = None,
        max_queue: int = 50,
        bitrate: int = 48_000,
    ) -> None:
        super().__init__(source_id, max_queue=max_queue)
        self.on_pcm = on_pcm
        self.bitrate = bitrate
        self.tap_bytes = 0
        self._tap = av.AudioResampler(format="s16", layout="mono", rate=TAP_RATE)
        self._to_opus: av.AudioResampler | None = None
        self._codec: AudioCodecContext | None = None
        self._t0 = time.monotonic()
        self._next_pts = 0

    @property
    def encoder_open(self) -> bool:
        return self._codec is not None

    def _on_frame(self, frame: av.frame.Frame) -> None:
        assert isinstance(frame, AudioFrame)
        frame.pts = None  # the receiver's RTP-derived pts may jump; resamplers don't need it
        if self.on_pcm is None:
            return
        pcm = b"".join(f.to_ndarray().tobytes() for f in self._tap.resample(frame))
        if pcm:
            self.tap_bytes += len(pcm)
            try:
                self.on_pcm(pcm)
            except Exception:
                logger.exception("audio tap callback failed for %s", self.source_id)

    def _idle(self) -> None:
        self._release()

    def _source_ended(self) -> None:
        if self.on_pcm is None:
            return
        try:
            self.on_pcm(b"")
        except Exception:
            logger.exception("audio tap callback failed for %s", self.source_id)

    async def _encode(self, frame: av.frame.Frame) -> list[av.Packet]:
        if self._codec is None:
            self._codec = av.CodecContext.create("libopus", "w")
            self._codec.sample_rate = AUDIO_RATE
            self._codec.layout = "mono"
            self._codec.format = "s16"
            self._codec.bit_rate = self.bitrate
            self._codec.time_base = AUDIO_CLOCK
            self._codec.options = {"application": "voip"}
            self._to_opus = av.AudioResampler(
                format="s16", layout="mono", rate=AUDIO_RATE, frame_size=OPUS_FRAME
            )
        assert self._to_opus is not None
        packets: list[av.Packet] = []
        assert isinstance(frame, AudioFrame)
        for chunk in self._to_opus.resample(frame):
            for packet in self._codec.encode(chunk):
                packet.pts = self._stamp()
                packet.dts = packet.pts
                packet.time_base = AUDIO_CLOCK
                packets.append(packet)
        return packets

    def _stamp(self) -> int:
        """48 kHz timestamps: contiguous while audio flows, jumping forward across gaps."""
        wall = int((time.monotonic() - self._t0) * AUDIO_RATE)
        if wall - self._next_pts > AUDIO_RATE // 10:
            self._next_pts = wall - wall % OPUS_FRAME
        pts = self._next_pts
        self._next_pts += OPUS_FRAME
        return pts

    def _release(self) -> None:
        self._codec = None
        self._to_opus = None
