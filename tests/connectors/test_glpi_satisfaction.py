"""GLPI satisfaction surveys (TicketSatisfaction) → the ticket's satisfaction answer
(score 1–5 and comment) once answered."""

from __future__ import annotations

import sqlalchemy as sa

from config.db import db
from connectors.models import SyncError
from servicedesk.models import Satisfaction, Ticket
from tests.connectors.conftest import sync
from tests.connectors.fake_glpi import Fault


def _answers() -> dict[str, Satisfaction]:
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(Satisfaction, Ticket.external_id).join(
            Ticket, Ticket.id == Satisfaction.ticket_id
        )
    ).all()
    return {ext: answer for answer, ext in rows}


def _errors(run_id: int) -> dict[tuple[str, str | None], str]:
    rows = db.session.execute(
        sa.select(SyncError).where(SyncError.run_id == run_id, SyncError.level == "error")
    ).scalars()
    return {(e.object_type, e.external_id): e.message for e in rows}


def test_answered_surveys_become_the_ticket_satisfaction_once(sdb, fake):
    fake.add_ticket(10, status=6)
    fake.add_ticket(11, status=6)
    fake.add_satisfaction(1, 10, 4, "Rapide & efficace")  # &#38; on 10.0
    fake.add_satisfaction(2, 11, None)  # sent, not answered yet
    run = sync()
    assert run.status == "succeeded", run.detail
    answers = _answers()
    assert set(answers) == {"10"}
    assert answers["10"].score == 4 and answers["10"].comment == "Rapide & efficace"
    ticket = db.session.execute(sa.select(Ticket).where(Ticket.external_id == "10")).scalar_one()
    assert answers["10"].tenant_id == ticket.tenant_id
    again = sync(full=True)
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    fake.satisfactions[2].update(satisfaction=2, date_answered="2025-03-04 10:00:00")
    fake.touch(11)
    incremental = sync()
    assert incremental.mode == "incremental" and incremental.created >= 1
    assert _answers()["11"].score == 2
    assert _answers()["11"].answered_at.strftime("%Y-%m-%d %H:%M") == "2025-03-04 09:00"


def test_bad_surveys_are_recorded_never_fatal(sdb, fake):
    fake.add_ticket(10, status=6)
    fake.add_ticket(11, status=6)
    fake.add_ticket(12, status=6, is_deleted=1)
    fake.add_satisfaction(1, 10, 0)  # GLPI's scale starts at 0
    fake.add_satisfaction(2, 404, 5)  # unknown ticket
    fake.satisfactions[3] = {"id": 3, "tickets_id": 11, "comment": ""}  # no satisfaction
    fake.add_satisfaction(4, 11, "cinq")
    fake.add_satisfaction(5, 12, 5)  # trashed ticket: kept with it
    run = sync()
    assert run.status == "succeeded", run.detail
    errors = _errors(run.id)
    assert "outside 1..5" in errors[("satisfaction", "1")]
    assert "Unknown ticket '404'" in errors[("satisfaction", "2")]
    assert errors[("satisfaction", "3")] == "missing field 'satisfaction'"
    assert "not an integer" in errors[("satisfaction", "4")]
    assert set(_answers()) == {"12"}


def test_surveys_unreadable_in_a_full_run_keep_the_listing_partial(sdb, fake):
    fake.add_ticket(10, status=6)
    fake.add_satisfaction(1, 10, 5)
    fake.faults.append(Fault("TicketSatisfaction", "error500", times=50))
    run = sync()
    assert run.status == "failed"  # no deletion, watermark kept
    assert _answers() == {}
    fake.faults.clear()
    assert sync(full=True).status == "succeeded"
    assert _answers()["10"].score == 5
