"""Prometheus metrics (prometheus-client): counters the code bumps, and gauges read on scrape.

`GET /metrics` serves them in the text exposition format: on the public port behind a bearer
token (`TRADETALK_METRICS_TOKEN`), or on a separate loopback port (`TRADETALK_METRICS_PORT`), or
not at all when neither is set.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

EVENTS = Counter(
    "tradetalk_events", "Socket.IO events answered, by event name and ack code", ["event", "code"]
)
EVENT_SECONDS = Histogram(
    "tradetalk_event_seconds",
    "Time from an event's arrival to its ack (message.send: stored and fanned out)",
    ["event"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REDIS_ERRORS = Counter("tradetalk_redis_errors", "Events and connects that found Redis away")
SUBTITLE_SECONDS = Histogram(
    "tradetalk_subtitle_latency_seconds",
    "End of an utterance's speech to its translated final subtitle sent",
    buckets=(0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13),
)
RECOGNITION_HOP_SECONDS = Histogram(
    "tradetalk_recognition_hop_seconds",
    "What handing an utterance to a worker added to its final: the node's wait after the end "
    "marker minus the worker's own time",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

Gauges = Callable[[], dict[str, float]]
_sources: weakref.WeakSet[Any] = weakref.WeakSet()


def event_done(event: str, ack: Any, seconds: float) -> None:
    """Count one answered event and how long it took."""
    code = "ok"
    if isinstance(ack, dict) and not ack.get("ok", True):
        code = str(ack.get("error", {}).get("code", "?"))
    counter = _event_counters.get((event, code))
    if counter is None:  # `labels` takes a lock and builds a key: once per event and code
        counter = _event_counters[(event, code)] = EVENTS.labels(event, code)
    counter.inc()
    if seconds:
        timer = _event_timers.get(event)
        if timer is None:
            timer = _event_timers[event] = EVENT_SECONDS.labels(event)
        timer.observe(seconds)


_event_counters: dict[tuple[str, str], Any] = {}
_event_timers: dict[str, Any] = {}


def subtitle_sent(speech_end_monotonic: float) -> None:
    """A final subtitle went out for speech that ended at `speech_end_monotonic`."""
    SUBTITLE_SECONDS.observe(max(0.0, time.monotonic() - speech_end_monotonic))


GAUGE_HELP = {
    "sockets": "Connected Socket.IO sockets in this process",
    "calls": "Running calls",
    "call_members": "Members (peers) of running calls",
    "tours": "Running tours",
    "tour_viewers": "Viewers (peers) of running tours",
    "video_encoders": "Video encoders open (one per published camera, shared by its viewers)",
    "audio_encoders": "Opus encoders open (one per published microphone, shared)",
    "per_sender_encoders": "Encoders aiortc built per viewer (0: every viewer gets shared packets)",
    "video_keyframes": "Keyframes the open video encoders made (new viewers, PLIs, overflows)",
    "tour_relay_links": "Links this node (a tour's owner) sends a tour's packets on to relays",
    "tours_relayed": "Other nodes' tours this node relays to its viewers",
    "tour_relayed_viewers": "Viewers this node serves for other nodes' tours",
    "speakers_recognized": "Speech recognizers running (one per speaker)",
    "recognizer_backlog_chunks": "Audio chunks waiting for a recognizer",
    "recognizer_dropped_audio_bytes": "Audio the live recognizers dropped (backlog full)",
    "translations_computed": "Translations run on an engine",
    "translation_cache_hits": "Translations served from a cache (in-process or shared)",
    "recognition_workers": "Recognition workers alive (0: this node recognizes in-process)",
    "recognition_queue_depth": "Utterances waiting for a worker or being recognized by one",
    "recognition_utterances_worker": "Utterances of this node's speakers recognized by a worker",
    "recognition_utterances_node": "Utterances recognized in this process (no worker, fallback)",
    "recognition_fallbacks": "Utterances handed to the workers that this node recognized after all",
    "recognition_worker_active": "Utterances a worker is recognizing now",
    "recognition_worker_slots": "Utterances a worker recognizes at once at most",
    "recognition_worker_done": "Utterances a worker finished since it started",
    "recognition_worker_cpu_seconds": "CPU seconds a worker process used since it started",
}


class _Live(Collector):
    """Reads every registered source's gauges at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        totals = dict.fromkeys(GAUGE_HELP, 0.0)
        labeled: dict[str, tuple[str, dict[str, float]]] = {}
        for source in list(_sources):
            for name, value in source.gauges().items():
                totals[name] = totals.get(name, 0.0) + value
            labeled.update(getattr(source, "labeled_gauges", dict)())
        for name in labeled:
            totals.pop(name, None)
        for name, value in totals.items():
            yield GaugeMetricFamily(f"tradetalk_{name}", GAUGE_HELP.get(name, name), value=value)
        for name, (label, values) in labeled.items():
            family = GaugeMetricFamily(
                f"tradetalk_{name}", GAUGE_HELP.get(name, name), labels=[label]
            )
            for key, value in sorted(values.items()):
                family.add_metric([key], value)
            yield family


_LIVE = _Live()
REGISTRY.register(_LIVE)


def add_source(source: Any) -> None:
    """Count `source.gauges()` (a dict of GAUGE_HELP names -> values) in every scrape, and
    `source.labeled_gauges()` if it has one (name -> (label, {label value: value}))."""
    _sources.add(source)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
