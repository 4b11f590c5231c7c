"""Declarative list filters (NetBox-style lookups) that generate their own query schema.

A :class:`FilterSet` subclass names the model, the filterable columns with their lookups,
custom filters, the ordering fields and the columns searched by ``q``. From that it
builds the marshmallow schema of the query string (so unknown parameters are a 400 and
the filters appear in the OpenAPI document) and applies the parsed arguments to a
``select()``. Repeating a parameter means OR; different parameters combine with AND.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import marshmallow as ma
import sqlalchemy as sa
from marshmallow import fields, validate
from sqlalchemy import Select

from config.db import UTCDateTime

__all__ = ["Filter", "FilterSet", "QuerySchema", "UTCDateTimeField", "like_escape"]

LOOKUPS = ("exact", "gte", "lte", "ic")
MAX_LIMIT = 1000
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


class UTCDateTimeField(fields.AwareDateTime):
    """ISO 8601 with an offset, normalised to UTC; dates that cannot be represented
    in UTC (``9999-12-31T23:59:59-14:00``) are a validation error, not a crash."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dt.datetime:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            raise ma.ValidationError("Date is out of the representable range.") from None


class QuerySchema(ma.Schema):
    """Base of every query-string schema: unknown parameters are refused (400)."""

    class Meta:
        unknown = ma.RAISE

    @ma.validates_schema(pass_original=True)
    def _no_nul(self, _data: Any, original: Any, **_kw: Any) -> None:
        items = original.items() if hasattr(original, "items") else []
        for key, value in items:
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and "\x00" in v for v in values):
                raise ma.ValidationError("NUL characters are not allowed.", key)


