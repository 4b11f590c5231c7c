"""The tenants resource through the shared API contract, plus its own rules."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from config.auth import SYSTEM, Actor, Role, create_user
from config.db import db as _db
from config.errors import NotFound
from config.tenancy import Tenant, create_tenant, get_scoped, visible_tenant_ids
from tests.api_mixins import ResourceAPITests, covers
from tests.support import assert_problem, assert_status


class TestTenantsAPI(ResourceAPITests):
    url = "/api/v1/tenants"
    model = Tenant
    object_type = "tenant"
    write_role = "admin"
    denied_role = "manager"
    by_code = "code"
    ordering_fields = ["code", "name", "kind", "created_at"]
    filter_cases = [
        ({"kind": "city"}, 1),  # the reader sees tenant A (and its sub-tenants) only
        ({"kind": ["city", "public_body"]}, 2),
        ({"code__ic": "TENANT-A"}, 1),
        ({"q": "sub"}, 1),
        ({"parent": "tenant-a"}, 1),
        ({"active": "false"}, 0),
    ]
    _n = 0

    def make(self, tenant: Any, **kw: Any) -> Tenant:
        # A tenant's own tenant is itself: a sub-tenant of ``tenant`` is visible exactly
        # to those who see ``tenant``.
        type(self)._n += 1
        return create_tenant(
            {
                "code": f"sub-{self._n}",
                "name": f"Sub {self._n}",
                "kind": "public_body",
                "parent": tenant.code,
                **kw,
            },
            actor=SYSTEM,
        )

    def make_for_filters(self) -> None:
        self.make(self.a)

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        type(self)._n += 1
        return {
            "code": f"new-{self._n}",
            "name": "Nouveau",
            "kind": "city",
            "parent": tenant.code,
            "contributions": {"2021": 1318655.28},
            "external_ids": {"glpi": f"{100 + self._n}"},
        }

    def update_payload(self, obj: Any) -> dict[str, Any]:
        return {"name": obj.name + " (renamed)", "active": False}


def test_sub_tenants_are_visible_through_their_parent(tenant_a, make_tenant, as_role):
    child = make_tenant("child", parent="tenant-a")
    grandchild = make_tenant("grandchild", parent="child")
    tech = as_role("technician", tenants=[tenant_a])
    codes = {t["code"] for t in tech.get("/api/v1/tenants").json["results"]}
    assert codes == {"tenant-a", child.code, grandchild.code}


def test_code_conflict_409_without_naming_the_other(admin, tenant_a):
    body = {"code": "tenant-a", "name": "Dup", "kind": "city"}
    problem = assert_problem(admin.post("/api/v1/tenants", json=body), 409, "conflict")
    assert "Tenant A" not in problem["detail"]


def test_external_id_must_be_unique_per_source(admin, make_tenant):
    make_tenant("glpi-one", external_ids={"glpi": "7"})
    body = {"code": "glpi-two", "name": "Two", "kind": "city", "external_ids": {"glpi": "7"}}
    assert_problem(admin.post("/api/v1/tenants", json=body), 409)


def test_parent_cycle_is_refused(admin, make_tenant):
    top = make_tenant("top")
    make_tenant("below", parent="top")
    resp = admin.patch(f"/api/v1/tenants/{top.id}", json={"parent": "below"})
    problem = assert_problem(resp, 422, "validation-failed")
    assert "parent" in problem["errors"]


def test_bad_contribution_year_names_the_field(admin):
    body = {"code": "x", "name": "X", "kind": "city", "contributions": {"twenty": 1}}
    problem = assert_problem(admin.post("/api/v1/tenants", json=body), 422)
    assert any(k.startswith("contributions") for k in problem["errors"])


def test_tenant_in_use_cannot_be_deleted(admin, tenant_a, as_role):
    as_role("technician", tenants=[tenant_a])
    assert_problem(admin.delete(f"/api/v1/tenants/{tenant_a.id}"), 409)
    assert_status(admin.get(f"/api/v1/tenants/{tenant_a.id}"), 200)


@covers("GET /api/v1/tenants/by-code/<code>")
def test_by_code_of_foreign_tenant_is_404(tenant_a, tenant_b, as_role):
    tech = as_role("technician", tenants=[tenant_a])
    assert_status(tech.get("/api/v1/tenants/by-code/tenant-a"), 200)
    assert_problem(tech.get("/api/v1/tenants/by-code/tenant-b"), 404)


def test_get_scoped_sees_the_tenant_tree_whether_or_not_the_request_read_it(
    tenant_a, tenant_b, make_tenant
):
    """One object by id: with the actor's tenants not yet read, the statement reads the
    tenant tree itself; once read, it uses their ids. Both see the same objects."""
    child = make_tenant("child", parent="tenant-a")
    grandchild = make_tenant("grandchild", parent="child")
    user = create_user("tech-tree", role=Role.TECHNICIAN, tenants=[tenant_a], actor=SYSTEM)
    for read_first in (False, True):
        actor = Actor(user.id, user.username, user.role, False)
        if read_first:
            assert visible_tenant_ids(actor) == {tenant_a.id, child.id, grandchild.id}
        for visible in (tenant_a, child, grandchild):
            assert get_scoped(Tenant, visible.id, actor).code == visible.code
        for hidden in (tenant_b.id, 999_999):
            with pytest.raises(NotFound):
                get_scoped(Tenant, hidden, actor)
        assert ("tenant_ids" in actor.cache) is read_first
    admin = Actor(None, "admin", Role.ADMIN, True)
    assert get_scoped(Tenant, tenant_b.id, admin).code == "tenant-b"


def test_list_rows_dump_as_the_objects_do(tenant_a, make_tenant, admin):
    """A tenants page is read as rows (config.pagination.row_reader), not objects: each
    row of the page dumps exactly as its object does through TenantOut's fields."""
    import marshmallow as ma

    from config.routes import TenantOut

    make_tenant("child-x", parent="tenant-a", contributions={"2021": 12.5})
    page = admin.get("/api/v1/tenants?ordering=code").json["results"]
    objects = {t.code: t for t in _db.session.execute(sa.select(Tenant)).scalars()}
    assert [row["code"] for row in page] == sorted(objects)
    for row in page:
        assert row == ma.Schema.dump(TenantOut(), objects[row["code"]])
    assert next(r for r in page if r["code"] == "child-x")["parent"] == "tenant-a"


def test_row_reader_refuses_fields_that_do_not_match_the_columns():
    from typing import NamedTuple

    from config.pagination import row_reader

    class Wrong(NamedTuple):
        code: str
        id: int

    with pytest.raises(ValueError, match="Wrong"):
        row_reader((Tenant.id, Tenant.code), Wrong)
