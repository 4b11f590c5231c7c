"""Tickets beyond the shared contract: workflow, SLA, comments, requester view, satisfaction,
trash, CI links, assignees, priorities."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from config.auth import SYSTEM, Role, create_user
from config.changelog import ChangeRecord
from config.db import utcnow
from servicedesk import services
from servicedesk.models import Comment, Ticket, TimeEntry
from tests.api_mixins import covers
from tests.support import assert_problem, assert_status

P = ZoneInfo("Europe/Paris")


@pytest.fixture()
def tech(as_role, tenant_a):
    return as_role("technician", tenants=[tenant_a], username="tech-a")


def transition(client, ticket, to, **body):
    return client.post(f"/api/v1/tickets/{ticket.id}/transitions", json={"to": to, **body})


@covers("POST /api/v1/tickets/<ticket_id>/transitions")
def test_transitions_follow_the_workflow_and_set_timestamps(tech, open_ticket, tenant_a, tenant_b):
    ticket = open_ticket(tenant_a)
    resp = transition(tech, ticket, "in_progress")
    assert_status(resp, 200)
    assert resp.json["status"] == "in_progress" and resp.json["owned_at"]
    refused = assert_problem(transition(tech, ticket, "closed"), 409, "transition-not-allowed")
    assert refused["allowed"] == ["pending", "solved", "cancelled"]
    needs = assert_problem(transition(tech, ticket, "solved"), 422, "transition-needs-input")
    assert "comment" in needs["errors"]
    solved = transition(tech, ticket, "solved", comment="Pilote réinstallé.")
    assert solved.json["status"] == "solved" and solved.json["solved_at"]
    reopened = transition(tech, ticket, "in_progress")
    assert reopened.json["solved_at"] is None
    foreign = open_ticket(tenant_b)
    assert_problem(transition(tech, foreign, "in_progress"), 404)


def test_assigning_needs_an_assignee_with_access(tech, open_ticket, tenant_a, tenant_b):
    ticket = open_ticket(tenant_a)
    assert_problem(transition(tech, ticket, "assigned"), 422, "transition-needs-input")
    create_user("outsider", role=Role.TECHNICIAN, tenants=[tenant_b], actor=SYSTEM)
    resp = transition(tech, ticket, "assigned", assignee="outsider")
    assert "assignee" in assert_problem(resp, 422)["errors"]
    ok = transition(tech, ticket, "assigned", assignee="tech-a")
    assert_status(ok, 200)
    assert ok.json["assignee"] == "tech-a"


def test_solving_keeps_the_solution_as_a_public_comment(tech, open_ticket, tenant_a):
    ticket = open_ticket(tenant_a)
    transition(tech, ticket, "in_progress")
    transition(tech, ticket, "solved", comment="Remplacement du toner.")
    comments = tech.get(f"/api/v1/tickets/{ticket.id}/comments").json
    assert [(c["kind"], c["private"], c["body"]) for c in comments] == [
        ("solution", False, "Remplacement du toner.")
    ]


@covers(
    "GET /api/v1/tickets/<ticket_id>/comments",
    "POST /api/v1/tickets/<ticket_id>/comments",
    "GET /api/v1/tickets/<ticket_id>/requester-view",
)
def test_private_comments_never_reach_the_requester_view(tech, open_ticket, tenant_a, tenant_b):
    ticket = open_ticket(tenant_a)
    assert_status(
        tech.post(
            f"/api/v1/tickets/{ticket.id}/comments",
            json={"body": "Le mot de passe admin est X", "private": True},
        ),
        201,
    )
    assert_status(
        tech.post(f"/api/v1/tickets/{ticket.id}/comments", json={"body": "Nous passons demain."}),
        201,
    )
    staff = tech.get(f"/api/v1/tickets/{ticket.id}/comments").json
    assert len(staff) == 2
    view = tech.get(f"/api/v1/tickets/{ticket.id}/requester-view")
    assert_status(view, 200)
    text = view.get_data(as_text=True)
    assert "Nous passons demain." in text and "mot de passe" not in text
    foreign = open_ticket(tenant_b)
    for path in ("comments", "requester-view"):
        assert_problem(tech.get(f"/api/v1/tickets/{foreign.id}/{path}"), 404)
    assert_problem(tech.post(f"/api/v1/tickets/{foreign.id}/comments", json={"body": "x"}), 404)


@covers(
    "GET /api/v1/tickets/<ticket_id>/satisfaction", "PUT /api/v1/tickets/<ticket_id>/satisfaction"
)
def test_satisfaction_once_solved(tech, open_ticket, tenant_a, tenant_b):
    ticket = open_ticket(tenant_a)
    early = tech.put(f"/api/v1/tickets/{ticket.id}/satisfaction", json={"score": 5})
    assert_problem(early, 409)
    transition(tech, ticket, "in_progress")
    transition(tech, ticket, "solved", comment="OK")
    assert_problem(tech.put(f"/api/v1/tickets/{ticket.id}/satisfaction", json={"score": 6}), 422)
    resp = tech.put(
        f"/api/v1/tickets/{ticket.id}/satisfaction", json={"score": 4, "comment": "Rapide"}
    )
    assert_status(resp, 200)
    assert tech.get(f"/api/v1/tickets/{ticket.id}").json["satisfaction"] == {
        "score": 4,
        "comment": "Rapide",
    }
    foreign = open_ticket(tenant_b)
    assert_problem(tech.get(f"/api/v1/tickets/{foreign.id}/satisfaction"), 404)
    assert_problem(tech.put(f"/api/v1/tickets/{foreign.id}/satisfaction", json={"score": 1}), 404)


def test_priority_comes_from_the_matrix(tech, tenant_a):
    resp = tech.post(
        "/api/v1/tickets",
        json={
            "tenant": "tenant-a",
            "type": "incident",
            "title": "Serveur arrêté",
            "urgency": 1,
            "impact": 2,
        },
    )
    assert resp.json["priority"] == 1
    resp = tech.post(
        "/api/v1/tickets",
        json={
            "tenant": "tenant-a",
            "type": "request",
            "title": "Nouveau poste",
            "urgency": 4,
            "impact": 5,
        },
    )
    assert resp.json["priority"] == 5


def test_sla_deadlines_follow_business_hours(db, open_ticket, tenant_a, rules):
    # Friday 26 March 2021 16:00 Paris, priority 1: own in 30 min, resolve in 4 business hours.
    opened = dt.datetime(2021, 3, 26, 16, tzinfo=P)
    ticket = open_ticket(tenant_a, urgency=1, impact=1, opened_at=opened, now=opened)
    assert ticket.due_to_own_at == dt.datetime(2021, 3, 26, 16, 30, tzinfo=P)
    assert ticket.due_to_resolve_at == dt.datetime(2021, 3, 29, 12, tzinfo=P)


def test_pending_stops_the_resolution_clock(db, open_ticket, tenant_a, rules):
    opened = dt.datetime(2021, 3, 1, 9, tzinfo=P)  # Monday; priority 2: one working day
    ticket = open_ticket(tenant_a, urgency=2, impact=2, opened_at=opened, now=opened)
    assert ticket.due_to_resolve_at == dt.datetime(2021, 3, 1, 17, tzinfo=P)
    at = lambda h, m=0: dt.datetime(2021, 3, 1, h, m, tzinfo=P)  # noqa: E731
    services.transition_ticket(
        ticket,
        services.TicketStatus.IN_PROGRESS,
        comment=None,
        actor=SYSTEM,
        now=at(9, 10),
        rules=rules,
    )
    services.transition_ticket(
        ticket,
        services.TicketStatus.PENDING,
        comment="Attente agent",
        actor=SYSTEM,
        now=at(10),
        rules=rules,
    )
    services.transition_ticket(
        ticket,
        services.TicketStatus.IN_PROGRESS,
        comment=None,
        actor=SYSTEM,
        now=at(15),
        rules=rules,
    )
    # 10:00 → 15:00 pending = 4 business hours (lunch 12:30–13:30 excluded), so the
    # deadline moves from Monday 17:00 by 4 business hours: Tuesday 09:00–12:30 (3.5 h),
    # then 13:30–14:00.
    assert ticket.paused_minutes == 240
    assert ticket.due_to_resolve_at == dt.datetime(2021, 3, 2, 14, tzinfo=P)
    assert not ticket.sla_breached


def test_breach_sweep_flags_late_tickets_once(db, open_ticket, tenant_a, rules):
    opened = dt.datetime(2021, 3, 1, 9, tzinfo=P)
    late = open_ticket(tenant_a, urgency=1, impact=1, opened_at=opened, now=opened)
    fine = open_ticket(tenant_a, urgency=5, impact=5, opened_at=opened, now=opened)
    now = dt.datetime(2021, 3, 1, 9, 45, tzinfo=P)  # P1 had 30 minutes to be taken
    assert services.flag_breached_tickets(now=now, rules=rules) == 1
    assert services.flag_breached_tickets(now=now, rules=rules) == 0
    db.session.remove()
    assert db.session.get(Ticket, late.id).sla_breached
    assert not db.session.get(Ticket, fine.id).sla_breached


def test_only_admins_back_date_tickets(tech, admin):
    body = {
        "tenant": "tenant-a",
        "type": "incident",
        "title": "Ancien",
        "opened_at": "2021-01-04T09:00:00+01:00",
    }
    assert "opened_at" in assert_problem(tech.post("/api/v1/tickets", json=body), 422)["errors"]
    resp = admin.post("/api/v1/tickets", json=body)
    assert_status(resp, 201)
    assert resp.json["opened_at"] == "2021-01-04T08:00:00+00:00"


def test_ticket_ci_must_be_visible_and_of_the_same_tenant(tech, admin, db, tenant_a, tenant_b):
    from cmdb import services as cmdb

    shared = cmdb.create_ci({"kind": "host", "code": "hv-1", "name": "HV 1"}, actor=SYSTEM)
    theirs = cmdb.create_ci(
        {"kind": "application", "code": "app-b", "name": "App B", "tenant": "tenant-b"},
        actor=SYSTEM,
    )
    ok = tech.post(
        "/api/v1/tickets",
        json={"tenant": "tenant-a", "type": "incident", "title": "Hôte lent", "ci": "host:hv-1"},
    )
    assert_status(ok, 201)
    assert ok.json["ci"] == "host:hv-1"
    hidden = tech.post(
        "/api/v1/tickets",
        json={"tenant": "tenant-a", "type": "incident", "title": "x", "ci": "application:app-b"},
    )
    assert "ci" in assert_problem(hidden, 422)["errors"]
    mismatch = admin.post(
        "/api/v1/tickets",
        json={"tenant": "tenant-a", "type": "incident", "title": "x", "ci": theirs.id},
    )
    assert "ci" in assert_problem(mismatch, 422)["errors"]
    assert shared.id


def test_ticket_for_another_tenant_is_refused_and_writes_nothing(tech, db):
    before = db.session.execute(sa.select(sa.func.count()).select_from(Ticket)).scalar_one()
    resp = tech.post(
        "/api/v1/tickets", json={"tenant": "tenant-b", "type": "incident", "title": "x"}
    )
    assert "tenant" in assert_problem(resp, 422)["errors"]
    db.session.remove()
    assert db.session.execute(sa.select(sa.func.count()).select_from(Ticket)).scalar_one() == before


def test_html_descriptions_are_sanitised_for_display_and_text_stays_plain(
    db, open_ticket, tenant_a, tech
):
    html = open_ticket(
        tenant_a,
        description='<p onclick="x()">Bonjour<script>alert(1)</script></p>',
        description_format="html",
    )
    out = tech.get(f"/api/v1/tickets/{html.id}").json
    assert out["description_html"] == "<p>Bonjour</p>"
    plain = open_ticket(tenant_a, description="<b>pas du HTML</b>")
    assert tech.get(f"/api/v1/tickets/{plain.id}").json["description_html"] is None


@covers("DELETE /api/v1/tickets/<ticket_id>", "POST /api/v1/tickets/<ticket_id>/restore")
def test_trash_hides_tickets_and_their_time_until_restored(
    admin, tech, db, open_ticket, tenant_a, tenant_b, log_time
):
    ticket = open_ticket(tenant_a)
    log_time(tech.user, ticket=ticket.id)
    assert_problem(tech.delete(f"/api/v1/tickets/{ticket.id}"), 403)
    assert_status(admin.delete(f"/api/v1/tickets/{ticket.id}"), 204)
    assert_problem(tech.get(f"/api/v1/tickets/{ticket.id}"), 404)
    assert tech.get("/api/v1/time-entries").json["count"] == 0
    assert admin.get("/api/v1/tickets?deleted=true").json["count"] == 1
    assert admin.get("/api/v1/tickets").json["count"] == 0
    [entry] = (
        db.session.execute(
            sa.select(ChangeRecord).where(
                ChangeRecord.object_type == "ticket", ChangeRecord.action == "delete"
            )
        )
        .scalars()
        .all()
    )
    assert entry.object_id == ticket.id
    assert_status(admin.post(f"/api/v1/tickets/{ticket.id}/restore"), 200)
    assert tech.get("/api/v1/time-entries").json["count"] == 1
    foreign = open_ticket(tenant_b)
    tech_b_view = tech.post(f"/api/v1/tickets/{foreign.id}/restore")
    assert_problem(tech_b_view, 404)


def test_two_technicians_cannot_overwrite_each_other(tech, as_role, open_ticket, tenant_a):
    other = as_role("technician", tenants=[tenant_a])
    ticket = open_ticket(tenant_a)
    etag = tech.get(f"/api/v1/tickets/{ticket.id}").headers["ETag"]
    first = tech.patch(
        f"/api/v1/tickets/{ticket.id}", json={"title": "Un"}, headers={"If-Match": etag}
    )
    assert_status(first, 200)
    second = other.patch(
        f"/api/v1/tickets/{ticket.id}", json={"title": "Deux"}, headers={"If-Match": etag}
    )
    assert_problem(second, 412)
    assert tech.get(f"/api/v1/tickets/{ticket.id}").json["title"] == "Un"


def test_time_spent_is_summed_on_the_ticket(tech, open_ticket, tenant_a, log_time):
    ticket = open_ticket(tenant_a)
    log_time(tech.user, ticket=ticket.id, minutes=45)
    log_time(tech.user, ticket=ticket.id, minutes=30, activity="assistance")
    assert tech.get(f"/api/v1/tickets/{ticket.id}").json["time_spent_minutes"] == 75
    [listed] = [t for t in tech.get("/api/v1/tickets").json["results"] if t["id"] == ticket.id]
    assert listed["time_spent_minutes"] == 75


def test_final_tickets_cannot_be_edited(tech, open_ticket, tenant_a):
    ticket = open_ticket(tenant_a)
    transition(tech, ticket, "cancelled")
    assert_problem(tech.patch(f"/api/v1/tickets/{ticket.id}", json={"title": "x"}), 409)
    assert_problem(transition(tech, ticket, "in_progress"), 409)


def test_my_queue_filter(tech, open_ticket, tenant_a):
    mine = open_ticket(tenant_a, assignee="tech-a")
    open_ticket(tenant_a)
    resp = tech.get("/api/v1/tickets?assignee=me")
    assert [t["id"] for t in resp.json["results"]] == [mine.id]
    assert resp.json["results"][0]["status"] == "assigned"


def test_unknown_status_in_filter_is_400(tech):
    assert "status" in assert_problem(tech.get("/api/v1/tickets?status=lost"), 400)["errors"]
    assert_problem(tech.get("/api/v1/tickets?deleted=maybe"), 400)


def test_comment_bodies_are_required_and_bounded(tech, open_ticket, tenant_a, db):
    ticket = open_ticket(tenant_a)
    assert (
        "body"
        in assert_problem(tech.post(f"/api/v1/tickets/{ticket.id}/comments", json={}), 422)[
            "errors"
        ]
    )
    db.session.remove()
    assert db.session.execute(sa.select(sa.func.count()).select_from(Comment)).scalar_one() == 0
    assert utcnow() and TimeEntry
