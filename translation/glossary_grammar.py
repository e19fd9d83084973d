"""The little grammar a trade glossary needs: plurals, compound terms, article agreement.

A glossary term is translated as an opaque placeholder, so the engine cannot inflect it or
the words around it. These rules, per language, put back what matters most in trade text:

- **plurals**: an entry is written once, in the singular; "bolt -> perno" also matches
  "bolts" and writes "pernos" (:func:`plural`);
- **compounds**: "stainless steel" + "bolts" are two entries next to each other; the pair is
  written as one term in the target's word order ("pernos de acero inoxidable",
  "不锈钢螺栓") (:func:`compound`);
- **articles**: the engine wrote an article for an unknown word ("el ZXQ0" for "the bolts",
  "a ZXQ0" for "an invoice"); it is made to agree with the term (:func:`agree`).

Languages without a rule here get the entries as written (no plural, juxtaposed compounds in
the source order).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# ----- plurals -------------------------------------------------------------------------------

_EN_SIBILANT = re.compile(r"(?:s|x|z|ch|sh)$")
_EN_CONSONANT_Y = re.compile(r"[^aeiou]y$")
_EN_HEAD_BEFORE = re.compile(r"^(\S+)(\s+(?:of|for|in|on|with|to)\s.*)$")  # "bill of lading"
_ES_HEAD_UNTIL = re.compile(r"\s(?:de|del|a|al|en|con|para|por|sin|sobre)\s")
_ES_UNACCENT = str.maketrans("áéíóú", "aeiou")


def _en_plural_word(word: str) -> str:
    if _EN_SIBILANT.search(word):
        return word + "es"
    if _EN_CONSONANT_Y.search(word):
        return word[:-1] + "ies"
    return word + "s"


def _en_plural(term: str) -> str:
    head = _EN_HEAD_BEFORE.match(term)
    if head:  # "bill of lading" -> "bills of lading"
        return _en_plural_word(head.group(1)) + head.group(2)
    words = term.split(" ")
    return " ".join([*words[:-1], _en_plural_word(words[-1])])


def _es_plural_word(word: str) -> str:
    if not word or not word[-1].isalpha():
        return word
    last = word[-1].lower()
    if last in "aeiouáéó":
        return word + "s"
    if last == "z":
        return word[:-1] + "ces"
    if last in "sx" and len(word) > 1 and word[-2].lower() not in "áéíóú":
        return word  # "análisis", "tórax": invariable
    if re.search(r"[áéíóú][nsl]$", word):  # "cotización" -> "cotizaciones"
        return word[:-2] + word[-2].translate(_ES_UNACCENT) + word[-1] + "es"
    return word + "es"


def _es_plural(term: str) -> str:
    """Pluralize the words before the first preposition: "caja de cartón" -> "cajas de
    cartón", "arandela plana" -> "arandelas planas"."""
    cut = _ES_HEAD_UNTIL.search(term)
    head, rest = (term[: cut.start()], term[cut.start() :]) if cut else (term, "")
    return " ".join(_es_plural_word(w) for w in head.split(" ")) + rest


PLURALS: dict[str, Callable[[str], str]] = {"en": _en_plural, "es": _es_plural}


def plural(term: str, lang: str) -> str:
    """The plural of a term in ``lang`` (the term itself for languages without plurals)."""
    rule = PLURALS.get(lang)
    return rule(term) if rule else term


def es_adjective(base: str, gender: str, is_plural: bool) -> str:
    """A Spanish adjective (given masculine singular) agreeing with its noun: "zincado" ->
    "zincadas" for a feminine plural. Words from the first preposition on ("galvanizado en
    caliente"), adverbs ("totalmente roscado") and "no" stay as they are."""
    cut = _ES_HEAD_UNTIL.search(base)
    head, rest = (base[: cut.start()], base[cut.start() :]) if cut else (base, "")
    words = []
    for word in head.split(" "):
        if not word.endswith("mente") and word != "no":
            if word.endswith("o") and gender == "f":
                word = word[:-1] + "a"
            if is_plural:
                word = _es_plural_word(word)
        words.append(word)
    return " ".join(words) + rest


def adjective(base: str, lang: str, gender: str, is_plural: bool) -> str:
    """An adjective agreeing with its noun (only Spanish inflects here)."""
    return es_adjective(base, gender, is_plural) if lang == "es" else base


# ----- compounds -----------------------------------------------------------------------------


def compound(dst: str, head: str, parts: Sequence[tuple[str, str]]) -> str:
    """One target term from a head noun and its qualifiers ``(kind, word)``, the one closest
    to the head first (``mod`` nouns; ``adj`` adjectives already agreeing), in ``dst``'s
    order, mirrored: "zinc-plated carbon steel hex bolts" -> "pernos hexagonales de acero al
    carbono zincados" and back; "镀锌碳钢六角螺栓"; "아연도금 탄소강 육각 볼트"."""
    if dst in POST_NOMINAL:
        of = POST_NOMINAL[dst]
        return " ".join([head, *(f"{of} {w}" if kind == "mod" else w for kind, w in parts)])
    words = [w for _, w in reversed(parts)]
    if dst in ("zh", "ja"):
        return "".join([*words, head])
    return " ".join([*words, head])


