"""Ticket reads for the API without the ORM: one SELECT of the columns a ticket's
representation shows, joined to its tenant, category, CI, assignee and satisfaction, and each
row mapped straight to the JSON shape of ``schemas.TicketOut``.

Loading 50 tickets and four related objects through the ORM, then dumping them, cost most
of a list page (issue 4). The shape here must stay the schema's: under test, every page and
every ticket read through the API is also dumped by marshmallow and compared
(``servicedesk.api``), and ``tests/servicedesk/test_ticket_rows.py`` compares varied tickets.
Tenant scoping, filters, ordering and pagination are the usual ones (``tenant_scope``,
``TicketFilter``, the ``{count, next, previous, results}`` envelope).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import aliased

from cmdb.models import CI
from config.auth import Actor, Role, User
from config.db import UTCDateTime, db
from config.errors import NotFound
from config.pagination import QueryNotOrdered, page_url
from config.tenancy import Tenant, tenant_scope, visible_tenants_select
from servicedesk.models import Category, Satisfaction, Ticket
from servicedesk.services import sanitize_html

__all__ = ["TicketRow", "ticket_ids_select", "ticket_page", "ticket_row"]


class TicketRow(NamedTuple):
    """One ticket as the API shows it, and its version (for the ETag)."""

    data: dict[str, Any]
    version: int


# Aliases: a filter's sub-select of tenants, users or CIs (``tenant=``, ``assignee=``, ``ci=``)
# must not be correlated to the joined rows.
_Tenant = aliased(Tenant, name="ticket_tenant")
_Category = aliased(Category, name="ticket_category")
_CI = aliased(CI, name="ticket_ci")
_User = aliased(User, name="ticket_assignee")
_Satisfaction = aliased(Satisfaction, name="ticket_satisfaction")


def _columns(raw: bool) -> tuple[Any, ...]:
    """The columns of a ticket row; ``raw``: datetimes and enums as the strings SQLite
    stores (see :func:`_iso`), without SQLAlchemy's per-value result processing."""
    t = Ticket
    columns = (
        t.id,
        _Tenant.code,
        t.type,
        t.title,
        t.description,
        t.description_format,
        t.status,
        t.urgency,
        t.impact,
        t.priority,
        _Category.id,
        _Category.name,
        _Category.path,
        _CI.kind,
        _CI.code,
        t.requester_name,
        t.requester_email,
        _User.username,
        t.assigned_group,
        t.opened_at,
        t.owned_at,
        t.solved_at,
        t.closed_at,
        t.due_to_own_at,
        t.due_to_resolve_at,
        t.sla_breached,
        t.time_spent_minutes,  # type: ignore[attr-defined]  # column_property (models.py)
        _Satisfaction.id,
        _Satisfaction.score,
        _Satisfaction.comment,
        t.source,
        t.external_id,
        t.deleted_at,
        t.created_at,
        t.updated_at,
        t.version,
    )
    if not raw:
        return columns
    return tuple(
        sa.type_coerce(c, sa.String).label(c.key)
        if isinstance(c.type, UTCDateTime | sa.Enum)
        else c
        for c in columns
    )


def _joined(stmt: sa.Select[Any]) -> sa.Select[Any]:
    """``stmt`` with the related rows a ticket shows (all to-one: no row is repeated)."""
    return (
        stmt.join_from(Ticket, _Tenant, Ticket.tenant_id == _Tenant.id)
        .outerjoin_from(Ticket, _Category, Ticket.category_id == _Category.id)
        .outerjoin_from(Ticket, _CI, Ticket.ci_id == _CI.id)
        .outerjoin_from(Ticket, _User, Ticket.assignee_id == _User.id)
        .outerjoin_from(Ticket, _Satisfaction, _Satisfaction.ticket_id == Ticket.id)
    )


def _iso(value: Any) -> str | None:
    """``isoformat()`` of an aware UTC datetime, from the datetime or from the string SQLite
    stores for it (``2021-03-04 09:30:00.000000``, naive UTC, as SQLAlchemy writes it):
    parsing 450 such strings into datetimes and formatting them again was a tenth of a list
    page. Any other stored form goes through the parse."""
    if value is None:
        return None
    if type(value) is str:
        if len(value) == 26 and value[10] == " " and value[19] == ".":
            fraction = value[20:]
            return (
                f"{value[:10]}T{value[11:19]}{'' if fraction == '000000' else '.' + fraction}+00:00"
            )
        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return str(value.isoformat())


def _enum(value: Any) -> Any:
    """An enum's value, from the enum or from the value SQLite stores (see :func:`_columns`)."""
    return value if type(value) is str else value.value


