"""Hostile input × every write operation of the OpenAPI document: never a 5xx, and a refused
request writes nothing (the change log, which every write feeds, does not move).

Values: deep JSON, a 2 MiB body, lone surrogates, 2**63, the far end of dates with offsets,
NUL and control characters, 10,000-character strings, SQL and HTML injection strings.
"""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from config.changelog import ChangeRecord

pytestmark = pytest.mark.fuzz

HOSTILE_VALUES = [
    "\ud800",  # lone surrogate (sent escaped)
    2**63,
    -(2**63) - 1,
    "9999-12-31T23:59:59-14:00",
    "0000-00-00",
    "a\u0000b",
    "\u0007\u001b[31mred",
    "x" * 10_000,
    "'; DROP TABLE tenants; --",
    "<script>alert(1)</script>",
    '=HYPERLINK("http://evil")',
    None,
    [],
    {"$ne": 1},
    1e308,
]
BOUNDED_FORMATS = {"date", "date-time", "email"}
RAW_BODIES = [
    b"[" * 200 + b"]" * 200,
    b'{"a":' * 100 + b"1" + b"}" * 100,
    b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
    b"\xff\xfe\x00",
    b'{"a": NaN}',
]


def _write_operations(spec: dict) -> list[tuple[str, str, dict]]:
    ops = []
    for path, item in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in item.items():
            if method in {"post", "patch", "put"} and "requestBody" in op:
                ops.append((method, path, op))
    return ops


def _schema_properties(spec: dict, op: dict) -> dict:
    content = op["requestBody"]["content"]
    if "application/json" not in content:
        return {}  # uploads (multipart) are checked by their own tests
    schema = content["application/json"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema.get("properties", {})


def _changes(db) -> int:
    db.session.remove()
    return db.session.execute(sa.select(sa.func.count()).select_from(ChangeRecord)).scalar_one()


def test_hostile_bodies_never_crash_nor_write(app, db, admin, tenant_a):
    spec = admin.get("/api/v1/openapi.json").json
    failures: list[str] = []
    probes = 0
    for method, path, op in _write_operations(spec):
        url = re.sub(r"\{[^}]+\}", "1", path)
        props = _schema_properties(spec, op)
        bodies: list[bytes] = list(RAW_BODIES)
        for name in props:
            for value in HOSTILE_VALUES:
                bodies.append(json.dumps({name: value}).encode())
        for body in bodies:
            before = _changes(db)
            resp = admin.open(
                url, method=method.upper(), data=body, content_type="application/json"
            )
            probes += 1
            after = _changes(db)
            label = f"{method.upper()} {path} {body[:60]!r}"
            if resp.status_code >= 500:
                failures.append(f"{label}: {resp.status_code}")
            elif resp.status_code >= 400 and after != before:
                failures.append(
                    f"{label}: refused ({resp.status_code}) but wrote {after - before} change(s)"
                )
            elif resp.status_code < 300:
                stored = resp.get_data(as_text=True)
                if "\\u0000" in stored or "\x00" in stored:
                    failures.append(f"{label}: stored a NUL character")
            if resp.status_code >= 400 and resp.mimetype != "application/problem+json":
                failures.append(f"{label}: {resp.status_code} is not problem+json")
    print(f"{probes} hostile requests")
    assert not failures, "\n".join(failures[:30])


def test_long_strings_are_bounded_wherever_the_database_is(app, db, admin):
    """Every string property of every request body states a maxLength (or is an enum/pattern
    with an implied bound), so that 10,000-character inputs are refused, not truncated."""
    spec = admin.get("/api/v1/openapi.json").json
    unbounded = []
    for method, path, op in _write_operations(spec):
        for name, prop in _schema_properties(spec, op).items():
            kinds = prop.get("type")
            kinds = kinds if isinstance(kinds, list) else [kinds]
            bounded = {"maxLength", "enum"} & set(prop) or prop.get("format") in BOUNDED_FORMATS
            if "string" in kinds and not bounded:
                unbounded.append(f"{method.upper()} {path}: {name}")
    assert not unbounded, "string fields without maxLength:\n" + "\n".join(sorted(set(unbounded)))
