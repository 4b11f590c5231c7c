"""The GLPI connector against the fake GLPI on loopback."""

from __future__ import annotations

import sqlalchemy as sa

from config.db import db
from config.tenancy import Tenant
from connectors.models import SyncError
from servicedesk.models import Ticket, TimeEntry
from tests.connectors.conftest import sync


def _errors(run_id: int, level: str = "error") -> list[SyncError]:
    return list(
        db.session.execute(
            sa.select(SyncError).where(SyncError.run_id == run_id, SyncError.level == level)
        ).scalars()
    )


def test_first_full_sync_then_nothing_changes(sdb, fake):
    fake.add_ticket(
        10,
        entities_id=1,
        name="Lenteur ERP Finances & Paie",
        itilcategories_id=2,
        status=5,
        urgency=5,
        impact=4,
        priority=6,
        solvedate="2025-03-04 10:00:00",
    )
    fake.add_task(100, 10, 3600, taskcategories_id=1)
    fake.add_task(101, 10, 1800, taskcategories_id=2, is_private=1)
    fake.add_ticket(11, entities_id=3)
    run = sync()
    assert run.status == "succeeded", run.detail
    assert run.mode == "full"  # no watermark yet
    ticket = (
        db.session.execute(sa.select(Ticket).where(Ticket.external_id == "10"))
        .unique()
        .scalar_one()
    )
    assert ticket.title == "Lenteur ERP Finances & Paie"
    assert ticket.status.value == "solved"
    assert (ticket.urgency, ticket.impact, ticket.priority) == (1, 2, 1)
    assert ticket.tenant.code == "ville-de-saint-aubin"
    assert ticket.tenant.external_ids == {"glpi": "1"}
    sub = db.session.execute(
        sa.select(Tenant).where(Tenant.external_ids["glpi"].as_string() == "3")
    ).scalar_one()
    assert sub.parent.code == "ville-de-saint-aubin"
    entries = {
        e.external_id: e for e in db.session.execute(sa.select(TimeEntry)).unique().scalars()
    }
    assert entries["100"].minutes == 60 and entries["100"].activity == "project"
    assert entries["101"].minutes == 30 and entries["101"].activity == "assistance"
    assert entries["101"].note == ""  # private task: the time, not the text
    again = sync()
    assert again.status == "succeeded", again.detail
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    full = sync(full=True)
    assert (full.created, full.updated, full.deleted) == (0, 0, 0), full.by_type
    assert fake.killed >= 3


def _ticket(ext: str) -> Ticket | None:
    return (
        db.session.execute(
            sa.select(Ticket).where(Ticket.source == "glpi", Ticket.external_id == ext)
        )
        .unique()
        .scalar()
    )


def _entries() -> dict[str, TimeEntry]:
    return {e.external_id: e for e in db.session.execute(sa.select(TimeEntry)).unique().scalars()}


def _live_minutes() -> int:
    return db.session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(TimeEntry.minutes), 0)).where(
            TimeEntry.deleted_at.is_(None)
        )
    ).scalar_one()


def test_bad_records_are_recorded_with_their_id_and_the_rest_goes_through(sdb, fake):
    fake.add_ticket(1, name="Good one")
    fake.add_ticket(2, status=9)  # unknown status
    fake.add_ticket(3, entities_id=77)  # entity vanished
    fake.add_ticket(4, name="<script>alert(1)</script>Imprimante")  # sent as &#60;script&#62;
    t5 = fake.add_ticket(5)
    del t5["status"]  # missing field
    fake.add_ticket(6, type=7)
    fake.add_ticket(7, urgency=42)
    fake.add_ticket(8, date="31/12/2024")
    fake.add_ticket(
        9, name="<img src=x onerror=alert(1)>Écran", content="<p>ok</p><script>x()</script>"
    )
    fake.add_task(50, 1, 600)
    fake.add_task(51, 999, 600)  # unknown ticket
    fake.add_task(52, 1, -60)  # negative
    fake.add_task(53, 1, 9)  # GLPI 11.0.3 bug: flagged
    fake.add_task(54, 1, 200_000)  # absurd
    fake.add_task(55, 1, "ten minutes")
    fake.add_task(56, 1, 0)  # no time: no entry
    run = sync()
    errors = {(e.object_type, e.external_id): e.message for e in _errors(run.id)}
    warnings = {(e.object_type, e.external_id): e.message for e in _errors(run.id, "warning")}
    assert "unknown status" in errors[("ticket", "2")]
    assert "unknown entity 77" in errors[("ticket", "3")]
    assert "missing field 'status'" in errors[("ticket", "5")]
    assert "unknown type" in errors[("ticket", "6")]
    assert "urgency" in errors[("ticket", "7")]
    assert "date" in errors[("ticket", "8")]
    assert "Unknown ticket" in errors[("task", "51")]
    assert "negative" in errors[("task", "52")]
    assert "absurd" in errors[("task", "54")]
    assert "actiontime" in errors[("task", "55")]
    assert "under a minute" in warnings[("task", "53")]
    assert "markup removed" in warnings[("ticket", "4")]
    assert run.error_count == len(errors) == 10
    # The good records went through, the hostile ones were neutralised.
    assert _ticket("1") is not None
    assert _ticket("4").title == "Imprimante"
    t9 = _ticket("9")
    assert "<img" not in t9.title and t9.title == "Écran"
    assert "<script>" not in t9.description and "<p>ok</p>" in t9.description
    entries = _entries()
    assert set(entries) == {"50", "53"}
    assert entries["53"].minutes == 1
    for ext in ("2", "3", "5", "6", "7", "8"):
        assert _ticket(ext) is None
    assert run.status == "succeeded"  # record errors do not fail a run; listing errors do


