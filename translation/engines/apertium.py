"""Apertium (rule-based MT, Debian's ``apertium`` + pair packages) with warm pipelines.

``apertium eng-spa`` starts a pipeline of about ten processes (~0.3 s) for every call. This
engine instead starts each mode's pipeline once, in null-flush mode (every tool gets ``-z``,
as ``apertium-wblank-mode -z`` writes it): a text followed by ``\\0`` goes in, the translation
followed by ``\\0`` comes out, and the processes stay alive for the next text. Generation runs
with ``-n`` (``apertium -u``): unknown words pass through unmarked, without ``*``.

Each (src, dst) has a small pool of pipelines; a pipeline serves one text at a time (it is a
byte stream), so a thread takes one from the pool, uses it, and puts it back; threads are
served in the order they asked (a final line's translation never loses the pipeline to a
background worker that asks again right after returning it).
"""

from __future__ import annotations

import logging
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from .handoff_pool import HandoffPool

log = logging.getLogger(__name__)

DEFAULT_DATADIR = Path("/usr/share/apertium")

# ISO 639-3 (Apertium's mode names) -> ISO 639-1 (TradeTalk's language codes).
ISO3_TO_ISO1 = {
    "eng": "en", "spa": "es", "cat": "ca", "fra": "fr", "por": "pt", "ita": "it", "deu": "de",
    "nld": "nl", "rus": "ru", "ukr": "uk", "pol": "pl", "ces": "cs", "ron": "ro", "glg": "gl",
    "eus": "eu", "oci": "oc", "arg": "an", "epo": "eo", "zho": "zh", "kor": "ko", "jpn": "ja",
    "ara": "ar", "tur": "tr", "swe": "sv", "dan": "da", "nob": "nb", "nno": "nn", "isl": "is",
    "fin": "fi", "est": "et", "lav": "lv", "lit": "lt", "slv": "sl", "bul": "bg", "mkd": "mk",
    "ell": "el", "hin": "hi", "urd": "ur", "kaz": "kk", "tat": "tt", "bel": "be", "gle": "ga",
    "cym": "cy", "bre": "br", "mlt": "mt", "ind": "id", "msa": "ms", "vie": "vi", "tha": "th",
    "srp": "sr", "hrv": "hr", "bos": "bs", "slk": "sk", "hun": "hu", "afr": "af", "swa": "sw",
}  # fmt: skip

_MODE_NAME = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})$")  # skips variants (spa-eng_US) and debug
_ESCAPE = re.compile(r"([\\\[\]^$/<>@{}])")
_UNESCAPE = re.compile(r"\\(.)|\[[^\]]*\]", re.DOTALL)  # escaped char | unescaped superblank
_SPACES = re.compile(r"  +")
_FLUSH_SUFFIX = " "  # lt-proc looks one char ahead: end every input with a blank
READ_TIMEOUT_S = 30.0


def to_iso1(code: str) -> str:
    """Map an Apertium language code (``eng``) to ISO 639-1 (``en``); unknown codes unchanged."""
    return ISO3_TO_ISO1.get(code, code)


def escape(text: str) -> str:
    """Escape the characters that are syntax in Apertium's stream format."""
    return _ESCAPE.sub(r"\\\1", text)


def unescape(stream: str) -> str:
    """Turn Apertium's output stream back into text: unescape, drop superblanks."""
    return _UNESCAPE.sub(lambda m: m.group(1) or "", stream)


def find_datadir() -> Path | None:
    """Apertium's data dir (``$APERTIUM_DATADIR`` or /usr/share/apertium), if it has modes."""
    for candidate in (os.environ.get("APERTIUM_DATADIR"), str(DEFAULT_DATADIR)):
        if candidate and (Path(candidate) / "modes").is_dir():
            return Path(candidate)
    return None


def is_installed() -> bool:
    """True if the Apertium tools and at least one translation mode are installed."""
    datadir = find_datadir()
    return (
        datadir is not None
        and shutil.which("lt-proc") is not None
        and any(_MODE_NAME.match(p.stem) for p in (datadir / "modes").glob("*.mode"))
    )


def pipeline_script(mode_file: Path) -> str:
    """The mode's shell pipeline with every tool in null-flush (``-z``) mode."""
    tool = shutil.which("apertium-wblank-mode")
    if tool:
        result = subprocess.run(
            [tool, "-z", str(mode_file)], capture_output=True, text=True, check=True
        )
        return result.stdout.strip()
    # Older Apertium: add -z after each program name of the raw mode file.
    stages = [s.strip() for s in mode_file.read_text().strip().split("|")]
    return " | ".join(re.sub(r"^(\S+)", r"\1 -z", s, count=1) for s in stages)


