"""Downloading models from the public catalogues: short timeouts, progress bar, checksums.

Catalogues: the Argos package index (JSON list of packages with ``links``) and the Vosk model
list (JSON list with ``name``, ``url``, ``md5``). Both URLs can be overridden with the
environment variables ``TRADETALK_ARGOS_INDEX_URL`` and ``TRADETALK_VOSK_MODEL_LIST_URL``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

ARGOS_INDEX_URL = "https://raw.githubusercontent.com/argosopentech/argospm-index/main/index.json"
VOSK_MODEL_LIST_URL = "https://alphacephei.com/vosk/models/model-list.json"
CONNECT_TIMEOUT = 5.0  # seconds to reach a server (also the limit for any single read stall)
CHUNK = 256 * 1024

# Sizes and sha256 prefixes of well-known packages, checked when an index gives no checksum.
KNOWN_PACKAGES: dict[str, tuple[int, str]] = {
    "translate-en_es-1_0.argosmodel": (87_503_191, "d698d0ef"),
    "translate-es_en-1_0.argosmodel": (87_381_097, "1b963aa0"),
    "translate-en_zh-1_9.argosmodel": (70_743_021, "433e7c4f"),
    "translate-zh_en-1_9.argosmodel": (74_481_402, "62e7af5a"),
}


class DownloadError(RuntimeError):
    """A catalogue or model could not be downloaded or failed verification."""


def offline_help(what: str, url: str) -> str:
    """What to do when a download is impossible."""
    return (
        f"cannot download {what} from {url}. If this machine is offline, download the file "
        f"on a machine with internet and run `tradetalk models install /path/to/file`."
    )


def _open(url: str, timeout: float):  # -> http.client.HTTPResponse
    request = urllib.request.Request(url, headers={"User-Agent": "tradetalk-models/0.1"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{offline_help(url.rsplit('/', 1)[-1], url)} ({reason})") from exc


def fetch_json(url: str, timeout: float | None = None) -> Any:
    """Download and parse a JSON catalogue."""
    with _open(url, timeout or CONNECT_TIMEOUT) as response:
        try:
            body = response.read()
        except OSError as exc:  # a read that stalls past the timeout
            raise DownloadError(f"{offline_help(url.rsplit('/', 1)[-1], url)} ({exc})") from exc
    try:
        return json.loads(body)
    except ValueError as exc:
        raise DownloadError(f"bad catalogue at {url}: {exc}") from exc


def argos_index_url() -> str:
    return os.environ.get("TRADETALK_ARGOS_INDEX_URL", ARGOS_INDEX_URL)


def vosk_model_list_url() -> str:
    return os.environ.get("TRADETALK_VOSK_MODEL_LIST_URL", VOSK_MODEL_LIST_URL)


def _progress(done: int, total: int | None, out: IO[str], label: str) -> None:
    if total:
        filled = int(30 * done / total)
        bar = "#" * filled + "-" * (30 - filled)
        out.write(
            f"\r{label} [{bar}] {100 * done / total:5.1f}% {done / 1e6:.1f}/{total / 1e6:.1f} MB"
        )
    else:
        out.write(f"\r{label} {done / 1e6:.1f} MB")
    out.flush()


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    sha256_prefix: str | None = None,
    timeout: float | None = None,
    progress: IO[str] | None = None,
) -> Path:
    """Download ``url`` to ``dest`` (via a .part file), verifying size and checksums.

    On any mismatch the file is deleted and ``DownloadError`` raised.
    """
    progress = sys.stderr if progress is None else progress
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    label = dest.name
    try:
        with _open(url, timeout or CONNECT_TIMEOUT) as response, part.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or size
            done = 0
            shown = -1  # the bar is redrawn once per whole percent (or MB without a size)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                for digest in hashes.values():
                    digest.update(chunk)
                done += len(chunk)
                step = 100 * done // total if total else done // 1_000_000
                if step != shown:
                    shown = step
                    _progress(done, total, progress, label)
        progress.write("\n")
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    except OSError as exc:  # includes URLError and socket timeouts
        part.unlink(missing_ok=True)
        raise DownloadError(f"download of {url} interrupted: {exc}") from exc
    actual = {name: digest.hexdigest() for name, digest in hashes.items()}
    problems = []
    if size is not None and done != size:
        problems.append(f"size {done} != expected {size}")
    if sha256 and actual["sha256"] != sha256.lower():
        problems.append(f"sha256 {actual['sha256']} != expected {sha256}")
    if md5 and actual["md5"] != md5.lower():
        problems.append(f"md5 {actual['md5']} != expected {md5}")
    if sha256_prefix and not actual["sha256"].startswith(sha256_prefix.lower()):
        problems.append(f"sha256 {actual['sha256']} does not start with {sha256_prefix}")
    if problems:
        part.unlink(missing_ok=True)
        raise DownloadError(f"refusing {url}: " + "; ".join(problems))
    part.replace(dest)
    progress.write(f"{dest.name}: sha256 {actual['sha256']}\n")
    return dest