def like_escape(text: str) -> str:
    """Escape LIKE wildcards so that ``__ic=50%`` looks for the literal text."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class Filter:
    """A custom filter: its marshmallow field (one value) and how it narrows a select.

    ``apply(stmt, values)`` receives the list of parsed values (OR semantics) when
    ``many`` is true, else the single value.
    """

    field: Callable[[], fields.Field[Any]]
    apply: Callable[[Select[Any], Any], Select[Any]]
    many: bool = True
    description: str = ""


def _field_for(column: sa.Column[Any]) -> fields.Field[Any]:
    t = column.type
    if isinstance(t, UTCDateTime | sa.DateTime):
        return UTCDateTimeField()
    if isinstance(t, sa.Date):
        return fields.Date()
    if isinstance(t, sa.Boolean):
        return fields.Boolean()
    if isinstance(t, sa.Enum):
        return fields.String(validate=validate.OneOf(list(t.enums)))
    if isinstance(t, sa.BigInteger):
        return fields.Integer(strict=False, validate=validate.Range(*INT64))
    if isinstance(t, sa.Integer):
        return fields.Integer(strict=False, validate=validate.Range(*INT32))
    if isinstance(t, sa.Numeric | sa.Float):
        return fields.Float(allow_nan=False)
    if isinstance(t, sa.String):
        return fields.String(validate=validate.Length(max=t.length or 1000))
    return fields.String(validate=validate.Length(max=1000))


class FilterSet:
    """Subclass and set the class attributes; then call :meth:`schema` and :meth:`apply`."""

    model: ClassVar[type]
    fields: ClassVar[Mapping[str, Sequence[str]]] = {}
    filters: ClassVar[Mapping[str, Filter]] = {}
    # Ordering names → columns; a plain list means "columns of the model by those names".
    ordering: ClassVar[Sequence[str] | Mapping[str, Any]] = ("id",)
    default_ordering: ClassVar[Sequence[str]] = ("id",)
    search: ClassVar[Sequence[Any]] = ()
    _schema: ClassVar[type[ma.Schema] | None] = None

    # -- schema -----------------------------------------------------------------------

    @classmethod
    def ordering_map(cls) -> dict[str, Any]:
        mapping = (
            dict(cls.ordering)
            if isinstance(cls.ordering, Mapping)
            else {name: getattr(cls.model, name) for name in cls.ordering}
        )
        mapping.setdefault("id", cls.model.id)  # type: ignore[attr-defined]
        return mapping

    @classmethod
    def schema(cls) -> type[ma.Schema]:
        """The query-string schema, built once per filter set."""
        if cls.__dict__.get("_schema") is not None:
            return cls._schema  # type: ignore[return-value]
        allowed = sorted(cls.ordering_map())
        names = "|".join(allowed)
        # A pattern (not a free-form check) so that the OpenAPI document states it exactly.
        ordering_pattern = rf"^-?({names})(,-?({names}))*$"
        ordering_error = (
            "Unknown ordering field in {input!r}. "
            f"Allowed: {', '.join(allowed)} (comma-separated, '-' for descending)."
        )

        attrs: dict[str, Any] = {
            "limit": fields.Integer(
                load_default=50,
                strict=False,
                validate=validate.Range(1, MAX_LIMIT),
                metadata={"description": f"Page size, 1..{MAX_LIMIT}."},
            ),
            "offset": fields.Integer(
                load_default=0, strict=False, validate=validate.Range(0, INT32[1])
            ),
            "ordering": fields.String(
                validate=[
                    validate.Length(max=200),
                    validate.Regexp(ordering_pattern, error=ordering_error),
                ],
                metadata={"description": f"Comma-separated, '-' for descending: {allowed}"},
            ),
        }
        if cls.search:
            attrs["q"] = fields.String(
                validate=validate.Length(1, 200), metadata={"description": "Free text search."}
            )
        for name, lookups in cls.fields.items():
            column = getattr(cls.model, name).property.columns[0]
            for lookup in lookups:
                if lookup not in LOOKUPS:
                    raise ValueError(f"{cls.__name__}: unknown lookup {lookup!r}")
                key = name if lookup == "exact" else f"{name}__{lookup}"
                if lookup == "exact":
                    attrs[key] = fields.List(_field_for(column))
                elif lookup == "ic":
                    attrs[key] = fields.String(validate=validate.Length(1, 200))
                else:
                    attrs[key] = _field_for(column)
        for name, flt in cls.filters.items():
            attrs[name] = fields.List(flt.field()) if flt.many else flt.field()
        schema = type(f"{cls.__name__}Query", (QuerySchema,), attrs)
        cls._schema = schema
        return schema

    # -- applying ---------------------------------------------------------------------

    @classmethod
    def apply(cls, stmt: Select[Any], args: Mapping[str, Any]) -> Select[Any]:
        """Filter and order ``stmt`` by the parsed query arguments."""
        for name, lookups in cls.fields.items():
            column = getattr(cls.model, name)
            for lookup in lookups:
                key = name if lookup == "exact" else f"{name}__{lookup}"
                if key not in args:
                    continue
                value = args[key]
                if lookup == "exact":
                    values = [v.value if isinstance(v, enum.Enum) else v for v in value]
                    stmt = stmt.where(column.in_(values)) if values else stmt
                elif lookup == "gte":
                    stmt = stmt.where(column >= value)
                elif lookup == "lte":
                    stmt = stmt.where(column <= value)
                else:
                    stmt = stmt.where(column.ilike(f"%{like_escape(value)}%", escape="\\"))
        for name, flt in cls.filters.items():
            if name in args and args[name] not in (None, []):
                stmt = flt.apply(stmt, args[name])
        if cls.search and args.get("q"):
            pattern = f"%{like_escape(args['q'])}%"
            cols = [getattr(cls.model, c) if isinstance(c, str) else c for c in cls.search]
            stmt = stmt.where(sa.or_(*(c.ilike(pattern, escape="\\") for c in cols)))
        return cls.order(stmt, args.get("ordering"))

    @classmethod
    def order(cls, stmt: Select[Any], ordering: str | None) -> Select[Any]:
        mapping = cls.ordering_map()
        names = [p.strip() for p in (ordering or ",".join(cls.default_ordering)).split(",")]
        clauses = []
        used = set()
        for name in names:
            if not name:
                continue
            desc = name.startswith("-")
            key = name.removeprefix("-")
            if key in used:
                continue
            used.add(key)
            col = mapping[key]
            clauses.append(col.desc() if desc else col.asc())
        if "id" not in used:
            clauses.append(cls.model.id.asc())  # type: ignore[attr-defined]  # stable pages
        return stmt.order_by(*clauses)
