"""The language a typed text is in (`translation/written_language.py`): the writer's unless its
letters rule it out, then the one its script says."""

from __future__ import annotations

import pytest

from translation.written_language import written_language


@pytest.mark.parametrize(
    ("text", "declared", "expected"),
    [
        ("价格是多少？", "zh", "zh"),
        ("Can you ship 500 pcs by March?", "zh", "en"),  # a Chinese agent typing English
        ("请确认 PO#123, FOB Shenzhen", "zh", "zh"),  # mixed: a letter of its own script
        ("Please quote 不锈钢螺栓 M8", "en", "en"),  # a product name in another script
        ("가격은 얼마입니까?", "en", "ko"),
        ("この価格で大丈夫です", "zh", "ja"),  # kana tells Japanese beside Han
        ("価格", "ja", "ja"),
        ("Цена за штуку?", "zh-TW", "ru"),
        ("El precio es demasiado alto.", "es", "es"),
        ("The price is too high.", "es", "es"),  # Latin in a Latin-script language: theirs
        ("Giá bao nhiêu?", "ko", "en"),  # Latin alone from a Hangul writer: the lingua franca
        ("500 / 2.35 USD", "zh", "zh"),  # no letters at all: theirs
        ("👍", "ko", "ko"),
    ],
)
def test_written_language(text: str, declared: str, expected: str) -> None:
    assert written_language(text, declared) == expected
