"""Offline sentence splitting and protected-term detection."""

from __future__ import annotations

import pytest

from translation.protect import find_spans, protect
from translation.sentences import join_sentences, split_sentences


def test_short_utterance_is_never_split():
    text = "Hello. We need 500 pcs! Can you ship by Friday?"
    assert split_sentences(text) == [text]


def test_long_text_splits_on_sentence_ends_only():
    text = (
        "Mr. Smith asked for a quote of 2.35 USD/unit, i.e. the price for No. 5 bolts. "
        "We can ship 1,200.50 kg by sea! Is that fine? J. Chen will confirm the details "
        "tomorrow, e.g. the packing and the labels. Thanks again for the order."
    )
    assert len(text) > 200
    assert split_sentences(text) == [
        "Mr. Smith asked for a quote of 2.35 USD/unit, i.e. the price for No. 5 bolts.",
        "We can ship 1,200.50 kg by sea!",
        "Is that fine?",
        "J. Chen will confirm the details tomorrow, e.g. the packing and the labels.",
        "Thanks again for the order.",
    ]


def test_cjk_punctuation_splits_without_spaces():
    text = "我们需要五百件。" * 20 + "价格是多少？" * 20 + "好！"
    sentences = split_sentences(text)
    assert len(sentences) == 41
    assert sentences[0] == "我们需要五百件。" and sentences[-1] == "好！"
    assert join_sentences(sentences, "zh") == text
    assert join_sentences(["Hola.", "Adiós."], "es") == "Hola. Adiós."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "We can ship 500 pcs of M8x40 bolts FOB Shenzhen at 2.35 USD/unit.",
            [("quantity", "500 pcs"), ("code", "M8x40"), ("incoterm", "FOB Shenzhen"),
             ("price", "2.35 USD/unit")],
        ),
        (
            "Price $1,200 or ¥8.50, 40HQ, 20 kg, TL-2045-B per ISO 9001 and EN 71-3, CIF Rotterdam",
            [("price", "$1,200"), ("price", "¥8.50"), ("container", "40HQ"), ("quantity", "20 kg"),
             ("code", "TL-2045-B"), ("standard", "ISO 9001"), ("standard", "EN 71-3"),
             ("incoterm", "CIF Rotterdam")],
        ),
        ("Quote EXW or DDP Los Angeles, 15% off", [
            ("incoterm", "EXW"), ("incoterm", "DDP Los Angeles"), ("quantity", "15%")]),
        ("Mail bob@example.com or see https://example.com/p?id=7.", [
            ("email", "bob@example.com"), ("url", "https://example.com/p?id=7")]),
        ("Good morning, how are you?", []),
    ],
)  # fmt: skip
def test_trade_terms_are_found(text, expected):
    assert [(span.kind, span.source) for _, _, span in find_spans(text)] == expected


def test_glossary_wins_over_patterns_case_insensitively_longest_first():
    glossary = {"widget": "artilugio", "Ningbo port": None, "FOB": "franco a bordo"}
    protected = protect("The Widget leaves FOB Ningbo port soon", glossary)
    assert [(s.source, s.output) for s in protected.spans] == [
        ("Widget", "artilugio"),
        ("FOB", "franco a bordo"),
        ("Ningbo port", "Ningbo port"),
    ]
    assert protected.with_placeholders() == "The ZXQ0 leaves ZXQ1 ZXQ2 soon"
    assert protected.restore("El ZXQ0 sale ZXQ1 ZXQ2 pronto") == (
        "El artilugio sale franco a bordo Ningbo port pronto"
    )
    assert protected.restore("El ZXQ0 sale ZXQ2 pronto") is None  # a lost placeholder
    assert protected.restore("El ZXQ0 ZXQ0 sale ZXQ1 ZXQ2") is None  # a duplicated one
