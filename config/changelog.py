"""The change log: one row per create/update/delete of a stored object, written by a
session hook in the same transaction as the change (never by calls sprinkled in services).

A model takes part by declaring ``__object_type__`` (``"ticket"``, ``"ci"``...). Its columns
are snapshotted, minus ``__changelog_exclude__`` (secrets); collections listed in
``__changelog_relations__`` appear as lists of one attribute (``{"tenants": "code"}``) or of
small records (``{"milestones": ("name", "due")}``). The entry belongs to the object's tenant
(``__tenant_column__``) or to what ``__changelog_tenant__()`` returns (``RESTRICTED`` for
objects of several tenants: only all-tenant actors read those). Setting ``deleted_at`` (a
soft delete) is logged as a delete.
The table is append-only: the API has no write route and a database trigger refuses
UPDATE and DELETE.
"""

from __future__ import annotations

import decimal
import enum
from datetime import date, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import DDL, String, event, insert
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import get_history

from config.db import ACTOR_KEY, JSONType, Model, UTCDateTime, utcnow

__all__ = ["RESTRICTED", "ChangeRecord", "record_created", "snapshot", "snapshot_values"]


class ChangeRecord(Model):
    """One entry of the change log (who, when, what, before, after)."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    user_id: Mapped[int | None] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(10))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int] = mapped_column()
    # The tenant(s) the object belonged to, for scoping reads of the log; no foreign key,
    # since the log outlives what it describes.
    tenant_id: Mapped[int | None] = mapped_column(index=True)
    prev_tenant_id: Mapped[int | None] = mapped_column()
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (sa.Index("ix_changes_object", "object_type", "object_id"),)

    @classmethod
    def __tenant_scope__(cls, stmt: sa.Select[Any], actor: Any) -> sa.Select[Any]:
        from config.tenancy import visible_tenant_ids

        visible = sorted(visible_tenant_ids(actor) or ())
        return stmt.where(
            sa.or_(cls.tenant_id.is_(None), cls.tenant_id.in_(visible)),
            sa.or_(cls.prev_tenant_id.is_(None), cls.prev_tenant_id.in_(visible)),
        )


# The log is append-only in the database itself, whatever the code does.
_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER changes_no_update BEFORE UPDATE ON changes "
        "BEGIN SELECT RAISE(ABORT, 'the change log is append-only'); END",
        "CREATE TRIGGER changes_no_delete BEFORE DELETE ON changes "
        "BEGIN SELECT RAISE(ABORT, 'the change log is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION changes_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'the change log is append-only'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER changes_no_update_delete BEFORE UPDATE OR DELETE ON changes "
        "FOR EACH ROW EXECUTE FUNCTION changes_append_only()",
    ],
}
for _dialect, _statements in _APPEND_ONLY.items():
    for _sql in _statements:
        _ddl = DDL(_sql).execute_if(dialect=_dialect)  # type: ignore[no-untyped-call]
        event.listen(ChangeRecord.__table__, "after_create", _ddl)


# -- snapshots --------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def snapshot(obj: Any, *, before: bool = False) -> dict[str, Any]:
    """The object's stored state as JSON-able values; ``before=True`` gives the state
    prior to the pending changes (from attribute history, or the row when not loaded)."""
    state = sa.inspect(obj)
    mapper = state.mapper
    exclude = set(getattr(obj, "__changelog_exclude__", ()))
    data: dict[str, Any] = {}
    unknown: list[str] = []
    for attr in mapper.column_attrs:
        key = attr.key
        if key in exclude:
            continue
        if before:
            hist = get_history(obj, key)
            if hist.deleted:
                value = hist.deleted[0]
            elif hist.unchanged:
                value = hist.unchanged[0]
            elif hist.added:
                unknown.append(key)  # set without being loaded: read the stored value below
                value = None
            else:
                value = getattr(obj, key)
        else:
            value = getattr(obj, key)
        data[key] = _jsonable(value)
    if unknown and state.identity is not None:
        pk = mapper.primary_key[0]
        cols = [mapper.get_property(k).columns[0] for k in unknown]
        row = (
            sa.inspect(obj)
            .session.connection()
            .execute(sa.select(*cols).where(pk == state.identity[0]))
            .first()
        )
        if row is not None:
            for key, value in zip(unknown, row, strict=True):
                data[key] = _jsonable(value)
    for rel, spec in getattr(obj, "__changelog_relations__", {}).items():
        hist = get_history(obj, rel)
        if before and (hist.added or hist.deleted):
            items = list(hist.unchanged) + list(hist.deleted)
        else:
            items = list(getattr(obj, rel))
        if isinstance(spec, str):  # a list of one attribute (codes)
            data[rel] = sorted(_jsonable(getattr(i, spec)) for i in items)
        else:  # a list of small records
            rows = [{f: _jsonable(getattr(i, f)) for f in spec} for i in items]
            data[rel] = sorted(rows, key=lambda r: [str(v) for v in r.values()])
    return data


# The tenant of a change that only all-tenant actors may read (an object of several
# tenants: no single tenant column can say who else may see it).
RESTRICTED = -1


def _tenant_of(obj: Any, state: dict[str, Any] | None) -> int | None:
    hook = getattr(obj, "__changelog_tenant__", None)
    if hook is not None:
        result: int | None = hook()
        return result
    col = getattr(obj, "__tenant_column__", None)
    if col is None or state is None:
        return None
    value = state.get(col)
    return value if isinstance(value, int) else None


# -- the session hooks ------------------------------------------------------------------
#
# One entry per object and transaction, however many flushes the transaction makes: each
# flush merges what it saw into an accumulator (first "before", last "after"), and the rows
# are inserted just before the commit, in the same transaction. A savepoint that rolls back
# (a failed record in a sync batch) restores the accumulator as it was when it began.

_PENDING = "syndic.changelog.pending"
_ROWS = "syndic.changelog.rows"
_INSERT_CHANGES = insert(cast(sa.Table, ChangeRecord.__table__))
_UNDO = "syndic.changelog.undo"

Key = tuple[str, int]


@event.listens_for(Session, "before_flush")
def _collect(session: Session, _ctx: Any, _instances: Any) -> None:
    pending: list[tuple[str, Any, dict[str, Any] | None]] = session.info.setdefault(_PENDING, [])
    for obj in session.new:
        if getattr(obj, "__object_type__", None):
            pending.append(("create", obj, None))
    for obj in session.dirty:
        if getattr(obj, "__object_type__", None) and session.is_modified(obj):
            pending.append(("update", obj, snapshot(obj, before=True)))
    for obj in session.deleted:
        if getattr(obj, "__object_type__", None):
            pending.append(("delete", obj, snapshot(obj, before=True)))


def _merge(
    session: Session, rows: dict[Key, dict[str, Any]], key: Key, new: dict[str, Any]
) -> None:
    old = rows.get(key)
    savepoint = session.get_nested_transaction()
    if savepoint is not None:
        # Remember what this key was, to undo it if the savepoint rolls back.
        undo = session.info.setdefault(_UNDO, {}).setdefault(savepoint, [])
        undo.append((key, dict(old) if old is not None else None))
    if old is None:
        rows[key] = new
        return
    if old["action"] == "create":
        if new["action"] == "delete":
            del rows[key]  # created and deleted in one transaction: nothing happened
        else:
            old.update(after=new["after"], tenant_id=new["tenant_id"], obj=new["obj"])
        return
    # An update (or a delete) after an earlier update: keep the first "before".
    old.update(action=new["action"], after=new["after"], tenant_id=new["tenant_id"], obj=new["obj"])


@event.listens_for(Session, "after_flush")
def _accumulate(session: Session, _ctx: Any) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    rows: dict[Key, dict[str, Any]] = session.info.setdefault(_ROWS, {})
    for action, obj, before in pending:
        after = None if action == "delete" else snapshot(obj)
        object_id = sa.inspect(obj).identity[0] if action == "delete" else obj.id
        entry = {
            "action": action,
            "obj": obj,
            "before": before,
            "after": after,
            "tenant_id": _tenant_of(obj, after if after is not None else before),
        }
        _merge(session, rows, (obj.__object_type__, object_id), entry)


def snapshot_values(model: Any, values: dict[str, Any]) -> dict[str, Any]:
    """What :func:`snapshot` gives for an object of ``model`` holding these column values
    (rows written with Core by bulk paths, which have no object to snapshot)."""
    mapper = sa.inspect(model)
    exclude = set(getattr(model, "__changelog_exclude__", ()))
    return {
        attr.key: _jsonable(values.get(attr.key))
        for attr in mapper.column_attrs
        if attr.key not in exclude
    }


def record_created(session: Session, model: Any, rows: list[tuple[int, dict[str, Any]]]) -> None:
    """Log rows that a bulk path inserted with Core, as the session hooks log the objects the
    ORM inserts: one "create" entry per ``(id, column values)``, written at commit with the
    rest, undone with an enclosing savepoint that rolls back."""
    if hasattr(model, "__changelog_tenant__") or hasattr(model, "__changelog_relations__"):
        raise ValueError(f"{model.__name__}: its changes need the objects (no bulk logging)")
    acc: dict[Key, dict[str, Any]] = session.info.setdefault(_ROWS, {})
    for object_id, values in rows:
        after = snapshot_values(model, {**values, "id": object_id})
        entry = {
            "action": "create",
            "obj": model,
            "before": None,
            "after": after,
            "tenant_id": _tenant_of(model, after),
        }
        _merge(session, acc, (model.__object_type__, object_id), entry)


# One INSERT statement per model, built once (SQLAlchemy then skips rebuilding and hashing it).
_INSERTS: dict[Any, sa.Insert] = {}


def insert_created(session: Session, model: Any, params: list[dict[str, Any]]) -> list[int]:
    """One Core INSERT of ``params`` into ``model``'s table (ids in the order of ``params``),
    each row logged as :func:`record_created` does: the bulk and single-row paths that skip
    the ORM's unit of work, with the change log they would have had."""
    if not params:
        return []
    stmt = _INSERTS.get(model)
    if stmt is None:
        table = cast(sa.Table, model.__table__)
        stmt = _INSERTS[model] = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids = list(session.connection().execute(stmt, params).scalars())
    record_created(session, model, list(zip(ids, params, strict=True)))
    return ids


