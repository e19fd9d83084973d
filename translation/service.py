"""Async facade for the server: caching, coalescing and bounded CPU work off the event loop.

One message shown to N people in K languages costs at most K translations: results are cached
in process (LRU) and in a shared cache (Redis, plugged in by the server), keyed by the engine
route (with each hop's default-glossary version), source and target language, the
conversation's glossary and text; concurrent identical requests wait for
one computation. Engine calls run in a bounded ThreadPoolExecutor, so a burst queues there and
the event loop keeps serving chat. Work nobody waits for (the re-translations of a speaker's open
line) runs on its own worker (`background=True`), so it never queues ahead of a message or a
final line, and only in its turn (`background_turn()`): one at a time, while no message or
final line is being translated, so it never takes a core from one either; the caller picks its
newest text once its turn has come (a text superseded while it waited is never translated).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from .errors import FAILED, TranslationNote, TranslationUnavailable, translation_note
from .protect import Glossary
from .translator import Translator, normalize_lang

log = logging.getLogger(__name__)

CACHE_KEY_PREFIX = "tt:mt:v1:"


class AsyncCache(Protocol):
    """A shared string cache (the server plugs in a Redis-backed one)."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str) -> None: ...


@dataclass
class ServiceStats:
    """Counters: engine translations run, and requests served otherwise."""

    computed: int = 0  # translations actually run on an engine
    cache_hits: int = 0  # served from the in-process LRU
    shared_hits: int = 0  # served from the shared cache
    coalesced: int = 0  # waited for an identical request already running
    errors: int = 0  # unavailable pairs and engine failures

    @property
    def requests(self) -> int:
        return self.computed + self.cache_hits + self.shared_hits + self.coalesced


