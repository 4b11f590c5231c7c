"""``ResourceAPITests``: the contract every ``/api/v1`` resource must keep (STYLE.md §3.11).

A resource test declares its URL and model and implements four hooks; the mixin checks
the envelope, filters, ordering, 400/401/403/404/412/422 answers as problem+json,
Location, ETag, change-log rows, cross-tenant 404s and that refused writes write nothing.
It also records which routes have an isolation test, for ``tests/test_route_audit.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa

from config.auth import Token
from config.changelog import ChangeRecord
from config.db import db, transaction, utcnow
from tests.support import assert_problem, assert_status, count_queries

# (METHOD, normalised rule) pairs with a cross-tenant test; see test_route_audit.py.
ISOLATION_COVERED: set[tuple[str, str]] = set()


def normalise(rule: str) -> str:
    return re.sub(r"<[^>]+>", "<>", rule).rstrip("/")


def covers(*routes: str) -> Callable[[Any], Any]:
    """Mark a test as the isolation test of ``"METHOD /api/v1/..."`` routes."""
    for route in routes:
        method, _, rule = route.partition(" ")
        ISOLATION_COVERED.add((method.upper(), normalise(rule)))
    return lambda f: f


class ResourceAPITests:
    url: ClassVar[str]
    model: ClassVar[type]
    object_type: ClassVar[str]
    read_role: ClassVar[str] = "technician"
    write_role: ClassVar[str] = "admin"
    denied_role: ClassVar[str | None] = "technician"  # reads but may not write
    tenant_scoped: ClassVar[bool] = True  # objects belong to a tenant
    by_code: ClassVar[str | None] = None  # attribute served at /by-code/<value>
    filter_cases: ClassVar[list[tuple[dict[str, Any], int]]] = []
    ordering_fields: ClassVar[list[str]] = ["id"]
    create: ClassVar[bool] = True
    update: ClassVar[bool] = True
    delete: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "url" not in cls.__dict__:
            return
        base = normalise(cls.url)
        ISOLATION_COVERED.add(("GET", base))
        ISOLATION_COVERED.add(("GET", f"{base}/<>"))
        if cls.create:
            ISOLATION_COVERED.add(("POST", base))
        if cls.update:
            ISOLATION_COVERED.add(("PATCH", f"{base}/<>"))
        if cls.delete:
            ISOLATION_COVERED.add(("DELETE", f"{base}/<>"))
        if cls.by_code:
            ISOLATION_COVERED.add(("GET", f"{base}/by-code/<>"))

    # -- hooks ----------------------------------------------------------------------

    def make(self, tenant: Any, **kw: Any) -> Any:
        """Create one object in ``tenant`` (through the services); return it."""
        raise NotImplementedError

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        """A valid POST body for an object in ``tenant``."""
        raise NotImplementedError

    def update_payload(self, obj: Any) -> dict[str, Any]:
        """A valid PATCH body that changes ``obj``."""
        raise NotImplementedError

    def wrong_type_payload(self, tenant: Any) -> tuple[dict[str, Any], str]:
        """A POST body with one field of the wrong type, and that field's name."""
        body = self.create_payload(tenant)
        field = next(k for k, v in body.items() if isinstance(v, str))
        body[field] = {"not": "a string"}
        return body, field

    def make_for_filters(self) -> None:
        """Objects that ``filter_cases`` count (default: two in tenant A)."""
        self.make(self.a)
        self.make(self.a)

    # -- world ----------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _world(self, app: Any, db: Any, tenant_a: Any, tenant_b: Any, as_role: Any) -> None:
        self.app, self.a, self.b, self.as_role = app, tenant_a, tenant_b, as_role
        self.reader = as_role(self.read_role, tenants=[tenant_a])
        self.writer = (
            as_role("admin")
            if self.write_role == "admin"
            else as_role(self.write_role, tenants=[tenant_a])
        )
        self.anonymous = app.test_client()

    def item_url(self, obj: Any) -> str:
        return f"{self.url}/{obj.id}"

    def rows(self) -> int:
        return db.session.execute(sa.select(sa.func.count()).select_from(self.model)).scalar_one()

    def changes(self, obj_id: int, action: str) -> list[ChangeRecord]:
        db.session.remove()
        stmt = sa.select(ChangeRecord).where(
            ChangeRecord.object_type == self.object_type,
            ChangeRecord.object_id == obj_id,
            ChangeRecord.action == action,
        )
        return list(db.session.execute(stmt).scalars())

    # -- lists ----------------------------------------------------------------------

    def test_list_envelope(self) -> None:
        self.make(self.a)
        resp = self.reader.get(self.url)
        assert_status(resp, 200)
        assert set(resp.json) == {"count", "next", "previous", "results"}
        assert resp.json["count"] == len(resp.json["results"]) >= 1

    def test_list_pages_follow_next(self) -> None:
        for _ in range(3):
            self.make(self.a)
        first = self.reader.get(f"{self.url}?limit=2")
        assert_status(first, 200)
        assert first.json["next"] and first.json["previous"] is None
        ids, page = [], first
        while True:
            ids += [o["id"] for o in page.json["results"]]
            if not page.json["next"]:
                break
            page = self.reader.get(page.json["next"])
            assert_status(page, 200)
            assert page.json["previous"]
        assert len(ids) == len(set(ids)) == first.json["count"]

    def test_list_limit_cap_400(self) -> None:
        body = assert_problem(self.reader.get(f"{self.url}?limit=1001"), 400)
        assert "limit" in body["errors"]

    def test_unknown_filter_400(self) -> None:
        body = assert_problem(self.reader.get(f"{self.url}?no_such_filter=1"), 400)
        assert "no_such_filter" in body["errors"]

    def test_unknown_ordering_400(self) -> None:
        body = assert_problem(self.reader.get(f"{self.url}?ordering=-no_such_field"), 400)
        assert "ordering" in body["errors"]

    def test_filter_cases(self) -> None:
        self.make_for_filters()
        for params, expected in self.filter_cases:
            resp = self.reader.get(self.url, query_string=params)
            assert_status(resp, 200)
            assert resp.json["count"] == expected, (params, resp.json)

    def test_ordering_is_stable(self) -> None:
        for _ in range(3):
            self.make(self.a)
        for name in self.ordering_fields:
            for order in (name, f"-{name}"):
                one = self.reader.get(f"{self.url}?ordering={order}&limit=1000")
                two = self.reader.get(f"{self.url}?ordering={order}&limit=1000")
                assert_status(one, 200)
                assert [o["id"] for o in one.json["results"]] == [
                    o["id"] for o in two.json["results"]
                ]

    def test_list_hides_other_tenants(self) -> None:
        if not self.tenant_scoped:
            pytest.skip("shared objects are visible to all")
        mine = self.make(self.a)
        theirs = self.make(self.b)
        ids = [o["id"] for o in self.reader.get(f"{self.url}?limit=1000").json["results"]]
        assert mine.id in ids and theirs.id not in ids

    def test_list_costs_constant_queries(self) -> None:
        self.make(self.a)
        self.reader.get(self.url)  # warm-up: the first use of a token records last_used_at
        with count_queries(self.app) as few:
            assert_status(self.reader.get(self.url), 200)
        for _ in range(4):
            self.make(self.a)
        with count_queries(self.app) as many:
            assert_status(self.reader.get(self.url), 200)
        assert len(many) == len(few), many

    # -- reads ----------------------------------------------------------------------

    def test_get_200_with_etag(self) -> None:
        obj = self.make(self.a)
        resp = self.reader.get(self.item_url(obj))
        assert_status(resp, 200)
        assert resp.json["id"] == obj.id
        assert resp.headers["ETag"].startswith('W/"')

    def test_get_unknown_404_problem(self) -> None:
        assert_problem(self.reader.get(f"{self.url}/987654"), 404)
        assert_problem(self.reader.get(f"{self.url}/99999999999999999999"), 404)

    def test_get_other_tenant_404(self) -> None:
        if not self.tenant_scoped:
            pytest.skip("shared objects are visible to all")
        theirs = self.make(self.b)
        missing = assert_problem(self.reader.get(f"{self.url}/987654"), 404)
        foreign = assert_problem(self.reader.get(self.item_url(theirs)), 404)
        assert foreign["title"] == missing["title"]
        if self.by_code:
            code = getattr(theirs, self.by_code)
            assert_problem(self.reader.get(f"{self.url}/by-code/{code}"), 404)

    def test_get_by_code(self) -> None:
        if not self.by_code:
            pytest.skip("no natural code")
        obj = self.make(self.a)
        resp = self.reader.get(f"{self.url}/by-code/{getattr(obj, self.by_code)}")
        assert_status(resp, 200)
        assert resp.json["id"] == obj.id

    # -- auth -----------------------------------------------------------------------

    def test_no_token_401(self) -> None:
        obj = self.make(self.a)
        for resp in (self.anonymous.get(self.url), self.anonymous.get(self.item_url(obj))):
            body = assert_problem(resp, 401, "unauthorized")
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert str(obj.id) not in body["detail"]

    def test_bad_tokens_401(self) -> None:
        reader = self.reader
        bad = ["Bearer", "Bearer nope", "Basic abc", f"Bearer {reader.token}x", reader.token]
        for header in bad:
            assert_problem(self.anonymous.get(self.url, headers={"Authorization": header}), 401)
        with transaction():
            db.session.execute(sa.update(Token).values(expires_at=utcnow() - timedelta(seconds=1)))
        assert_problem(reader.get(self.url), 401)
        with transaction():
            db.session.execute(sa.update(Token).values(expires_at=None, revoked_at=utcnow()))
        assert_problem(reader.get(self.url), 401)

    # -- writes ---------------------------------------------------------------------

    def test_create_201_location_and_changelog(self) -> None:
        if not self.create:
            pytest.skip("read-only resource")
        resp = self.writer.post(self.url, json=self.create_payload(self.a))
        assert_status(resp, 201)
        location = resp.headers["Location"]
        assert location.endswith(f"/{resp.json['id']}")
        assert_status(self.writer.get(location), 200)
        assert len(self.changes(resp.json["id"], "create")) == 1

    def test_create_unknown_field_422(self) -> None:
        if not self.create:
            pytest.skip("read-only resource")
        before = self.rows()
        body = {**self.create_payload(self.a), "no_such_field": 1}
        problem = assert_problem(self.writer.post(self.url, json=body), 422, "validation-failed")
        assert "no_such_field" in problem["errors"]
        assert self.rows() == before

    def test_create_wrong_type_422_names_field(self) -> None:
        if not self.create:
            pytest.skip("read-only resource")
        before = self.rows()
        body, field = self.wrong_type_payload(self.a)
        problem = assert_problem(self.writer.post(self.url, json=body), 422)
        assert field in problem["errors"], problem
        assert self.rows() == before

    def test_create_malformed_json_400(self) -> None:
        if not self.create:
            pytest.skip("read-only resource")
        before = self.rows()
        resp = self.writer.post(self.url, data="{", content_type="application/json")
        assert_problem(resp, 400, "malformed-json")
        assert self.rows() == before

    def test_patch_200_and_changelog(self) -> None:
        if not self.update:
            pytest.skip("no updates")
        obj = self.make(self.a)
        etag = self.writer.get(self.item_url(obj)).headers["ETag"]
        resp = self.writer.patch(
            self.item_url(obj), json=self.update_payload(obj), headers={"If-Match": etag}
        )
        assert_status(resp, 200)
        assert resp.headers["ETag"] != etag
        [entry] = self.changes(obj.id, "update")
        assert entry.before != entry.after

    def test_patch_if_match_mismatch_412(self) -> None:
        if not self.update:
            pytest.skip("no updates")
        obj = self.make(self.a)
        current = self.writer.get(self.item_url(obj)).headers["ETag"]
        resp = self.writer.patch(
            self.item_url(obj), json=self.update_payload(obj), headers={"If-Match": 'W/"999"'}
        )
        body = assert_problem(resp, 412, "precondition-failed")
        assert body["etag"] == current
        assert self.changes(obj.id, "update") == []

    def test_patch_without_if_match_ok(self) -> None:
        if not self.update:
            pytest.skip("no updates")
        obj = self.make(self.a)
        assert_status(self.writer.patch(self.item_url(obj), json=self.update_payload(obj)), 200)

    def test_patch_other_tenant_404(self) -> None:
        if not self.update or not self.tenant_scoped or self.write_role == "admin":
            pytest.skip("not applicable")
        theirs = self.make(self.b)
        assert_problem(
            self.writer.patch(self.item_url(theirs), json=self.update_payload(theirs)), 404
        )
        assert self.changes(theirs.id, "update") == []

    def test_delete_204_and_changelog(self) -> None:
        if not self.delete:
            pytest.skip("no deletes")
        obj = self.make(self.a)
        assert_status(self.writer.delete(self.item_url(obj)), 204)
        assert_problem(self.writer.get(self.item_url(obj)), 404)
        assert len(self.changes(obj.id, "delete")) == 1

    def test_delete_other_tenant_404(self) -> None:
        if not self.delete or not self.tenant_scoped or self.write_role == "admin":
            pytest.skip("not applicable")
        theirs = self.make(self.b)
        assert_problem(self.writer.delete(self.item_url(theirs)), 404)
        assert self.changes(theirs.id, "delete") == []

    def test_read_role_cannot_write(self) -> None:
        if not self.denied_role:
            pytest.skip("every reader may write")
        denied = self.as_role(self.denied_role, tenants=[self.a])
        obj = self.make(self.a)
        before = self.rows()
        if self.create:
            assert_problem(
                denied.post(self.url, json=self.create_payload(self.a)), 403, "forbidden"
            )
        if self.update:
            assert_problem(denied.patch(self.item_url(obj), json=self.update_payload(obj)), 403)
        if self.delete:
            assert_problem(denied.delete(self.item_url(obj)), 403)
        assert self.rows() == before
        assert self.changes(obj.id, "update") == [] and self.changes(obj.id, "delete") == []
