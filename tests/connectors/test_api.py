"""``/api/v1/sync``: sources without secrets, runs, queueing for the scheduler (503 without
one), admins only; the queued run is executed by the scheduler's job."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from config.auth import SYSTEM, Role, create_token, create_user
from config.db import utcnow
from config.jobs import acquire_lease
from config.tenancy import TenantKind, create_tenant
from tests.api_mixins import covers
from tests.connectors.conftest import sync
from tests.connectors.fake_glpi import APP_TOKEN, USER_TOKEN
from tests.support import assert_problem, assert_status


@pytest.fixture()
def client_as(sync_app, sdb):
    def make(role: str, tenants=None):
        role = Role(role)
        user = create_user(
            f"{role.value}-{len(tenants or [])}-{utcnow().timestamp()}".replace(".", ""),
            role=role,
            tenants=list(tenants or []),
            all_tenants=not tenants,
            actor=SYSTEM,
        )
        _t, raw = create_token(user, "t", expires_days=None, now=utcnow(), actor=SYSTEM)
        c = sync_app.test_client()
        c.token = raw
        return c

    return make


@pytest.fixture()
def tenant(sdb):
    return create_tenant({"code": "ville-a", "name": "A", "kind": TenantKind.CITY}, actor=SYSTEM)


@covers("GET /api/v1/sync/sources")
def test_sources_show_no_secret_and_only_to_admins(client_as, tenant, fake):
    fake.add_ticket(1)
    sync()
    resp = client_as("admin").get("/api/v1/sync/sources")
    assert_status(resp, 200)
    body = resp.get_json()
    names = [s["name"] for s in body["results"]]
    assert names == ["files", "glpi"]
    glpi = body["results"][1]
    assert glpi["secrets"] == ["app_token", "user_token"]
    assert glpi["watermark"] and glpi["last_success_at"]
    raw = json.dumps(body)
    assert USER_TOKEN not in raw and APP_TOKEN not in raw
    for role in ("technician", "manager", "infra"):
        assert_problem(client_as(role, [tenant]).get("/api/v1/sync/sources"), 403)
    assert_problem(client_as("manager").get("/api/v1/sync/sources"), 403)


@covers("GET /api/v1/sync/runs", "GET /api/v1/sync/runs/<>", "GET /api/v1/sync/runs/<>/errors")
def test_runs_list_detail_errors(client_as, tenant, fake):
    fake.add_ticket(1)
    fake.add_ticket(2, status=42)
    run = sync()
    admin = client_as("admin")
    listing = admin.get("/api/v1/sync/runs?source=glpi")
    assert_status(listing, 200)
    assert listing.get_json()["count"] == 1
    detail = admin.get(f"/api/v1/sync/runs/{run.id}").get_json()
    assert detail["status"] == "succeeded"
    assert {
        "created",
        "updated",
        "deleted",
        "unchanged",
        "errors",
        "started_at",
        "finished_at",
    } <= set(detail)
    assert detail["errors"][0]["external_id"] == "2"
    errors = admin.get(f"/api/v1/sync/runs/{run.id}/errors?level=error").get_json()
    assert errors["count"] == 1 and errors["results"][0]["object_type"] == "ticket"
    assert_problem(admin.get("/api/v1/sync/runs?colour=red"), 400)
    assert_problem(admin.get("/api/v1/sync/runs/999999"), 404)
    assert_problem(admin.get("/api/v1/sync/runs/999999/errors"), 404)
    tech = client_as("technician", [tenant])
    for url in (
        "/api/v1/sync/runs",
        f"/api/v1/sync/runs/{run.id}",
        f"/api/v1/sync/runs/{run.id}/errors",
    ):
        assert_problem(tech.get(url), 403)
    assert_problem(client_as("manager", [tenant]).get("/api/v1/sync/runs"), 403)


@covers("POST /api/v1/sync/sources/<>/runs")
def test_queue_a_run_needs_a_scheduler(client_as, tenant, fake, sync_app):
    from connectors.runner import run_queued

    admin = client_as("admin")
    resp = admin.post("/api/v1/sync/sources/glpi/runs", json={"full": True})
    assert_problem(resp, 503)
    assert_problem(admin.post("/api/v1/sync/sources/nope/runs", json={}), 404)
    assert_problem(admin.post("/api/v1/sync/sources/glpi/runs", json={"full": "maybe"}), 422)
    assert_problem(admin.post("/api/v1/sync/sources/glpi/runs", json={"colour": 1}), 422)
    assert_problem(
        client_as("technician", [tenant]).post("/api/v1/sync/sources/glpi/runs", json={}), 403
    )
    assert acquire_lease("sched-1", now=utcnow(), ttl=timedelta(seconds=60))
    fake.add_ticket(1)
    resp = admin.post("/api/v1/sync/sources/glpi/runs", json={"full": True})
    assert_status(resp, 202)
    run = resp.get_json()
    assert run["status"] == "queued" and run["mode"] == "full"
    assert resp.headers["Location"].endswith(f"/api/v1/sync/runs/{run['id']}")
    assert run_queued() == 1
    done = admin.get(f"/api/v1/sync/runs/{run['id']}").get_json()
    assert done["status"] == "succeeded" and done["created"] > 0 and done["trigger"] == "api"
    assert run_queued() == 0
