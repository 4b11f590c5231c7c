"""Read-side helpers of the CMDB, shared with other domains (reporting, servicedesk).

Nothing here writes. Other domains import this module (and ``cmdb.models`` for joins);
never ``cmdb.api`` or ``cmdb.schemas``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select

from cmdb.models import CI, CIKind, Relation, Usage
from config.auth import Actor
from config.db import db
from config.tenancy import Tenant, tenant_scope

__all__ = [
    "application_domain",
    "application_domains",
    "applications_used_by",
    "ci_domain_column",
    "ci_key_column",
    "ci_keys",
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


def graph_rows() -> tuple[list[Any], list[Any], list[Any]]:
    """The whole graph as plain rows, in three bulk statements (never one per node):
    CIs ``(id, kind, code, name, status, tenant_id, min_healthy, environment)``,
    relations ``(source_id, target_id, type)`` and usage ``(ci_id, tenant_code)``."""
    ci_rows = db.session.execute(
        select(
            CI.id,
            CI.kind,
            CI.code,
            CI.name,
            CI.status,
            CI.tenant_id,
            CI.attributes["min_healthy"].as_integer(),
        )
    ).all()
    rel_rows = db.session.execute(
        select(Relation.source_id, Relation.target_id, Relation.type)
    ).all()
    usage_rows = db.session.execute(
        select(Usage.ci_id, Tenant.code).join(Tenant, Tenant.id == Usage.tenant_id)
    ).all()
    return ci_rows, rel_rows, usage_rows
