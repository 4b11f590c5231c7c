"""Tenants (the syndicate's members) and the scoping every read goes through.

API.md §1: an object of a tenant the caller is not bound to does not exist for that
caller. :func:`tenant_scope` adds that condition to a ``select()``; :func:`get_scoped`
fetches one object through it, so that a foreign object and a missing one both raise
the same :class:`~config.errors.NotFound`. A user bound to a tenant also sees its
sub-tenants (the tree of GLPI entities).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy import ForeignKey, Select, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from config.auth import Actor, require, user_tenants
from config.db import (
    EnumType,
    JSONType,
    Model,
    TimestampMixin,
    VersionedMixin,
    db,
    transaction,
)
from config.errors import Conflict, NotFound, ValidationFailed

__all__ = [
    "Tenant",
    "TenantRef",
    "tenant_code_column",
    "tenant_codes",
    "tenant_condition",
    "TenantKind",
    "create_tenant",
    "delete_tenant",
    "get_scoped",
    "resolve_tenant",
    "tenant_ref",
    "tenant_scope",
    "update_tenant",
    "visible_tenant_ids",
    "visible_tenants_select",
]

M = TypeVar("M")

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$|^[a-z0-9]$")


class TenantKind(enum.StrEnum):
    CITY = "city"
    SOCIAL_HOUSING = "social_housing"
    TERRITORY = "territory"
    PUBLIC_BODY = "public_body"
    INTERNAL = "internal"


class Tenant(TimestampMixin, VersionedMixin, Model):
    """A member organisation of the syndicate (or the syndicate itself, kind ``internal``)."""

    __tablename__ = "tenants"
    __object_type__ = "tenant"
    __tenant_column__ = "id"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[TenantKind] = mapped_column(EnumType(TenantKind, 20))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    active: Mapped[bool] = mapped_column(default=True)
    contributions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    external_ids: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)

    parent: Mapped[Tenant | None] = relationship(remote_side=[id], lazy="joined", join_depth=1)

    @property
    def parent_code(self) -> str | None:
        return self.parent.code if self.parent is not None else None


# -- visibility -------------------------------------------------------------------------


def _visible_tenants_query() -> Select[tuple[int]]:
    base = select(user_tenants.c.tenant_id.label("id")).where(
        user_tenants.c.user_id == sa.bindparam("actor_user_id")
    )
    tree = base.cte("visible_tenants", recursive=True)
    tenants = Tenant.__table__.c  # the table's columns: a Core statement, no ORM layer
    tree = tree.union(select(tenants.id).where(tenants.parent_id == tree.c.id))
    return select(tree.c.id)


# Built once: the statement is constant (the user is a bound parameter), so SQLAlchemy's
# compiled cache serves it without rebuilding or recompiling the recursive CTE per request.
_VISIBLE_TENANTS = _visible_tenants_query()


def visible_tenants_select(actor: Actor) -> Select[tuple[int]]:
    """``SELECT id`` of the tenants the actor sees, for use as a subquery."""
    return _VISIBLE_TENANTS.params(actor_user_id=actor.user_id)


def visible_tenant_ids(actor: Actor) -> frozenset[int] | None:
    """The ids of the tenants the actor sees, or None for all (cached on the actor).

    The actor's own tenants and, recursively, their sub-tenants: one statement per request.
    """
    if actor.all_tenants:
        return None
    ids: frozenset[int] | None = actor.cache.get("tenant_ids")
    if ids is None:
        rows = db.session.execute(_VISIBLE_TENANTS, {"actor_user_id": actor.user_id}).scalars()
        ids = frozenset(rows)
        actor.cache["tenant_ids"] = ids
    return ids


def tenant_scope(stmt: Select[Any], actor: Actor, model: type | None = None) -> Select[Any]:
    """Restrict a select to what the actor may see.

    The model (the first entity of ``stmt`` unless given) declares its tenancy with
    ``__tenant_column__`` (rows with a NULL tenant are shared and visible to everyone), or
    with a ``__tenant_scope__(stmt, actor)`` classmethod when visibility is indirect (a
    comment through its ticket, a relation through both its CIs).
    """
    if actor.all_tenants:
        return stmt
    if model is None:
        model = stmt.column_descriptions[0]["entity"]
        if model is None:
            raise TypeError("tenant_scope: pass model= for a select without an entity")
    hook = getattr(model, "__tenant_scope__", None)
    if hook is not None:
        result: Select[Any] = hook(stmt, actor)
        return result
    column_name = getattr(model, "__tenant_column__", None)
    if column_name is None:
        raise TypeError(f"{model.__name__} declares no tenancy (__tenant_column__)")
    return stmt.where(tenant_condition(getattr(model, column_name), actor, model=model))


def tenant_condition(column: Any, actor: Actor, *, model: type | None = None) -> Any:
    """The WHERE condition "``column`` is a tenant the actor sees" (an expanding IN list).

    NULL counts as visible (a shared object) when the mapped column is nullable.
    """
    ids = visible_tenant_ids(actor)
    if ids is None:
        return sa.true()
    condition = column.in_(sorted(ids))
    nullable = getattr(getattr(column, "expression", column), "nullable", False)
    if model is not None:
        nullable = sa.inspect(model).columns[column.key].nullable
    if nullable:  # NULL tenant = shared object
        condition = sa.or_(column.is_(None), condition)
    return condition


_GET_STATEMENTS: dict[tuple[Any, ...], Select[Any]] = {}


def get_scoped(
    model: type[M],
    object_id: int,
    actor: Actor,
    *,
    options: Sequence[Any] = (),
    cache_key: str | None = None,
) -> M:
    """Fetch one object the actor may see, or raise NotFound (same for missing and foreign).

    Without ``options``, or with a ``cache_key`` naming them, the statement is built once
    and reused with bound parameters, which spares SQLAlchemy rebuilding and hashing it on
    every request. Unless the request has already read the actor's tenants, the statement
    reads them itself (the tenant tree as a subquery): one statement instead of two.
    """
    pk = model.id  # type: ignore[attr-defined]
    if not isinstance(object_id, int) or not 0 < object_id < 2**31:
        raise NotFound(f"{_label(model)} {object_id} not found.")
    column_name = getattr(model, "__tenant_column__", None)
    cacheable = cache_key is not None or not options
    if cacheable and column_name and not hasattr(model, "__tenant_scope__"):
        params: dict[str, Any] = {"object_id": object_id}
        scope = None
        if not actor.all_tenants:
            known = actor.cache.get("tenant_ids")
            if known is None:
                scope, params["actor_user_id"] = "tree", actor.user_id
            else:
                scope, params["visible_ids"] = "ids", sorted(known)
        key = (model, cache_key, scope)
        stmt = _GET_STATEMENTS.get(key)
        if stmt is None:
            stmt = select(model).where(pk == sa.bindparam("object_id"))
            if scope is not None:
                column = getattr(model, column_name)
                condition = column.in_(
                    _VISIBLE_TENANTS
                    if scope == "tree"
                    else sa.bindparam("visible_ids", expanding=True)
                )
                if sa.inspect(model).columns[column_name].nullable:  # type: ignore[union-attr]
                    condition = sa.or_(column.is_(None), condition)
                stmt = stmt.where(condition)
            stmt = stmt.options(*options)
            _GET_STATEMENTS[key] = stmt
        obj = db.session.execute(stmt, params).unique().scalar_one_or_none()
    else:
        stmt = tenant_scope(select(model).where(pk == object_id), actor, model)
        obj = db.session.execute(stmt.options(*options)).unique().scalar_one_or_none()
    if obj is None:
        raise NotFound(f"{_label(model)} {object_id} not found.")
    return obj


def tenant_code_column(tenant_id: Any, label: str) -> Any:
    """SQL: the code of the tenant whose id ``tenant_id`` holds (NULL for none), labelled
    ``label``. A correlated subquery on an alias of the tenants table, so that it never
    clashes with a join of the outer select: for list pages read as rows
    (``config.pagination.row_reader``)."""
    tenants = Tenant.__table__.alias(f"{label}_of")
    return select(tenants.c.code).where(tenants.c.id == tenant_id).scalar_subquery().label(label)


def tenant_codes() -> dict[int, str]:
    """``{tenant id: code}`` of all tenants, read once per request (they are few): output
    schemas use it instead of joining the tenants table into every list."""
    from flask import g, has_request_context

    cached: dict[int, str] | None = g.get("syndic_tenant_codes") if has_request_context() else None
    if cached is None:
        cached = dict(db.session.execute(select(Tenant.id, Tenant.code)).all())  # type: ignore[arg-type]
        if has_request_context():
            g.syndic_tenant_codes = cached
    return cached


def _label(model: type) -> str:
    return str(getattr(model, "__object_type__", model.__name__)).replace("_", " ").capitalize()


def _by_code_statements(stmt: Select[Any]) -> tuple[Select[Any], Select[Any], Select[Any]]:
    """``stmt`` (over the tenants table) for the tenant of a bound ``code``: seen by all, among
    a bound list of visible ids, among the actor's tenant tree (a subquery). Built once:
    naming a tenant is part of most writes, and SQLAlchemy then neither rebuilds nor hashes
    the statement per request."""
    table = Tenant.__table__.c
    stmt = stmt.where(table.code == sa.bindparam("code"))
    return (
        stmt,
        stmt.where(table.id.in_(sa.bindparam("visible_ids", expanding=True))),
        stmt.where(table.id.in_(_VISIBLE_TENANTS.scalar_subquery())),
    )


def _by_code(
    statements: tuple[Select[Any], Select[Any], Select[Any]], code: str, actor: Actor
) -> sa.Result[Any]:
    """Run the statement of :func:`_by_code_statements` that fits the actor: one statement,
    with the actor's tenants as a subquery unless this request has read them already."""
    every, in_list, in_tree = statements
    if actor.all_tenants:
        return db.session.execute(every, {"code": code})
    ids = actor.cache.get("tenant_ids")  # cached by visible_tenant_ids
    if ids is not None:
        return db.session.execute(in_list, {"code": code, "visible_ids": sorted(ids)})
    return db.session.execute(in_tree, {"code": code, "actor_user_id": actor.user_id})


