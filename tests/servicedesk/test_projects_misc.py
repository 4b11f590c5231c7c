"""Projects (notes, tenants, deletion), categories, training and the settings endpoint."""

from __future__ import annotations

import pytest

from config.auth import SYSTEM
from config.db import utcnow
from servicedesk import services
from tests.api_mixins import covers
from tests.support import assert_problem, assert_status


@pytest.fixture()
def manager(as_role, tenant_a):
    return as_role("manager", tenants=[tenant_a])


@covers("POST /api/v1/projects/<project_id>/notes")
def test_monthly_notes_are_set_per_month(manager, tenant_b):
    project = manager.post(
        "/api/v1/projects",
        json={"code": "si-finances", "name": "SI Finances", "tenants": ["tenant-a"]},
    ).json
    url = f"/api/v1/projects/{project['id']}/notes"
    assert_status(manager.post(url, json={"month": "2021-03", "text": "Recette en cours"}), 200)
    resp = manager.post(url, json={"month": "2021-03", "text": "Recette terminée"})
    assert resp.json["notes"] == [{"month": "2021-03", "text": "Recette terminée"}]
    assert (
        "month"
        in assert_problem(manager.post(url, json={"month": "2021-13", "text": "x"}), 422)["errors"]
    )
    theirs = services.create_project(
        {"code": "proj-b", "name": "B", "tenants": ["tenant-b"]}, actor=SYSTEM, now=utcnow()
    )
    assert_problem(
        manager.post(f"/api/v1/projects/{theirs.id}/notes", json={"month": "2021-03", "text": "x"}),
        404,
    )


def test_shared_projects_show_other_tenants_as_a_count(manager, tenant_a, tenant_b):
    project = services.create_project(
        {"code": "voip", "name": "Étude VoIP", "tenants": ["tenant-a", "tenant-b"]},
        actor=SYSTEM,
        now=utcnow(),
    )
    out = manager.get(f"/api/v1/projects/{project.id}").json
    assert out["tenants"] == ["tenant-a"] and out["other_tenants"] == 1
    assert "tenant-b" not in manager.get("/api/v1/changes?object_type=project").get_data(
        as_text=True
    )


def test_the_syndicate_own_projects_are_visible_to_all(manager):
    project = services.create_project(
        {"code": "stockage", "name": "Étude stockage"}, actor=SYSTEM, now=utcnow()
    )
    assert_status(manager.get(f"/api/v1/projects/{project.id}"), 200)


def test_projects_with_time_cannot_be_deleted(manager, log_time, tenant_a):
    project = services.create_project(
        {"code": "p1", "name": "P1", "tenants": ["tenant-a"]}, actor=SYSTEM, now=utcnow()
    )
    log_time(manager.user, tenant_a, project="p1")
    assert_problem(manager.delete(f"/api/v1/projects/{project.id}"), 409, "project-in-use")


def test_project_dates_must_be_in_order(manager):
    resp = manager.post(
        "/api/v1/projects",
        json={
            "code": "p2",
            "name": "P2",
            "planned_start": "2021-06-01",
            "planned_end": "2021-01-01",
        },
    )
    assert "planned_end" in assert_problem(resp, 422)["errors"]


def test_category_paths_follow_their_tree(admin):
    parent = admin.post("/api/v1/categories", json={"name": "Applications métier"}).json
    child = admin.post(
        "/api/v1/categories", json={"name": "ERP Finances", "parent": parent["id"]}
    ).json
    assert child["path"] == "Applications métier > ERP Finances"
    admin.patch(f"/api/v1/categories/{parent['id']}", json={"name": "Métier"})
    assert admin.get(f"/api/v1/categories/{child['id']}").json["path"] == "Métier > ERP Finances"
    loop = admin.patch(f"/api/v1/categories/{parent['id']}", json={"parent": child["id"]})
    assert "parent" in assert_problem(loop, 422)["errors"]
    assert_problem(admin.delete(f"/api/v1/categories/{parent['id']}"), 409)


@covers("GET /api/v1/servicedesk/settings")
def test_settings_in_force_are_shown(as_role, tenant_a):
    tech = as_role("technician", tenants=[tenant_a])
    resp = tech.get("/api/v1/servicedesk/settings")
    assert_status(resp, 200)
    conf = resp.json
    assert conf["priority_matrix"][0] == [1, 1, 2, 3, 4]
    assert conf["workday_minutes"] == 420
    assert {a["code"] for a in conf["activities"]} >= {
        "mco",
        "project",
        "internal",
        "domain_management",
    }
    assert conf["calendar"]["holidays"] == "fr"
