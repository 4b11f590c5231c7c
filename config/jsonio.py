"""Strict JSON input: what the standard library accepts but syndic must refuse with a 400.

``json.loads`` happily returns lone surrogates, integers of any size, ``NaN``, duplicate
keys (last one wins) and recurses until ``RecursionError``. Request bodies go through
:func:`loads_strict` instead, which raises :class:`config.errors.MalformedJSON` naming the
problem.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from config.errors import MalformedJSON

__all__ = ["MAX_DEPTH", "MAX_INT", "MIN_INT", "check_text", "loads_strict"]

MAX_DEPTH = 64
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse_int(text: str) -> int:
    value = int(text)
    if not MIN_INT <= value <= MAX_INT:
        raise MalformedJSON(f"Integer {text[:30]} does not fit in 64 bits.")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedJSON(f"Number {text[:30]} is out of range.")
    return value


def _parse_constant(text: str) -> Any:
    raise MalformedJSON(f"{text} is not valid JSON.")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise MalformedJSON(f"Duplicate key {dup[:50]!r} in a JSON object.")
    return obj


def check_text(value: str, where: str = "body") -> None:
    """Refuse lone surrogates and NUL characters (PostgreSQL cannot store NUL in text)."""
    if _SURROGATE.search(value):
        raise MalformedJSON(f"The {where} contains a lone UTF-16 surrogate.")
    if "\x00" in value:
        raise MalformedJSON(f"The {where} contains a NUL character.")


def loads_strict(data: bytes | str) -> Any:
    """Decode a JSON request body, refusing what cannot be stored faithfully."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise MalformedJSON("The request body is not valid UTF-8.") from None
    else:
        text = data
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
            object_pairs_hook=_pairs,
        )
    except RecursionError:
        raise MalformedJSON(f"JSON nested deeper than {MAX_DEPTH} levels.") from None
    except json.JSONDecodeError as exc:
        raise MalformedJSON(
            f"The request body is not valid JSON: {exc.msg} at position {exc.pos}."
        ) from None
    _walk(value)
    return value


def _walk(value: Any) -> None:
    # Iterative, so that a hostile body cannot exhaust the stack here either.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            check_text(node)
        elif isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise MalformedJSON(f"JSON nested deeper than {MAX_DEPTH} levels.")
            if isinstance(node, dict):
                for key, item in node.items():
                    check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in node)
