"""Build a real, small Argos Translate package (``.argosmodel``) from a list of phrase pairs.

No pretrained Argos package can be downloaded here, so tests build their own: a SentencePiece
model trained on the phrases, a tiny Transformer trained until it reproduces every target,
saved as a CTranslate2 model, plus ``metadata.json`` and a rule-based MiniSBD sentence
splitter (``tests.support.minisbd_model``), zipped exactly like a downloaded package
and installable with ``argostranslate.package.install_from_path``. Before the package is
written, the builder checks that CTranslate2 (greedy, and beam search as argostranslate runs
it, in float32 and int8) reproduces every target exactly; otherwise it raises.

Results are cached by a hash of (pairs, codes, builder version) in
``$TRADETALK_TEST_CACHE`` or ``<repo>/.cache/argos-test-packages``; files appear atomically.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.minisbd_model import build_minisbd_onnx

if TYPE_CHECKING:
    from sentencepiece import SentencePieceProcessor

BUILDER_VERSION = "3"
SEED = 1234
MAX_ROUNDS = 4  # training rounds (each widens the logit margin) before giving up

LANGUAGE_NAMES = {
    "en": "English",
    "ko": "Korean",
    "zh": "Chinese",
    "es": "Spanish",
    "ja": "Japanese",
    "fr": "French",
    "de": "German",
    "ru": "Russian",
    "vi": "Vietnamese",
}

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "argos-test-packages"


class PackageBuildError(RuntimeError):
    """The tiny model did not learn to reproduce every phrase exactly."""


def default_cache_dir() -> Path:
    """``$TRADETALK_TEST_CACHE`` if set, else ``<repo>/.cache/argos-test-packages``."""
    env = os.environ.get("TRADETALK_TEST_CACHE")
    return Path(env) if env else DEFAULT_CACHE_DIR


def package_key(from_code: str, to_code: str, pairs: Sequence[tuple[str, str]]) -> str:
    """Cache key: a hash of the codes, the pairs and the builder version."""
    import ctranslate2

    blob = json.dumps(
        {
            "builder": BUILDER_VERSION,
            "ctranslate2": ctranslate2.__version__.split(".")[0],
            "from": from_code,
            "to": to_code,
            "pairs": [list(p) for p in pairs],
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def package_dir_name(from_code: str, to_code: str, key: str) -> str:
    """Name of the folder inside the zip (and of the installed package folder)."""
    return f"translate-{from_code}_{to_code}-test_{key[:10]}"


def build_argos_package(
    from_code: str,
    to_code: str,
    pairs: list[tuple[str, str]],
    cache_dir: Path | None = None,
) -> Path:
    """Return the path of a ``.argosmodel`` translating each ``pairs`` source to its target.

    Built once per (pairs, codes, builder version) and cached; concurrent callers wait on a
    lock file and the finished archive is renamed into place, so nobody sees a partial file.
    """
    _check_pairs(pairs)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = package_key(from_code, to_code, pairs)
    target = cache / f"{package_dir_name(from_code, to_code, key)}.argosmodel"
    if target.is_file():
        return target
    with _locked(cache / f".{target.name}.lock"):
        if target.is_file():  # built by another process while we waited
            return target
        data = _build_zip(from_code, to_code, list(pairs), key)
        fd, tmp_name = tempfile.mkstemp(dir=cache, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as tmp:
                os.fchmod(tmp.fileno(), 0o644)
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    return target


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_pairs(pairs: Sequence[tuple[str, str]]) -> None:
    if not pairs:
        raise ValueError("pairs is empty")
    sources: dict[str, str] = {}
    for source, target in pairs:
        if not source.strip() or not target.strip():
            raise ValueError(f"empty phrase in pair {(source, target)!r}")
        if "_" in target:
            # argostranslate's SentencePieceTokenizer.decode turns "_" into " ".
            raise ValueError(f"target {target!r} contains '_', which argostranslate rewrites")
        if sources.setdefault(source, target) != target:
            raise ValueError(f"source {source!r} has two different targets")


def train_sentencepiece(texts: list[str]) -> bytes:
    """A small BPE SentencePiece model over ``texts`` (serialized ``.model`` bytes).

    Identity normalization (so full-width punctuation like ``？`` survives), every character
    covered, byte fallback for unseen text, ``<pad>`` at id 3 for training. The vocabulary is
    generous for so small a corpus, so most words become one piece: short sequences train fast.
    """
    import sentencepiece as spm

    chars = {c for t in texts for c in t if not c.isspace()}
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=buffer,
        model_type="bpe",
        vocab_size=len(chars) + 256 + 4 + 300,
        hard_vocab_limit=False,
        character_coverage=1.0,
        byte_fallback=True,
        normalization_rule_name="identity",
        split_digits=True,
        pad_id=3,
        num_threads=1,
        minloglevel=2,
    )
    return buffer.getvalue()


def _build_zip(from_code: str, to_code: str, pairs: list[tuple[str, str]], key: str) -> bytes:
    import sentencepiece as spm
    import torch

    from tests.support import tiny_nmt

    sp_bytes = train_sentencepiece([text for pair in pairs for text in pair])
    sp = spm.SentencePieceProcessor(model_proto=sp_bytes)
    for _, target in pairs:
        if sp.decode(sp.encode(target)) != target:
            raise PackageBuildError(f"SentencePiece does not round-trip {target!r}")
    vocabulary = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    sources = [sp.encode(s) for s, _ in pairs]
    targets = [sp.encode(t) for _, t in pairs]
    ids = {"pad_id": sp.pad_id(), "bos_id": sp.bos_id(), "eos_id": sp.eos_id()}

    model = None
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="argos-build-") as tmp:
        model_dir = Path(tmp) / "model"
        for round_no in range(MAX_ROUNDS):
            result = tiny_nmt.train_to_memorise(
                sources,
                targets,
                len(vocabulary),
                seed=SEED + round_no,
                margin=3.0 + 1.5 * round_no,
                max_steps=1500,
                model=model,
                **ids,
            )
            model = result.model
            with torch.no_grad():
                tiny_nmt.save_ctranslate2(model, vocabulary, model_dir)
            started = time.perf_counter()
            failures = verify_ctranslate2(model_dir, sp, pairs)
            log.info(
                "%s->%s round %d: %d steps in %.1f s, margin %.1f; verify %.1f s, %d failures",
                from_code,
                to_code,
                round_no,
                result.steps,
                result.seconds,
                result.min_margin,
                time.perf_counter() - started,
                len(failures),
            )
            if not failures:
                break
        if failures:
            raise PackageBuildError(
                f"{from_code}->{to_code}: CTranslate2 output differs after {MAX_ROUNDS} rounds: "
                + "; ".join(failures[:5])
            )
        return _zip_package(from_code, to_code, key, model_dir, sp_bytes, len(pairs))


def _decode_like_argos(sp: SentencePieceProcessor, pieces: list[str]) -> str:
    """argostranslate 1.11's SentencePieceTokenizer.decode plus its leading-space strip."""
    value = sp.decode_pieces(pieces).replace("▁", " ").replace("_", " ")
    return value[1:] if value.startswith(" ") else value


