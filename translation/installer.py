"""Installing, listing and removing models in the data dir.

- Vosk models (a model folder or its .zip) go to ``<data>/models/vosk/<lang>/``; the language
  comes from ``lang`` or from the standard name (``vosk-model-small-en-us-0.15`` -> ``en``).
- Argos packages (``.argosmodel``) are installed through argostranslate's own
  ``package.install_from_path`` into ``<data>/models/argos/``.
- Catalogue names (``translate-en_es``, ``vosk-model-small-en-us-0.15``) are downloaded from
  the public indexes (see ``translation.model_downloads``) and then installed as files.
Every zip is checked before extraction: no absolute paths, no ``..``, no symlinks.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from . import model_downloads
from .model_downloads import DownloadError
from .paths import argos_packages_dir, configure_argos_env, models_dir, vosk_models_dir
from .speech_models import is_vosk_model_dir, speech_models

# Vosk names some languages by country code.
VOSK_LANG_ALIASES = {"cn": "zh", "kz": "kk", "ua": "uk", "jp": "ja"}
_VOSK_NAME = re.compile(r"^vosk-model-(?:small-)?([a-z]{2,3})(?:[-_.]|$)", re.IGNORECASE)
_LANG_CODE = re.compile(r"^[a-z]{2,3}(?:[-_][a-z0-9]{2,8})?$", re.IGNORECASE)
_ARGOS_NAME = re.compile(r"^translate-([a-z]{2,3})_([a-z]{2,3})(?:-(\d+(?:_\d+)*))?$")


class InstallError(RuntimeError):
    """A model could not be installed or removed; the message says why and what to do."""


@dataclass
class SpeechEntry:
    lang: str
    path: Path
    source: str  # "data dir" or "package vosk_model_<lang>"


def vosk_lang_from_name(name: str) -> str | None:
    """Language of a standard Vosk model name (``vosk-model-small-cn-0.22`` -> ``zh``)."""
    stem = name.removesuffix(".zip")
    if stem.startswith("vosk-model-spk"):
        return None  # speaker-identification models are not speech recognisers
    match = _VOSK_NAME.match(stem)
    if not match:
        return None
    code = match.group(1).lower()
    return VOSK_LANG_ALIASES.get(code, code)


def check_lang(lang: str) -> str:
    if not _LANG_CODE.match(lang):
        raise InstallError(f"not a language code: {lang!r} (use e.g. en, zh, ko)")
    return lang.lower()


# --- zip safety -------------------------------------------------------------------------------


def check_zip_members(archive: zipfile.ZipFile) -> list[str]:
    """Names of the archive's members; raises InstallError on path traversal or symlinks."""
    names = []
    for info in archive.infolist():
        name = info.filename.replace("\\", "/")
        path = PurePosixPath(name)
        if (
            name.startswith("/")
            or re.match(r"^[A-Za-z]:", name)
            or ".." in path.parts
            or "\0" in name
        ):
            raise InstallError(f"unsafe path in zip archive: {info.filename!r}; refusing it")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InstallError(f"symbolic link in zip archive: {info.filename!r}; refusing it")
        names.append(name)
    return names


def safe_extract(zip_path: Path, dest: Path) -> None:
    """Extract a zip archive into ``dest`` after checking every member."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            check_zip_members(archive)
            archive.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise InstallError(f"{zip_path}: not a valid zip archive ({exc})") from exc


def _zip_argos_metadata(zip_path: Path) -> dict | None:
    """The metadata.json of an Argos package archive, or None if it isn't one."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = check_zip_members(archive)
            meta = [n for n in names if PurePosixPath(n).name == "metadata.json"]
            meta = [n for n in meta if len(PurePosixPath(n).parts) <= 2]
            if not meta:
                return None
            return json.loads(archive.read(meta[0]))
    except zipfile.BadZipFile as exc:
        raise InstallError(f"{zip_path}: not a valid zip archive ({exc})") from exc
    except ValueError as exc:
        raise InstallError(f"{zip_path}: unreadable metadata.json ({exc})") from exc


# --- Vosk -------------------------------------------------------------------------------------


def _find_model_root(folder: Path) -> Path:
    """``folder`` itself or the single Vosk model folder below it (as zips usually hold)."""
    if is_vosk_model_dir(folder):
        return folder
    found = [p for p in folder.rglob("am") if p.is_dir() and is_vosk_model_dir(p.parent)]
    roots = sorted({p.parent for p in found}, key=lambda p: len(p.parts))
    if not roots:
        raise InstallError(f"{folder}: no Vosk model inside (a model folder has am/ and conf/)")
    return roots[0]


