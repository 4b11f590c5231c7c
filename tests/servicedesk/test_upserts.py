"""The write services the connectors use: idempotent upserts keyed on (source, external_id)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from config.auth import SYSTEM, Role, create_user
from config.changelog import ChangeRecord
from config.db import utcnow
from servicedesk import services
from servicedesk.models import Ticket, TimeEntry

P = dt.timezone(dt.timedelta(hours=1))


@pytest.fixture()
def glpi_tech(db, tenant_a):
    return create_user("leroy.julien", role=Role.TECHNICIAN, tenants=[tenant_a], actor=SYSTEM)


def ticket_data(**kw):
    return {
        "tenant": "tenant-a",
        "type": "incident",
        "title": "Imprimante &amp; scanner",
        "description": "<p>Bonjour</p>",
        "status": "in_progress",
        "urgency": 2,
        "impact": 3,
        "opened_at": dt.datetime(2021, 3, 1, 9, tzinfo=P),
        "owned_at": dt.datetime(2021, 3, 1, 9, 5, tzinfo=P),
        "requester": {"name": "Agent", "email": None},
        "assignee": "leroy.julien",
        **kw,
    }


def up_ticket(rules, ext="4821", **kw):
    return services.upsert_external_ticket(
        ticket_data(**kw), source="glpi", external_id=ext, actor=SYSTEM, now=utcnow(), rules=rules
    )


def up_entry(rules, ext, **kw):
    data = {
        "user": "leroy.julien",
        "date": dt.date(2021, 3, 1),
        "minutes": 60,
        "activity": "mco",
        "ticket_external_id": "4821",
        **kw,
    }
    return services.upsert_external_time_entry(
        data, source="glpi", external_id=ext, actor=SYSTEM, now=utcnow(), rules=rules
    )


def test_ticket_upsert_creates_then_changes_nothing_then_updates(db, rules, glpi_tech):
    assert up_ticket(rules)[0] == "created"
    assert up_ticket(rules)[0] == "unchanged"
    result, ticket = up_ticket(
        rules, status="solved", solved_at=dt.datetime(2021, 3, 2, 10, tzinfo=P)
    )
    assert result == "updated" and ticket.status.value == "solved"
    assert db.session.execute(sa.select(sa.func.count()).select_from(Ticket)).scalar_one() == 1
    changes = (
        db.session.execute(
            sa.select(ChangeRecord.action).where(ChangeRecord.object_type == "ticket")
        )
        .scalars()
        .all()
    )
    assert changes == ["create", "update"]


def test_two_entries_with_distinct_external_ids_stay_two(db, rules, glpi_tech):
    up_ticket(rules)
    assert up_entry(rules, "9001")[0] == "created"
    assert up_entry(rules, "9002")[0] == "created"  # same user, date and minutes
    assert up_entry(rules, "9001")[0] == "unchanged"
    total = db.session.execute(sa.select(sa.func.sum(TimeEntry.minutes))).scalar_one()
    assert total == 120


def test_entries_are_not_bound_by_the_daily_total(db, rules, glpi_tech):
    up_ticket(rules)
    for i in range(30):  # 30 hours recorded in the source for one day: kept, not dropped
        assert up_entry(rules, f"t{i}")[0] == "created"


def test_trashed_ticket_takes_its_time_along_and_comes_back(db, rules, glpi_tech):
    up_ticket(rules)
    up_entry(rules, "9001")
    result, ticket = up_ticket(rules, deleted=True)
    assert result == "updated" and ticket.deleted_at is not None
    live = db.session.execute(
        sa.select(sa.func.count()).select_from(TimeEntry).where(TimeEntry.deleted_at.is_(None))
    ).scalar_one()
    assert live == 0
    assert up_ticket(rules, deleted=True)[0] == "unchanged"
    result, ticket = up_ticket(rules)
    assert result == "updated" and ticket.deleted_at is None
    assert db.session.execute(sa.select(TimeEntry.deleted_at)).scalars().all() == [None]


def test_vanished_tickets_are_soft_deleted(db, rules, glpi_tech):
    up_ticket(rules, ext="1")
    up_ticket(rules, ext="2")
    assert services.soft_delete_external_tickets("glpi", ["2"], actor=SYSTEM, now=utcnow()) == 1
    assert services.soft_delete_external_tickets("glpi", ["2"], actor=SYSTEM, now=utcnow()) == 0
    alive = (
        db.session.execute(sa.select(Ticket.external_id).where(Ticket.deleted_at.is_(None)))
        .scalars()
        .all()
    )
    assert alive == ["1"]


def test_an_entry_for_an_unknown_ticket_is_refused(db, rules, glpi_tech):
    from config.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        up_entry(rules, "9001", ticket_external_id="404")
    assert db.session.execute(sa.select(sa.func.count()).select_from(TimeEntry)).scalar_one() == 0


def test_categories_keep_their_tree(db):
    now = utcnow()
    assert (
        services.upsert_external_category(
            {"name": "Applications"}, source="glpi", external_id="1", actor=SYSTEM, now=now
        )[0]
        == "created"
    )
    result, child = services.upsert_external_category(
        {"name": "ERP", "parent_external_id": "1"},
        source="glpi",
        external_id="2",
        actor=SYSTEM,
        now=now,
    )
    assert result == "created" and child.path == "Applications > ERP"
    assert (
        services.upsert_external_category(
            {"name": "ERP", "parent_external_id": "1"},
            source="glpi",
            external_id="2",
            actor=SYSTEM,
            now=now,
        )[0]
        == "unchanged"
    )