# Languages whose qualifiers follow the noun, and the preposition before a material.
POST_NOMINAL = {"es": "de", "pt": "de", "fr": "en", "it": "in"}


# ----- capitals ------------------------------------------------------------------------------

# Closed-class words an engine may capitalize by mistake after a sentence-opening placeholder.
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "es": frozenset(
        """el la los las lo un una unos unas a al de del en con para por sin sobre entre hasta
        desde y e o u ni que como te nos se le les me mi mis su sus tu tus nuestro nuestra
        nuestros nuestras vuestro vuestra vuestros vuestras usted ustedes este esta estos estas
        ese esa esos esas hoy mañana ayer también muy más no""".split()
    ),
    "en": frozenset(
        """the a an of to for in on at by with from and or but that as you we us it they them
        our your their this these today tomorrow yesterday also very more not""".split()
    ),
}


def uncapitalize(dst: str, translated: str, source: str) -> str:
    """Lower-case the function words an engine capitalized in mid-sentence (Apertium does,
    after a sentence that opens with a placeholder: "ZXQ0 in ZXQ1" -> "ZXQ0 En ZXQ1");
    words capitalized in ``source`` and words after a sentence end are left as they are."""
    words = FUNCTION_WORDS.get(dst)
    if not words:
        return translated
    seen = set(re.findall(r"[^\W\d_]+", source))

    def fix(m: re.Match[str]) -> str:
        w = m.group(0)
        if not w[0].isupper() or w[1:] != w[1:].lower() or w.lower() not in words or w in seen:
            return w
        before = translated[: m.start()].rstrip()
        if not before or before[-1] in '.!?…:;"“«¡¿(':
            return w
        return w.lower()

    return re.sub(r"[^\W\d_]+", fix, translated)


# ----- articles ------------------------------------------------------------------------------

# Spanish determiners by (masculine sg, feminine sg, masculine pl, feminine pl).
_ES_DETERMINERS = [
    ("el", "la", "los", "las"),
    ("un", "una", "unos", "unas"),
    ("este", "esta", "estos", "estas"),
    ("ese", "esa", "esos", "esas"),
    ("aquel", "aquella", "aquellos", "aquellas"),
    ("nuestro", "nuestra", "nuestros", "nuestras"),
    ("vuestro", "vuestra", "vuestros", "vuestras"),
    ("mi", "mi", "mis", "mis"),
    ("tu", "tu", "tus", "tus"),
    ("su", "su", "sus", "sus"),
    ("del", "de la", "de los", "de las"),
    ("al", "a la", "a los", "a las"),
    ("otro", "otra", "otros", "otras"),
    ("algún", "alguna", "algunos", "algunas"),
    ("ningún", "ninguna", "ningunos", "ningunas"),
    ("mucho", "mucha", "muchos", "muchas"),
    ("cuánto", "cuánta", "cuántos", "cuántas"),
    ("todo el", "toda la", "todos los", "todas las"),
]
_ES_FORMS = {form: row for row in _ES_DETERMINERS for form in row}
_ES_DET = "|".join(sorted((re.escape(f) for f in _ES_FORMS), key=len, reverse=True))
_EN_ARTICLE = "a|an"


def _match_case(model: str, word: str) -> str:
    if model[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _es_article(det: str, gender: str | None, is_plural: bool, output: str) -> str:
    row = _ES_FORMS[det.lower()]
    index = (2 if is_plural else 0) + (1 if gender == "f" else 0)
    return _match_case(det, row[index])


def _en_article(det: str, gender: str | None, is_plural: bool, output: str) -> str:
    if not output or (output[:2].isupper() and len(output) > 1):  # "an MOQ": leave it
        return det
    word = "an" if output[0].lower() in "aeio" else "a"
    return _match_case(det, word)


_ARTICLES: dict[str, tuple[str, Callable[[str, str | None, bool, str], str]]] = {
    "es": (_ES_DET, _es_article),
    "en": (_EN_ARTICLE, _en_article),
}


def agree(
    dst: str,
    text: str,
    token: str,
    term: Callable[[int], tuple[str, str | None, bool | None]],
) -> str:
    """Make the article right before each placeholder ``<token><n>`` agree with its term.

    ``term(n)`` gives (output, gender or None, plural or None); a term with no number (a
    conversation-glossary term, a protected code) keeps the engine's article.
    """
    rule = _ARTICLES.get(dst)
    if rule is None or token not in text:
        return text
    determiners, fix = rule
    pattern = re.compile(rf"(?<!\w)({determiners})(\s+)({re.escape(token)})(\d+)", re.IGNORECASE)

    def replace(m: re.Match[str]) -> str:
        output, gender, is_plural = term(int(m.group(4)))
        if is_plural is None:
            return m.group(0)
        return fix(m.group(1), gender, is_plural, output) + m.group(2) + m.group(3) + m.group(4)

    return pattern.sub(replace, text)
