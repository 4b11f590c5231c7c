"""The GLPI connector against the fake GLPI on loopback."""

from __future__ import annotations

import sqlalchemy as sa

from config.db import db
from config.tenancy import Tenant
from connectors.models import SyncError, SyncRun
from servicedesk.models import Ticket, TimeEntry
from tests.connectors.conftest import sync


def _errors(run_id: int, level: str = "error") -> list[SyncError]:
    return list(
        db.session.execute(
            sa.select(SyncError).where(SyncError.run_id == run_id, SyncError.level == level)
        ).scalars()
    )


def test_first_full_sync_then_nothing_changes(sdb, fake):
    fake.add_ticket(10, entities_id=1, name="Lenteur ERP Finances & Paie", itilcategories_id=2,
                    status=5, urgency=5, impact=4, priority=6, solvedate="2025-03-04 10:00:00")
    fake.add_task(100, 10, 3600, taskcategories_id=1)
    fake.add_task(101, 10, 1800, taskcategories_id=2, is_private=1)
    fake.add_ticket(11, entities_id=3)
    run = sync()
    assert run.status == "succeeded", run.detail
    assert run.mode == "full"  # no watermark yet
    ticket = db.session.execute(sa.select(Ticket).where(Ticket.external_id == "10")).unique().scalar_one()
    assert ticket.title == "Lenteur ERP Finances & Paie"
    assert ticket.status.value == "solved"
    assert (ticket.urgency, ticket.impact, ticket.priority) == (1, 2, 1)
    assert ticket.tenant.code == "ville-de-saint-aubin"
    assert ticket.tenant.external_ids == {"glpi": "1"}
    sub = db.session.execute(sa.select(Tenant).where(Tenant.external_ids["glpi"].as_string() == "3")).scalar_one()
    assert sub.parent.code == "ville-de-saint-aubin"
    entries = {e.external_id: e for e in db.session.execute(sa.select(TimeEntry)).unique().scalars()}
    assert entries["100"].minutes == 60 and entries["100"].activity == "project"
    assert entries["101"].minutes == 30 and entries["101"].activity == "assistance"
    assert entries["101"].note == ""  # private task: the time, not the text
    again = sync()
    assert again.status == "succeeded", again.detail
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    full = sync(full=True)
    assert (full.created, full.updated, full.deleted) == (0, 0, 0), full.by_type
    assert fake.killed >= 3
