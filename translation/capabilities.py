"""What this server can do per language: speech recognition and translation routes.

``capabilities(translator, data_dir)`` is the document ``GET /api/capabilities`` serves and
``tradetalk models list`` prints::

    {"languages": ["ar", "de", "en", ...],                # offered (and translated) languages
     "speech": {"ko": "vosk", "zh": "whisper", ...},    # every recognized language -> engine
     "translation": {"en": {"es": "apertium", ...},     # from -> to -> route
                     "ko": {"es": "argos>apertium"}}}   # pivot through English: engine>engine

A direct pair names its engine; a pair pivoted through English names both hops' engines
joined by ``>``. Pairs without a route are absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import TranslationUnavailable
from .translator import Translator

# The trade languages every server offers in its pickers (more when engines serve others).
OFFERED_LANGUAGES = ("zh", "en", "es", "ko", "ja", "de", "fr", "vi", "ar", "pt", "ru", "tr")


def speech_languages(data_dir: Path | str) -> dict[str, str]:
    """Every language with a speech recognizer: language -> engine name."""
    from .speech_engines import speech_languages as engines_speech_languages

    return dict(engines_speech_languages(data_dir))


def missing_speech_line(speech: dict[str, str]) -> str | None:
    """One line for the operator naming the offered languages without a recognizer, or None."""
    absent = [lang for lang in OFFERED_LANGUAGES if lang not in speech]
    if not absent:
        return None
    return (
        f"speech: {', '.join(absent)} not recognized on this server; install a Vosk model with "
        "`tradetalk models install vosk-model-small-<lang>-<version>` (names: "
        "https://alphacephei.com/vosk/models) with internet"
    )


def route_name(translator: Translator, src: str, dst: str) -> str | None:
    """``apertium`` (direct), ``argos>apertium`` (through English), or None (no route)."""
    try:
        hops = translator.route(src, dst)
    except TranslationUnavailable:
        return None
    return ">".join(hop.engine.name for hop in hops) or None


def offered_languages(translator: Translator) -> list[str]:
    """The offered languages plus any other one a translation engine serves, sorted (a
    multilingual recognizer knows about a hundred: those are in ``speech`` only)."""
    codes = set(OFFERED_LANGUAGES)
    for src, dst in translator.pairs():
        codes.update((src, dst))
    return sorted(codes)


def capabilities(translator: Translator, data_dir: Path | str) -> dict[str, Any]:
    """The capability document (see the module docstring)."""
    speech = speech_languages(data_dir)
    languages = offered_languages(translator)
    translation: dict[str, dict[str, str]] = {}
    for src in languages:
        routes = {}
        for dst in languages:
            if dst != src and (route := route_name(translator, src, dst)) is not None:
                routes[dst] = route
        if routes:
            translation[src] = routes
    return {"languages": languages, "speech": speech, "translation": translation}