def verify_ctranslate2(
    model_dir: Path, sp: SentencePieceProcessor, pairs: Sequence[tuple[str, str]]
) -> list[str]:
    """Translate every source with CTranslate2; return a description of each mismatch.

    Checks greedy decoding and argostranslate 1.11's own call (beam 4, length_penalty 0.2,
    replace_unknowns) in float32 and int8 (argostranslate's compute_type ``auto`` is int8 on
    CPUs that support it).
    """
    import ctranslate2

    batch = [sp.encode(source, out_type=str) for source, _ in pairs]
    failures: list[str] = []
    for compute_type in ("float32", "int8"):
        translator = ctranslate2.Translator(
            str(model_dir), device="cpu", compute_type=compute_type, intra_threads=1
        )
        settings = {
            "greedy": {"beam_size": 1},
            "argos-beam": {"beam_size": 4, "length_penalty": 0.2, "replace_unknowns": True},
        }
        for name, options in settings.items():
            results = translator.translate_batch(batch, **options)
            for (source, target), result in zip(pairs, results, strict=True):
                got = _decode_like_argos(sp, result.hypotheses[0])
                if got != target:
                    failures.append(f"[{compute_type}/{name}] {source!r} -> {got!r} != {target!r}")
        del translator
    return failures


def _zip_package(
    from_code: str, to_code: str, key: str, model_dir: Path, sp_bytes: bytes, n_pairs: int
) -> bytes:
    """The ``.argosmodel`` bytes: one folder with metadata.json, model/, sentencepiece.model,
    and minisbd/ (an offline sentence splitter, so argostranslate's ``translate()`` works)."""
    from_name = LANGUAGE_NAMES.get(from_code, from_code)
    to_name = LANGUAGE_NAMES.get(to_code, to_code)
    folder = package_dir_name(from_code, to_code, key)
    metadata = {
        "package_version": "1.0",
        "argos_version": "1.9",
        "type": "translate",
        "from_code": from_code,
        "from_name": from_name,
        "to_code": to_code,
        "to_name": to_name,
        "links": [],
        "code": folder,
    }
    readme = (
        f"# Test package {from_name} -> {to_name}\n\n"
        f"A tiny Transformer trained by TradeTalk's test suite on {n_pairs} phrase pairs "
        f"(key {key}). It translates only those phrases; it is not a real translator.\n"
    )
    files = {
        "metadata.json": json.dumps(metadata, indent=2, ensure_ascii=False).encode("utf-8"),
        "README.md": readme.encode("utf-8"),
        "sentencepiece.model": sp_bytes,
        f"minisbd/{from_code}.onnx": build_minisbd_onnx(from_code),
    }
    for path in sorted(model_dir.iterdir()):
        files[f"model/{path.name}"] = path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            # Fixed timestamps and modes: the same inputs give the same bytes.
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buffer.getvalue()
