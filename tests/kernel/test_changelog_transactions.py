"""Savepoints and the change log: a rolled-back savepoint leaves no entry."""

import sqlalchemy as sa

from config.auth import SYSTEM
from config.changelog import ChangeRecord
from config.db import transaction
from config.tenancy import Tenant, TenantKind


def test_rolled_back_savepoint_leaves_no_change_entry(db):
    with transaction(actor=SYSTEM):
        db.session.add(Tenant(code="kept", name="K", kind=TenantKind.CITY))
        try:
            with db.session.begin_nested():
                db.session.add(Tenant(code="dropped", name="D", kind=TenantKind.CITY))
                db.session.flush()
                raise ValueError
        except ValueError:
            pass
        db.session.add(Tenant(code="kept2", name="K2", kind=TenantKind.CITY))
    db.session.remove()
    rows = db.session.execute(sa.select(ChangeRecord.after)).scalars().all()
    assert sorted(r["code"] for r in rows) == ["kept", "kept2"]


def test_several_flushes_make_one_entry(db):
    with transaction(actor=SYSTEM):
        t = Tenant(code="one", name="A", kind=TenantKind.CITY)
        db.session.add(t)
        db.session.flush()
        t.name = "B"
        db.session.flush()
        t.name = "C"
    db.session.remove()
    rows = db.session.execute(sa.select(ChangeRecord)).scalars().all()
    assert [(r.action, r.after["name"]) for r in rows] == [("create", "C")]


def test_released_savepoint_inside_a_rolled_back_one_leaves_nothing(db):
    with transaction(actor=SYSTEM):
        try:
            with db.session.begin_nested():
                with db.session.begin_nested():
                    db.session.add(Tenant(code="inner", name="I", kind=TenantKind.CITY))
                    db.session.flush()
                db.session.add(Tenant(code="outer", name="O", kind=TenantKind.CITY))
                db.session.flush()
                raise ValueError
        except ValueError:
            pass
        db.session.add(Tenant(code="after", name="A", kind=TenantKind.CITY))
    db.session.remove()
    rows = db.session.execute(sa.select(ChangeRecord.after)).scalars().all()
    assert [r["code"] for r in rows] == ["after"]
    assert db.session.execute(sa.select(Tenant.code)).scalars().all() == ["after"]