_TENANT_BY_CODE = _by_code_statements(select(Tenant))
_TENANT_REF_BY_CODE = _by_code_statements(select(Tenant.__table__.c.id, Tenant.__table__.c.code))


class TenantRef(NamedTuple):
    """A tenant by its id and code, read without loading the object."""

    id: int
    code: str


def tenant_ref(code: str | None, actor: Actor, *, field: str = "tenant") -> TenantRef | None:
    """:func:`resolve_tenant` for a write that needs only the tenant's id and code (a time
    entry): one Core statement, no object."""
    if code is None:
        return None
    row = _by_code(_TENANT_REF_BY_CODE, code, actor).first()
    if row is None:
        raise ValidationFailed("Unknown tenant.", errors={field: [f"Unknown tenant {code!r}."]})
    return TenantRef(row.id, row.code)


def resolve_tenant(code: str | None, actor: Actor, *, field: str = "tenant") -> Tenant | None:
    """A tenant named in a request body, or ValidationFailed naming the field.

    A tenant the actor cannot see is reported exactly like one that does not exist.
    """
    if code is None:
        return None
    tenant = _by_code(_TENANT_BY_CODE, code, actor).scalar_one_or_none()
    if tenant is None:
        raise ValidationFailed("Unknown tenant.", errors={field: [f"Unknown tenant {code!r}."]})
    return tenant