def insert_created_if(
    session: Session, model: Any, stmt: sa.Executable, values: dict[str, Any]
) -> int | None:
    """Run ``stmt``, an ``INSERT ... SELECT ... WHERE <condition> RETURNING id`` of one row of
    ``model`` holding ``values``, and log the row as :func:`insert_created` does; None (and
    nothing logged) when the condition kept the row out."""
    object_id = session.connection().execute(stmt, values).scalar()
    if object_id is not None:
        record_created(session, model, [(object_id, values)])
    return object_id


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    if session.info.get(_PENDING) or session.new or session.dirty or session.deleted:
        session.flush()
    rows = session.info.pop(_ROWS, None)
    if not rows:
        return
    from config.errors import request_id

    actor = session.info.get(ACTOR_KEY)
    now = utcnow()
    rid = request_id()
    out = []
    for (object_type, object_id), row in rows.items():
        action, before, after = row["action"], row["before"], row["after"]
        if action == "update" and before == after:
            continue
        soft_delete = (
            action == "update"
            and before is not None
            and after is not None
            and before.get("deleted_at") is None
            and after.get("deleted_at") is not None
        )
        if soft_delete:  # ``deleted_at`` set: a delete for the log's readers
            action = "delete"
        tenant = row["tenant_id"]
        prev = _tenant_of(row["obj"], before) if action == "update" else None
        out.append(
            {
                "at": now,
                "user_id": getattr(actor, "user_id", None),
                "username": getattr(actor, "username", "system"),
                "action": action,
                "object_type": object_type,
                "object_id": object_id,
                "tenant_id": tenant,
                "prev_tenant_id": prev if prev != tenant else None,
                "before": before,
                "after": after,
                "request_id": rid if rid != "-" else None,
            }
        )
    if out:
        session.connection().execute(_INSERT_CHANGES, out)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:
        # The whole transaction is gone: so is everything it would have logged.
        for key in (_ROWS, _PENDING, _UNDO):
            session.info.pop(key, None)
        return
    # A savepoint rolled back (its after_transaction_end has already run): undo what was
    # logged inside it.
    if not previous_transaction.nested:
        return  # an internal subtransaction: its enclosing transaction decides
    undo = session.info.get(_UNDO, {}).pop(previous_transaction, [])
    session.info.pop(_PENDING, None)
    rows = session.info.get(_ROWS, {})
    for key, previous in reversed(undo):
        if previous is None:
            rows.pop(key, None)
        else:
            rows[key] = previous


@event.listens_for(Session, "after_transaction_end")
def _transaction_ends(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the root: nothing left to undo
        session.info.pop(_UNDO, None)
        return
    if not transaction.nested:
        return
    parent = transaction.parent
    undo = session.info.get(_UNDO, {}).get(transaction)
    if undo and parent is not None and parent.nested:
        # Released into an enclosing savepoint: its rollback must undo these too. (If this
        # savepoint itself rolled back, after_soft_rollback undoes them first, and undoing
        # again to the same earlier states is harmless.)
        session.info[_UNDO].setdefault(parent, []).extend(undo)
