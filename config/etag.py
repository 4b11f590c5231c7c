"""Weak ETags from the object's version, and the optional If-Match check (API.md §1)."""

from __future__ import annotations

from typing import Any

from flask import request

from config.errors import PreconditionFailed

__all__ = ["check_if_match", "etag_for"]


def etag_for(obj: Any) -> str:
    """``W/"<version>"``: it changes on every update (VersionedMixin bumps ``version``)."""
    return f'W/"{obj.version}"'


def _opaque(tag: str) -> str:
    return tag.strip().removeprefix("W/").strip('"')


def check_if_match(obj: Any) -> None:
    """Raise PreconditionFailed (412, with the current ETag) when If-Match is sent and
    does not match; do nothing when it is absent (it is optional, unlike smorest's)."""
    header = request.headers.get("If-Match")
    if header is None:
        return
    current = etag_for(obj)
    wanted = [part for part in header.split(",") if part.strip()]
    if any(part.strip() == "*" for part in wanted):
        return
    if _opaque(current) not in {_opaque(p) for p in wanted}:
        raise PreconditionFailed(
            "The object has changed since you read it (If-Match does not match).",
            etag=current,
            headers={"ETag": current},
        )
