"""The engines' command-line commands: ``models``, ``translate`` and ``transcribe``.

Wiring (done by ``server/cli.py``): ``add_commands(subparsers)`` adds the parsers and
``run_command(args, data_dir)`` runs one, returning an exit code (None: not one of ours).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .errors import TranslationUnavailable
from .installer import InstallError, install, remove, speech_entries
from .speech_models import SpeechModelMissing
from .translator import Translator
from .wav_audio import AudioFormatError

COMMANDS = ("models", "translate", "transcribe")


class EnginesUnavailable(RuntimeError):
    """The translation registry could not be loaded."""


def add_commands(subparsers: Any) -> None:
    """Add the ``models``, ``translate`` and ``transcribe`` commands to an argparse parser."""
    models = subparsers.add_parser("models", help="list, install or remove offline models")
    actions = models.add_subparsers(dest="models_action", required=True)
    actions.add_parser("list", help="speech models per language and translation pairs")
    inst = actions.add_parser(
        "install",
        help="install a Vosk model (folder or .zip), an Argos .argosmodel, or a catalogue "
        "name (translate-en_es, vosk-model-small-en-us-0.15; needs internet)",
    )
    inst.add_argument("source", nargs="+", help="files, folders or catalogue names")
    inst.add_argument("--lang", help="language of a Vosk model whose name doesn't say it")
    actions.add_parser(
        "provision",
        help="install the default translation packages (Argos en<->zh, ko, ja, de, fr, es) "
        "now; `serve` does this once by itself (TRADETALK_PROVISION)",
    )
    rem = actions.add_parser("remove", help="remove a Vosk language (ko) or Argos pair (en-es)")
    rem.add_argument("name")

    translate = subparsers.add_parser("translate", help="translate a text with the local engines")
    translate.add_argument("--from", dest="src", required=True, help="source language")
    translate.add_argument("--to", dest="dst", required=True, help="target language")
    translate.add_argument("text", nargs="+", help="text to translate")

    transcribe = subparsers.add_parser("transcribe", help="print the transcript of a WAV file")
    transcribe.add_argument("file", type=Path, help="WAV file (16-bit PCM; 16 kHz mono best)")
    transcribe.add_argument("--lang", required=True, help="spoken language")
    transcribe.add_argument("--to", dest="dst", help="also print a translation to this language")
    transcribe.add_argument("--words", action="store_true", help="print word timings too")


def run_command(args: argparse.Namespace, data_dir: Path) -> int | None:
    """Run ``args.command`` if it is one of ours; returns its exit code, else None."""
    command = getattr(args, "command", None)
    if command not in COMMANDS:
        return None
    data_dir = Path(data_dir)
    try:
        if command == "models":
            return _models(args, data_dir)
        if command == "translate":
            return _translate(" ".join(args.text), args.src, args.dst, data_dir)
        return _transcribe(args, data_dir)
    except (InstallError, SpeechModelMissing, AudioFormatError, FileNotFoundError) as exc:
        print(f"tradetalk {command}: {exc}", file=sys.stderr)
        return 2


def _models(args: argparse.Namespace, data_dir: Path) -> int:
    action = args.models_action
    if action == "install":
        for source in args.source:
            print(install(source, data_dir, args.lang), flush=True)
    elif action == "provision":
        return _provision(data_dir)
    elif action == "remove":
        print(remove(args.name, data_dir))
    else:
        print(format_model_list(data_dir))
    return 0


def _provision(data_dir: Path) -> int:
    from .provisioning import DEFAULT_SET, missing_line, provision

    outcome = provision(data_dir, DEFAULT_SET, progress=sys.stdout, reinstall_removed=True)
    if outcome.busy:
        print("tradetalk models provision: another process is installing models now")
        return 2
    for name in outcome.installed:
        print(f"installed {name}")
    if outcome.failed:
        why = "offline" if outcome.offline else "failed"
        print(missing_line(list(outcome.failed), why), file=sys.stderr)
        for name, reason in outcome.failed.items():
            print(f"  {name}: {reason}", file=sys.stderr)
        return 2
    print("the default translation packages are installed")
    return 0


def _build_translator(data_dir: Path) -> Translator | str:
    """The installed engines' Translator, or a line saying why there is none."""
    try:
        from .registry import build_translator
    except ImportError as exc:
        return f"(translation engines unavailable: {exc})"
    return build_translator(data_dir)


def translation_pairs(data_dir: Path) -> dict[tuple[str, str], str] | str:
    """Every translation pair with its engine's name, or a line saying why there are none."""
    translator = _build_translator(data_dir)
    if isinstance(translator, str):
        return translator
    try:
        return dict(sorted(translator.pairs().items()))
    finally:
        translator.close()


