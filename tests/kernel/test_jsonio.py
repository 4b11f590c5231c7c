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


# -- responses: orjson, the same text as the standard library -------------------------------


def _providers():
    import flask
    from flask.json.provider import DefaultJSONProvider

    from config.jsonio import FastJSONProvider

    app = flask.Flask("jsonio-test")
    std = DefaultJSONProvider(app)
    std.sort_keys = False
    std.ensure_ascii = False
    return app, std, FastJSONProvider(app)


SAMPLES = [
    {"b": 1, "a": [1, 2.5, -0.0, 0.0001, 123456789.125, 2**63 - 1, None, True, False]},
    {"é": "Créteil — « Pôle SI »", "emoji": "\U0001f600", "ctrl": "a\tb\nc\u2028\x01"},
    {
        "when": __import__("datetime").datetime(
            2021, 3, 28, 1, 59, tzinfo=__import__("datetime").UTC
        )
    },
    {"day": __import__("datetime").date(2021, 12, 31)},
    {"amount": __import__("decimal").Decimal("1256.50")},
    {1: "int key", "nested": {"deep": [{"x": [[]]}]}},
    {"id": __import__("uuid").UUID("12345678-1234-5678-1234-567812345678")},
    {"big": 2**70, "text": "fallback to the standard library"},
    [],
    "plain",
    None,
]


@pytest.mark.parametrize("value", SAMPLES, ids=range(len(SAMPLES)))
def test_fast_responses_write_what_the_standard_library_writes(value):
    app, std, fast = _providers()
    with app.app_context():
        assert fast.response(value).get_data() == std.response(value).get_data()
        assert fast.response(value).mimetype == "application/json"


def test_floats_with_an_exponent_are_the_same_numbers():
    import json

    app, std, fast = _providers()
    value = {"tiny": 1e-7, "huge": 1e300, "share": 0.437234}
    with app.app_context():
        body = fast.response(value).get_data()
        assert body == b'{"tiny":1e-7,"huge":1e+300,"share":0.437234}\n'
        assert json.loads(body) == json.loads(std.response(value).get_data()) == value


def test_fast_provider_keeps_options_and_the_debug_layout():
    app, std, fast = _providers()
    value = {"b": [1, 2], "a": "é"}
    with app.app_context():
        assert fast.dumps(value) == std.dumps(value)
        app.debug = True
        assert fast.response(value).get_data() == std.response(value).get_data()
        assert b"\n  " in fast.response(value).get_data()


def test_lone_surrogates_fail_as_before():
    # Refused on input (loads_strict); were one to reach a response, orjson hands it to the
    # standard library, which fails the same way as before.
    app, std, fast = _providers()
    with app.app_context():
        for provider in (std, fast):
            with pytest.raises(UnicodeEncodeError):
                provider.response({"lone": "\ud800"})


def test_unserialisable_objects_are_refused_as_before():
    app, _std, fast = _providers()
    with app.app_context(), pytest.raises(TypeError):
        fast.response({"x": object()})


def test_the_app_answers_through_the_fast_provider(app):
    from config.jsonio import FastJSONProvider

    assert isinstance(app.json, FastJSONProvider)
