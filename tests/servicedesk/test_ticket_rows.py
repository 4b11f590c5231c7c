"""Ticket reads as rows (servicedesk.ticket_rows) give exactly what TicketOut dumps from the
ORM objects, over tickets that differ in every way the representation shows."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from config.auth import SYSTEM, Actor, create_user
from config.db import db as _db
from config.db import transaction, utcnow
from config.errors import NotFound
from servicedesk import services, ticket_rows
from servicedesk.models import Ticket, TicketStatus, TimeEntry
from servicedesk.schemas import TicketFilter, TicketOut
from tests.support import assert_status

S = TicketStatus


@pytest.fixture()
def varied(db, app, rules, open_ticket, log_time, tenant_a, tenant_b, make_tenant, today):
    """Tickets in every status, with and without category, CI, assignee, group, requester
    e-mail, HTML description, satisfaction, time (some of it deleted), SLA breach; one in the
    trash, one of a sub-tenant, one of another tenant."""
    from cmdb import services as cmdb

    tech = create_user("row-tech", role="technician", tenants=[tenant_a], actor=SYSTEM)
    other = create_user("row-other", role="technician", tenants=[tenant_b], actor=SYSTEM)
    child = make_tenant("tenant-a-child", name="Child", parent="tenant-a")
    category = services.create_category({"name": "Réseau"}, actor=SYSTEM)
    sub = services.create_category({"name": "Wi-Fi", "parent": category.id}, actor=SYSTEM)
    cmdb.create_ci({"kind": "host", "code": "hv-1", "name": "HV 1"}, actor=SYSTEM)
    now = utcnow()

    def move(ticket: Ticket, *steps: TicketStatus) -> Ticket:
        for to in steps:
            ticket = services.transition_ticket(
                ticket,
                to,
                comment="Fait." if to is S.SOLVED else None,
                assignee="row-tech" if to is S.ASSIGNED else None,
                actor=SYSTEM,
                now=now,
                rules=rules,
            )
        return ticket

    rich = open_ticket(
        tenant_a,
        description='<p>Bonjour <a href="javascript:x()">ici</a></p><script>x</script>',
        description_format="html",
        requester={"name": "Agent Ivry", "email": "agent@ivry.fr"},
        category=sub.id,
        ci="host:hv-1",
        assignee="row-tech",
        group="N2 réseau",
        urgency=1,
        impact=2,
    )
    tickets = [rich, open_ticket(tenant_a, description="")]
    tickets.append(move(open_ticket(tenant_a, category=category.id), S.ASSIGNED))
    tickets.append(move(open_ticket(tenant_a), S.IN_PROGRESS))
    tickets.append(move(open_ticket(tenant_a), S.IN_PROGRESS, S.PENDING))
    solved = move(open_ticket(tenant_a, ci="host:hv-1"), S.IN_PROGRESS, S.SOLVED)
    closed = move(open_ticket(tenant_a), S.IN_PROGRESS, S.SOLVED, S.CLOSED)
    tickets += [solved, closed, move(open_ticket(tenant_a), S.CANCELLED)]
    services.record_satisfaction(solved, {"score": 4}, actor=SYSTEM, now=now)
    services.record_satisfaction(closed, {"score": 1, "comment": "Lent."}, actor=SYSTEM, now=now)
    for minutes in (30, 45):
        log_time(tech, tenant_a, ticket=rich.id, minutes=minutes)
    gone = log_time(tech, tenant_a, ticket=rich.id, minutes=90, date=today - dt.timedelta(days=2))
    log_time(tech, tenant_a, ticket=solved.id, minutes=15)
    with transaction(actor=SYSTEM):
        _db.session.get(TimeEntry, gone.id).deleted_at = now
    tickets.append(open_ticket(child, requester={"name": "Enfant"}))
    trashed = open_ticket(tenant_a)
    services.delete_ticket(trashed, actor=SYSTEM, now=now)
    foreign = open_ticket(tenant_b, assignee="row-other")
    services.flag_breached_tickets(now=now + dt.timedelta(days=365), rules=rules)
    ids = [t.id for t in tickets]
    _db.session.remove()
    return {
        "tech": Actor.of(_db.session.get(type(tech), tech.id)),
        "other": other,
        "visible": ids,
        "trashed": trashed.id,
        "foreign": foreign.id,
        "all": sorted([*ids, trashed.id, foreign.id]),
    }


def _marshmallow(ids: list[int]) -> list[dict]:
    _db.session.expire_all()
    by_id = {t.id: t for t in _db.session.execute(sa.select(Ticket)).unique().scalars()}
    return TicketOut(many=True).dump([by_id[i] for i in ids])


def _page(actor: Actor, *, deleted: bool = False, **args) -> dict:
    args = {"ordering": "id", "limit": 100, **args}
    stmt = TicketFilter.apply(ticket_rows.ticket_ids_select(actor, deleted=deleted), args)
    return ticket_rows.ticket_page(stmt, args)


def _same(rows: list[dict], expected: list[dict]) -> None:
    assert rows == expected
    assert [list(r) for r in rows] == [list(e) for e in expected]  # the key order too


def test_the_varied_tickets_differ_where_the_representation_does(app, varied):
    with app.test_request_context("/api/v1/tickets"):
        rows = {r["id"]: r for r in _page(SYSTEM, deleted=True)["results"]}
    assert {r["status"] for r in rows.values()} == {s.value for s in S}
    for key in ("category", "ci", "assignee", "group", "satisfaction", "description_html"):
        assert {r[key] is None for r in rows.values()} == {True, False}, key
    assert {r["sla_breached"] for r in rows.values()} == {True, False}
    assert {r["deleted_at"] is None for r in rows.values()} == {True, False}
    assert {r["tenant"] for r in rows.values()} == {"tenant-a", "tenant-a-child", "tenant-b"}
    assert rows[varied["visible"][0]]["time_spent_minutes"] == 75  # the deleted 90 not counted
    assert "<script>" not in rows[varied["visible"][0]]["description_html"]


def test_a_page_of_rows_is_what_ticket_out_dumps(app, varied):
    with app.test_request_context("/api/v1/tickets"):
        _same(_page(SYSTEM, deleted=True)["results"], _marshmallow(varied["all"]))
        page = _page(varied["tech"])
        assert page["count"] == len(varied["visible"])
        _same(page["results"], _marshmallow(varied["visible"]))


def test_one_row_is_what_ticket_out_dumps_with_its_version(app, varied):
    with app.test_request_context("/api/v1/tickets/1"):
        for ticket_id in varied["all"]:
            row = ticket_rows.ticket_row(ticket_id, SYSTEM, deleted=True)
            _same([row.data], _marshmallow([ticket_id]))
            assert row.version == _db.session.get(Ticket, ticket_id).version
        for ticket_id in varied["visible"]:
            _same(
                [ticket_rows.ticket_row(ticket_id, varied["tech"]).data], _marshmallow([ticket_id])
            )


@pytest.mark.parametrize("ticket_id", [0, -1, 2**31, 987654])
def test_one_row_out_of_range_or_missing_is_not_found(app, varied, ticket_id):
    with app.test_request_context("/"), pytest.raises(NotFound):
        ticket_rows.ticket_row(ticket_id, SYSTEM, deleted=True)


def test_one_row_foreign_or_trashed_is_not_found(app, varied):
    tech = varied["tech"]
    with app.test_request_context("/"):
        for ticket_id, actor, deleted in [
            (varied["foreign"], tech, True),
            (varied["trashed"], tech, True),  # the trash is for admins only
            (varied["trashed"], SYSTEM, False),
        ]:
            with pytest.raises(NotFound, match=f"Ticket {ticket_id} not found"):
                ticket_rows.ticket_row(ticket_id, actor, deleted=deleted)


def test_pages_keep_the_filters_ordering_and_envelope(app, varied):
    visible = varied["visible"]
    with app.test_request_context("/api/v1/tickets?limit=3&offset=3"):
        page = _page(varied["tech"], limit=3, offset=3)
        assert [r["id"] for r in page["results"]] == visible[3:6]
        assert page["count"] == len(visible)
        assert "offset=6" in page["next"] and "offset=0" in page["previous"]
        newest = _page(varied["tech"], ordering="-id", limit=2)["results"]
        assert [r["id"] for r in newest] == visible[::-1][:2]
        empty = _page(varied["tech"], offset=1000)
        assert empty["results"] == [] and empty["count"] == len(visible)
        with pytest.raises(ticket_rows.QueryNotOrdered):
            ticket_rows.ticket_page(ticket_rows.ticket_ids_select(SYSTEM), {})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Filters whose sub-selects name the tables the rows are joined to.
        ("assignee=row-tech", 2),
        ("assignee=row-other", 0),
        ("ci=host:hv-1", 2),
        ("ci=host:hv-1&ci=galaxy:hv-1", 2),
        # Not CI keys (an unknown kind, no colon, a fuzzer's find): no CI, no error.
        ("ci=%F0%B8%95%99%C3%AC:x", 0),
        ("ci=galaxy:hv-1", 0),
        ("ci=hv-1", 0),
        ("tenant=tenant-a-child", 1),
        ("tenant=tenant-b", 0),
        ("status=closed&status=solved", 2),
        ("q=enfant", 1),
    ],
)
def test_api_filters_on_joined_rows(as_role, tenant_a, varied, query, expected):
    client = as_role("technician", tenants=[tenant_a])
    resp = client.get(f"/api/v1/tickets?{query}")
    assert_status(resp, 200)
    assert resp.json["count"] == expected == len(resp.json["results"]), resp.json


def test_api_admin_sees_the_trash_when_asking(admin, varied):
    ids = [r["id"] for r in admin.get("/api/v1/tickets?deleted=true&limit=100").json["results"]]
    assert varied["trashed"] in ids and varied["foreign"] in ids
    ids = [r["id"] for r in admin.get("/api/v1/tickets?limit=100").json["results"]]
    assert varied["trashed"] not in ids
    one = admin.get(f"/api/v1/tickets/{varied['trashed']}")
    assert_status(one, 200)
    assert one.json["deleted_at"] and one.headers["ETag"] == 'W/"2"'


@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(2021, 3, 4, 9, 30, tzinfo=dt.UTC),
        dt.datetime(2021, 3, 4, 9, 30, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2021, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, 0, 0, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 500000, tzinfo=dt.UTC),
    ],
)
def test_stored_sqlite_datetimes_read_as_their_isoformat(moment):
    """The string SQLite stores for a datetime (``2021-03-04 09:30:00.000000``) reads as the
    datetime's ``isoformat()``, like the parsed value; other stored forms are parsed."""
    m = moment
    seconds = f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    assert ticket_rows._iso(f"{seconds}.{m.microsecond:06d}") == moment.isoformat()
    assert ticket_rows._iso(moment) == moment.isoformat()
    if moment.microsecond == 0:
        assert ticket_rows._iso(seconds) == moment.isoformat()
    assert ticket_rows._iso(None) is None
