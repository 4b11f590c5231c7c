"""The sync status page: each source's state and runs with their errors, a run queued for the
scheduler from the page (same rule as the API), admins only."""

from __future__ import annotations

from datetime import timedelta

import pytest

from config.auth import SYSTEM, Role, create_user
from config.db import utcnow
from config.jobs import acquire_lease
from tests.connectors.conftest import sync
from tests.pages_support import BASE, get, post_form, signed_in


@pytest.fixture()
def admin_browser(sync_app, sdb):
    user = create_user("sync-admin", role=Role.ADMIN, tenants=[], all_tenants=True, actor=SYSTEM)
    return signed_in(sync_app, sdb, user)


def test_the_page_shows_each_source_its_last_run_and_the_errors(admin_browser, fake):
    fake.add_ticket(1)
    fake.add_ticket(2, name="<script>alert(1)</script>")
    fake.add_task(999, 424242, 600)  # a task of a ticket GLPI does not have: a run error
    run = sync(full=True)
    html = get(admin_browser, "/synchronisation").get_data(as_text=True)
    assert "Synchronisation avec les sources" in html
    assert "glpi" in html and "files" in html
    assert f"<td>{run.id}</td>" in html
    assert "réussie" in html or "échouée" in html
    assert "<script>alert(1)" not in html  # text from the source is escaped
    assert "424242" in html or "999" in html  # the error names the external id


def test_no_secret_on_the_page(admin_browser, fake):
    from tests.connectors.fake_glpi import APP_TOKEN, USER_TOKEN

    html = get(admin_browser, "/synchronisation").get_data(as_text=True)
    assert APP_TOKEN not in html and USER_TOKEN not in html


def test_start_a_run_needs_a_scheduler_then_queues_it(admin_browser, fake):
    from connectors.models import SyncRun
    from connectors.runner import run_queued

    resp = post_form(admin_browser, "/synchronisation/glpi", full="1")
    assert resp.status_code == 302
    page = get(admin_browser, "/synchronisation").get_data(as_text=True)
    assert "Aucun planificateur ne tourne" in page
    from config.db import db

    assert db.session.query(SyncRun).count() == 0

    assert acquire_lease("sched-page", now=utcnow(), ttl=timedelta(seconds=60))
    fake.add_ticket(3)
    resp = post_form(admin_browser, "/synchronisation/glpi", full="1")
    assert resp.status_code == 302
    page = get(admin_browser, "/synchronisation").get_data(as_text=True)
    assert "mise en file pour glpi" in page
    assert run_queued() == 1


def test_unknown_source_is_a_404_page(admin_browser):
    assert post_form(admin_browser, "/synchronisation/nope").status_code == 404


def test_a_form_without_its_csrf_token_is_refused(admin_browser):
    from config.db import db
    from connectors.models import SyncRun

    resp = admin_browser.post("/synchronisation/glpi", base_url=BASE, data={"full": "1"})
    assert resp.status_code in (400, 403)
    assert db.session.query(SyncRun).count() == 0


@pytest.mark.parametrize("role", [Role.MANAGER, Role.TECHNICIAN, Role.INFRA])
def test_only_admins(sync_app, sdb, role):
    user = create_user(f"s-{role.value}", role=role, tenants=[], all_tenants=True, actor=SYSTEM)
    browser = signed_in(sync_app, sdb, user)
    assert get(browser, "/synchronisation").status_code == 403
    assert post_form(browser, "/synchronisation/glpi").status_code == 403
