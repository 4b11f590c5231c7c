"""Fragility findings (pure) and their endpoints, plus the GDPR register."""

from __future__ import annotations

import pytest

from cmdb.findings import (
    Capacity,
    capacity_after,
    capacity_findings,
    double_points_of_failure,
    false_redundancy,
    hygiene_findings,
)
from tests.api_mixins import covers
from tests.cmdb.test_impact import T1, T2, make_graph
from tests.support import assert_problem, assert_status


def pair_cluster(site_of, *, min_healthy=1, app_users=(T1,)):
    """Cluster c of hosts placed on sites by ``site_of`` {host: site}; server s on c; app."""
    sites = sorted(set(site_of.values()))
    cis = [*(f"site:{s}" for s in sites), ("cluster:c", {"min_healthy": min_healthy})]
    cis += [f"host:{h}" for h in site_of] + ["server:s", "application:a"]
    rels = [(f"host:{h}", "member_of", "cluster:c") for h in site_of]
    rels += [(f"host:{h}", "located_in", f"site:{s}") for h, s in site_of.items()]
    rels += [("server:s", "runs_on", "cluster:c"), ("application:a", "hosted_on", "server:s")]
    return make_graph(cis, rels, {"application:a": list(app_users)})


def test_cluster_whose_members_all_sit_on_one_site_is_false_redundancy():
    graph = pair_cluster({"h1": "main", "h2": "main"})
    [finding] = false_redundancy(graph)
    assert finding["ci"] == "cluster:c" and finding["cis"] == ["site:main"]
    assert "site site:main" in finding["detail"]


def test_stretched_cluster_is_not_flagged():
    assert false_redundancy(pair_cluster({"h1": "main", "h2": "pa4"})) == []


def test_a_cluster_without_slack_claims_no_redundancy():
    graph = pair_cluster({"h1": "main", "h2": "main"}, min_healthy=2)
    assert false_redundancy(graph) == []


def test_redundant_servers_on_the_same_host_are_false_redundancy():
    cis = ["cluster:farm", "server:w1", "server:w2", "host:h", "application:a"]
    rels = [
        ("server:w1", "member_of", "cluster:farm"),
        ("server:w2", "member_of", "cluster:farm"),
        ("server:w1", "runs_on", "host:h"),
        ("server:w2", "runs_on", "host:h"),
        ("application:a", "hosted_on", "cluster:farm"),
    ]
    [finding] = false_redundancy(make_graph(cis, rels))
    assert finding["cis"] == ["host:h"] and "run on host:h" in finding["detail"]


def test_double_points_of_failure_of_a_three_host_cluster():
    graph = pair_cluster(
        {"h1": "main", "h2": "main", "h3": "pa4"}, min_healthy=2, app_users=(T1, T2)
    )
    found, truncated = double_points_of_failure(graph)
    assert not truncated
    pairs = {tuple(f["cis"]) for f in found}
    # site:main alone takes two hosts: a single point, never part of a "double" one.
    assert pairs == {
        ("host:h1", "host:h2"),
        ("host:h1", "host:h3"),
        ("host:h2", "host:h3"),
        ("host:h1", "site:pa4"),
        ("host:h2", "site:pa4"),
    }
    assert all(f["applications"] == ["application:a"] and f["score"] == 2 for f in found)


def test_double_points_are_capped():
    graph = pair_cluster({f"h{i}": "main" for i in range(6)}, min_healthy=5)
    found, truncated = double_points_of_failure(graph, max_pairs=3)
    assert truncated and len(found) <= 3


def capacity(graph, hosts, servers):
    cpu = {graph.ids[f"host:{h}"]: c for h, (c, _m) in hosts.items()}
    mem = {graph.ids[f"host:{h}"]: m for h, (_c, m) in hosts.items()}
    for s, (c, m) in servers.items():
        cpu[graph.ids[f"server:{s}"]] = c
        mem[graph.ids[f"server:{s}"]] = m
    return Capacity(cpu, mem)


def test_cluster_up_but_overcommitted_after_a_host_failure():
    graph = pair_cluster({"h1": "a", "h2": "b", "h3": "c"}, min_healthy=2)
    cap = capacity(graph, {h: (16, 128) for h in ("h1", "h2", "h3")}, {"s": (140, 200)})
    [finding] = capacity_findings(graph, cap, cpu_ratio=4.0, memory_ratio=1.0)
    assert finding["kind"] == "overcommitted_on_host_failure"
    assert finding["resources"] == [
        {"ci": "cluster:c", "resource": "cpu", "demand": 140.0, "capacity": 128.0}
    ]
    fits = capacity(graph, {h: (16, 128) for h in ("h1", "h2", "h3")}, {"s": (100, 200)})
    assert capacity_findings(graph, fits, cpu_ratio=4.0, memory_ratio=1.0) == []


def test_cluster_overcommitted_with_every_member_up():
    graph = pair_cluster({"h1": "a", "h2": "b"})
    cap = capacity(graph, {"h1": (8, 64), "h2": (8, 64)}, {"s": (8, 200)})
    [finding] = capacity_findings(graph, cap, cpu_ratio=4.0, memory_ratio=1.0)
    assert finding["kind"] == "overcommitted"
    assert [r["resource"] for r in finding["resources"]] == ["memory"]


