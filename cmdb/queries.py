"""Read-side helpers of the CMDB, shared with other domains (reporting, servicedesk).

Nothing here writes. Other domains import this module (and ``cmdb.models`` for joins);
never ``cmdb.api`` or ``cmdb.schemas``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import select

from cmdb.models import CI, CIKind, Relation, Usage
from config.auth import Actor
from config.db import db
from config.pagination import row_reader
from config.tenancy import Tenant, tenant_code_column, tenant_scope

__all__ = [
    "application_domain",
    "counted_page",
    "application_domains",
    "applications_used_by",
    "ci_domain_column",
    "ci_key_column",
    "ci_keys",
    "CIPageRow",
    "ci_page_rows",
    "graph_rows",
    "visible_cis",
]


def ci_domain_column() -> Any:
    """SQL expression of a CI's ``domain`` attribute (the business domain of an application,
    e.g. ``Finances``); NULL when absent. Join ``CI`` on your ``ci_id`` and group by it."""
    return CI.attributes["domain"].as_string()


def ci_key_column() -> Any:
    """SQL expression of a CI's global key ``kind:code``."""
    return sa.cast(CI.kind, sa.String(20)).concat(":").concat(CI.code)


def application_domain(ci_id: int | None) -> str | None:
    """The ``domain`` attribute of one CI (None if missing or not set)."""
    if ci_id is None:
        return None
    return db.session.execute(select(ci_domain_column()).where(CI.id == ci_id)).scalar()


def application_domains(ci_ids: Iterable[int]) -> dict[int, str | None]:
    """``{ci_id: domain}`` for several CIs in one statement."""
    ids = sorted({i for i in ci_ids if i is not None})
    if not ids:
        return {}
    rows = db.session.execute(select(CI.id, ci_domain_column()).where(CI.id.in_(ids)))
    return {r[0]: r[1] for r in rows}


def ci_keys(ci_ids: Iterable[int]) -> dict[int, str]:
    """``{ci_id: "kind:code"}`` for several CIs in one statement."""
    ids = sorted(set(ci_ids))
    if not ids:
        return {}
    rows = db.session.execute(select(CI.id, CI.kind, CI.code).where(CI.id.in_(ids)))
    return {r.id: f"{r.kind.value}:{r.code}" for r in rows}


def visible_cis(actor: Actor) -> sa.Select[Any]:
    """``select(CI)`` restricted to what the actor sees."""
    return tenant_scope(select(CI), actor)


def applications_used_by(tenant_codes: Iterable[str], actor: Actor) -> list[CI]:
    """The application CIs used by any of these tenants (visible ones), ordered by code."""
    stmt = (
        visible_cis(actor)
        .join(Usage, Usage.ci_id == CI.id)
        .join(Tenant, Tenant.id == Usage.tenant_id)
        .where(CI.kind == CIKind.APPLICATION, Tenant.code.in_(list(tenant_codes)))
        .order_by(CI.code)
        .distinct()
    )
    return list(db.session.execute(stmt).scalars())


def _raw_rows(stmt: sa.Select[Any]) -> list[Any]:
    """Run a constant select straight on the driver's cursor: plain tuples, no per-row
    result processing (at 300k rows it would cost more than building the graph)."""
    conn = db.session.connection()
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def graph_rows() -> tuple[list[Any], list[Any], list[Any]]:
    """The whole graph as plain rows, in three bulk statements (never one per node):
    CIs ``(id, kind, code, name, status, tenant_id, min_healthy)``, relations
    ``(source_id, target_id, type)`` and usage ``(ci_id, tenant_id, tenant_code)``.
    Enum columns come back as their string values."""
    cis, rels, usage = CI.__table__, Relation.__table__, Usage.__table__
    ci_rows = _raw_rows(
        select(
            cis.c.id,
            cis.c.kind,
            cis.c.code,
            cis.c.name,
            cis.c.status,
            cis.c.tenant_id,
            CI.attributes["min_healthy"].as_integer(),
        )
    )
    rel_rows = _raw_rows(select(rels.c.source_id, rels.c.target_id, rels.c.type))
    usage_rows = _raw_rows(
        select(usage.c.ci_id, usage.c.tenant_id, Tenant.code).join(
            Tenant, Tenant.id == usage.c.tenant_id
        )
    )
    return ci_rows, rel_rows, usage_rows


