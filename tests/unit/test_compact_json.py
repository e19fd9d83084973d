"""server/compact_json.py: the same JSON as the standard encoder's compact form, faster."""

from __future__ import annotations

import json
import math

from server import compact_json
from server.realtime import strict_json


def standard(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_writes_what_the_standard_encoder_writes() -> None:
    value = {
        "message": {"id": 7, "text": "价格 ١٢٣ — Größe", "translations": {"en": "price"}},
        "unread": [0, 3],
        "ok": True,
        "none": None,
        "ratio": 0.25,
    }
    assert compact_json.dumps(value) == standard(value)
    assert strict_json.loads(compact_json.dumps(value)) == value


def test_numeric_keys_are_written_as_strings() -> None:
    assert compact_json.dumps({1: "a", 2: [1]}) == '{"1":"a","2":[1]}'


def test_an_int_beyond_64_bits_still_encodes() -> None:
    big = 2**70
    assert compact_json.dumps({"n": big}) == standard({"n": big})


def test_a_lone_surrogate_is_escaped_not_lost() -> None:
    text = compact_json.dumps(["typing", {"text": "a\ud800b"}])
    text.encode("utf-8")  # a WebSocket text frame can carry it
    assert json.loads(text) == ["typing", {"text": "a\ud800b"}]


def test_not_a_number_is_never_written() -> None:
    text = compact_json.dumps({"x": math.nan, "y": math.inf})
    assert json.loads(text) == {"x": None, "y": None}


def test_python_socketio_separators_are_accepted() -> None:
    assert compact_json.dumps(["message.new", {"a": 1}], separators=(",", ":")) == (
        '["message.new",{"a":1}]'
    )


def test_loads_reads_bytes_and_text() -> None:
    assert compact_json.loads(b'{"a":[1,2]}') == compact_json.loads('{"a":[1,2]}') == {"a": [1, 2]}
