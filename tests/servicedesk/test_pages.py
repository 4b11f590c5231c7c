"""The technicians' pages (test client): queue, new ticket, ticket page, transitions, time,
timesheet; another tenant's ticket is a 404 page; forms keep values and show errors."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from servicedesk.models import Ticket, TimeEntry
from tests.pages_support import get, post_form, signed_in


@pytest.fixture()
def browser(app, db, as_role, tenant_a):
    tech = as_role("technician", tenants=[tenant_a], username="tech-a")
    return signed_in(app, db, tech.user)


def count(db, model) -> int:
    db.session.remove()
    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def test_pages_need_a_signed_in_user(client):
    for path in ("/tickets", "/tickets/nouveau", "/temps", "/tickets/1"):
        resp = get(client, path)
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/connexion")


def test_queue_lists_mine_then_unassigned_late_first(browser, open_ticket, tenant_a, tenant_b):
    mine = open_ticket(tenant_a, assignee="tech-a", title="Le mien")
    free = open_ticket(tenant_a, title="Personne")
    theirs = open_ticket(tenant_b, title="Secret de B")
    html = get(browser, "/tickets").get_data(as_text=True)
    assert "Le mien" in html and "Personne" in html and "Secret de B" not in html
    assert html.index("Le mien") < html.index("Personne")
    assert mine.id and free.id and theirs.id


def test_another_tenants_ticket_is_a_404_page(browser, open_ticket, tenant_b):
    theirs = open_ticket(tenant_b, title="Secret de B")
    resp = get(browser, f"/tickets/{theirs.id}")
    assert resp.status_code == 404 and resp.mimetype == "text/html"
    assert "Secret de B" not in resp.get_data(as_text=True)
    post = post_form(browser, f"/tickets/{theirs.id}/commentaires", body="x")
    assert post.status_code == 404


def test_new_ticket_form_shows_errors_next_to_fields_and_keeps_values(browser, db):
    resp = post_form(
        browser,
        "/tickets/nouveau",
        tenant="tenant-a",
        type="incident",
        title="",
        urgency="9",
        impact="3",
        description="Garder ce texte",
    )
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert 'id="err-title"' in html and 'id="err-urgency"' in html
    assert "Garder ce texte" in html
    assert count(db, Ticket) == 0


def test_new_ticket_then_move_log_time_and_solve(browser, db):
    resp = post_form(
        browser,
        "/tickets/nouveau",
        tenant="tenant-a",
        type="incident",
        title="Imprimante <b>en panne</b>",
        urgency="2",
        impact="3",
    )
    assert resp.status_code == 302
    page = resp.headers["Location"]
    html = get(browser, page).get_data(as_text=True)
    assert "Imprimante &lt;b&gt;en panne&lt;/b&gt;" in html and "<b>en panne" not in html
    assert post_form(browser, f"{page}/etat", to="in_progress").status_code == 302
    missing = post_form(browser, f"{page}/etat", to="solved", comment="")
    assert missing.status_code == 422 and 'id="err-comment"' in missing.get_data(as_text=True)
    assert (
        post_form(
            browser, f"{page}/temps", date="2021-03-03", minutes="45", activity="assistance"
        ).status_code
        == 302
    )
    bad_time = post_form(
        browser,
        f"{page}/temps",
        date="2021-03-03",
        minutes="45",
        days="0.5",
        activity="assistance",
        note="gardé",
    )
    assert bad_time.status_code == 422 and "gardé" in bad_time.get_data(as_text=True)
    assert (
        post_form(browser, f"{page}/etat", to="solved", comment="Toner remplacé").status_code == 302
    )
    html = get(browser, page).get_data(as_text=True)
    assert "Toner remplacé" in html and "45 min" in html
    db.session.remove()
    ticket = db.session.execute(sa.select(Ticket)).unique().scalar_one()
    assert ticket.status.value == "solved" and ticket.time_spent_minutes == 45


def test_forms_need_their_csrf_token(browser, open_ticket, tenant_a, db):
    ticket = open_ticket(tenant_a)
    resp = browser.post(
        f"/tickets/{ticket.id}/commentaires",
        base_url="https://localhost",
        data={"body": "sans jeton"},
    )
    assert resp.status_code == 400
    assert count(db, TimeEntry) == 0


def test_private_comment_is_marked_on_the_page(browser, open_ticket, tenant_a):
    ticket = open_ticket(tenant_a)
    post_form(browser, f"/tickets/{ticket.id}/commentaires", body="Interne seulement", private="1")
    html = get(browser, f"/tickets/{ticket.id}").get_data(as_text=True)
    assert 'class="private"' in html and "Interne seulement" in html


def test_timesheet_shows_the_week_totals(browser, db, log_time, tenant_a):
    from config.auth import User

    user = db.session.execute(sa.select(User).where(User.username == "tech-a")).scalar_one()
    log_time(user, tenant_a, date=dt.date(2021, 3, 1), minutes=120)
    log_time(user, tenant_a, date=dt.date(2021, 3, 3), minutes=90)
    html = get(browser, "/temps?date=2021-03-02").get_data(as_text=True)
    assert "2021-03-01" in html and "210" in html


def test_page_html_is_escaped_everywhere(browser, open_ticket, tenant_a):
    ticket = open_ticket(tenant_a, title="<img src=x onerror=alert(1)>")
    for path in ("/tickets", f"/tickets/{ticket.id}"):
        html = get(browser, path).get_data(as_text=True)
        assert "<img src=x" not in html and "&lt;img src=x" in html