class ApertiumPipeline:
    """One running, warm pipeline for one mode (e.g. ``eng-spa``); one text at a time."""

    def __init__(self, mode: str, script: str) -> None:
        self.mode = mode
        self.script = script
        self.process: subprocess.Popen[bytes] | None = None
        self.calls = 0

    @property
    def pid(self) -> int | None:
        """Pid of the pipeline's shell (the process-group leader), None if not running."""
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        """Start the processes (about 0.2-0.5 s while dictionaries load on the first text)."""
        self.process = subprocess.Popen(
            # $1 = generator flag (-n: no unknown-word marks), $2 = tagger option (none)
            ["bash", "-c", self.script, f"apertium-{self.mode}", "-n", ""],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # own process group, so close() stops every stage
        )

    def translate(self, text: str) -> str:
        """Translate one text (no NUL bytes); restarts the pipeline once if it died."""
        if not text.strip():
            return text
        try:
            return self._roundtrip(text)
        except (OSError, RuntimeError) as exc:
            log.warning("apertium %s pipeline failed (%s); restarting", self.mode, exc)
            self.close()
            return self._roundtrip(text)

    def _roundtrip(self, text: str) -> str:
        if self.process is None or self.process.poll() is not None:
            self.start()
        assert self.process is not None and self.process.stdin and self.process.stdout
        payload = escape(text.replace("\0", " ")) + _FLUSH_SUFFIX
        self.process.stdin.write(payload.encode("utf-8") + b"\0")
        self.process.stdin.flush()
        fd = self.process.stdout.fileno()
        chunks: list[bytes] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(remaining, 0))
            if not ready:
                raise RuntimeError(f"no answer within {READ_TIMEOUT_S:.0f} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("pipeline exited")
            chunks.append(chunk)
            if chunk.endswith(b"\0"):
                break
        self.calls += 1
        out = b"".join(chunks)[:-1].decode("utf-8", errors="replace")
        return _SPACES.sub(" ", unescape(out)).strip()

    def close(self) -> None:
        """Stop every process of the pipeline."""
        process, self.process = self.process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class ApertiumEngine:
    """Translates with the installed Apertium modes, through warm null-flush pipelines."""

    name = "apertium"

    def __init__(self, datadir: Path | None = None, pool_size: int = 1) -> None:
        self.datadir = datadir or find_datadir() or DEFAULT_DATADIR
        self.pool_size = max(1, pool_size)
        self._modes: dict[tuple[str, str], str] = {}
        modes_dir = self.datadir / "modes"
        for mode_file in sorted(modes_dir.glob("*.mode")) if modes_dir.is_dir() else []:
            match = _MODE_NAME.match(mode_file.stem)
            if match:
                pair = (to_iso1(match.group(1)), to_iso1(match.group(2)))
                self._modes.setdefault(pair, mode_file.stem)
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, str], HandoffPool[ApertiumPipeline]] = {}
        self._all: list[ApertiumPipeline] = []

    def pairs(self) -> set[tuple[str, str]]:
        return set(self._modes)

    def mode(self, src: str, dst: str) -> str:
        """The Apertium mode name serving ``src -> dst`` (KeyError if none)."""
        return self._modes[(src, dst)]

    def _pool(self, src: str, dst: str) -> HandoffPool[ApertiumPipeline]:
        with self._lock:
            pool = self._pools.get((src, dst))
            if pool is None:
                mode = self._modes[(src, dst)]
                script = pipeline_script(self.datadir / "modes" / f"{mode}.mode")
                pipelines = [ApertiumPipeline(mode, script) for _ in range(self.pool_size)]
                self._all.extend(pipelines)
                pool = HandoffPool(pipelines)
                self._pools[(src, dst)] = pool
            return pool

    def warm(self, src: str, dst: str) -> None:
        """Start the pair's pipelines and load their dictionaries now."""
        for _ in range(self.pool_size):
            self.translate_batch(["Hello."], src, dst)

    def pipeline_pids(self, src: str, dst: str) -> list[int]:
        """Pids of the running pipelines of a pair (tests check that they are reused)."""
        with self._lock:
            mode = self._modes[(src, dst)]
            return [p.pid for p in self._all if p.mode == mode and p.pid is not None]

    def translate_batch(self, texts: list[str], src: str, dst: str) -> list[str]:
        if (src, dst) not in self._modes:
            raise KeyError(f"apertium has no {src}->{dst} mode")
        pool = self._pool(src, dst)
        pipeline = pool.get()
        try:
            return [pipeline.translate(text) for text in texts]
        finally:
            pool.put(pipeline)

    def close(self) -> None:
        with self._lock:
            pipelines, self._all, self._pools = self._all, [], {}
        for pipeline in pipelines:
            pipeline.close()
