"""The bulk upserts of a source's pages (servicedesk/bulk.py) against the single-object
path: same rows, same change-log entries, same refusals, idempotent."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from config.auth import SYSTEM, Role, create_user
from config.changelog import ChangeRecord
from config.db import db
from servicedesk import bulk
from servicedesk import services as desk
from servicedesk.models import Ticket, TimeEntry
from servicedesk.queries import current_rules

NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
VOLATILE = {"id", "external_id", "created_at", "updated_at", "ticket_id"}


def _ticket(tenant: str, n: int, **kw: Any) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "type": "incident",
        "title": f"Panne {n}",
        "description": "<p>ok</p>",
        "status": "in_progress",
        "urgency": 2,
        "impact": 3,
        "opened_at": dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC),
        "owned_at": dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC),
        **kw,
    }


def _entry(user: str, ticket: str, **kw: Any) -> dict[str, Any]:
    return {
        "user": user,
        "date": dt.date(2025, 3, 4),
        "minutes": 45,
        "activity": "assistance",
        "ticket_external_id": ticket,
        "note": "fait",
        **kw,
    }


def _log(object_type: str) -> dict[str, dict[str, Any]]:
    """The change-log entries of a type, by the external id of their object."""
    rows = db.session.execute(
        sa.select(ChangeRecord).where(ChangeRecord.object_type == object_type)
    ).scalars()
    return {r.after["external_id"]: r for r in rows if r.after}


def _same(a: ChangeRecord, b: ChangeRecord) -> None:
    assert (a.action, a.tenant_id, a.before) == (b.action, b.tenant_id, b.before)
    assert {k: v for k, v in a.after.items() if k not in VOLATILE} == {
        k: v for k, v in b.after.items() if k not in VOLATILE
    }
    assert a.after.keys() == b.after.keys()


@pytest.fixture()
def setup(db, tenant_a):
    create_user("tech", role=Role.TECHNICIAN, tenants=[tenant_a], actor=SYSTEM)
    return tenant_a, current_rules()


def test_bulk_rows_and_change_log_match_the_single_path(setup):
    tenant, rules = setup
    desk.upsert_external_ticket(
        _ticket(tenant.code, 1), source="s", external_id="1", actor=SYSTEM, now=NOW, rules=rules
    )
    results = bulk.upsert_external_tickets(
        [("2", _ticket(tenant.code, 1)), ("3", _ticket(tenant.code, 3, deleted=True))],
        source="s",
        actor=SYSTEM,
        now=NOW,
        rules=rules,
    )
    assert [r[0] for r in results] == ["created", "created"]
    desk.upsert_external_time_entry(
        _entry("tech", "1"), source="s", external_id="10", actor=SYSTEM, now=NOW, rules=rules
    )
    results = bulk.upsert_external_time_entries(
        [("11", _entry("tech", "2")), ("12", _entry("tech", "3"))],
        source="s",
        actor=SYSTEM,
        now=NOW,
        rules=rules,
    )
    assert [r[0] for r in results] == ["created", "created"]
    assert results[1][1].deleted_at is not None  # the ticket is in the trash
    tickets = {t.external_id: t for t in db.session.execute(sa.select(Ticket)).unique().scalars()}
    one, two = tickets["1"], tickets["2"]
    for col in ("title", "status", "priority", "due_to_own_at", "due_to_resolve_at"):
        assert getattr(one, col) == getattr(two, col)
    assert one.sla_breached == two.sla_breached
    assert tickets["3"].deleted_at == NOW
    entries = {
        e.external_id: e for e in db.session.execute(sa.select(TimeEntry)).unique().scalars()
    }
    assert entries["11"].ticket_id == two.id and entries["11"].tenant_id == tenant.id
    assert entries["12"].deleted_at == NOW  # with its trashed ticket
    log = _log("ticket")
    _same(log["1"], log["2"])
    assert log["3"].after["deleted_at"] is not None
    log = _log("time_entry")
    _same(log["10"], log["11"])
    assert log["11"].after["ticket_id"] == two.id


def test_bulk_second_run_is_unchanged_and_refusals_come_back(setup):
    tenant, rules = setup
    page = [("1", _ticket(tenant.code, 1)), ("2", _ticket(tenant.code, 2))]
    bulk.upsert_external_tickets(page, source="s", actor=SYSTEM, now=NOW, rules=rules)
    changed = [("1", _ticket(tenant.code, 1)), ("2", _ticket(tenant.code, 2, title="Autre"))]
    changed.append(("4", _ticket("nowhere", 4)))
    changed.append(("5", _ticket(tenant.code, 5)))
    changed.append(("5", _ticket(tenant.code, 5, title="Répété")))  # twice in one page
    results = bulk.upsert_external_tickets(changed, source="s", actor=SYSTEM, now=NOW, rules=rules)
    assert [r[0] for r in results] == ["unchanged", "updated", None, "created", "updated"]
    assert "Unknown tenant" in str(results[2][2].detail)
    five = (
        db.session.execute(sa.select(Ticket).where(Ticket.external_id == "5")).unique().scalar_one()
    )
    assert five.title == "Répété"
    entries = [
        ("10", _entry("tech", "1")),
        ("11", _entry("ghost", "1")),
        ("12", _entry("tech", "404")),
        ("13", _entry("tech", "1", minutes=2000)),
        ("14", _entry("tech", "1", activity="sieste")),
    ]
    results = bulk.upsert_external_time_entries(
        entries, source="s", actor=SYSTEM, now=NOW, rules=rules
    )
    assert [r[0] for r in results] == ["created", None, None, None, None]
    messages = [str(r[2].errors) for r in results[1:]]
    assert "user" in messages[0] and "ticket" in messages[1]
    assert "minutes" in messages[2] and "activity" in messages[3]
    again = bulk.upsert_external_time_entries(
        entries[:1], source="s", actor=SYSTEM, now=NOW, rules=rules
    )
    assert again[0][0] == "unchanged"
    assert db.session.execute(sa.select(sa.func.count()).select_from(TimeEntry)).scalar() == 1


def test_a_rolled_back_savepoint_logs_nothing_of_a_bulk_insert(setup):
    tenant, rules = setup
    from config.db import transaction

    with transaction(actor=SYSTEM):
        with pytest.raises(RuntimeError), db.session.begin_nested():
            bulk.upsert_external_tickets(
                [("1", _ticket(tenant.code, 1))],
                source="s",
                actor=SYSTEM,
                now=NOW,
                rules=rules,
            )
            raise RuntimeError("page refused")
        bulk.upsert_external_tickets(
            [("2", _ticket(tenant.code, 2))], source="s", actor=SYSTEM, now=NOW, rules=rules
        )
    assert set(_log("ticket")) == {"2"}
    assert db.session.execute(sa.select(Ticket.external_id)).scalars().all() == ["2"]
