"""The interface catalogues (web_client/js/strings/*.js) are complete: every language the pickers
offer has every key of English in every view's catalogue, with the same `{placeholders}`, and every
key the page uses exists. A key added in one language only, or a translation that drops or renames
a placeholder, fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web_client"
STRINGS = sorted((WEB / "js" / "strings").glob("*.js"))
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A language may share a word with English ("Video", "online", "Messages" in French), but a
# catalogue where more than this share of the texts is still English was copied, not translated.
MAX_SAME_AS_ENGLISH = 0.1


def offered_languages() -> list[str]:
    """The codes in `LANGUAGES` (web_client/js/languages.js): what sign-in and the pickers offer."""
    source = (WEB / "js" / "languages.js").read_text(encoding="utf-8")
    block = source[source.index("export const LANGUAGES") : source.index("];")]
    return re.findall(r'\["([a-z]{2,3})",', block)


def catalogue(path: Path) -> dict[str, dict[str, str]]:
    """The `addStrings({lang: {key: text}})` table of one catalogue module, as data."""
    source = path.read_text(encoding="utf-8")
    body = source[source.index("addStrings(") + len("addStrings(") : source.rindex(");")]
    body = re.sub(r"^(\s*)([a-z]{2,3}): \{", r'\1"\2": {', body, flags=re.M)
    body = re.sub(r",(\s*[}\]])", r"\1", body)  # trailing commas
    return json.loads(body)


CATALOGUES = {path.name: catalogue(path) for path in STRINGS}
LANGS = offered_languages()


def test_the_pickers_offer_at_least_the_common_trade_languages() -> None:
    common = {"zh", "en", "es", "ko", "ja", "de", "fr", "vi", "ar", "pt", "ru", "tr"}
    assert common <= set(LANGS), sorted(common - set(LANGS))
    assert len(STRINGS) >= 5, STRINGS


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_every_language_has_every_key_with_the_same_placeholders(name: str) -> None:
    table = CATALOGUES[name]
    english = table["en"]
    problems = []
    for lang in LANGS:
        strings = table.get(lang)
        if strings is None:
            problems.append(f"{lang}: no catalogue")
            continue
        missing = sorted(set(english) - set(strings))
        extra = sorted(set(strings) - set(english))
        problems += [f"{lang}: missing {key}" for key in missing]
        problems += [f"{lang}: {key} is not an English key" for key in extra]
        for key in sorted(set(english) & set(strings)):
            text = strings[key]
            if not text.strip():
                problems.append(f"{lang}: {key} is empty")
            want, got = PLACEHOLDER.findall(english[key]), PLACEHOLDER.findall(text)
            if sorted(want) != sorted(got):
                problems.append(f"{lang}: {key} has placeholders {got}, English {want}")
    unknown = sorted(set(table) - set(LANGS))
    problems += [f"{lang}: not a language the pickers offer" for lang in unknown]
    assert not problems, "\n".join(problems)


def test_no_catalogue_is_mostly_english() -> None:
    english = {k: v for table in CATALOGUES.values() for k, v in table["en"].items()}
    words = re.compile(r"[A-Za-z]{3}")
    problems = []
    for lang in LANGS[1:] if LANGS[0] == "en" else LANGS:
        strings = {k: v for table in CATALOGUES.values() for k, v in table.get(lang, {}).items()}
        same = [k for k, v in strings.items() if v == english.get(k)]
        same = [k for k in same if words.search(PLACEHOLDER.sub("", english[k]))]
        if len(same) > MAX_SAME_AS_ENGLISH * len(english):
            problems.append(f"{lang}: {len(same)} of {len(english)} texts are English: {same}")
    assert not problems, "\n".join(problems)


def test_no_key_is_defined_by_two_views() -> None:
    seen: dict[str, str] = {}
    clashes = []
    for name, table in CATALOGUES.items():
        for key in table["en"]:
            if key in seen:
                clashes.append(f"{key}: {seen[key]} and {name}")
            seen[key] = name
    assert not clashes, clashes


def test_every_key_the_page_uses_exists() -> None:
    known = {key for table in CATALOGUES.values() for key in table["en"]}
    used: set[str] = set()
    for path in (WEB / "js").glob("*.js"):
        used |= set(re.findall(r'\bt\(\s*"([\w.]+)"', path.read_text(encoding="utf-8")))
    html = (WEB / "index.html").read_text(encoding="utf-8")
    used |= set(re.findall(r'data-i18n(?:-[a-z-]+)?="([\w.]+)"', html))
    assert used, "no keys found: the patterns are stale"
    assert not sorted(used - known), sorted(used - known)
