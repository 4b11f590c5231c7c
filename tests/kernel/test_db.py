"""transaction(), the commit guard, IMMEDIATE writes and the change log (service tier)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from config.auth import SYSTEM, Role, User, create_user
from config.changelog import ChangeRecord
from config.db import db as _db
from config.db import transaction
from config.tenancy import Tenant, TenantKind, create_tenant, update_tenant


def count(model) -> int:
    return _db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def changes(**where) -> list[ChangeRecord]:
    stmt = sa.select(ChangeRecord).filter_by(**where).order_by(ChangeRecord.id)
    return list(_db.session.execute(stmt).scalars())


def test_transaction_commits(db):
    with transaction():
        db.session.add(Tenant(code="t1", name="T1", kind=TenantKind.CITY))
    db.session.remove()
    assert count(Tenant) == 1


def test_transaction_rolls_back_on_any_exception(db):
    with pytest.raises(KeyError), transaction():
        db.session.add(Tenant(code="t1", name="T1", kind=TenantKind.CITY))
        db.session.flush()
        raise KeyError("boom")
    db.session.remove()
    assert count(Tenant) == 0
    assert changes() == []


def test_nested_transactions_join_the_outer_one(db):
    with pytest.raises(RuntimeError), transaction():
        with transaction():
            db.session.add(Tenant(code="inner", name="I", kind=TenantKind.CITY))
        assert count(Tenant) == 1  # flushed, not committed
        raise RuntimeError
    db.session.remove()
    assert count(Tenant) == 0


def test_commit_outside_transaction_is_refused(db):
    with pytest.raises(RuntimeError, match="commit outside transaction"):
        db.session.commit()
    db.session.rollback()


def test_write_outside_transaction_is_refused(db):
    db.session.add(Tenant(code="t1", name="T1", kind=TenantKind.CITY))
    with pytest.raises(RuntimeError, match="write outside transaction"):
        db.session.flush()
    db.session.rollback()
    db.session.remove()
    assert count(Tenant) == 0


def test_change_log_records_create_update_delete_with_before_and_after(db):
    tenant = create_tenant({"code": "t1", "name": "Avant", "kind": "city"}, actor=SYSTEM)
    update_tenant(tenant, {"name": "Après"}, actor=SYSTEM)
    with transaction(actor=SYSTEM):
        db.session.delete(db.session.get(Tenant, tenant.id))
    create, update, delete = changes(object_type="tenant", object_id=tenant.id)
    assert (create.action, create.before, create.after["name"]) == ("create", None, "Avant")
    assert (update.before["name"], update.after["name"]) == ("Avant", "Après")
    assert update.before["version"] + 1 == update.after["version"]
    assert (delete.action, delete.before["name"], delete.after) == ("delete", "Après", None)
    assert {c.username for c in (create, update, delete)} == {"system"}
    assert create.tenant_id == tenant.id


def test_an_update_that_changes_nothing_logs_nothing(db):
    tenant = create_tenant({"code": "t1", "name": "Same", "kind": "city"}, actor=SYSTEM)
    update_tenant(tenant, {"name": "Same"}, actor=SYSTEM)
    assert [c.action for c in changes(object_id=tenant.id)] == ["create"]


def test_change_log_never_holds_secrets(db):
    tenant = create_tenant({"code": "t1", "name": "T", "kind": "city"}, actor=SYSTEM)
    user = create_user(
        "u1", role=Role.TECHNICIAN, tenants=[tenant], password="correct horse battery", actor=SYSTEM
    )
    [entry] = changes(object_type="user", object_id=user.id)
    assert "password_hash" not in entry.after
    assert entry.after["tenants"] == ["t1"]
    assert "argon2" not in str(entry.after)


def test_change_log_is_append_only_in_the_database(db):
    create_tenant({"code": "t1", "name": "T", "kind": "city"}, actor=SYSTEM)
    for sql in ("UPDATE changes SET username = 'x'", "DELETE FROM changes"):
        with pytest.raises(DBAPIError), transaction():
            db.session.execute(sa.text(sql))
    db.session.remove()
    assert len(changes()) == 1


def test_sqlite_write_transactions_begin_immediate(app, db, database):
    if database.backend != "sqlite":
        pytest.skip("SQLite only")
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        db.session.execute(sa.select(1)).all()  # a read opens a deferred transaction
        with transaction():
            db.session.add(Tenant(code="t1", name="T1", kind=TenantKind.CITY))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    begins = [s for s in seen if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE"]  # reads run in autocommit, writes take the lock


def test_concurrent_read_then_write_transactions_do_not_fail(app, db):
    """Two threads each read then write (the pattern that gives 'database is locked' with
    plain BEGIN on SQLite); IMMEDIATE serialises them instead."""
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with app.app_context():
                for i in range(15):
                    with transaction(actor=SYSTEM):
                        existing = _db.session.execute(
                            sa.select(sa.func.count()).select_from(Tenant)
                        ).scalar_one()
                        _db.session.add(
                            Tenant(code=f"w{n}-{i}-{existing}", name="W", kind=TenantKind.CITY)
                        )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db.session.remove()
    assert count(Tenant) == 60


def test_stale_version_cannot_overwrite(db):
    """A writer holding version 1 cannot overwrite a row another writer moved to version 2."""
    from sqlalchemy.orm.exc import StaleDataError

    tenant = create_tenant({"code": "t1", "name": "T", "kind": "city"}, actor=SYSTEM)
    with db.engine.begin() as other:  # another process's write, outside this session
        other.execute(
            sa.update(Tenant).where(Tenant.id == tenant.id).values(version=2, name="Theirs")
        )
    tenant_id = tenant.id
    tenant.name = "overwrite"  # this session still holds version 1
    with pytest.raises(StaleDataError), transaction():
        pass
    db.session.remove()
    assert db.session.get(Tenant, tenant_id).name == "Theirs"


def test_users_are_created_with_their_role(db):
    user = create_user("adm", role=Role.ADMIN, tenants=[], actor=SYSTEM)
    assert user.all_tenants is True
    assert db.session.get(User, user.id).role is Role.ADMIN
