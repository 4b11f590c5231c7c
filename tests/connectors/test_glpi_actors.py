"""Ticket actors from GLPI (Ticket_User): the first requester (type 1) becomes the ticket's
requester, the first assigned technician (type 2) its assignee, by the mapped GLPI user id."""

from __future__ import annotations

import sqlalchemy as sa

from config.db import db
from connectors.models import SyncError
from servicedesk.models import Ticket
from tests.connectors.conftest import sync
from tests.connectors.fake_glpi import Fault


def _ticket(ext: str) -> Ticket:
    db.session.expire_all()
    return (
        db.session.execute(
            sa.select(Ticket).where(Ticket.source == "glpi", Ticket.external_id == ext)
        )
        .unique()
        .scalar_one()
    )


def _messages(run_id: int, level: str) -> list[tuple[str, str | None, str]]:
    rows = db.session.execute(
        sa.select(SyncError).where(SyncError.run_id == run_id, SyncError.level == level)
    ).scalars()
    return [(e.object_type, e.external_id, e.message) for e in rows]


def test_requester_and_assignee_by_mapped_user_then_nothing_changes(sdb, fake):
    fake.add_ticket(10)
    fake.add_ticket(11, is_deleted=1)  # in the trash: actors applied all the same
    fake.add_ticket(12)
    fake.add_actor(1, 10, 2, type=1)
    fake.add_actor(2, 10, 3, type=2)
    fake.add_actor(3, 10, 3, type=1)  # a second requester: the first one counts
    fake.add_actor(4, 11, 3, type=1)
    fake.add_actor(5, 11, 2, type=3)  # an observer: not mapped
    fake.add_actor(6, 12, 0, type=1, alternative_email="anne@mairie.example")
    run = sync()
    assert run.status == "succeeded", run.detail
    ten = _ticket("10")
    assert ten.requester_name == "Leroy Julien"
    assert ten.assignee is not None and ten.assignee.username == "mdupont"
    eleven = _ticket("11")
    assert eleven.deleted_at is not None
    assert eleven.requester_name == "Dupont Marie" and eleven.assignee_id is None
    twelve = _ticket("12")
    assert twelve.requester_email == "anne@mairie.example"
    assert twelve.requester_name == "anne@mairie.example"
    again = sync(full=True)
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    fake.add_actor(7, 12, 2, type=2)  # bumps the ticket's date_mod
    incremental = sync()
    assert incremental.mode == "incremental"
    assert incremental.updated == 1, _messages(incremental.id, "error")
    assert _ticket("12").assignee.username == "jleroy"


def test_unknown_users_and_bad_rows_are_recorded_never_fatal(sdb, fake):
    fake.add_ticket(10)
    fake.add_ticket(11)
    fake.add_actor(1, 10, 99, type=1)  # a user the listing does not show
    fake.add_actor(2, 10, 98, type=2)
    fake.ticket_users[3] = {"id": 3, "users_id": 2, "type": 1}  # no tickets_id
    fake.add_actor(4, 11, 2, type="x")  # not an integer
    fake.add_actor(5, 11, 3, type=7)  # unknown actor type
    fake.add_actor(6, 11, 3, type=2)
    run = sync()
    assert run.status == "succeeded", run.detail
    ten = _ticket("10")
    assert (ten.requester_name, ten.assignee_id) == ("", None)
    warnings = _messages(run.id, "warning")
    assert ("ticket", "10", "requester: GLPI user 99 unknown, left empty") in warnings
    assert ("ticket", "10", "assignee: GLPI user 98 unknown, left empty") in warnings
    assert ("ticket_user", "5", "unknown actor type 7") in warnings
    errors = _messages(run.id, "error")
    assert ("ticket_user", "3", "missing field 'tickets_id'") in errors
    assert any(e[:2] == ("ticket_user", "4") and "type" in e[2] for e in errors)
    eleven = _ticket("11")
    assert eleven.requester_name == "" and eleven.assignee.username == "mdupont"


def test_actors_unreadable_never_clear_them(sdb, fake):
    fake.add_ticket(10)
    fake.add_actor(1, 10, 2, type=1)
    assert sync().status == "succeeded"
    fake.faults.append(Fault("Ticket_User", "error500", times=50))
    full = sync(full=True)
    assert full.status == "failed" and "Ticket_User" in (full.detail or "")
    assert _ticket("10").requester_name == "Leroy Julien"
    fake.touch(10, name="renamed")
    fake.faults.append(Fault("Ticket/10/Ticket_User", "error500", times=50))
    incremental = sync()
    assert incremental.status == "failed"  # partial: the watermark stays
    ten = _ticket("10")
    assert ten.title == "Ticket 10" and ten.requester_name == "Leroy Julien"
    fake.faults.clear()
    assert sync().status == "succeeded"
    ten = _ticket("10")
    assert ten.title == "renamed" and ten.requester_name == "Leroy Julien"


def test_a_vanished_entity_keeps_its_tenant_and_is_logged(sdb, fake):
    from config.tenancy import Tenant

    fake.add_ticket(10, entities_id=2)
    assert sync().status == "succeeded"
    del fake.entities[2]
    run = sync(full=True)
    assert run.status == "succeeded", run.detail
    warnings = _messages(run.id, "warning")
    assert any(w[:2] == ("entity", "2") and "tenant" in w[2] and "kept" in w[2] for w in warnings)
    tenant = db.session.execute(
        sa.select(Tenant).where(Tenant.external_ids["glpi"].as_string() == "2")
    ).scalar_one()
    assert _ticket("10").tenant_id == tenant.id and _ticket("10").deleted_at is None
