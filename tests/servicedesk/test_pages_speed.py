"""What keeps the technicians' pages fast (issue 7) without changing what they show: a constant
number of SQL statements on the queue and the ticket page, the assignee list in one statement,
no cookie re-signed on a plain page view, translations looked up once per render."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import render_template_string
from flask_babel import force_locale
from sqlalchemy import event

from config.auth import SYSTEM, Role, create_user
from config.db import utcnow
from servicedesk import services
from tests.pages_support import get, signed_in


@pytest.fixture()
def browser(app, db, as_role, tenant_a):
    tech = as_role("technician", tenants=[tenant_a], username="tech-a")
    return signed_in(app, db, tech.user)


@contextmanager
def statements(db) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def page_statements(db, browser, path: str) -> int:
    db.session.remove()
    with statements(db) as seen:
        resp = get(browser, path)
    assert resp.status_code == 200, resp.status_code
    return len(seen)


def test_queue_statements_do_not_grow_with_the_tickets(db, browser, open_ticket, make_tenant):
    tenants = [make_tenant() for _ in range(3)]
    from config.auth import User

    tech = db.session.execute(db.select(User).where(User.username == "tech-a")).scalar_one()
    tech_tenants = list(tech.tenants)
    open_ticket(tech_tenants[0], assignee="tech-a")
    open_ticket(tech_tenants[0])
    few = page_statements(db, browser, "/tickets")
    for tenant in tenants:  # other tenants' tickets: not shown, not read
        open_ticket(tenant)
    for _ in range(6):
        open_ticket(tech_tenants[0], assignee="tech-a")
        open_ticket(tech_tenants[0])
    html = get(browser, "/tickets").get_data(as_text=True)
    assert len(re.findall(r'href="/tickets/\d+"', html)) == 2 * 14  # number and title links
    assert page_statements(db, browser, "/tickets") == few


def test_ticket_page_statements_do_not_grow_with_its_timeline_nor_the_users(
    db, browser, open_ticket, tenant_a, rules
):
    ticket = open_ticket(tenant_a, assignee="tech-a")
    path = f"/tickets/{ticket.id}"
    few = page_statements(db, browser, path)
    for n in range(5):
        create_user(f"tech-{n}", role=Role.TECHNICIAN, tenants=[tenant_a], actor=SYSTEM)
        services.add_comment(ticket, {"body": f"Note {n}"}, actor=SYSTEM, now=utcnow())
        services.log_time(
            {
                "user": "tech-a",
                "ticket": ticket.id,
                "date": utcnow().date(),
                "minutes": 10 + n,
                "activity": "mco",
            },
            actor=SYSTEM,
            now=utcnow(),
            rules=rules,
        )
    html = get(browser, path).get_data(as_text=True)
    assert html.count("Note ") == 5 and "14 min" in html
    assert page_statements(db, browser, path) == few


def test_assignees_are_the_users_who_see_the_tickets_tenant(
    app, db, as_role, open_ticket, tenant_a, tenant_b, make_tenant
):
    admin = signed_in(app, db, as_role("admin", username="the-admin").user)
    from config.tenancy import Tenant

    tenant_a, tenant_b = db.session.get(Tenant, tenant_a.id), db.session.get(Tenant, tenant_b.id)
    child = make_tenant("child-a", parent="tenant-a", name="Child of A")
    grandchild = make_tenant("grandchild-a", parent="child-a", name="Grandchild of A")
    create_user("on-parent", role=Role.TECHNICIAN, tenants=[tenant_a], actor=SYSTEM)
    create_user("on-child", role=Role.INFRA, tenants=[child], actor=SYSTEM)
    create_user("on-b", role=Role.TECHNICIAN, tenants=[tenant_b], actor=SYSTEM)
    create_user("everywhere", role=Role.TECHNICIAN, tenants=[], all_tenants=True, actor=SYSTEM)
    create_user("boss", role=Role.MANAGER, tenants=[tenant_a], actor=SYSTEM)
    create_user("root", role=Role.ADMIN, tenants=[], actor=SYSTEM)
    gone = create_user("gone", role=Role.TECHNICIAN, tenants=[tenant_a], actor=SYSTEM)
    from config.auth import update_user

    update_user(gone, {"active": False}, actor=SYSTEM)

    def assignees(tenant) -> list[str]:
        ticket = open_ticket(tenant)
        html = get(admin, f"/tickets/{ticket.id}").get_data(as_text=True)
        select = html[
            html.index('name="assignee"') : html.index("</select>", html.index('name="assignee"'))
        ]
        return re.findall(r'<option value="([^"]+)"', select)

    assert assignees(grandchild) == ["everywhere", "on-child", "on-parent", "root", "the-admin"]
    assert assignees(tenant_a) == ["everywhere", "on-parent", "root", "the-admin"]
    assert assignees(tenant_b) == ["everywhere", "on-b", "root", "the-admin"]


def test_a_page_view_does_not_re_sign_the_session_cookie(browser):
    # Sign-in made the session's CSRF token: pages use it without changing the session.
    resp = get(browser, "/tickets")
    assert resp.status_code == 200 and "Set-Cookie" not in resp.headers
    token = re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True))
    assert token and token.group(1) == browser.csrf


def test_sign_in_sets_a_cookie_that_lasts_a_working_day(app, db, as_role, tenant_a):
    tech = as_role("technician", tenants=[tenant_a], username="tech-b")
    client = app.test_client()
    from config.auth import User, update_user
    from tests.pages_support import BASE, PASSWORD, csrf

    update_user(db.session.get(User, tech.user.id), {"password": PASSWORD}, actor=SYSTEM)
    resp = client.post(
        "/connexion",
        base_url=BASE,
        data={"csrf_token": csrf(client), "username": "tech-b", "password": PASSWORD},
    )
    assert resp.status_code == 302
    cookie = resp.headers["Set-Cookie"]
    assert "Expires=" in cookie and "HttpOnly" in cookie


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_templates_translate_like_flask_babel_even_under_force_locale(app, db, lang):
    source = (
        '{{ _("My queue") }}|{{ _("Welcome, %(name)s", name="<b>") }}|'
        '{{ gettext("Sign out") }}|{{ ngettext("%(num)d ticket", "%(num)d tickets", 2) }}'
    )
    with app.test_request_context("/tickets"):
        from flask import session

        session["lang"] = lang
        fast = render_template_string(source)
        # Flask-Babel's own Jinja callables (the environment's globals), for comparison.
        slow = app.jinja_env.from_string(source).render()
        assert fast == slow
        assert ("Ma file" if lang == "fr" else "My queue") in fast
        assert "&lt;b&gt;" in fast  # variables are escaped, as with Jinja's newstyle gettext
        other = "en" if lang == "fr" else "fr"
        with force_locale(other):
            forced = render_template_string(source)
            assert forced == app.jinja_env.from_string(source).render()
        assert ("My queue" if other == "en" else "Ma file") in forced
