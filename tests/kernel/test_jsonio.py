"""Strict JSON decoding of request bodies (pure)."""

from __future__ import annotations

import pytest

from config.errors import MalformedJSON
from config.jsonio import MAX_DEPTH, loads_strict


def test_plain_json_is_decoded():
    assert loads_strict(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


def test_utf8_bom_is_accepted():
    assert loads_strict("\ufeff{}".encode()) == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": 9223372036854775808}', "64 bits"),
        (b'{"a": -9223372036854775809}', "64 bits"),
        (b'{"a": 1e400}', "out of range"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b'{"a": "\\ud800"}', "surrogate"),
        (b'{"\\udfff": 1}', "surrogate"),
        (b'{"a": "x\\u0000y"}', "NUL"),
        (b'{"a": 1, "a": 2}', "Duplicate key"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"a": ', "not valid JSON"),
    ],
)
def test_hostile_bodies_are_refused_with_a_reason(body, message):
    with pytest.raises(MalformedJSON) as exc:
        loads_strict(body)
    assert message in exc.value.detail


def test_limits_of_64_bit_integers_are_accepted():
    assert loads_strict(b"[9223372036854775807, -9223372036854775808]") == [2**63 - 1, -(2**63)]


def test_nesting_at_the_limit_is_accepted_and_one_more_refused():
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads_strict(ok.encode()) is not None
    with pytest.raises(MalformedJSON, match="deeper"):
        loads_strict(("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).encode())


def test_pathological_nesting_does_not_crash():
    with pytest.raises(MalformedJSON, match="deeper"):
        loads_strict(("[" * 100_000 + "]" * 100_000).encode())