def format_language_table(document: dict[str, Any]) -> list[str]:
    """Per language: speech ✓/✗ with its engine, and translation to and from every other
    offered language ✓/✗ with the route (``argos>apertium``: through English)."""
    languages, speech = document["languages"], document["speech"]
    routes = document["translation"]
    lines = ["Languages (speech recognition; translation to and from the others):"]
    for lang in languages:
        engine = speech.get(lang)
        lines.append(f"  {lang:<4} speech {'✓ ' + engine if engine else '✗'}")
        for label, route_of in (
            ("to  ", lambda other, lang=lang: routes.get(lang, {}).get(other)),
            ("from", lambda other, lang=lang: routes.get(other, {}).get(lang)),
        ):
            served: list[str] = []
            unserved: list[str] = []
            for other in languages:
                if other != lang:
                    route = route_of(other)
                    (served if route else unserved).append(f"{other} {route}" if route else other)
            text = "✓ " + ", ".join(served) if served else ""
            if unserved:
                text += ("; " if text else "") + "✗ " + " ".join(unserved)
            lines.append(f"       {label} {text}")
    return lines


def format_model_list(data_dir: Path) -> str:
    """The text of ``tradetalk models list``."""
    from .capabilities import capabilities, missing_speech_line
    from .provisioning import DEFAULT_SET, missing, missing_line

    lines: list[str] = []
    notes: list[str | None] = []  # for the operator: what is missing, how to install it
    translator = _build_translator(data_dir)
    pairs: dict[tuple[str, str], str] | str
    if isinstance(translator, str):
        pairs = translator
    else:
        try:
            document = capabilities(translator, data_dir)
            lines += format_language_table(document)
            notes.append(missing_speech_line(document["speech"]))
            pairs = dict(sorted(translator.pairs().items()))
        finally:
            translator.close()
    lines.append("Vosk speech models (language, engine, where found):")
    entries = speech_entries(data_dir)
    for entry in entries:
        lines.append(f"  {entry.lang:<6} vosk      {entry.source}: {entry.path}")
    if not entries:
        lines.append("  (none; `tradetalk models install` a Vosk model)")
    lines.append("Translation (pair, engine):")
    if isinstance(pairs, str):
        lines.append(f"  {pairs}")
    else:
        for (src, dst), engine in pairs.items():
            lines.append(f"  {src}->{dst:<6} {engine}")
        if not pairs:
            lines.append("  (none; install Apertium pairs or Argos packages)")
    absent = missing(data_dir, DEFAULT_SET)
    notes.append(missing_line(absent) if absent else None)
    lines += [note for note in notes if note]
    return "\n".join(lines)


def _translate_text(text: str, src: str, dst: str, data_dir: Path) -> str:
    """Translate with the installed engines; raises TranslationUnavailable for a missing pair."""
    try:
        from .registry import build_translator
    except ImportError as exc:
        raise EnginesUnavailable(f"translation engines unavailable: {exc}") from exc
    translator = build_translator(data_dir)
    try:
        return translator.translate(text, src, dst)
    finally:
        translator.close()


def _translate(text: str, src: str, dst: str, data_dir: Path) -> int:
    try:
        print(_translate_text(text, src, dst, data_dir))
    except (TranslationUnavailable, EnginesUnavailable) as exc:
        print(f"tradetalk translate: {exc}", file=sys.stderr)
        return 2
    return 0


def _transcribe(args: argparse.Namespace, data_dir: Path) -> int:
    from .speech import transcribe_wav
    from .speech_engines import WHISPER, engine_for, load_engine

    if not args.file.is_file():
        raise FileNotFoundError(f"no such file: {args.file}")
    if engine_for(args.lang, data_dir) == WHISPER:
        import numpy as np

        from .wav_audio import read_wav_pcm16
        from .whisper_speech import transcribe_whole

        _, model = load_engine(args.lang, data_dir)
        pcm = np.frombuffer(read_wav_pcm16(args.file, 16000), dtype=np.int16)
        results = []  # Whisper gives no word timings here
        transcript = transcribe_whole(pcm.astype(np.float32) / 32768.0, args.lang, model)
    else:
        results = transcribe_wav(args.file, args.lang, data_dir=data_dir)
        transcript = " ".join(r.text for r in results)
    print(transcript)
    if args.words:
        for result in results:
            for w in result.words:
                print(f"  {w.start:7.2f} {w.end:7.2f} {w.conf:5.2f} {w.word}")
    if args.dst:
        if not transcript:
            print(f"[{args.dst}] (nothing recognised)")
            return 0
        try:
            print(f"[{args.dst}] {_translate_text(transcript, args.lang, args.dst, data_dir)}")
        except (TranslationUnavailable, EnginesUnavailable) as exc:
            print(f"tradetalk transcribe: translation failed: {exc}", file=sys.stderr)
            return 2
    return 0