def _to_json(row: Sequence[Any]) -> dict[str, Any]:
    """A row of :func:`_columns` as ``TicketOut`` dumps the ticket (same keys, same order)."""
    (
        id_,
        tenant,
        type_,
        title,
        description,
        description_format,
        status,
        urgency,
        impact,
        priority,
        category_id,
        category_name,
        category_path,
        ci_kind,
        ci_code,
        requester_name,
        requester_email,
        assignee,
        group,
        opened_at,
        owned_at,
        solved_at,
        closed_at,
        due_to_own_at,
        due_to_resolve_at,
        sla_breached,
        time_spent,
        satisfaction_id,
        satisfaction_score,
        satisfaction_comment,
        source,
        external_id,
        deleted_at,
        created_at,
        updated_at,
        _version,
    ) = row
    return {
        "id": id_,
        "tenant": tenant,
        "type": _enum(type_),
        "title": title,
        "description": description,
        "description_html": sanitize_html(description) if description_format == "html" else None,
        "status": _enum(status),
        "urgency": urgency,
        "impact": impact,
        "priority": priority,
        "category": (
            None
            if category_id is None
            else {"id": category_id, "name": category_name, "path": category_path}
        ),
        "ci": None if ci_code is None else f"{_enum(ci_kind)}:{ci_code}",
        "requester": {"name": requester_name, "email": requester_email},
        "assignee": assignee,
        "group": group,
        "opened_at": _iso(opened_at),
        "owned_at": _iso(owned_at),
        "solved_at": _iso(solved_at),
        "closed_at": _iso(closed_at),
        "due_to_own_at": _iso(due_to_own_at),
        "due_to_resolve_at": _iso(due_to_resolve_at),
        "sla_breached": bool(sla_breached),
        "time_spent_minutes": int(time_spent),
        "satisfaction": (
            None
            if satisfaction_id is None
            else {"score": satisfaction_score, "comment": satisfaction_comment}
        ),
        "source": source,
        "external_id": external_id,
        "deleted_at": _iso(deleted_at),
        "created_at": _iso(created_at),
        "updated_at": _iso(updated_at),
    }


def ticket_ids_select(actor: Actor, *, deleted: bool = False) -> sa.Select[Any]:
    """The ids of the tickets the actor sees (the trash only for admins who ask for it): the
    statement that filters, ordering and the page count apply to."""
    stmt = tenant_scope(select(Ticket.id), actor, Ticket)
    if not (deleted and actor.is_admin):
        stmt = stmt.where(Ticket.deleted_at.is_(None))
    return stmt


def ticket_page(stmt: sa.Select[Any], args: Mapping[str, Any]) -> dict[str, Any]:
    """One page of ``stmt`` (from :func:`ticket_ids_select`, filtered and ordered) in the
    list envelope: three statements whatever the page size (the count, the page's ids, their
    rows).

    The rows come from one statement built once, for ids given as a bound list: the
    statement the filters change (``stmt``) stays small, since SQLAlchemy walks the whole of a
    new statement to find its cached SQL, about a millisecond for the joined one."""
    if not stmt._order_by_clauses:  # noqa: SLF001 - no public accessor in SQLAlchemy 2.0
        raise QueryNotOrdered("ticket_page() needs an ordered select")
    limit = int(args.get("limit", 50))
    offset = int(args.get("offset", 0))
    conn = db.session.connection()
    # ``stmt`` selects ticket ids from one table (no join, no grouping): count its rows.
    count = conn.execute(stmt.with_only_columns(sa.func.count()).order_by(None)).scalar_one()
    ids = conn.execute(stmt.limit(limit).offset(offset)).scalars().all()
    results = []
    if ids:
        # .all(): one fetchall, not a fetchone per row.
        page = _page_statement(conn.dialect.name == "sqlite")
        rows = {row[0]: row for row in conn.execute(page, {"ids": ids}).all()}
        results = [_to_json(rows[i]) for i in ids]
    return {
        "count": count,
        "next": page_url(offset + limit, limit) if offset + limit < count else None,
        "previous": page_url(max(offset - limit, 0), limit) if offset > 0 else None,
        "results": results,
    }


_STATEMENTS: dict[Any, sa.Select[Any]] = {}


def _page_statement(raw: bool) -> sa.Select[Any]:
    stmt = _STATEMENTS.get(("page", raw))
    if stmt is None:
        stmt = _joined(select(*_columns(raw))).where(
            Ticket.id.in_(sa.bindparam("ids", expanding=True))
        )
        _STATEMENTS[("page", raw)] = stmt
    return stmt


# A placeholder actor for the statement built once; the real one is bound at execution.
_NOBODY = Actor(None, "", Role.TECHNICIAN, False)


def _one_statement(scoped: bool, raw: bool) -> sa.Select[Any]:
    """Built once (with bound parameters): building and hashing it costs more than the read."""
    stmt = _STATEMENTS.get(("one", scoped, raw))
    if stmt is None:
        stmt = _joined(select(*_columns(raw))).where(Ticket.id == sa.bindparam("ticket_id"))
        if scoped:
            # The tenants the actor sees, as a sub-select (its user is the bound parameter
            # ``actor_user_id``): one statement for the read instead of two.
            stmt = stmt.where(Ticket.tenant_id.in_(visible_tenants_select(_NOBODY)))
        _STATEMENTS[("one", scoped, raw)] = stmt
    return stmt


def ticket_row(ticket_id: int, actor: Actor, *, deleted: bool = False) -> TicketRow:
    """A ticket the actor sees, as the API shows it (the trash only for admins asking for
    it); NotFound otherwise, the same for missing, foreign and trashed tickets."""
    if not isinstance(ticket_id, int) or not 0 < ticket_id < 2**31:
        raise NotFound(f"Ticket {ticket_id} not found.")
    scoped = not actor.all_tenants
    params: dict[str, Any] = {"ticket_id": ticket_id}
    if scoped:
        params["actor_user_id"] = actor.user_id
    conn = db.session.connection()
    row = conn.execute(_one_statement(scoped, conn.dialect.name == "sqlite"), params).first()
    if row is None or (row.deleted_at is not None and not (deleted and actor.is_admin)):
        raise NotFound(f"Ticket {ticket_id} not found.")
    return TicketRow(_to_json(row), row.version)