def test_html_notice_before_json_and_malformed_json(sdb, fake):
    from tests.connectors.fake_glpi import Fault

    fake.add_ticket(1)
    fake.add_ticket(2)
    fake.faults.append(Fault("Entity", "notice"))
    run = sync()
    assert run.status == "succeeded", run.detail
    assert any("PHP notice" in e.message for e in _errors(run.id, "warning"))
    assert _ticket("2") is not None
    fake.faults.append(Fault("Ticket", "malformed"))
    fake.touch(1, name="changed")
    full = sync(full=True)
    assert full.status == "failed"
    assert "malformed JSON" in (_errors(full.id)[0].message)
    assert _ticket("1").deleted_at is None and _ticket("2").deleted_at is None  # no deletion


def test_transient_failures_are_retried_and_sessions_reopened(sdb, fake):
    from tests.connectors.fake_glpi import Fault

    for i in range(1, 120):
        fake.add_ticket(i)
    fake.session_calls = 4  # PHP garbage-collects the session every 4 calls
    fake.faults += [Fault("Ticket", "503", times=2), Fault("TicketTask", "timeout", delay=1.5)]
    run = sync()
    assert run.status == "succeeded", run.detail
    assert run.created >= 119
    assert db.session.execute(sa.select(sa.func.count()).select_from(Ticket)).scalar_one() == 119
    retried_503 = [line for line in fake.log if line.startswith("GET Ticket?")]
    assert len(retried_503) >= 4  # 3 pages + the end, plus the two 503s retried
    assert sum(1 for line in fake.log if line.startswith("GET initSession")) > 3


def test_failure_after_retries_fails_the_run_and_masks_secrets(sdb, fake):
    from tests.connectors.fake_glpi import USER_TOKEN, Fault

    fake.add_ticket(1)
    fake.faults.append(Fault("Ticket", "503", times=50))
    run = sync()
    assert run.status == "failed"
    assert _ticket("1") is None
    text = (run.detail or "") + " ".join(e.message for e in _errors(run.id))
    assert "503" in text or "ERROR" in text or "Ticket" in text
    assert USER_TOKEN not in text


def test_wrong_token_fails_cleanly_without_showing_it(sdb, fake, sync_app):
    from connectors.glpi_client import GlpiClient, GlpiError
    from tests.connectors.fake_glpi import APP_TOKEN

    client = GlpiClient(
        sync_app.extensions["syndic.settings"].sources["glpi"].url,
        user_token="wrong-token-123456",
        app_token=APP_TOKEN,
        retries=0,
    )
    try:
        client.open()
    except GlpiError as exc:
        assert exc.status == 401 and exc.code == "ERROR_GLPI_LOGIN_USER_TOKEN"
        assert "wrong-token-123456" not in str(exc)
    else:
        raise AssertionError("initSession with a wrong token must fail")


def test_paris_dates_across_the_dst_change(sdb, fake):
    # 2025-03-30 02:30 does not exist in Paris; 2025-10-26 02:30 happens twice.
    fake.add_ticket(1, date="2025-03-30 01:59:00")
    fake.add_ticket(2, date="2025-03-30 03:01:00")
    fake.add_ticket(3, date="2025-10-26 02:30:00")
    fake.add_ticket(4, date="2025-10-26 03:30:00")
    fake.add_task(10, 4, 3600, date="2025-10-25 23:30:00")
    run = sync()
    assert run.status == "succeeded", run.detail
    stamps = {i: _ticket(str(i)).opened_at.isoformat() for i in (1, 2, 3, 4)}
    assert stamps[1] == "2025-03-30T00:59:00+00:00"
    assert stamps[2] == "2025-03-30T01:01:00+00:00"
    assert stamps[3] == "2025-10-26T00:30:00+00:00"  # the first 02:30 (summer time)
    assert stamps[4] == "2025-10-26T02:30:00+00:00"
    assert str(_entries()["10"].date) == "2025-10-25"  # local date of the task