def glossary_hash(glossary: Glossary | None) -> str:
    """A stable short hash of a glossary (``-`` for none)."""
    if not glossary:
        return "-"
    blob = json.dumps(sorted(glossary.items()), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def cache_key(route: str, src: str, dst: str, glossary: Glossary | None, text: str) -> str:
    """The cache key of one translation (route, languages, glossary hash and text)."""
    digest = hashlib.sha256(
        "\x1f".join((route, src, dst, glossary_hash(glossary), text)).encode("utf-8")
    ).hexdigest()
    return f"{CACHE_KEY_PREFIX}{src}:{dst}:{digest}"


class TranslationService:
    """Cached, coalesced, bounded async translation over a synchronous :class:`Translator`."""

    def __init__(
        self,
        translator: Translator | None,
        max_workers: int = 2,
        cache_size: int = 10_000,
        shared_cache: AsyncCache | None = None,
        background_workers: int = 1,
    ) -> None:
        """`translator` None: the engines come later (`use`; a server loads them at start, off
        the event loop); until then no pair is served."""
        self.translator = translator
        self.shared_cache = shared_cache
        self.cache_size = cache_size
        self.stats = ServiceStats()
        self._lru: OrderedDict[str, str] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[str]] = {}
        self._missing_logged: set[tuple[str, str]] = set()
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="mt")
        self._background = ThreadPoolExecutor(
            max_workers=background_workers, thread_name_prefix="mt-background"
        )
        self._background_turns = asyncio.Semaphore(background_workers)
        self._foreground = 0  # messages and final lines being translated (engine work)
        self._foreground_idle = asyncio.Event()
        self._foreground_idle.set()

    @asynccontextmanager
    async def background_turn(self) -> AsyncIterator[None]:
        """Wait for a background worker free while no foreground translation (a message, a
        final line) computes; hold it for the block. Callers choose what to translate inside
        it (their newest text), then `translate(..., background=True)`."""
        async with self._background_turns:
            while self._foreground:
                self._foreground_idle.clear()
                await self._foreground_idle.wait()
            yield

    def use(self, translator: Translator) -> None:
        """Serve with `translator` (the engines loaded after this service was built)."""
        self.translator = translator

    def _engines(self, src: str, dst: str) -> Translator:
        if self.translator is None:
            raise TranslationUnavailable(src, dst, "the translation engines are still loading")
        return self.translator

    async def translate(
        self,
        text: str,
        src: str,
        dst: str,
        glossary: Glossary | None = None,
        *,
        background: bool = False,
    ) -> str:
        """Translate ``text``; raises TranslationUnavailable for an unserved pair.
        ``background``: on the background worker (a request for the same text already running
        is joined either way)."""
        src, dst = normalize_lang(src), normalize_lang(dst)
        if src == dst or not text.strip():
            return text
        try:
            route = self._engines(src, dst).route_key(src, dst)
        except TranslationUnavailable:
            self.stats.errors += 1
            raise
        key = cache_key(route, src, dst, glossary, text)
        cached = self._lru_get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        running = self._inflight.get(key)
        if running is not None:
            self.stats.coalesced += 1
            return await asyncio.shield(running)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._compute(key, text, src, dst, glossary, background)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        else:
            future.set_result(result)
            return result
        finally:
            self._inflight.pop(key, None)

    async def _compute(
        self,
        key: str,
        text: str,
        src: str,
        dst: str,
        glossary: Glossary | None,
        background: bool = False,
    ) -> str:
        if self.shared_cache is not None:
            try:
                shared = await self.shared_cache.get(key)
            except Exception:
                log.exception("shared translation cache: get failed")
                shared = None
            if shared is not None:
                self.stats.shared_hits += 1
                self._lru_set(key, shared)
                return shared
        loop = asyncio.get_running_loop()
        engines = self._engines(src, dst)
        if background:
            result = await loop.run_in_executor(
                self._background, engines.translate, text, src, dst, glossary
            )
        else:
            self._foreground += 1
            try:
                result = await loop.run_in_executor(
                    self._executor, engines.translate, text, src, dst, glossary
                )
            finally:
                self._foreground -= 1
                if not self._foreground:
                    self._foreground_idle.set()
        self.stats.computed += 1
        self._lru_set(key, result)
        if self.shared_cache is not None:
            try:
                await self.shared_cache.set(key, result)
            except Exception:
                log.exception("shared translation cache: set failed")
        return result

    async def translate_many(
        self,
        text: str,
        src: str,
        targets: Iterable[str],
        glossary: Glossary | None = None,
    ) -> tuple[dict[str, str], dict[str, TranslationNote]]:
        """Translate into every target language at once. Returns (translations by language,
        reader-facing note by language: ``{"code", "from", "to"}``, see
        :func:`~translation.errors.translation_note`); never raises for an unavailable pair or
        a failing engine, so a message can always be delivered. What the operator should do
        about a missing pair is logged once per pair, never put in a note."""
        src = normalize_lang(src)
        languages = list(dict.fromkeys(normalize_lang(t) for t in targets if t))
        results = await asyncio.gather(
            *(self.translate(text, src, lang, glossary) for lang in languages),
            return_exceptions=True,
        )
        translations: dict[str, str] = {}
        errors: dict[str, TranslationNote] = {}
        for lang, result in zip(languages, results, strict=True):
            if isinstance(result, TranslationUnavailable):
                self._log_missing(result)
                errors[lang] = result.note
            elif isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                self.stats.errors += 1
                log.error("translation %s->%s failed: %r", src, lang, result)
                errors[lang] = translation_note(FAILED, src, lang)
            else:
                translations[lang] = result
        return translations, errors

    def _log_missing(self, exc: TranslationUnavailable) -> None:
        """Tell the operator (once per pair) what a reader was shown untranslated, and why."""
        pair = (exc.src, exc.dst)
        if pair not in self._missing_logged:
            self._missing_logged.add(pair)
            log.warning("untranslated for readers: %s", exc)

    async def warm(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Load the engines of these pairs now (in the worker threads), so the first messages
        do not pay for model loading and process start-up. Unavailable pairs are skipped."""
        loop = asyncio.get_running_loop()
        for src, dst in pairs:
            try:
                await loop.run_in_executor(
                    self._executor, self._engines(src, dst).translate, "Hello", src, dst
                )
            except TranslationUnavailable:
                continue

    def _lru_get(self, key: str) -> str | None:
        value = self._lru.get(key)
        if value is not None:
            self._lru.move_to_end(key)
        return value

    def _lru_set(self, key: str, value: str) -> None:
        self._lru[key] = value
        self._lru.move_to_end(key)
        while len(self._lru) > self.cache_size:
            self._lru.popitem(last=False)

    def close(self) -> None:
        """Stop the worker threads (engines are closed by their owner)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._background.shutdown(wait=False, cancel_futures=True)
