"""A rule-based MiniSBD sentence splitter, written as a tiny ONNX model for test Argos packages.

argostranslate 1.11 splits text into sentences before translating, with MiniSBD by default;
without a model inside the package (``<package>/minisbd/*.onnx``) it downloads one, which
fails offline. This module writes a MiniSBD-compatible ONNX model that ends a sentence after
``. ? ! 。 ？ ！`` and nowhere else: a lookup table from character to label logits.

The ONNX protobuf is encoded by hand (a few message types), so no ``onnx`` package is needed;
onnxruntime (a dependency of minisbd) loads it.
"""

from __future__ import annotations

import json

import numpy as np

SENTENCE_END = ".?!。？！"
LABELS = 5  # MiniSBD: 0 inside token, 1 token end, 2 sentence end, 3/4 multi-word-token variants
_ONNX_FLOAT, _ONNX_INT64 = 1, 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes | str) -> bytes:
    """A length-delimited protobuf field (strings, bytes, sub-messages)."""
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _value_info(name: str, elem_type: int, dims: list[int | str]) -> bytes:
    shape = b"".join(_field(1, _field(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    tensor_type = _int(1, elem_type) + _field(2, shape)
    return _field(1, name) + _field(2, _field(1, tensor_type))


def _tensor(name: str, array: np.ndarray) -> bytes:
    dims = b"".join(_int(1, d) for d in array.shape)
    raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return dims + _int(2, _ONNX_FLOAT) + _field(8, name) + _field(9, raw)


def _node(op: str, inputs: list[str], outputs: list[str]) -> bytes:
    return (
        b"".join(_field(1, i) for i in inputs)
        + b"".join(_field(2, o) for o in outputs)
        + _field(3, f"{op}_{outputs[0]}")
        + _field(4, op)
    )


def build_minisbd_onnx(lang_code: str) -> bytes:
    """Serialized ONNX model for ``minisbd.SBDetect`` (argostranslate's MiniSBDSentencizer)."""
    units = ["<PAD>", "<UNK>", "<EMPTY>", "<ROOT>", " ", *SENTENCE_END]
    vocab = {
        "lang": lang_code,
        "idx": 0,
        "cutoff": 0,
        "lower": False,
        "_unit2id": {u: i for i, u in enumerate(units)},
        "_id2unit": units,
    }
    table = np.zeros((len(units), LABELS), dtype=np.float32)
    table[:, 0] = 10.0
    for char in SENTENCE_END:
        table[units.index(char)] = [0.0, 0.0, 10.0, 0.0, 0.0]
    config = {"feat_funcs": ["space_before"], "max_seqlen": 1000, "batch_size": 16}

    graph = (
        # logits = table[units] + features * 0   (features must be consumed: MiniSBD feeds it)
        _field(1, _node("Gather", ["table", "units"], ["picked"]))
        + _field(1, _node("Mul", ["features", "zero"], ["ignored"]))
        + _field(1, _node("Add", ["picked", "ignored"], ["logits"]))
        + _field(2, "rule_based_sbd")
        + _field(5, _tensor("table", table))
        + _field(5, _tensor("zero", np.zeros((LABELS,), dtype=np.float32)))
        + _field(11, _value_info("units", _ONNX_INT64, ["batch", "length"]))
        + _field(11, _value_info("features", _ONNX_FLOAT, ["batch", "length", 1]))
        + _field(12, _value_info("logits", _ONNX_FLOAT, ["batch", "length", LABELS]))
    )
    metadata = {"lang_code": lang_code, "config": json.dumps(config), "vocab": json.dumps(vocab)}
    return (
        _int(1, 8)  # ir_version
        + _field(2, "tradetalk-tests")  # producer_name
        + _field(7, graph)
        + _field(8, _field(1, "") + _int(2, 13))  # opset_import: default domain, opset 13
        + b"".join(_field(14, _field(1, k) + _field(2, v)) for k, v in metadata.items())
    )
