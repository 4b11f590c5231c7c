"""Impact, SPOF and graph endpoints on the real database (hand-checked scenarios)."""

from __future__ import annotations

import pytest

from cmdb import analysis, services
from cmdb.models import CmdbAnalysis
from config.auth import SYSTEM
from config.db import db as _db
from tests.api_mixins import covers
from tests.support import assert_problem, assert_status, count_queries


@pytest.fixture()
def infra_map(make_ci, relate, use, tenant_a, tenant_b):
    """Site main with a 3-host cluster (min_healthy 2), two servers, a database, two
    applications; a physical server on a lonely host (the planted SPOF); a tenant-B CI."""
    site = make_ci("site:main")
    cluster = make_ci("cluster:hc1", min_healthy=2)
    for n in (1, 2, 3):
        host = make_ci(f"host:hv-{n}", cpu_cores=32, memory_gb=256)
        relate(host, "member_of", cluster)
        relate(host, "located_in", site)
    s1, s2 = make_ci("server:srv-gf"), make_ci("server:srv-rh")
    relate(s1, "runs_on", cluster)
    relate(s2, "runs_on", cluster)
    db = make_ci("database:db-rh", engine="postgresql", size_gb=80)
    relate(db, "hosted_on", s2)
    gf = make_ci("application:gf", domain="Finances")
    rh = make_ci("application:rh", domain="RH")
    relate(gf, "hosted_on", s1)
    relate(rh, "hosted_on", s2)
    relate(rh, "depends_on", db)
    lonely = make_ci("host:lonely")
    relate(lonely, "located_in", site)
    phys = make_ci("server:phys", virtual=False)
    relate(phys, "runs_on", lonely)
    courrier = make_ci("application:courrier")
    relate(courrier, "hosted_on", phys)
    use(gf, tenant_a)
    use(gf, tenant_b)
    use(rh, tenant_b)
    use(courrier, tenant_a)
    secret = make_ci("server:srv-b-secret", tenant_b)
    relate(secret, "runs_on", lonely)
    return {"cluster": cluster, "lonely": lonely, "site": site, "db": db}


def down(body):
    return sorted(d["ci"] for d in body["down"])


@covers("POST /api/v1/impact")
def test_one_host_degrades_two_hosts_stop(as_role, infra_map, tenant_a, tenant_b):
    admin = as_role("admin")
    one = admin.post("/api/v1/impact", json={"failed": ["host:hv-1"]})
    assert_status(one, 200)
    assert one.json["down"] == [] and one.json["tenants"] == []
    assert one.json["degraded"] == [
        {"ci": "cluster:hc1", "kind": "cluster", "members_down": 1, "members": 3, "min_healthy": 2}
    ]
    two = admin.post("/api/v1/impact", json={"failed": ["host:hv-1", "host:hv-2"]})
    assert down(two.json) == [
        "application:gf",
        "application:rh",
        "cluster:hc1",
        "database:db-rh",
        "server:srv-gf",
        "server:srv-rh",
    ]
    assert two.json["tenants"] == [
        {"code": "tenant-a", "applications": ["application:gf"]},
        {"code": "tenant-b", "applications": ["application:gf", "application:rh"]},
    ]
    tech = as_role("technician", tenants=[tenant_a])
    mine = tech.post("/api/v1/impact", json={"failed": ["host:hv-1", "host:hv-2"]}).json
    assert mine["tenants"] == [{"code": "tenant-a", "applications": ["application:gf"]}]
    assert mine["other_tenants"] == 1


def test_a_whole_site(as_role, infra_map):
    body = as_role("admin").post("/api/v1/impact", json={"failed": ["site:main"]}).json
    assert "application:courrier" in down(body) and "cluster:hc1" in down(body)
    assert len(body["down"]) == 13
    assert body["paths"]["application:courrier"] == [
        ["site:main", "host:lonely", "server:phys", "application:courrier"]
    ]


