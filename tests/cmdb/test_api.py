"""CIs, relations and usage links through the shared API contract, plus their own rules."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from cmdb import services
from cmdb.models import CI, Relation, Usage
from config.auth import SYSTEM
from config.db import db as _db
from tests.api_mixins import ResourceAPITests, covers
from tests.support import assert_problem, assert_status, count_queries


def count(model) -> int:
    return _db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


class TestCIsAPI(ResourceAPITests):
    url = "/api/v1/cis"
    model = CI
    object_type = "ci"
    write_role = "infra"
    denied_role = "technician"
    by_code = "key"
    ordering_fields = ["kind", "code", "name", "status", "created_at"]
    filter_cases = [
        ({"kind": "application"}, 2),
        ({"kind": ["application", "server"]}, 3),
        ({"kind": "site"}, 0),
        ({"status": "retired"}, 1),
        ({"attributes.domain": "Finances"}, 1),
        ({"attributes.domain": ["Finances", "RH"]}, 2),
        ({"attributes.domain__ic": "finan"}, 1),
        ({"attributes.environment": "test"}, 1),
        ({"attributes.min_healthy": 2}, 0),
        ({"q": "paie"}, 1),
        ({"tenant": "tenant-a"}, 2),
        ({"shared": "true"}, 1),
        ({"used_by": "tenant-a"}, 1),
        ({"code__ic": "GF"}, 1),
    ]
    _n = 0

    def make(self, tenant: Any, **kw: Any) -> CI:
        type(self)._n += 1
        data = {
            "kind": "server",
            "code": f"srv-{self._n}",
            "name": f"Serveur {self._n}",
            "tenant": tenant.code if tenant is not None else None,
            "attributes": {"environment": "production"},
            **kw,
        }
        return services.create_ci(data, actor=SYSTEM)

    def make_for_filters(self) -> None:
        gf = self.make(
            self.a,
            kind="application",
            code="gf",
            name="Gestion financière",
            attributes={"domain": "Finances"},
        )
        self.make(
            self.a,
            kind="application",
            code="rh",
            name="Paie",
            status="retired",
            attributes={"domain": "RH"},
        )
        self.make(None, attributes={"environment": "test"})
        self.make(self.b, kind="application", code="hidden", attributes={"domain": "Finances"})
        services.add_usage(gf, "tenant-a", actor=SYSTEM)

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        type(self)._n += 1
        return {
            "kind": "database",
            "code": f"db-{self._n}",
            "name": "Base GF",
            "tenant": tenant.code,
            "attributes": {"engine": "postgresql", "size_gb": 120.5},
        }

    def update_payload(self, obj: Any) -> dict[str, Any]:
        return {"name": obj.name + " (renamed)", "status": "maintenance"}

    def test_list_costs_constant_queries(self) -> None:
        # Overrides the mixin's: list counts are cached per graph version, so both pages
        # are measured warm (the cold count is checked by the test below).
        self.make(self.a)
        self.reader.get(self.url)
        with count_queries(self.app) as few:
            assert_status(self.reader.get(self.url), 200)
        for _ in range(4):
            self.make(self.a)
        self.reader.get(self.url)
        with count_queries(self.app) as many:
            assert_status(self.reader.get(self.url), 200)
        assert len(many) == len(few), many


def test_list_count_is_cached_until_the_cmdb_changes(app, as_role, make_ci, tenant_a):
    tech = as_role("technician", tenants=[tenant_a])
    make_ci("host:h1")
    tech.get("/api/v1/cis")
    with count_queries(app) as warm:
        assert tech.get("/api/v1/cis").json["count"] == 1
    assert not any("count(" in q.lower() for q in warm), warm
    make_ci("host:h2")
    with count_queries(app) as cold:
        assert tech.get("/api/v1/cis").json["count"] == 2
    assert len(cold) == len(warm) + 1
    assert tech.get("/api/v1/cis?kind=site").json["count"] == 0
    assert tech.get("/api/v1/cis?tenant=tenant-a").json["count"] == 0


def test_ci_out_shape(as_role, make_ci, tenant_a):
    ci = make_ci("cluster:c1", tenant_a, min_healthy=2)
    body = as_role("technician", tenants=[tenant_a]).get(f"/api/v1/cis/{ci.id}").json
    assert body["key"] == "cluster:c1"
    assert body["tenant"] == "tenant-a"
    assert body["attributes"] == {"min_healthy": 2}
    assert body["status"] == "active"


def test_shared_cis_are_visible_to_every_tenant(as_role, make_ci, tenant_a, tenant_b):
    site = make_ci("site:main")
    for tenant in (tenant_a, tenant_b):
        assert_status(as_role("technician", tenants=[tenant]).get(f"/api/v1/cis/{site.id}"), 200)


@pytest.mark.parametrize(
    "body,field",
    [
        ({"kind": "mainframe", "code": "x", "name": "X"}, "kind"),
        (
            {"kind": "cluster", "code": "x", "name": "X", "attributes": {"min_healthy": "2"}},
            "attributes.min_healthy",
        ),
        (
            {"kind": "cluster", "code": "x", "name": "X", "attributes": {"min_healthy": 0}},
            "attributes.min_healthy",
        ),
        (
            {"kind": "server", "code": "x", "name": "X", "attributes": {"environment": "prod"}},
            "attributes.environment",
        ),
        (
            {"kind": "host", "code": "x", "name": "X", "attributes": {"domain": "Finances"}},
            "attributes.domain",
        ),
        (
            {
                "kind": "application",
                "code": "x",
                "name": "X",
                "attributes": {"gdpr": {"purpose": "Paie", "sensitive": "maybe"}},
            },
            "attributes.gdpr.sensitive",
        ),
        ({"kind": "host", "code": "Bad Code", "name": "X"}, "code"),
        ({"kind": "host", "code": "x", "name": "X", "tenant": "nowhere"}, "tenant"),
    ],
)
def test_bad_ci_bodies_are_422_naming_the_field(as_role, tenant_a, body, field):
    infra = as_role("infra", tenants=[tenant_a])
    problem = assert_problem(infra.post("/api/v1/cis", json=body), 422)
    assert field in problem["errors"], problem
    assert count(CI) == 0


def test_duplicate_code_is_409_without_naming_the_owner(as_role, make_ci, tenant_a, tenant_b):
    make_ci("server:srv-1", tenant_b, name="Secret B server")
    infra = as_role("infra", tenants=[tenant_a])
    body = {"kind": "server", "code": "srv-1", "name": "Mine", "tenant": "tenant-a"}
    problem = assert_problem(infra.post("/api/v1/cis", json=body), 409, "ci-key-conflict")
    assert "tenant-b" not in str(problem) and "Secret" not in str(problem)
    assert count(CI) == 1


def test_unknown_attribute_filter_is_400(as_role, tenant_a):
    tech = as_role("technician", tenants=[tenant_a])
    problem = assert_problem(tech.get("/api/v1/cis?attributes.colour=red"), 400)
    assert "attributes.colour" in problem["errors"]


def test_by_code_with_a_malformed_key_is_404(as_role, tenant_a):
    tech = as_role("technician", tenants=[tenant_a])
    assert_problem(tech.get("/api/v1/cis/by-code/nonsense"), 404)


def test_patch_attributes_merges(as_role, make_ci, tenant_a):
    app = make_ci("application:gf", tenant_a, domain="Finances", vendor="CIRIL")
    infra = as_role("infra", tenants=[tenant_a])
    resp = infra.patch(
        f"/api/v1/cis/{app.id}", json={"attributes": {"vendor": None, "product": "GF"}}
    )
    assert_status(resp, 200)
    assert resp.json["attributes"] == {"domain": "Finances", "product": "GF"}


def test_patch_to_another_tenant_is_refused(as_role, make_ci, tenant_a, tenant_b):
    ci = make_ci("server:s", tenant_a)
    infra = as_role("infra", tenants=[tenant_a])
    problem = assert_problem(infra.patch(f"/api/v1/cis/{ci.id}", json={"tenant": "tenant-b"}), 422)
    assert "tenant" in problem["errors"]


# -- relations ------------------------------------------------------------------------------


class TestRelationsAPI(ResourceAPITests):
    url = "/api/v1/relations"
    model = Relation
    object_type = "relation"
    write_role = "infra"
    denied_role = "technician"
    ordering_fields = ["type", "created_at"]
    filter_cases = [
        ({"type": "hosted_on"}, 2),
        ({"type": "depends_on"}, 0),
        ({"source": "application:rel-app-f1"}, 1),
        ({"target": "server:rel-srv-f1"}, 2),
        ({"ci": "server:rel-srv-f1"}, 2),
    ]
    _n = 0

    def _pair(self, tenant: Any, tag: str | None = None) -> tuple[CI, CI]:
        type(self)._n += 1
        tag = tag or str(self._n)
        owner = tenant.code if tenant is not None else None
        app = services.create_ci(
            {"kind": "application", "code": f"rel-app-{tag}", "name": "App", "tenant": owner},
            actor=SYSTEM,
        )
        srv = services.create_ci(
            {"kind": "server", "code": f"rel-srv-{tag}-{self._n}", "name": "Srv", "tenant": owner},
            actor=SYSTEM,
        )
        return app, srv

    def make(self, tenant: Any, **kw: Any) -> Relation:
        app, srv = self._pair(tenant)
        return services.create_relation(
            {"source": app.id, "target": srv.id, "type": "hosted_on"}, actor=SYSTEM
        )

    def make_for_filters(self) -> None:
        app, _ = self._pair(self.a, "f1")
        srv = services.create_ci(
            {"kind": "server", "code": "rel-srv-f1", "name": "Srv", "tenant": None}, actor=SYSTEM
        )
        other = services.create_ci(
            {"kind": "application", "code": "rel-app-f2", "name": "App", "tenant": None},
            actor=SYSTEM,
        )
        hidden = services.create_ci(
            {"kind": "application", "code": "rel-app-f3", "name": "App", "tenant": "tenant-b"},
            actor=SYSTEM,
        )
        for source in (app, other, hidden):
            services.create_relation(
                {"source": source.id, "target": srv.id, "type": "hosted_on"}, actor=SYSTEM
            )

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        app, srv = self._pair(tenant)
        return {"source": app.key, "target": srv.id, "type": "hosted_on"}

    def update_payload(self, obj: Any) -> dict[str, Any]:
        return {"type": "depends_on"}

    def wrong_type_payload(self, tenant: Any) -> tuple[dict[str, Any], str]:
        body = self.create_payload(tenant)
        body["source"] = {"not": "a ref"}
        return body, "source"


def test_relation_out_names_both_ends(as_role, make_ci, relate, tenant_a):
    rel = relate(make_ci("server:s"), "runs_on", make_ci("host:h"))
    body = as_role("technician", tenants=[tenant_a]).get(f"/api/v1/relations/{rel.id}").json
    assert (body["source_key"], body["type"], body["target_key"]) == (
        "server:s",
        "runs_on",
        "host:h",
    )


def test_relation_touching_an_invisible_ci_is_422_and_writes_nothing(
    as_role, make_ci, tenant_a, tenant_b
):
    mine = make_ci("application:mine", tenant_a)
    theirs = make_ci("server:theirs", tenant_b)
    infra = as_role("infra", tenants=[tenant_a])
    for ref in (theirs.id, theirs.key):
        body = {"source": mine.id, "target": ref, "type": "hosted_on"}
        problem = assert_problem(infra.post("/api/v1/relations", json=body), 422)
        assert "target" in problem["errors"]
        assert "tenant-b" not in str(problem)
    assert count(Relation) == 0


def test_relation_type_not_allowed_between_kinds_is_422(as_role, make_ci, tenant_a):
    site, app = make_ci("site:s"), make_ci("application:a")
    infra = as_role("infra", tenants=[tenant_a])
    body = {"source": site.key, "target": app.key, "type": "runs_on"}
    problem = assert_problem(infra.post("/api/v1/relations", json=body), 422)
    assert "type" in problem["errors"]
    assert count(Relation) == 0


def test_self_link_is_422(as_role, make_ci, tenant_a):
    svc = make_ci("service:s")
    infra = as_role("infra", tenants=[tenant_a])
    body = {"source": svc.id, "target": svc.id, "type": "depends_on"}
    assert_problem(infra.post("/api/v1/relations", json=body), 422)
    assert count(Relation) == 0


def test_cycle_is_422_naming_the_cycle(as_role, make_ci, relate, tenant_a):
    a, b = make_ci("service:a"), make_ci("database:b")
    relate(a, "depends_on", b)
    infra = as_role("infra", tenants=[tenant_a])
    body = {"source": "database:b", "target": "service:a", "type": "depends_on"}
    problem = assert_problem(infra.post("/api/v1/relations", json=body), 422, "relation-cycle")
    assert problem["cycle"] == ["database:b", "service:a", "database:b"]
    assert count(Relation) == 1


def test_patch_into_a_cycle_is_refused(as_role, make_ci, relate, tenant_a):
    a, b, c = make_ci("service:a"), make_ci("service:b"), make_ci("service:c")
    relate(a, "depends_on", b)
    rel = relate(b, "depends_on", c)
    infra = as_role("infra", tenants=[tenant_a])
    resp = infra.patch(f"/api/v1/relations/{rel.id}", json={"target": "service:a"})
    assert_problem(resp, 422, "relation-cycle")
    assert _db.session.get(Relation, rel.id).target_id == c.id


def test_duplicate_relation_is_409(as_role, make_ci, relate, tenant_a):
    s, h = make_ci("server:s"), make_ci("host:h")
    relate(s, "runs_on", h)
    infra = as_role("infra", tenants=[tenant_a])
    body = {"source": s.id, "target": h.id, "type": "runs_on"}
    assert_problem(infra.post("/api/v1/relations", json=body), 409)
    assert count(Relation) == 1


# -- usage ----------------------------------------------------------------------------------


@covers("GET /api/v1/cis/<id>/tenants", "POST /api/v1/cis/<id>/tenants")
def test_usage_links_are_scoped_to_visible_tenants(as_role, make_ci, use, tenant_a, tenant_b):
    app = make_ci("application:gf")
    use(app, tenant_a)
    use(app, tenant_b)
    tech = as_role("technician", tenants=[tenant_a])
    resp = tech.get(f"/api/v1/cis/{app.id}/tenants")
    assert_status(resp, 200)
    assert [u["tenant"] for u in resp.json["results"]] == ["tenant-a"]
    infra = as_role("infra", tenants=[tenant_a])
    mine = make_ci("application:mine", tenant_b)
    assert_problem(infra.post(f"/api/v1/cis/{mine.id}/tenants", json={"tenant": "tenant-a"}), 404)
    problem = assert_problem(
        infra.post(f"/api/v1/cis/{app.id}/tenants", json={"tenant": "tenant-b"}), 422
    )
    assert "tenant" in problem["errors"]
    assert count(Usage) == 2


def test_add_usage_201_with_location_and_changelog(as_role, make_ci, tenant_a):
    app = make_ci("application:gf")
    infra = as_role("infra", tenants=[tenant_a])
    resp = infra.post(
        f"/api/v1/cis/{app.id}/tenants", json={"tenant": "tenant-a", "confidence": "likely"}
    )
    assert_status(resp, 201)
    assert resp.json["tenant"] == "tenant-a" and resp.json["confidence"] == "likely"
    assert resp.headers["Location"].endswith(f"/api/v1/cis/{app.id}/tenants/tenant-a")
    assert_status(infra.get(resp.headers["Location"]), 200)
    assert_problem(infra.post(f"/api/v1/cis/{app.id}/tenants", json={"tenant": "tenant-a"}), 409)


def test_usage_of_a_non_application_is_422(as_role, make_ci, tenant_a):
    host = make_ci("host:h")
    infra = as_role("infra", tenants=[tenant_a])
    assert_problem(infra.post(f"/api/v1/cis/{host.id}/tenants", json={"tenant": "tenant-a"}), 422)
    assert count(Usage) == 0


@covers(
    "GET /api/v1/cis/<id>/tenants/<tenant>",
    "DELETE /api/v1/cis/<id>/tenants/<tenant>",
    "DELETE /api/v1/cis/<id>/tenants",
)
def test_remove_usage_of_another_tenant_is_404(as_role, make_ci, use, tenant_a, tenant_b):
    app = make_ci("application:gf")
    use(app, tenant_a)
    use(app, tenant_b)
    infra = as_role("infra", tenants=[tenant_a])
    assert_problem(infra.get(f"/api/v1/cis/{app.id}/tenants/tenant-b"), 404)
    assert_problem(infra.delete(f"/api/v1/cis/{app.id}/tenants/tenant-b"), 404)
    assert_problem(infra.delete(f"/api/v1/cis/{app.id}/tenants?tenant=tenant-b"), 404)
    assert count(Usage) == 2
    assert_status(infra.delete(f"/api/v1/cis/{app.id}/tenants?tenant=tenant-a"), 204)
    assert count(Usage) == 1


def test_technician_cannot_link_usage(as_role, make_ci, tenant_a):
    app = make_ci("application:gf")
    tech = as_role("technician", tenants=[tenant_a])
    assert_problem(tech.post(f"/api/v1/cis/{app.id}/tenants", json={"tenant": "tenant-a"}), 403)
    assert count(Usage) == 0


def test_ci_out_fast_path_equals_the_declared_fields(make_ci, tenant_a):
    import marshmallow as ma
    import sqlalchemy as sa

    from cmdb.models import CI
    from cmdb.queries import ci_page_rows
    from cmdb.schemas import CIOut

    cis = [make_ci("cluster:c1", tenant_a, min_healthy=2), make_ci("site:s1", city="Ivry")]
    generic = [ma.Schema._serialize(CIOut(), ci) for ci in cis]
    assert generic[0]["tenant"] == "tenant-a" and generic[1]["tenant"] is None
    assert generic[0]["key"] == "cluster:c1" and generic[0]["attributes"] == {"min_healthy": 2}
    # From the objects, and from the rows a list page reads instead of objects.
    assert [CIOut.fast_dump(ci) for ci in cis] == generic
    rows = ci_page_rows(sa.select(CI).where(CI.id.in_([ci.id for ci in cis])).order_by(CI.id))
    assert [CIOut.fast_dump(row) for row in rows] == generic
    assert [ma.Schema._serialize(CIOut(), row) for row in rows] == generic


def test_a_ci_referenced_by_a_ticket_cannot_be_deleted(as_role, make_ci, relate, tenant_a):
    host = make_ci("host:hv-1")
    relate(make_ci("server:s1"), "runs_on", host)
    tech = as_role("technician", tenants=[tenant_a])
    ticket = tech.post(
        "/api/v1/tickets",
        json={"tenant": "tenant-a", "type": "incident", "title": "Hôte lent", "ci": "host:hv-1"},
    )
    assert_status(ticket, 201)
    admin = as_role("admin")
    problem = assert_problem(admin.delete(f"/api/v1/cis/{host.id}"), 409)
    assert "retired" in problem["detail"]
    assert count(CI) == 2 and count(Relation) == 1
