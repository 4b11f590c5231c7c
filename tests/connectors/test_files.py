"""The CSV/XLSX source: documented columns, line-numbered errors, idempotency."""

from __future__ import annotations

import sqlalchemy as sa
from openpyxl import Workbook

from config.auth import SYSTEM, Role, create_user
from config.db import db
from config.tenancy import TenantKind, create_tenant
from connectors.models import SyncError
from connectors.runner import run_source
from servicedesk.models import Ticket, TimeEntry

TICKETS = """external_id;tenant;title;opened_at;status;type;urgency
T-1;ville-a;Imprimante HS;2025-03-03 09:12:00;solved;incident;2
T-2;ville-a;Accès ERP;2025-03-30T02:30:00;new;request;3
T-3;nowhere;Tenant inconnu;2025-03-03 09:00:00;new;incident;3
T-4;ville-a;Mauvais statut;2025-03-03 09:00:00;exploded;incident;3
T-5;ville-a;Date folle;le 3 mars;new;incident;3
T-1;ville-a;Doublon;2025-03-03 09:00:00;new;incident;3
;ville-a;Sans id;2025-03-03 09:00:00;new;incident;3
T-6;ville-a;Urgence;2025-03-03 09:00:00;new;incident;9
"""


def _setup():
    tenant = create_tenant({"code": "ville-a", "name": "A", "kind": TenantKind.CITY}, actor=SYSTEM)
    create_user("jdoe", role=Role.TECHNICIAN, tenants=[tenant], actor=SYSTEM)
    return tenant


def _errors(run_id):
    return {
        e.line: e
        for e in db.session.execute(
            sa.select(SyncError).where(SyncError.run_id == run_id, SyncError.level == "error")
        ).scalars()
    }


def test_csv_tickets_with_line_numbered_errors_and_idempotency(sdb, tmp_path):
    _setup()
    path = tmp_path / "tickets.csv"
    path.write_text(TICKETS, encoding="utf-8")
    run = run_source("files", file=str(path), trigger="test")
    assert run.status == "succeeded", run.detail
    errors = _errors(run.id)
    assert set(errors) == {4, 5, 6, 7, 8, 9}
    assert errors[4].external_id == "T-3" and "Unknown tenant" in errors[4].message
    assert "exploded" in errors[5].message
    assert "opened_at" in errors[6].message
    assert "repeated (first on line 2)" in errors[7].message
    assert "external_id" in errors[8].message
    assert "urgency" in errors[9].message
    tickets = {
        t.external_id: t
        for t in db.session.execute(sa.select(Ticket).where(Ticket.source == "files"))
        .unique()
        .scalars()
    }
    assert set(tickets) == {"T-1", "T-2"}
    assert tickets["T-1"].title == "Imprimante HS" and tickets["T-1"].status.value == "solved"
    assert tickets["T-2"].opened_at.isoformat() == "2025-03-30T01:30:00+00:00"  # Paris, DST gap
    again = run_source("files", file=str(path), trigger="test")
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)


def test_xlsx_time_entries_with_column_mapping(sdb, tmp_path, sync_app):
    _setup()
    tickets = tmp_path / "t.csv"
    tickets.write_text(TICKETS.split("\n")[0] + "\n" + TICKETS.split("\n")[1] + "\n")
    run_source("files", file=str(tickets), trigger="test")
    book = Workbook()
    sheet = book.active
    sheet.append(["Id", "user", "date", "hours", "activity", "ticket", "note"])
    sheet.append(["E-1", "jdoe", "2025-03-03", 1.5, "mco", "T-1", "=cmd|' /C calc'!A0"])
    sheet.append(["E-2", "jdoe", "03/03/2025", 1.5, "mco", "T-1", "same again: two entries"])
    sheet.append(["E-3", "ghost", "2025-03-03", 1, "mco", "", ""])
    sheet.append(["E-4", "jdoe", "2025-03-03", -2, "mco", "", ""])
    sheet.append(["E-5", "jdoe", "2025-03-03", 1, "golf", "", ""])
    path = tmp_path / "time.xlsx"
    book.save(path)
    settings = sync_app.extensions["syndic.settings"]
    source = settings.sources["files"]
    from dataclasses import replace

    mapped = replace(source, options={"columns": {"Id": "external_id"}})
    sync_app.extensions["syndic.settings"] = settings.replace(
        sources={**settings.sources, "files": mapped}
    )
    try:
        run = run_source("files", file=str(path), trigger="test")
        assert run.status == "succeeded", run.detail
        errors = _errors(run.id)
        assert set(errors) == {4, 5, 6}
        assert errors[4].external_id == "E-3" and "Unknown user" in errors[4].message
        assert "positive" in errors[5].message and "activity" in errors[6].message
        entries = db.session.execute(sa.select(TimeEntry).order_by(TimeEntry.external_id))
        entries = list(entries.unique().scalars())
        assert [(e.external_id, e.minutes) for e in entries] == [("E-1", 90), ("E-2", 90)]
        assert entries[0].ticket.external_id == "T-1"
        again = run_source("files", file=str(path), trigger="test")
        assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    finally:
        sync_app.extensions["syndic.settings"] = settings


def test_missing_file_fails_the_run_cleanly(sdb, tmp_path):
    run = run_source("files", file=str(tmp_path / "nope.csv"), trigger="test")
    assert run.status == "failed" and "not found" in run.detail