def test_a_database_and_several_failures(as_role, infra_map):
    admin = as_role("admin")
    body = admin.post("/api/v1/impact", json={"failed": ["database:db-rh"]}).json
    assert down(body) == ["application:rh"]
    body = admin.post(
        "/api/v1/impact", json={"failed": ["database:db-rh", infra_map["lonely"].id, "host:hv-3"]}
    ).json
    assert body["failed"] == ["database:db-rh", "host:lonely", "host:hv-3"]
    assert down(body) == [
        "application:courrier",
        "application:rh",
        "server:phys",
        "server:srv-b-secret",
    ]
    assert body["degraded"][0]["ci"] == "cluster:hc1"


def test_tenant_bound_caller_does_not_see_other_tenants_cis(as_role, infra_map, tenant_a):
    tech = as_role("technician", tenants=[tenant_a])
    body = tech.post("/api/v1/impact", json={"failed": ["host:lonely"]}).json
    assert down(body) == ["application:courrier", "server:phys"]
    assert body["other_cis"] == 1
    assert "secret" not in str(body)


def test_impact_on_unknown_keys_is_404_naming_them(as_role, infra_map, tenant_a):
    tech = as_role("technician", tenants=[tenant_a])
    resp = tech.post(
        "/api/v1/impact", json={"failed": ["host:hv-1", "host:nope", "server:srv-b-secret", 99999]}
    )
    problem = assert_problem(resp, 404, "unknown-cis")
    assert problem["unknown"] == ["host:nope", "server:srv-b-secret", 99999]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"failed": []}, "failed"),
        ({"failed": "host:hv-1"}, "failed"),
        ({"failed": [True]}, "failed.0"),
        ({"failed": ["not a key"]}, "failed.0"),
        ({"failed": ["host:hv-1"], "depth": 0}, "depth"),
        ({"failed": ["host:hv-1"], "colour": 1}, "colour"),
    ],
)
def test_bad_impact_bodies_are_422(as_role, infra_map, body, field):
    problem = assert_problem(as_role("admin").post("/api/v1/impact", json=body), 422)
    assert field in problem["errors"], problem


@covers("GET /api/v1/cis/<ci_id>/impact")
def test_impact_of_one_ci_and_its_isolation(as_role, infra_map, tenant_a, make_ci, tenant_b):
    tech = as_role("technician", tenants=[tenant_a])
    lonely = infra_map["lonely"]
    resp = tech.get(f"/api/v1/cis/{lonely.id}/impact")
    assert_status(resp, 200)
    assert resp.json["failed"] == ["host:lonely"]
    assert resp.json["tenants"] == [{"code": "tenant-a", "applications": ["application:courrier"]}]
    theirs = make_ci("server:b-only", tenant_b)
    assert_problem(tech.get(f"/api/v1/cis/{theirs.id}/impact"), 404)
    site = infra_map["site"]
    shallow = tech.get(f"/api/v1/cis/{site.id}/impact?depth=1").json
    assert down(shallow) == ["host:hv-1", "host:hv-2", "host:hv-3", "host:lonely"]


def test_graph_is_cached_and_follows_writes(app, as_role, infra_map, make_ci, relate):
    admin = as_role("admin")
    admin.post("/api/v1/impact", json={"failed": ["host:lonely"]})
    with count_queries(app) as statements:
        body = admin.post("/api/v1/impact", json={"failed": ["host:lonely"]}).json
    assert not any("FROM relations" in s for s in statements), statements
    assert "application:new" not in down(body)
    new = make_ci("application:new")
    relate(new, "hosted_on", services.resolve_ci("server:phys", SYSTEM))
    body = admin.post("/api/v1/impact", json={"failed": ["host:lonely"]}).json
    assert "application:new" in down(body)


# -- SPOF -----------------------------------------------------------------------------------


@covers("GET /api/v1/cmdb/spof")
def test_spof_lists_the_planted_spof_not_the_redundant_hosts(as_role, infra_map, tenant_a):
    admin = as_role("admin")
    resp = admin.get("/api/v1/cmdb/spof?limit=1000")
    assert_status(resp, 200)
    entries = {e["ci"]: e for e in resp.json["results"]}
    assert "host:hv-1" not in entries
    assert entries["host:lonely"]["applications"] == ["application:courrier"]
    assert entries["host:lonely"]["score"] == 1
    assert entries["site:main"]["score"] == 4  # gf × 2 tenants, rh, courrier
    assert resp.json["results"][0]["ci"] in ("site:main", "cluster:hc1")
    tech = as_role("technician", tenants=[tenant_a])
    mine = {e["ci"]: e for e in tech.get("/api/v1/cmdb/spof?limit=1000").json["results"]}
    assert mine["site:main"]["tenants"] == ["tenant-a"]
    assert mine["site:main"]["other_tenants"] == 1
    assert mine["site:main"]["score"] == 4
    hosts = admin.get("/api/v1/cmdb/spof?kind=host").json
    assert [e["ci"] for e in hosts["results"]] == ["host:lonely"]


