"""Users, tokens and the change log over HTTP, with their isolation rules."""

from __future__ import annotations

from typing import Any

from config.auth import SYSTEM, Role, User, create_user
from config.changelog import ChangeRecord
from config.tenancy import update_tenant
from tests.api_mixins import ResourceAPITests, covers
from tests.support import assert_problem, assert_status


class TestUsersAPI(ResourceAPITests):
    url = "/api/v1/users"
    model = User
    object_type = "user"
    write_role = "admin"
    denied_role = "manager"
    delete = False
    ordering_fields = ["username", "role", "created_at"]
    filter_cases = [
        ({"role": "infra"}, 2),
        ({"tenant": "tenant-a"}, 3),
        ({"username__ic": "USER-"}, 2),
    ]
    _n = 0

    def make(self, tenant: Any, **kw: Any) -> User:
        type(self)._n += 1
        return create_user(
            f"user-{self._n}", role=kw.get("role", Role.INFRA), tenants=[tenant], actor=SYSTEM
        )

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        type(self)._n += 1
        return {
            "username": f"new-{self._n}",
            "role": "technician",
            "tenants": [tenant.code],
            "full_name": "Nouvelle Personne",
            "email": "n@example.org",
        }

    def update_payload(self, obj: Any) -> dict[str, Any]:
        return {"full_name": "Renamed", "role": "manager"}


@covers("GET /api/v1/users/me")
def test_me_is_the_token_owner(as_role, tenant_a):
    tech = as_role("technician", tenants=[tenant_a], username="me-user")
    resp = tech.get("/api/v1/users/me")
    assert_status(resp, 200)
    assert resp.json["username"] == "me-user" and resp.json["tenants"] == ["tenant-a"]


def test_user_payload_never_shows_password(admin, tenant_a):
    body = {
        "username": "pw",
        "role": "technician",
        "tenants": ["tenant-a"],
        "password": "long enough pw",
    }
    resp = admin.post("/api/v1/users", json=body)
    assert_status(resp, 201)
    assert "password" not in resp.get_data(as_text=True)


def test_user_with_unknown_tenant_is_422(admin):
    body = {"username": "x", "role": "technician", "tenants": ["nowhere"]}
    assert "tenants" in assert_problem(admin.post("/api/v1/users", json=body), 422)["errors"]


class TestTokensAPI:
    @covers(
        "GET /api/v1/tokens",
        "POST /api/v1/tokens",
        "GET /api/v1/tokens/<id>",
        "DELETE /api/v1/tokens/<id>",
    )
    def test_users_see_and_revoke_only_their_own_tokens(self, as_role, tenant_a, tenant_b):
        alice = as_role("technician", tenants=[tenant_a])
        bob = as_role("technician", tenants=[tenant_a])
        made = alice.post("/api/v1/tokens", json={"name": "laptop", "expires_days": 30})
        assert_status(made, 201)
        assert made.json["token"].startswith("syn_") and made.headers["Location"]
        listed = alice.get("/api/v1/tokens").json["results"]
        assert {t["name"] for t in listed} == {"test", "laptop"}
        assert all("token" not in t for t in listed)
        tid = made.json["id"]
        assert_problem(bob.get(f"/api/v1/tokens/{tid}"), 404)
        assert_problem(bob.delete(f"/api/v1/tokens/{tid}"), 404)
        assert_status(alice.get(f"/api/v1/tokens/{tid}"), 200)
        assert_status(alice.delete(f"/api/v1/tokens/{tid}"), 204)
        reuse = alice.__class__(alice.application)
        reuse.token = made.json["token"]
        assert_problem(reuse.get("/api/v1/tokens"), 401)

    def test_only_admins_make_tokens_for_others(self, as_role, admin, tenant_a):
        tech = as_role("technician", tenants=[tenant_a], username="tech")
        assert_problem(tech.post("/api/v1/tokens", json={"name": "x", "user": "root"}), 403)
        resp = admin.post("/api/v1/tokens", json={"name": "for tech", "user": "tech"})
        assert_status(resp, 201)
        assert resp.json["user"] == "tech"


class TestChangesAPI:
    @covers("GET /api/v1/changes", "GET /api/v1/changes/<id>")
    def test_change_log_hides_other_tenants_changes(self, db, as_role, tenant_a, tenant_b):
        update_tenant(tenant_b, {"name": "Secret B"}, actor=SYSTEM)
        tech = as_role("technician", tenants=[tenant_a])
        resp = tech.get("/api/v1/changes?object_type=tenant&limit=1000")
        assert_status(resp, 200)
        assert {c["object_id"] for c in resp.json["results"]} == {tenant_a.id}
        assert "Secret B" not in resp.get_data(as_text=True)
        foreign = db.session.query(ChangeRecord).filter_by(object_id=tenant_b.id).first()
        assert_problem(tech.get(f"/api/v1/changes/{foreign.id}"), 404)

    def test_change_log_is_read_only_over_http(self, admin):
        assert_problem(admin.post("/api/v1/changes", json={}), 405)
        entry = admin.get("/api/v1/changes").json["results"][0]
        assert_problem(admin.patch(f"/api/v1/changes/{entry['id']}", json={}), 405)
        assert_problem(admin.delete(f"/api/v1/changes/{entry['id']}"), 405)

    def test_change_log_filters(self, admin, tenant_a):
        update_tenant(tenant_a, {"name": "New name"}, actor=SYSTEM)
        resp = admin.get(
            f"/api/v1/changes?object_type=tenant&object_id={tenant_a.id}&action=update"
        )
        assert resp.json["count"] == 1
        assert resp.json["results"][0]["before"]["name"] == "Tenant A"
        assert (
            admin.get("/api/v1/changes?user=system&at__gte=2000-01-01T00:00:00Z").json["count"] >= 2
        )
