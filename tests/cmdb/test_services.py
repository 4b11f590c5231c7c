"""CMDB services on the real database: keys, rules, tenancy, the graph version."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cmdb import services
from cmdb.errors import CIKeyConflict, RelationCycle, UnknownCIs
from cmdb.models import CI, Relation, Usage, graph_version
from config.auth import SYSTEM, Actor, Role
from config.changelog import ChangeRecord
from config.db import db as _db
from config.errors import Conflict, Forbidden, ValidationFailed


def count(model) -> int:
    return _db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def actor_for(user) -> Actor:
    return Actor.of(user)


@pytest.fixture()
def tech_a(as_role, tenant_a):
    return Actor.of(as_role("technician", tenants=[tenant_a]).user)


@pytest.fixture()
def infra_a(as_role, tenant_a):
    return Actor.of(as_role("infra", tenants=[tenant_a]).user)


def test_resolve_ci_by_key_and_by_id(make_ci):
    host = make_ci("host:hv-01")
    assert services.resolve_ci("host:hv-01", SYSTEM).id == host.id
    assert services.resolve_ci(host.id, SYSTEM).id == host.id
    assert services.resolve_ci(str(host.id), SYSTEM).id == host.id


@pytest.mark.parametrize("bad", ["host:nope", "nokind:x", "hv-01", 0, -1, 2**40, None, True, 1.5])
def test_resolve_ci_unknown_names_the_field(make_ci, bad):
    make_ci("host:hv-01")
    with pytest.raises(ValidationFailed) as exc:
        services.resolve_ci(bad, SYSTEM, field="ci")
    assert list(exc.value.errors) == ["ci"]


def test_resolve_ci_of_another_tenant_looks_missing(make_ci, tenant_b, tech_a):
    theirs = make_ci("server:srv-b", tenant_b)
    for ref in (theirs.id, "server:srv-b"):
        with pytest.raises(ValidationFailed) as exc:
            services.resolve_ci(ref, tech_a, field="ticket_ci")
        assert "ticket_ci" in exc.value.errors


def test_resolve_cis_lists_every_unknown(make_ci):
    make_ci("host:hv-01")
    with pytest.raises(UnknownCIs) as exc:
        services.resolve_cis(["host:hv-01", "host:zz", 999999], SYSTEM)
    assert exc.value.extra["unknown"] == ["host:zz", 999999]


def test_code_is_unique_per_kind_not_across_kinds(make_ci):
    make_ci("host:alpha")
    make_ci("server:alpha")
    with pytest.raises(CIKeyConflict):
        make_ci("host:alpha")
    assert count(CI) == 2


def test_unknown_attribute_and_wrong_type_name_the_attribute(make_ci):
    with pytest.raises(ValidationFailed) as exc:
        make_ci("cluster:c1", min_healthy="two", colour="red")
    assert set(exc.value.errors) == {"attributes.min_healthy", "attributes.colour"}
    assert count(CI) == 0


def test_cluster_min_healthy_defaults_to_one(make_ci):
    assert make_ci("cluster:c1").attributes["min_healthy"] == 1


def test_technician_cannot_write(make_ci, tech_a):
    with pytest.raises(Forbidden):
        services.create_ci({"kind": "host", "code": "h", "name": "H"}, actor=tech_a)


def test_infra_creates_shared_and_own_cis_but_not_another_tenants(infra_a, tenant_a, tenant_b):
    services.create_ci({"kind": "host", "code": "h", "name": "H"}, actor=infra_a)
    services.create_ci(
        {"kind": "server", "code": "s", "name": "S", "tenant": "tenant-a"}, actor=infra_a
    )
    with pytest.raises(ValidationFailed) as exc:
        services.create_ci(
            {"kind": "server", "code": "t", "name": "T", "tenant": "tenant-b"}, actor=infra_a
        )
    assert "tenant" in exc.value.errors


def test_relation_kinds_are_checked(make_ci, relate):
    app = make_ci("application:app")
    site = make_ci("site:main")
    with pytest.raises(ValidationFailed) as exc:
        relate(app, "runs_on", site)
    assert "type" in exc.value.errors
    assert count(Relation) == 0


def test_cycle_is_refused_and_named(make_ci, relate):
    a, b, c = make_ci("service:a"), make_ci("service:b"), make_ci("service:c")
    relate(a, "depends_on", b)
    relate(b, "depends_on", c)
    with pytest.raises(RelationCycle) as exc:
        relate(c, "depends_on", a)
    assert exc.value.extra["cycle"] == ["service:c", "service:a", "service:b", "service:c"]
    assert count(Relation) == 2


def test_duplicate_relation_is_a_conflict(make_ci, relate):
    s, h = make_ci("server:s"), make_ci("host:h")
    relate(s, "runs_on", h)
    with pytest.raises(Conflict):
        relate(s, "runs_on", h)


def test_relations_never_join_two_tenants(make_ci, relate, tenant_a, tenant_b):
    app = make_ci("application:app-a", tenant_a)
    srv = make_ci("server:srv-b", tenant_b)
    with pytest.raises(ValidationFailed):
        relate(app, "hosted_on", srv)


def test_relation_carries_the_tenant_it_touches(make_ci, relate, tenant_a):
    app = make_ci("application:app-a", tenant_a)
    srv = make_ci("server:shared")
    assert relate(app, "hosted_on", srv).tenant_id == tenant_a.id


def test_every_graph_write_bumps_the_version_once(make_ci, relate, use, tenant_a):
    v0 = graph_version()
    app = make_ci("application:app")
    srv = make_ci("server:srv")
    rel = relate(app, "hosted_on", srv)
    use(app, tenant_a)
    assert graph_version() == v0 + 4
    services.delete_relation(rel, actor=SYSTEM)
    assert graph_version() == v0 + 5


def test_failed_write_does_not_bump_the_version(make_ci):
    make_ci("host:h")
    v = graph_version()
    with pytest.raises(CIKeyConflict):
        make_ci("host:h")
    assert graph_version() == v


def test_delete_ci_removes_its_links_with_change_log(make_ci, relate, use, tenant_a):
    app = make_ci("application:app")
    srv = make_ci("server:srv")
    rel = relate(app, "hosted_on", srv)
    use(app, tenant_a)
    services.delete_ci(app, actor=SYSTEM)
    assert count(Relation) == 0 and count(Usage) == 0 and count(CI) == 1
    deleted = (
        _db.session.execute(
            sa.select(ChangeRecord.object_type).where(ChangeRecord.action == "delete")
        )
        .scalars()
        .all()
    )
    assert sorted(deleted) == ["ci", "relation", "usage"]
    assert rel.id


def test_usage_only_for_applications(make_ci, use, tenant_a):
    with pytest.raises(ValidationFailed):
        use(make_ci("server:s"), tenant_a)


def test_moving_a_ci_to_a_tenant_moves_its_relations(make_ci, relate, tenant_a):
    app = make_ci("application:app")
    srv = make_ci("server:srv")
    rel = relate(app, "hosted_on", srv)
    services.update_ci(app, {"tenant": "tenant-a"}, actor=SYSTEM)
    _db.session.refresh(rel)
    assert rel.tenant_id == tenant_a.id


def test_attributes_patch_merges_and_null_removes(make_ci):
    app = make_ci("application:app", domain="Finances", vendor="X")
    services.update_ci(app, {"attributes": {"vendor": None, "product": "P"}}, actor=SYSTEM)
    assert app.attributes == {"domain": "Finances", "product": "P"}


def test_kind_is_read_only(make_ci):
    host = make_ci("host:h")
    with pytest.raises(ValidationFailed) as exc:
        services.update_ci(host, {"kind": "server"}, actor=SYSTEM)
    assert "kind" in exc.value.errors


def test_role_registration():
    from config.auth import can

    assert can(Actor(1, "x", Role.INFRA, True), "cmdb.write")
    assert not can(Actor(1, "x", Role.MANAGER, True), "cmdb.write")


def test_queries_give_the_domain_of_applications(make_ci):
    from cmdb import queries

    fin = make_ci("application:gf", domain="Finances")
    bare = make_ci("application:bare")
    assert queries.application_domain(fin.id) == "Finances"
    assert queries.application_domains([fin.id, bare.id]) == {fin.id: "Finances", bare.id: None}
    assert queries.ci_keys([fin.id]) == {fin.id: "application:gf"}
    key = _db.session.execute(sa.select(queries.ci_key_column()).where(CI.id == fin.id)).scalar()
    assert key == "application:gf"
