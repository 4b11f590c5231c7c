"""GLPI follow-ups (ITILFollowup) → ticket comments: public or private by ``is_private``,
idempotent by external id, HTML sanitised, entities decoded for GLPI ≤ 10.0."""

from __future__ import annotations

import sqlalchemy as sa

from config.auth import User
from config.db import db
from connectors.models import SyncError
from servicedesk.models import Comment, Ticket
from tests.connectors.conftest import sync
from tests.connectors.fake_glpi import Fault, small_instance


def _comments() -> dict[str, Comment]:
    db.session.expire_all()
    rows = db.session.execute(sa.select(Comment).where(Comment.source == "glpi")).scalars()
    return {c.external_id: c for c in rows}


def _user_id(username: str) -> int:
    return db.session.execute(sa.select(User.id).where(User.username == username)).scalar_one()


def _messages(run_id: int, level: str) -> list[tuple[str, str | None, str]]:
    rows = db.session.execute(
        sa.select(SyncError).where(SyncError.run_id == run_id, SyncError.level == level)
    ).scalars()
    return [(e.object_type, e.external_id, e.message) for e in rows]


def test_followups_become_comments_once(sdb, fake):
    fake.add_ticket(10)
    fake.add_followup(1, 10, "<p>Rappel &amp; relance</p><script>alert(1)</script>")
    fake.add_followup(2, 10, "<p>Mot de passe : X</p>", is_private=1, users_id=3)
    fake.add_followup(3, 99, "<p>Sur un problème</p>", itemtype="Problem")  # not a ticket
    run = sync()
    assert run.status == "succeeded", run.detail
    comments = _comments()
    assert set(comments) == {"1", "2"}
    one, two = comments["1"], comments["2"]
    assert "<script>" not in one.body and "alert" not in one.body
    assert "Rappel &amp; relance" in one.body  # decoded once (10.0), then sanitised HTML
    assert not one.private and two.private
    assert one.author_id == _user_id("jleroy") and one.author_name == "Leroy Julien"
    assert two.author_id == _user_id("mdupont")
    ticket = db.session.get(Ticket, one.ticket_id)
    assert ticket.external_id == "10" and one.tenant_id == ticket.tenant_id
    assert fake.followups[1]["date"] == "2025-03-03 09:02:00"
    assert one.created_at.strftime("%H:%M") == "08:02"  # GLPI's Paris time, in UTC
    again = sync(full=True)
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    assert set(_comments()) == {"1", "2"}
    fake.followups[1]["content"] = "<p>Rappel corrigé</p>"
    fake.touch(10)
    incremental = sync()
    assert incremental.mode == "incremental" and incremental.updated >= 1
    assert "corrigé" in _comments()["1"].body
    fake.add_followup(4, 10, "<p>Nouveau</p>")
    assert sync().created == 1
    assert set(_comments()) == {"1", "2", "4"}


def test_glpi_11_text_is_not_decoded(sdb, glpi_server):
    fake = small_instance("11.0.1")
    glpi_server.switch.fake = fake
    fake.add_ticket(10)
    fake.add_followup(1, 10, "<p>a &amp;lt; b</p>")
    assert sync().status == "succeeded"
    assert "a &amp;lt; b" in _comments()["1"].body


def test_bad_followups_are_recorded_never_fatal(sdb, fake):
    fake.add_ticket(10)
    fake.add_ticket(11, is_deleted=1)
    fake.add_followup(1, 404, "<p>Ticket inconnu</p>")
    fake.add_followup(2, 10, "   ")
    fake.followups[3] = {"id": 3, "itemtype": "Ticket", "items_id": 10}  # no content
    fake.add_followup(4, 10, "<p>Auteur inconnu</p>", users_id=77)
    fake.add_followup(5, 11, "<p>Dans la corbeille</p>")
    fake.add_followup(6, 10, "<p>Date</p>", date="hier")
    run = sync()
    assert run.status == "succeeded", run.detail
    errors = {(t, e): m for t, e, m in _messages(run.id, "error")}
    assert "Unknown ticket '404'" in errors[("followup", "1")]
    assert errors[("followup", "2")] == "empty follow-up"
    assert errors[("followup", "3")] == "missing field 'content'"
    assert "not a date" in errors[("followup", "6")]
    warnings = _messages(run.id, "warning")
    assert ("followup", "4", "author: GLPI user 77 unknown, left empty") in warnings
    assert any(w[:2] == ("followup", "5") and "trash" in w[2] for w in warnings)
    comments = _comments()
    assert set(comments) == {"4", "5"}
    assert comments["4"].author_id is None and comments["4"].author_name == ""


def test_followups_unreadable_leave_the_ticket_for_the_next_run(sdb, fake):
    fake.add_ticket(10)
    assert sync().status == "succeeded"
    fake.add_followup(1, 10, "<p>Relance</p>")
    fake.faults.append(Fault("Ticket/10/ITILFollowup", "error500", times=50))
    run = sync()
    assert run.status == "failed"  # partial: the watermark stays
    assert _comments() == {}
    fake.faults.clear()
    assert sync().created == 1
    assert set(_comments()) == {"1"}