def test_capacity_unknown_means_no_finding():
    graph = pair_cluster({"h1": "a", "h2": "b"})
    cluster = graph.ids["cluster:c"]
    assert capacity_after(graph, cluster, [], Capacity({}, {}), cpu_ratio=4, memory_ratio=1) == []


def test_hygiene_findings():
    cis = [
        ("cluster:thin", {"min_healthy": 3}),
        "host:h",
        "application:floating",
        "application:used",
        "server:s",
    ]
    rels = [
        ("host:h", "member_of", "cluster:thin"),
        ("application:used", "hosted_on", "server:s"),
    ]
    graph = make_graph(cis, rels, {"application:used": [T1]})
    kinds = {(f["kind"], f["ci"]) for f in hygiene_findings(graph)}
    assert kinds == {
        ("below_min_healthy", "cluster:thin"),
        ("application_not_hosted", "application:floating"),
        ("application_unused", "application:floating"),
    }


# -- through the API ------------------------------------------------------------------------


@pytest.fixture()
def fragile(make_ci, relate, use, tenant_a, tenant_b):
    main, pa4 = make_ci("site:main"), make_ci("site:pa4")
    cluster = make_ci("cluster:hc", min_healthy=2)
    for name, site in (("h1", main), ("h2", main), ("h3", pa4)):
        host = make_ci(f"host:{name}", cpu_cores=16, memory_gb=128)
        relate(host, "member_of", cluster)
        relate(host, "located_in", site)
    srv = make_ci("server:s", vcpus=140, memory_gb=100)
    relate(srv, "runs_on", cluster)
    app = make_ci("application:gf", domain="Finances", gdpr={"purpose": "Paie", "sensitive": True})
    relate(app, "hosted_on", srv)
    db = make_ci("database:gf", engine="oracle", size_gb=100)
    relate(db, "hosted_on", srv)
    relate(app, "depends_on", db)
    use(app, tenant_a, confidence="likely")
    use(app, tenant_b)
    # Tenant B's "redundant" pair of servers runs on one host.
    farm = make_ci("cluster:farm-b", tenant_b)
    solo = make_ci("host:solo")
    for n in (1, 2):
        w = make_ci(f"server:w{n}-b", tenant_b)
        relate(w, "member_of", farm)
        relate(w, "runs_on", solo)
    return cluster


@covers("GET /api/v1/cmdb/findings")
def test_findings_endpoint(as_role, fragile, tenant_a):
    admin = as_role("admin")
    resp = admin.get("/api/v1/cmdb/findings?limit=1000")
    assert_status(resp, 200)
    kinds = {(f["kind"], f["ci"]) for f in resp.json["results"]}
    assert ("false_redundancy", "cluster:farm-b") in kinds
    assert ("overcommitted_on_host_failure", "cluster:hc") in kinds
    assert ("double_point_of_failure", "host:h1") in kinds
    tech = as_role("technician", tenants=[tenant_a])
    mine = {f["ci"] for f in tech.get("/api/v1/cmdb/findings?limit=1000").json["results"]}
    assert "cluster:farm-b" not in mine and "cluster:hc" in mine
    only = admin.get("/api/v1/cmdb/findings?kind=false_redundancy").json
    assert {f["kind"] for f in only["results"]} == {"false_redundancy"}
    assert_problem(admin.get("/api/v1/cmdb/findings?kind=nonsense"), 400)


def test_impact_reports_an_overcommitted_surviving_cluster(as_role, fragile):
    body = as_role("admin").post("/api/v1/impact", json={"failed": ["host:h3"]}).json
    assert body["down"] == []
    assert body["overcommitted"] == [
        {"ci": "cluster:hc", "resource": "cpu", "demand": 140.0, "capacity": 128.0}
    ]


@covers("GET /api/v1/cmdb/gdpr-register")
def test_gdpr_register(as_role, fragile, tenant_a, tenant_b):
    tech = as_role("technician", tenants=[tenant_a])
    resp = tech.get("/api/v1/cmdb/gdpr-register?tenant=tenant-a")
    assert_status(resp, 200)
    [activity] = resp.json["activities"]
    assert activity["application"] == "application:gf"
    assert activity["processing"]["purpose"] == "Paie" and activity["processing"]["sensitive"]
    assert activity["usage_confidence"] == "likely"
    assert activity["hosting"]["sites"] == ["site:main", "site:pa4"]
    assert activity["hosting"]["databases"] == ["database:gf"]
    assert activity["hosting"]["hosts"] == ["host:h1", "host:h2", "host:h3"]
    assert resp.json["documented"] == 1 and resp.json["undocumented"] == 0
    assert_problem(tech.get("/api/v1/cmdb/gdpr-register?tenant=tenant-b"), 404)
    assert_problem(tech.get("/api/v1/cmdb/gdpr-register"), 400)