def capacity_rows() -> list[Any]:
    """``(id, kind, cpu, memory_gb)`` of the hosts (cores) and servers (vCPUs) that state
    them, in one statement."""
    cpu = sa.case(
        (CI.kind == CIKind.HOST, CI.attributes["cpu_cores"].as_float()),
        else_=CI.attributes["vcpus"].as_float(),
    )
    stmt = select(
        CI.id,
        sa.type_coerce(CI.__table__.c.kind, sa.String()),
        cpu,
        CI.attributes["memory_gb"].as_float(),
    ).where(CI.kind.in_([CIKind.HOST, CIKind.SERVER]))
    return list(db.session.execute(stmt).all())


# -- list pages with cached counts ----------------------------------------------------------

_COUNTS: dict[tuple[Any, ...], int] = {}
_COUNTS_MAX = 512


# What a CI list page shows (``CIOut``'s fields, ``tenant_code`` for ``tenant``), read as
# rows: no ORM objects, no joined-loaded tenant, no identity map.
_CI_PAGE_COLUMNS = (
    CI.id,
    ci_key_column().label("key"),
    CI.kind,
    CI.code,
    CI.name,
    tenant_code_column(CI.tenant_id, "tenant_code"),
    CI.status,
    CI.attributes,
    CI.created_at,
    CI.updated_at,
)


class CIPageRow(NamedTuple):
    """One CI of a list page (the labels of ``_CI_PAGE_COLUMNS``, in their order)."""

    id: int
    key: str
    kind: CIKind
    code: str
    name: str
    tenant_code: str | None
    status: Any
    attributes: dict[str, Any]
    created_at: Any
    updated_at: Any


# The CIs a ``select(CI)`` (filtered, ordered, limited) names, with the attributes ``CIOut``
# dumps (``id``, ``key``, ``tenant_code``...), without building ORM objects and their
# tenants for a page that only serializes them.
ci_page_rows = row_reader(_CI_PAGE_COLUMNS, CIPageRow)


def _scalars(stmt: sa.Select[Any]) -> list[Any]:
    return list(db.session.execute(stmt).scalars())


def counted_page(
    stmt: sa.Select[Any],
    args: Mapping[str, Any],
    *,
    actor: Actor,
    cacheable: bool,
    rows: Callable[[sa.Select[Any]], list[Any]] = _scalars,
) -> dict[str, Any]:
    """A list page like ``config.pagination.paginate``, whose count is cached per graph
    token (it changes with every CI, relation or usage write, in any process), visible
    tenants and filters: counting 100k CIs on every page would cost more than the page.

    ``cacheable`` must be false for filters that depend on anything else (tenant codes,
    which can be renamed without touching the CMDB). ``rows`` reads the page from the
    limited statement (default: its ORM objects)."""
    from cmdb.models import graph_token
    from config.pagination import QueryNotOrdered, page_url
    from config.tenancy import visible_tenant_ids

    if not stmt._order_by_clauses:  # noqa: SLF001 - as paginate() does
        raise QueryNotOrdered("counted_page() needs an ordered select")
    limit = int(args.get("limit", 50))
    offset = int(args.get("offset", 0))
    count = None
    key: tuple[Any, ...] | None = None
    if cacheable:
        filters = tuple(
            sorted(
                (k, tuple(v) if isinstance(v, list) else v)
                for k, v in args.items()
                if k not in ("limit", "offset", "ordering")
            )
        )
        visible = visible_tenant_ids(actor)
        key = (
            db.engine.url.render_as_string(hide_password=True),
            graph_token(),
            None if visible is None else tuple(sorted(visible)),
            repr(filters),
        )
        count = _COUNTS.get(key)
    if count is None:
        count = db.session.execute(
            sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
        ).scalar_one()
        if key is not None:
            if len(_COUNTS) >= _COUNTS_MAX:
                _COUNTS.clear()
            _COUNTS[key] = count
    return {
        "count": count,
        "next": page_url(offset + limit, limit) if offset + limit < count else None,
        "previous": page_url(max(offset - limit, 0), limit) if offset > 0 else None,
        "results": rows(stmt.limit(limit).offset(offset)),
    }