def install_vosk_model(source: Path, data_dir: Path, lang: str | None = None) -> Path:
    """Install a Vosk model folder or .zip as ``<data>/models/vosk/<lang>/`` (replacing one)."""
    source = Path(source)
    lang = lang or vosk_lang_from_name(source.name)
    if lang is None:
        raise InstallError(
            f"cannot tell the language of {source.name!r}; pass --lang (e.g. --lang en)"
        )
    lang = check_lang(lang)
    root = vosk_models_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = root / lang
    with tempfile.TemporaryDirectory(dir=root, prefix=".installing-") as tmp:
        staging = Path(tmp) / "model"
        if source.is_dir():
            shutil.copytree(_find_model_root(source), staging, symlinks=False)
        else:
            extracted = Path(tmp) / "extracted"
            safe_extract(source, extracted)
            _find_model_root(extracted).rename(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


# --- Argos ------------------------------------------------------------------------------------


def check_zip_crcs(zip_path: Path) -> None:
    """Read every member of an archive and check its CRC-32 (a truncated or corrupted download
    fails here even when the catalogue publishes no checksum)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InstallError(f"{zip_path}: not a valid zip archive ({exc})") from exc
    if bad is not None:
        raise InstallError(f"{zip_path}: member {bad!r} fails its CRC check; download it again")


def install_argos_package(source: Path, data_dir: Path) -> tuple[str, str]:
    """Install an ``.argosmodel`` through argostranslate; returns its (from, to) pair."""
    meta = _zip_argos_metadata(source)
    if not meta or "from_code" not in meta or "to_code" not in meta:
        raise InstallError(f"{source}: not an Argos package (no metadata.json with from/to codes)")
    configure_argos_env(data_dir)
    import argostranslate.package

    expected = argos_packages_dir(data_dir).resolve()
    if Path(argostranslate.settings.package_data_dir).resolve() != expected:
        raise InstallError(
            "argostranslate was imported before its data dir was configured; run the install "
            "in a fresh process"
        )
    argostranslate.package.install_from_path(source)
    return meta["from_code"], meta["to_code"]


def argos_packages(data_dir: Path) -> list[tuple[str, str, Path]]:
    """Installed Argos packages (from, to, folder), read from their metadata.json."""
    root = argos_packages_dir(data_dir)
    found = []
    if root.is_dir():
        for meta_path in sorted(root.glob("*/metadata.json")):
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                found.append((meta["from_code"], meta["to_code"], meta_path.parent))
            except (ValueError, KeyError, OSError):
                continue
    return found


# --- catalogue --------------------------------------------------------------------------------


def _downloads_dir(data_dir: Path) -> Path:
    return models_dir(data_dir) / "downloads"


def _version_key(version: object) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", str(version or "0"))]


def argos_catalogue_name(src: str, dst: str) -> str:
    """The catalogue name of an Argos pair: ``translate-en_zh``."""
    return f"translate-{src}_{dst}"


def argos_name_pair(name: str) -> tuple[str, str] | None:
    """The (from, to) pair of an Argos catalogue name, or None if it isn't one."""
    match = _ARGOS_NAME.match(name)
    return (match.group(1), match.group(2)) if match else None


def install_from_catalogue(
    name: str,
    data_dir: Path,
    lang: str | None = None,
    progress: IO[str] | None = None,
    argos_index: list[dict] | None = None,
) -> str:
    """Download a catalogue model by name, verify it, install it; returns a summary line.

    ``argos_index``: the Argos index already fetched (several installs share one fetch)."""
    argos = _ARGOS_NAME.match(name)
    if argos:
        src, dst, version = argos.groups()
        index = argos_index
        if index is None:
            index = model_downloads.fetch_json(model_downloads.argos_index_url())
        candidates = [
            p
            for p in index
            if p.get("from_code") == src
            and p.get("to_code") == dst
            and p.get("type", "translate") == "translate"
            and (version is None or str(p.get("package_version", "")).replace(".", "_") == version)
        ]
        if not candidates:
            raise InstallError(f"{name}: not in the Argos package index")
        entry = max(candidates, key=lambda p: _version_key(p.get("package_version")))
        links = [
            link
            for link in entry.get("links") or []
            if isinstance(link, str) and link.startswith(("https://", "http://", "file:"))
        ]  # the index also lists ipfs:// mirrors
        if not links:
            raise InstallError(f"{name}: the index lists no download link")
        version_tag = str(entry.get("package_version", "0")).replace(".", "_")
        filename = f"translate-{src}_{dst}-{version_tag}.argosmodel"
        known = model_downloads.KNOWN_PACKAGES.get(filename)
        path = model_downloads.download(
            links[0],
            _downloads_dir(data_dir) / filename,
            sha256=entry.get("sha256") or entry.get("checksum"),
            md5=entry.get("md5"),
            size=entry.get("size") or (known[0] if known else None),
            sha256_prefix=known[1] if known else None,
            progress=progress,
        )
        try:
            check_zip_crcs(path)
            pair = install_argos_package(path, data_dir)
        finally:
            path.unlink(missing_ok=True)
        return f"installed argos {pair[0]}-{pair[1]} from {links[0]}"
    if name.startswith("vosk-model-"):
        models = model_downloads.fetch_json(model_downloads.vosk_model_list_url())
        entry = next((m for m in models if m.get("name") == name), None)
        if entry is None:
            raise InstallError(f"{name}: not in the Vosk model list")
        url = entry.get("url") or f"https://alphacephei.com/vosk/models/{name}.zip"
        lang = lang or vosk_lang_from_name(name) or entry.get("lang", "").split("-")[0] or None
        path = model_downloads.download(
            url,
            _downloads_dir(data_dir) / f"{name}.zip",
            md5=entry.get("md5"),
            sha256=entry.get("sha256"),
            progress=progress,
        )
        try:
            check_zip_crcs(path)
            target = install_vosk_model(path, data_dir, lang)
        finally:
            path.unlink(missing_ok=True)
        return f"installed vosk {target.name} from {url} into {target}"
    raise InstallError(
        f"{name!r} is neither a file nor a catalogue name "
        "(e.g. translate-en_es, vosk-model-small-en-us-0.15)"
    )


# --- entry points -----------------------------------------------------------------------------


def install(
    source: str, data_dir: Path, lang: str | None = None, progress: IO[str] | None = None
) -> str:
    """Install from a local file/folder or a catalogue name; returns a summary line."""
    path = Path(source).expanduser()
    if path.is_dir():
        target = install_vosk_model(path, data_dir, lang)
        return f"installed vosk {target.name} into {target}"
    if path.is_file():
        if path.suffix == ".argosmodel" or "from_code" in (_zip_argos_metadata(path) or {}):
            src, dst = install_argos_package(path, data_dir)
            return f"installed argos {src}-{dst} into {argos_packages_dir(data_dir)}"
        target = install_vosk_model(path, data_dir, lang)
        return f"installed vosk {target.name} into {target}"
    if "/" in source or source.endswith((".zip", ".argosmodel")):
        raise InstallError(f"no such file or folder: {source}")
    try:
        return install_from_catalogue(source, data_dir, lang, progress)
    except DownloadError as exc:
        raise InstallError(str(exc)) from exc


def remove(name: str, data_dir: Path) -> str:
    """Remove a Vosk language (``ko``) or an Argos pair (``en-es``); returns a summary line."""
    pair = re.match(r"^(?:translate-)?([a-z]{2,3})[-_]([a-z]{2,3})$", name)
    if pair:
        src, dst = pair.groups()
        matches = [p for s, d, p in argos_packages(data_dir) if (s, d) == (src, dst)]
        if matches:
            for folder in matches:
                shutil.rmtree(folder)
            return f"removed argos {src}-{dst}"
    lang = name.lower()
    folder = vosk_models_dir(data_dir) / lang
    if _LANG_CODE.match(lang) and folder.is_dir():
        shutil.rmtree(folder)
        return f"removed vosk {lang} ({folder})"
    packaged = speech_models(data_dir).get(lang)
    if packaged is not None:
        raise InstallError(
            f"the {lang} speech model comes from a Python package ({packaged}); "
            f"remove it with `pip uninstall vosk-model-{lang}`"
        )
    raise InstallError(f"nothing installed under the name {name!r} (see `tradetalk models list`)")


def speech_entries(data_dir: Path) -> list[SpeechEntry]:
    """Every language with a speech model and where it was found."""
    local = vosk_models_dir(data_dir).resolve()
    entries = []
    for lang, path in speech_models(data_dir).items():
        inside = path.resolve().is_relative_to(local)
        source = "data dir" if inside else f"package vosk_model_{lang}"
        entries.append(SpeechEntry(lang, path, source))
    return entries