def test_spof_is_read_from_the_stored_analysis(as_role, infra_map):
    assert analysis.refresh_analyses() is True
    assert analysis.refresh_analyses() is False  # same graph: nothing to do
    stored = _db.session.get(CmdbAnalysis, "spof")
    assert stored.result["host:lonely"] == ["application:courrier"]
    analysis._CACHE.clear()
    body = as_role("admin").get("/api/v1/cmdb/spof?limit=1000").json
    assert "host:lonely" in {e["ci"] for e in body["results"]}


def test_spof_pages(as_role, infra_map):
    admin = as_role("admin")
    first = admin.get("/api/v1/cmdb/spof?limit=2").json
    assert len(first["results"]) == 2 and first["next"] and first["previous"] is None
    second = admin.get(first["next"]).json
    assert second["results"][0] != first["results"][0]


# -- graph ----------------------------------------------------------------------------------


@covers("GET /api/v1/cis/<ci_id>/graph")
def test_graph_json_and_isolation(as_role, infra_map, tenant_a):
    tech = as_role("technician", tenants=[tenant_a])
    lonely = infra_map["lonely"]
    resp = tech.get(f"/api/v1/cis/{lonely.id}/graph?depth=1&direction=up")
    assert_status(resp, 200)
    keys = {n["key"] for n in resp.json["nodes"]}
    assert keys == {"host:lonely", "server:phys"}  # the tenant-B server is hidden
    assert resp.json["edges"] == [
        {"source": "server:phys", "target": "host:lonely", "type": "runs_on"}
    ]
    down_ = tech.get(f"/api/v1/cis/{lonely.id}/graph?depth=1&direction=down").json
    assert {n["key"] for n in down_["nodes"]} == {"host:lonely", "site:main"}


@pytest.mark.parametrize(
    "fmt,mimetype,marker",
    [
        ("dot", "text/vnd.graphviz", "digraph cmdb"),
        ("mermaid", "text/vnd.mermaid", "flowchart BT"),
        ("svg", "image/svg+xml", "<svg"),
    ],
)
def test_graph_renderings(as_role, infra_map, fmt, mimetype, marker):
    cluster = infra_map["cluster"]
    resp = as_role("admin").get(f"/api/v1/cis/{cluster.id}/graph?format={fmt}")
    assert_status(resp, 200)
    assert resp.mimetype == mimetype
    text = resp.get_data(as_text=True)
    assert marker in text and "host:hv-1" in text


def test_svg_is_well_formed_xml(as_role, infra_map):
    import xml.etree.ElementTree as ET

    site = infra_map["site"]
    text = (
        as_role("admin")
        .get(f"/api/v1/cis/{site.id}/graph?format=svg&depth=3")
        .get_data(as_text=True)
    )
    root = ET.fromstring(text)  # noqa: S314 - our own output
    assert root.tag.endswith("svg")
    assert len(root.findall(".//{http://www.w3.org/2000/svg}rect")) > 10


def test_bad_graph_parameters_are_400(as_role, infra_map):
    admin = as_role("admin")
    cid = infra_map["site"].id
    for query in ("format=png", "direction=sideways", "depth=11", "depth=-1"):
        assert_problem(admin.get(f"/api/v1/cis/{cid}/graph?{query}"), 400)


def test_the_refresh_job_is_registered_and_stores_the_spof_list(app, infra_map):
    from config.jobs import registry

    job = registry()["cmdb.refresh_analyses"]
    job.func()
    assert _db.session.get(CmdbAnalysis, "spof").graph_token == analysis.current_graph().token
