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
    inst.add_argument("source", help="file, folder or catalogue name")
    inst.add_argument("--lang", help="language of a Vosk model whose name doesn't say it")
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
        print(install(args.source, data_dir, args.lang))
    elif action == "remove":
        print(remove(args.name, data_dir))
    else:
        print(format_model_list(data_dir))
    return 0


def translation_pairs(data_dir: Path) -> dict[tuple[str, str], str] | str:
    """Every translation pair with its engine's name, or a line saying why there are none."""
    try:
        from .registry import build_translator
    except ImportError as exc:
        return f"(translation engines unavailable: {exc})"
    translator = build_translator(data_dir)
    try:
        return dict(sorted(translator.pairs().items()))
    finally:
        translator.close()


def format_model_list(data_dir: Path) -> str:
    """The text of ``tradetalk models list``."""
    lines = ["Speech recognition (language, engine, where found):"]
    entries = speech_entries(data_dir)
    for entry in entries:
        lines.append(f"  {entry.lang:<6} vosk      {entry.source}: {entry.path}")
    if not entries:
        lines.append("  (none; `tradetalk models install` a Vosk model)")
    lines.append("Translation (pair, engine):")
    pairs = translation_pairs(data_dir)
    if isinstance(pairs, str):
        lines.append(f"  {pairs}")
    else:
        for (src, dst), engine in pairs.items():
            lines.append(f"  {src}->{dst:<6} {engine}")
        if not pairs:
            lines.append("  (none; install Apertium pairs or Argos packages)")
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