def get_tenant_by_code(code: str, actor: Actor) -> Tenant:
    tenant = _by_code(_TENANT_BY_CODE, code, actor).scalar_one_or_none()
    if tenant is None:
        raise NotFound(f"Tenant {code!r} not found.")
    return tenant


# -- services ---------------------------------------------------------------------------


def _check_code(code: str) -> None:
    if not CODE_RE.match(code):
        raise ValidationFailed(
            "Invalid code.",
            errors={"code": ["Lowercase letters, digits and hyphens; 1-64 characters."]},
        )


def _check_external_ids(tenant: Tenant) -> None:
    for source, ext_id in (tenant.external_ids or {}).items():
        clash = db.session.execute(
            select(Tenant.code).where(
                Tenant.id != tenant.id if tenant.id else sa.true(),
                Tenant.external_ids[source].as_string() == ext_id,
            )
        ).first()
        if clash:
            raise Conflict(f"Another tenant already has the {source} id {ext_id!r}.")


def _check_parent(tenant: Tenant, parent: Tenant | None) -> None:
    node = parent
    while node is not None:
        if node.id is not None and node.id == tenant.id:
            raise ValidationFailed(
                "Invalid parent.", errors={"parent": ["A tenant cannot be its own ancestor."]}
            )
        node = node.parent


def create_tenant(data: Mapping[str, Any], *, actor: Actor) -> Tenant:
    """Create a tenant (admins). Raises Conflict on a taken code or external id."""
    require(actor, "tenants.write")
    _check_code(data["code"])
    with transaction(actor=actor):
        if db.session.execute(select(Tenant.id).where(Tenant.code == data["code"])).first():
            raise Conflict(f"The tenant code {data['code']!r} is taken.")
        parent = resolve_tenant(data.get("parent"), actor, field="parent")
        tenant = Tenant(
            code=data["code"],
            name=data["name"],
            kind=data["kind"],
            parent=parent,
            active=data.get("active", True),
            contributions=dict(data.get("contributions") or {}),
            external_ids=dict(data.get("external_ids") or {}),
        )
        _check_external_ids(tenant)
        db.session.add(tenant)
    return tenant


def update_tenant(tenant: Tenant, changes: Mapping[str, Any], *, actor: Actor) -> Tenant:
    """Apply a partial update (admins). The code may change; it must stay unique."""
    require(actor, "tenants.write")
    with transaction(actor=actor):
        if "code" in changes and changes["code"] != tenant.code:
            _check_code(changes["code"])
            if db.session.execute(select(Tenant.id).where(Tenant.code == changes["code"])).first():
                raise Conflict(f"The tenant code {changes['code']!r} is taken.")
            tenant.code = changes["code"]
        if "parent" in changes:
            parent = resolve_tenant(changes["parent"], actor, field="parent")
            _check_parent(tenant, parent)
            tenant.parent = parent
        for key in ("name", "kind", "active"):
            if key in changes:
                setattr(tenant, key, changes[key])
        for key in ("contributions", "external_ids"):
            if key in changes:
                setattr(tenant, key, dict(changes[key] or {}))
        _check_external_ids(tenant)
    return tenant


def delete_tenant(tenant: Tenant, *, actor: Actor) -> None:
    """Delete a tenant that nothing refers to (admins); otherwise Conflict: deactivate it."""
    require(actor, "tenants.write")
    with transaction(actor=actor):
        if db.session.execute(select(Tenant.id).where(Tenant.parent_id == tenant.id)).first():
            raise Conflict("The tenant has sub-tenants; move or delete them first.")
        db.session.delete(tenant)
        try:
            db.session.flush()
        except sa.exc.IntegrityError:
            raise Conflict(
                "The tenant is still referenced (users, tickets, CIs...); set active=false instead."
            ) from None
