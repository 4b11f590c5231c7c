"""Limit/offset pages in the ``{count, next, previous, results}`` envelope (API.md §1)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import request
from sqlalchemy import Select

from config.db import db

__all__ = ["QueryNotOrdered", "paginate", "page_url", "row_reader"]


class QueryNotOrdered(RuntimeError):
    """A list query without ORDER BY would give unstable pages (NetBox's guard)."""


def page_url(offset: int, limit: int) -> str:
    """This request's absolute URL with ``offset``/``limit`` replaced, other params kept."""
    params = [(k, v) for k, v in request.args.items(multi=True) if k not in ("offset", "limit")]
    params += [("limit", str(limit)), ("offset", str(offset))]
    return f"{request.base_url}?{urlencode(params)}"


def _count_statement(stmt: Select[Any]) -> Select[Any]:
    """``SELECT count(*)`` of the rows of ``stmt``, counting primary keys only: the page's
    computed columns (sums, sub-selects) and eager loads are not evaluated for every row."""
    entity = stmt.column_descriptions[0].get("entity") if stmt.column_descriptions else None
    inner = stmt.order_by(None)
    if entity is not None:
        keys = sa.inspect(entity).primary_key
        inner = inner.with_only_columns(*keys, maintain_column_froms=True)
    return sa.select(sa.func.count()).select_from(inner.subquery())


def row_reader(
    columns: Sequence[Any], row_type: type[NamedTuple]
) -> Callable[[Select[Any]], list[Any]]:
    """A page reader for :func:`paginate`: it swaps the columns of an entity's select
    (filtered, ordered, limited) for ``columns`` and returns ``row_type`` tuples (its fields
    are the labels of ``columns``, in their order).

    For list pages that only serialize what they read: no ORM objects, no eager loads, no
    identity map. Named tuples rather than SQLAlchemy's ``Row``, whose attributes cost
    0.4 µs each to read (its ``__getattr__`` is Python): a page of 50 reads hundreds."""
    names = [getattr(c, "name", None) or getattr(c, "key", None) for c in columns]
    if names != list(row_type._fields):
        raise ValueError(f"{row_type.__name__} fields {row_type._fields} != columns {names}")
    make = row_type._make

    def read(stmt: Select[Any]) -> list[Any]:
        page = stmt.with_only_columns(*columns, maintain_column_froms=True)
        return [make(row) for row in db.session.connection().execute(page)]

    return read


def _objects(stmt: Select[Any], unique: bool) -> list[Any]:
    result = db.session.execute(stmt)
    if unique:
        result = result.unique()
    return list(result.scalars())


def paginate(
    stmt: Select[Any],
    args: Mapping[str, Any],
    *,
    unique: bool = False,
    rows: Callable[[Select[Any]], list[Any]] | None = None,
) -> dict[str, Any]:
    """Run one page of ``stmt``: two statements (count and page) whatever the page size.

    ``stmt`` must be ordered. Eager loads for what the rows' schema needs must be on
    ``stmt`` (selectinload/joinedload), so that a page never costs one query per row.
    ``rows`` reads the page from the limited statement instead of loading its objects
    (see :func:`row_reader`).
    """
    if not stmt._order_by_clauses:  # noqa: SLF001 - no public accessor in SQLAlchemy 2.0
        raise QueryNotOrdered("paginate() needs an ordered select")
    limit = int(args.get("limit", 50))
    offset = int(args.get("offset", 0))
    count = db.session.execute(_count_statement(stmt)).scalar_one()
    page = stmt.limit(limit).offset(offset)
    return {
        "count": count,
        "next": page_url(offset + limit, limit) if offset + limit < count else None,
        "previous": page_url(max(offset - limit, 0), limit) if offset > 0 else None,
        "results": _objects(page, unique) if rows is None else rows(page),
    }
