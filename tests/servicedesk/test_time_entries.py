"""Time entries: the rules of the timesheet (every bad input of issue 4), days, summaries."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from config.auth import SYSTEM, Role, create_user
from config.db import transaction
from servicedesk import services
from servicedesk.models import TimeEntry
from tests.api_mixins import covers
from tests.support import assert_problem, assert_status


@pytest.fixture()
def tech(as_role, tenant_a):
    return as_role("technician", tenants=[tenant_a], username="tech-a")


def count(db) -> int:
    db.session.remove()
    return db.session.execute(sa.select(sa.func.count()).select_from(TimeEntry)).scalar_one()


def body(**kw):
    return {"tenant": "tenant-a", "date": "2021-03-04", "activity": "mco", **kw}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(minutes=0), "minutes"),
        (body(minutes=-30), "minutes"),
        (body(minutes=1441), "minutes"),
        (body(minutes=60, days=0.5), "days"),
        (body(days=0), "days"),
        (body(days=1.5), "days"),
        (body(), "minutes"),
        (body(minutes=60, activity="golf"), "activity"),
        (body(minutes=60, pole="marketing"), "pole"),
        (body(minutes=60, date="2021-02-30"), "date"),
        (body(minutes=60, channel="pigeon"), "channel"),
        (body(minutes=60, tenant="tenant-b"), "tenant"),
        (body(minutes=60, project="nowhere"), "project"),
        (body(minutes=60, ticket=987654), "ticket"),
    ],
)
def test_bad_time_entries_are_refused_and_write_nothing(tech, db, payload, field):
    problem = assert_problem(tech.post("/api/v1/time-entries", json=payload), 422)
    assert field in problem["errors"], problem
    assert count(db) == 0


def test_days_are_converted_with_the_workday(tech):
    resp = tech.post("/api/v1/time-entries", json=body(days=0.5))
    assert_status(resp, 201)
    assert resp.json["minutes"] == 210 and resp.json["days"] == 0.5  # 7 h workday


def test_no_more_than_24_hours_a_day(tech, as_role, tenant_a, db):
    assert_status(tech.post("/api/v1/time-entries", json=body(minutes=1000)), 201)
    over = tech.post("/api/v1/time-entries", json=body(minutes=441))
    assert assert_problem(over, 422, "invalid-time-entry")["errors"]["minutes"] == [
        "1000 minutes are already logged on 2021-03-04 for this user."
    ]
    assert_status(tech.post("/api/v1/time-entries", json=body(minutes=440)), 201)
    assert count(db) == 2
    # Another day, another user's day and a deleted entry's minutes do not count.
    next_day = body(minutes=1440, date="2021-03-05")
    assert_status(tech.post("/api/v1/time-entries", json=next_day), 201)
    other = as_role("technician", tenants=[tenant_a])
    assert_status(other.post("/api/v1/time-entries", json=body(minutes=1440)), 201)
    with transaction(actor=SYSTEM):
        first = db.session.execute(sa.select(TimeEntry).where(TimeEntry.minutes == 1000))
        first.scalar_one().deleted_at = dt.datetime(2021, 3, 5, tzinfo=dt.UTC)
    assert_status(tech.post("/api/v1/time-entries", json=body(minutes=1000)), 201)
    assert count(db) == 5


def test_dates_beyond_tomorrow_are_refused(tech, today):
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    later = (today + dt.timedelta(days=2)).isoformat()
    assert_status(tech.post("/api/v1/time-entries", json=body(minutes=30, date=tomorrow)), 201)
    assert (
        "date"
        in assert_problem(
            tech.post("/api/v1/time-entries", json=body(minutes=30, date=later)), 422
        )["errors"]
    )


def test_the_ticket_and_the_project_must_serve_the_entry_tenant(
    tech, admin, open_ticket, tenant_a, tenant_b, db
):
    ticket_b = open_ticket(tenant_b)
    ticket_a = open_ticket(tenant_a)
    resp = admin.post(
        "/api/v1/time-entries", json=body(minutes=30, ticket=ticket_b.id, user="tech-a")
    )
    assert "ticket" in assert_problem(resp, 422)["errors"]
    services.create_project(
        {"code": "proj-b", "name": "B", "tenants": ["tenant-b"]},
        actor=SYSTEM,
        now=services.dt.datetime.now(services.dt.UTC),
    )
    resp = admin.post(
        "/api/v1/time-entries", json=body(minutes=30, project="proj-b", user="tech-a")
    )
    assert "project" in assert_problem(resp, 422)["errors"]
    ok = tech.post(
        "/api/v1/time-entries",
        json={"date": "2021-03-04", "activity": "mco", "minutes": 30, "ticket": ticket_a.id},
    )
    assert_status(ok, 201)
    assert ok.json["tenant"] == "tenant-a"  # from the ticket
    assert count(db) == 1


def test_only_managers_log_time_for_others_of_the_same_tenants(
    tech, as_role, tenant_a, tenant_b, db
):
    create_user("colleague", role=Role.TECHNICIAN, tenants=[tenant_a], actor=SYSTEM)
    create_user("elsewhere", role=Role.TECHNICIAN, tenants=[tenant_b], actor=SYSTEM)
    assert_problem(tech.post("/api/v1/time-entries", json=body(minutes=30, user="colleague")), 403)
    manager = as_role("manager", tenants=[tenant_a])
    assert_status(
        manager.post("/api/v1/time-entries", json=body(minutes=30, user="colleague")), 201
    )
    resp = manager.post("/api/v1/time-entries", json=body(minutes=30, user="elsewhere"))
    assert "user" in assert_problem(resp, 422)["errors"]
    assert count(db) == 1


def test_technicians_change_only_their_own_entries(tech, as_role, tenant_a, log_time):
    other = as_role("technician", tenants=[tenant_a])
    entry = log_time(other.user, tenant_a)
    assert_problem(tech.patch(f"/api/v1/time-entries/{entry.id}", json={"minutes": 10}), 403)
    assert_problem(tech.delete(f"/api/v1/time-entries/{entry.id}"), 403)
    assert_status(other.patch(f"/api/v1/time-entries/{entry.id}", json={"minutes": 10}), 200)


@covers("GET /api/v1/time-entries/summary")
def test_week_summary_of_my_timesheet(tech, as_role, tenant_a, tenant_b, log_time, worker):
    monday = dt.date(2021, 3, 1)
    log_time(tech.user, tenant_a, date=monday, minutes=120)
    log_time(tech.user, tenant_a, date=monday, minutes=60, activity="project")
    log_time(tech.user, tenant_a, date=monday + dt.timedelta(days=2), minutes=420)
    log_time(tech.user, tenant_a, date=monday + dt.timedelta(days=7), minutes=30)  # next week
    resp = tech.get("/api/v1/time-entries/summary?period=week&date=2021-03-03")
    assert_status(resp, 200)
    week = resp.json
    assert (week["from"], week["to"]) == ("2021-03-01", "2021-03-07")
    assert [d["minutes"] for d in week["days"]] == [180, 0, 420, 0, 0, 0, 0]
    assert week["total_minutes"] == 600 and week["total_days"] == pytest.approx(600 / 420, abs=1e-4)
    assert {a["activity"]: a["minutes"] for a in week["activities"]} == {"mco": 540, "project": 60}
    month = tech.get("/api/v1/time-entries/summary?period=month&date=2021-03-15").json
    assert month["total_minutes"] == 630 and len(month["days"]) == 31
    # another tenant's time never shows in a summary
    log_time(worker, tenant_b, date=monday, minutes=300)
    other = tech.get("/api/v1/time-entries/summary?period=week&date=2021-03-01&user=worker").json
    assert other["total_minutes"] == 0
    assert_problem(tech.get("/api/v1/time-entries/summary?period=year"), 400)


def test_my_timesheet_view(tech, log_time, tenant_a):
    log_time(tech.user, tenant_a, date=dt.date(2021, 3, 1))
    log_time(tech.user, tenant_a, date=dt.date(2021, 2, 1))
    resp = tech.get("/api/v1/time-entries?user=me&date__gte=2021-03-01")
    assert resp.json["count"] == 1


def test_synced_entries_cannot_be_deleted_here(tech, db, rules, open_ticket, tenant_a):
    from config.db import utcnow

    ticket = open_ticket(tenant_a)
    services.upsert_external_ticket  # noqa: B018 - documented API used by connectors
    _, entry = services.upsert_external_time_entry(
        {
            "user": "tech-a",
            "tenant": "tenant-a",
            "date": dt.date(2021, 3, 1),
            "minutes": 30,
            "activity": "mco",
        },
        source="glpi",
        external_id="77",
        actor=SYSTEM,
        now=utcnow(),
        rules=rules,
    )
    assert_problem(tech.delete(f"/api/v1/time-entries/{entry.id}"), 403)
    assert ticket


def test_24_hours_a_day_hold_with_concurrent_writers(app, tech, db):
    """Eight requests of 5 h for the same user and day at once: four fit in 24 h, four are
    refused, whichever order the database lets them in (SQLite's write lock, PostgreSQL's
    lock on the user and day)."""
    import threading

    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def post() -> None:
        client = app.test_client()
        client.token = tech.token
        barrier.wait()
        resp = client.post("/api/v1/time-entries", json=body(minutes=300))
        with lock:
            statuses.append(resp.status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] * 4 + [422] * 4, statuses
    db.session.remove()
    total = db.session.execute(sa.select(sa.func.sum(TimeEntry.minutes))).scalar_one()
    assert total == 1200 and count(db) == 4


def test_a_change_counts_the_other_entries_of_its_day_not_itself(tech, db):
    first = tech.post("/api/v1/time-entries", json=body(minutes=1000)).json["id"]
    second = tech.post("/api/v1/time-entries", json=body(minutes=400)).json["id"]
    assert_status(tech.patch(f"/api/v1/time-entries/{second}", json={"minutes": 440}), 200)
    over = tech.patch(f"/api/v1/time-entries/{second}", json={"minutes": 441})
    assert "minutes" in assert_problem(over, 422, "invalid-time-entry")["errors"]
    assert_status(tech.patch(f"/api/v1/time-entries/{first}", json={"minutes": 1000}), 200)
    moved = tech.patch(f"/api/v1/time-entries/{first}", json={"minutes": 1001})
    assert_problem(moved, 422, "invalid-time-entry")


def test_a_logged_entry_is_stored_answered_and_logged_as_read_back(tech, db, open_ticket, tenant_a):
    """log_time writes with Core (no unit of work): every column, the answer, the ETag and the
    change-log record equal what a fresh read of the row gives."""
    from config.changelog import ChangeRecord, snapshot

    ticket = open_ticket(tenant_a)
    services.create_project(
        {"code": "proj-a", "name": "A", "tenants": ["tenant-a"]},
        actor=SYSTEM,
        now=services.dt.datetime.now(services.dt.UTC),
    )
    resp = tech.post(
        "/api/v1/time-entries",
        json=body(
            minutes=95,
            ticket=ticket.id,
            project="proj-a",
            pole="infrastructures",
            channel="on_site",
            note="Remplacement du disque",
        ),
    )
    assert_status(resp, 201)
    assert resp.headers["ETag"] == 'W/"1"'
    db.session.remove()
    entry = db.session.get(TimeEntry, resp.json["id"])
    assert (entry.user.username, entry.tenant.code, entry.ticket_id, entry.project.code) == (
        "tech-a",
        "tenant-a",
        ticket.id,
        "proj-a",
    )
    assert (entry.minutes, entry.pole, entry.channel.value, entry.note, entry.source) == (
        95,
        "infrastructures",
        "on_site",
        "Remplacement du disque",
        "local",
    )
    again = tech.get(f"/api/v1/time-entries/{entry.id}")
    assert again.json == resp.json
    records = (
        db.session.execute(sa.select(ChangeRecord).where(ChangeRecord.object_type == "time_entry"))
        .scalars()
        .all()
    )
    assert [(r.action, r.object_id, r.tenant_id, r.username) for r in records] == [
        ("create", entry.id, tenant_a.id, "tech-a")
    ]
    assert records[0].after == snapshot(entry)


def test_a_tenant_out_of_sight_is_unknown_whichever_way_it_is_looked_up(
    tech, admin, open_ticket, tenant_a, tenant_b, db
):
    """tenant_ref's three statements: the actor's tenants as a subquery (nothing read yet),
    as a list (read for the ticket first), all tenants (admins)."""
    ticket_a = open_ticket(tenant_a)
    alone = tech.post("/api/v1/time-entries", json=body(minutes=30, tenant="tenant-b"))
    assert "tenant" in assert_problem(alone, 422)["errors"]
    after_ticket = tech.post(
        "/api/v1/time-entries", json=body(minutes=30, tenant="tenant-b", ticket=ticket_a.id)
    )
    assert "tenant" in assert_problem(after_ticket, 422)["errors"]
    unknown = admin.post(
        "/api/v1/time-entries", json=body(minutes=30, tenant="nowhere", user="tech-a")
    )
    assert "tenant" in assert_problem(unknown, 422)["errors"]
    assert count(db) == 0
    mine = tech.post("/api/v1/time-entries", json=body(minutes=30, ticket=ticket_a.id))
    assert_status(mine, 201)
    assert mine.json["tenant"] == "tenant-a"
    theirs = admin.post("/api/v1/time-entries", json=body(minutes=30, user="tech-a"))
    assert_status(theirs, 201)
    assert count(db) == 2


def test_lookups_by_ticket_and_project_use_their_partial_indexes(db, open_ticket, tenant_a):
    """The ticket, project and deletion indexes hold only the entries that have a value
    (migration 0006): the lookups by value must still use them, on SQLite as planned here
    (PostgreSQL plans small tables by cost, so its plans are not pinned)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plans")
    ticket = open_ticket(tenant_a)

    def plan(stmt) -> str:
        compiled = stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
        rows = db.session.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        return " | ".join(row[-1] for row in rows).replace("COVERING INDEX", "INDEX")

    from servicedesk.models import Ticket

    spent = plan(sa.select(Ticket.time_spent_minutes).where(Ticket.id == ticket.id))
    assert "USING INDEX ix_time_entries_ticket_id" in spent, spent
    by_ticket = plan(sa.select(TimeEntry.id).where(TimeEntry.ticket_id == ticket.id))
    assert "USING INDEX ix_time_entries_ticket_id" in by_ticket, by_ticket
    by_project = plan(sa.select(TimeEntry.id).where(TimeEntry.project_id == 7).limit(1))
    assert "USING INDEX ix_time_entries_project_id" in by_project, by_project
    deleted = plan(sa.select(TimeEntry.id).where(TimeEntry.deleted_at.is_not(None)))
    assert "USING INDEX ix_time_entries_deleted_at" in deleted, deleted