def test_glpi_11_text_is_not_decoded_twice(sdb, glpi_server):
    from tests.connectors.fake_glpi import small_instance

    fake = small_instance(version="11.0.1")
    glpi_server.switch.fake = fake
    fake.add_ticket(1, name="R&amp;D &#38; co")  # GLPI 11 returns raw text: keep as typed
    run = sync()
    assert run.status == "succeeded", run.detail
    assert _ticket("1").title == "R&amp;D &#38; co"


def test_private_tasks_hidden_from_the_account_are_flagged(sdb, fake):
    fake.see_private = False
    fake.add_ticket(1)
    fake.add_task(10, 1, 600)
    fake.add_task(11, 1, 1200, is_private=1)
    first = sync()
    assert any("private tasks" in e.message for e in _errors(first.id, "warning"))
    fake.touch(1, name="changed")
    run = sync()  # incremental: the ticket's own total shows the hidden time
    warnings = [e for e in _errors(run.id, "warning") if e.object_type == "ticket"]
    assert warnings and "1800 s" in warnings[0].message and warnings[0].external_id == "1"
    assert set(_entries()) == {"10"}


def test_incremental_picks_changes_trash_restore_and_task_removal(sdb, fake):
    fake.add_ticket(1)
    fake.add_ticket(2)
    fake.add_task(10, 1, 600)
    fake.add_task(11, 1, 900)
    fake.add_task(12, 2, 300)
    assert sync().status == "succeeded"
    assert _live_minutes() == 30
    fake.touch(1, status=5, name="Solved now")
    del fake.tasks[11]  # task deleted in GLPI: the ticket's date_mod moves
    fake.touch(1)
    fake.touch(2, is_deleted=1)  # trashed
    run = sync()
    assert run.mode == "incremental" and run.status == "succeeded", run.detail
    assert _ticket("1").title == "Solved now" and _ticket("1").status.value == "solved"
    assert _ticket("2").deleted_at is not None
    assert _live_minutes() == 10
    assert run.by_type["task"].get("deleted") == 1
    fake.touch(2, is_deleted=0)  # restored
    run = sync()
    assert _ticket("2").deleted_at is None and _live_minutes() == 15
    idle = sync()
    assert (idle.created, idle.updated, idle.deleted) == (0, 0, 0)


def test_full_sweep_soft_deletes_purged_and_guards_mass_deletion(sdb, fake):
    for i in range(1, 21):
        fake.add_ticket(i)
        fake.add_task(100 + i, i, 600)
    assert sync(full=True).status == "succeeded"
    del fake.tickets[20]
    del fake.tasks[120]
    run = sync(full=True)
    assert run.status == "succeeded", run.detail
    assert run.by_type["ticket"]["deleted"] == 1
    assert _ticket("20").deleted_at is not None
    assert _entries()["120"].deleted_at is not None
    for i in range(1, 11):  # half of them vanish at once
        del fake.tickets[i]
    guarded = sync(full=True)
    assert guarded.status == "failed" and "would be deleted" in guarded.detail
    assert all(_ticket(str(i)).deleted_at is None for i in range(1, 11))
    allowed = sync(full=True, allow_mass_delete=True)
    assert allowed.status == "succeeded"
    assert all(_ticket(str(i)).deleted_at is not None for i in range(1, 11))


def test_empty_listing_deletes_nothing(sdb, fake):
    fake.add_ticket(1)
    assert sync(full=True).status == "succeeded"
    fake.tickets.clear()
    run = sync(full=True)
    assert run.status == "failed"  # 100 % would vanish: the guard
    assert _ticket("1").deleted_at is None


def test_ticket_item_links_map_to_cis(sdb, fake):
    from cmdb import services as cmdb_services
    from config.auth import SYSTEM

    fake.add_ticket(1)
    fake.items[("Computer", 5)] = {"id": 5, "name": "SRV-ERP-01", "entities_id": 1}
    fake.item_tickets[1] = {"id": 1, "tickets_id": 1, "itemtype": "Computer", "items_id": 5}
    sync(full=True)
    tenant = _ticket("1").tenant
    ci = cmdb_services.create_ci(
        {"kind": "server", "code": "srv-erp-01", "name": "SRV-ERP-01", "tenant": tenant.code},
        actor=SYSTEM,
    )
    run = sync(full=True)
    assert run.by_type["ticket"].get("updated") == 1
    assert _ticket("1").ci_id == ci.id
