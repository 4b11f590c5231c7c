"""Impact analysis, pure: hand-checked scenarios on small graphs (no database)."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from cmdb.impact import (
    analyse,
    build_graph,
    impact_document,
    neighbourhood,
    single_points_of_failure,
    spof_document,
)

T1, T2, T3 = (1, "ville-a"), (2, "ville-b"), (3, "ville-c")


def make_graph(cis, relations, users=None):
    """``cis``: keys, or (key, {"min_healthy": n, "status": s, "tenant": id});
    ``relations``: (source key, type, target key); ``users``: {app key: [(id, code)]}."""
    rows, ids = [], {}
    for n, item in enumerate(cis, start=1):
        key, opts = (item, {}) if isinstance(item, str) else item
        kind, code = key.split(":")
        ids[key] = n
        rows.append(
            (
                n,
                kind,
                code,
                code.upper(),
                opts.get("status", "active"),
                opts.get("tenant"),
                opts.get("min_healthy"),
            )
        )
    rels = [(ids[s], ids[t], ty) for s, ty, t in relations]
    usage = [(ids[app], tid, code) for app, ts in (users or {}).items() for tid, code in ts]
    return build_graph(rows, rels, usage)


def fail(graph, *keys, depth=None, visible=None):
    impact = analyse(graph, [graph.ids[k] for k in keys], depth=depth)
    return impact_document(graph, impact, visible_tenants=visible)


def down_keys(doc):
    return sorted(d["ci"] for d in doc["down"])


# A 3-host hyperconverged cluster (min_healthy 2) on one site, two servers on it, two
# applications (one with a database), three tenants.
CLUSTER = (
    [
        "site:main",
        "host:h1",
        "host:h2",
        "host:h3",
        ("cluster:c1", {"min_healthy": 2}),
        "server:s1",
        "server:s2",
        "database:d1",
        "application:a1",
        "application:a2",
    ],
    [
        ("host:h1", "member_of", "cluster:c1"),
        ("host:h2", "member_of", "cluster:c1"),
        ("host:h3", "member_of", "cluster:c1"),
        ("host:h1", "located_in", "site:main"),
        ("host:h2", "located_in", "site:main"),
        ("host:h3", "located_in", "site:main"),
        ("server:s1", "runs_on", "cluster:c1"),
        ("server:s2", "runs_on", "cluster:c1"),
        ("database:d1", "hosted_on", "server:s2"),
        ("application:a1", "hosted_on", "server:s1"),
        ("application:a2", "hosted_on", "server:s2"),
        ("application:a2", "depends_on", "database:d1"),
    ],
    {"application:a1": [T1, T2], "application:a2": [T2]},
)


@pytest.fixture()
def cluster():
    return make_graph(*CLUSTER)


def test_one_host_of_three_with_min_healthy_two_only_degrades(cluster):
    doc = fail(cluster, "host:h1")
    assert doc["failed"] == ["host:h1"]
    assert doc["down"] == []
    assert doc["degraded"] == [
        {"ci": "cluster:c1", "kind": "cluster", "members_down": 1, "members": 3, "min_healthy": 2}
    ]
    assert doc["tenants"] == [] and doc["paths"] == {} and doc["other_tenants"] == 0


def test_two_hosts_take_the_cluster_down_with_its_servers_and_applications(cluster):
    doc = fail(cluster, "host:h1", "host:h2")
    assert down_keys(doc) == [
        "application:a1",
        "application:a2",
        "cluster:c1",
        "database:d1",
        "server:s1",
        "server:s2",
    ]
    because = {d["ci"]: d["because"] for d in doc["down"]}
    assert because["cluster:c1"] == ["host:h1", "host:h2"]
    assert because["application:a2"] == ["database:d1", "server:s2"]
    assert doc["degraded"] == []
    assert doc["tenants"] == [
        {"code": "ville-a", "applications": ["application:a1"]},
        {"code": "ville-b", "applications": ["application:a1", "application:a2"]},
    ]
    assert doc["paths"]["application:a1"] == [
        ["host:h2", "cluster:c1", "server:s1", "application:a1"]
    ]


def test_the_cluster_does_not_take_its_hosts_down(cluster):
    doc = fail(cluster, "cluster:c1")
    assert "host:h1" not in down_keys(doc)
    assert "server:s1" in down_keys(doc)


def test_a_site_failure_fails_everything_located_in_it(cluster):
    doc = fail(cluster, "site:main")
    assert down_keys(doc) == sorted(
        ["host:h1", "host:h2", "host:h3", "cluster:c1", "server:s1", "server:s2"]
        + ["database:d1", "application:a1", "application:a2"]
    )
    assert {t["code"] for t in doc["tenants"]} == {"ville-a", "ville-b"}


def test_a_database_failure_stops_what_depends_on_it_not_its_server(cluster):
    doc = fail(cluster, "database:d1")
    assert down_keys(doc) == ["application:a2"]
    assert doc["tenants"] == [{"code": "ville-b", "applications": ["application:a2"]}]
    assert doc["paths"] == {"application:a2": [["database:d1", "application:a2"]]}


def test_several_failures_at_once_combine(cluster):
    doc = fail(cluster, "host:h3", "database:d1")
    assert down_keys(doc) == ["application:a2"]
    assert doc["degraded"][0]["members_down"] == 1
    doc = fail(cluster, "host:h3", "host:h1", "database:d1")
    assert "cluster:c1" in down_keys(doc)
    assert "database:d1" not in down_keys(doc)  # failed CIs are not repeated in down


def test_depth_limits_the_propagation(cluster):
    doc = fail(cluster, "server:s2", depth=1)
    assert down_keys(doc) == ["application:a2", "database:d1"]
    doc = fail(cluster, "site:main", depth=1)
    assert down_keys(doc) == ["host:h1", "host:h2", "host:h3"]
    doc = fail(cluster, "site:main", depth=2)
    assert "cluster:c1" in down_keys(doc) and "server:s1" not in down_keys(doc)


def test_a_stretched_cluster_survives_one_site():
    cis = [
        "site:main",
        "site:pa4",
        ("cluster:c", {"min_healthy": 2}),
        "host:m1",
        "host:m2",
        "host:p1",
        "host:p2",
        "server:s",
        "application:a",
    ]
    rels = [
        ("host:m1", "located_in", "site:main"),
        ("host:m2", "located_in", "site:main"),
        ("host:p1", "located_in", "site:pa4"),
        ("host:p2", "located_in", "site:pa4"),
        *[(f"host:{h}", "member_of", "cluster:c") for h in ("m1", "m2", "p1", "p2")],
        ("server:s", "runs_on", "cluster:c"),
        ("application:a", "hosted_on", "server:s"),
    ]
    graph = make_graph(cis, rels, {"application:a": [T1]})
    doc = fail(graph, "site:main")
    assert down_keys(doc) == ["host:m1", "host:m2"]
    assert doc["degraded"][0]["ci"] == "cluster:c"
    assert doc["tenants"] == []
    doc = fail(graph, "site:main", "host:p1")
    assert "application:a" in down_keys(doc)


def test_retired_and_planned_cis_carry_no_load():
    cis = [
        ("cluster:c", {"min_healthy": 2}),
        "host:h1",
        "host:h2",
        ("host:h3", {"status": "retired"}),
        ("server:old", {"status": "retired"}),
        ("application:new", {"status": "planned"}),
        "server:s",
    ]
    rels = [
        *[(f"host:{h}", "member_of", "cluster:c") for h in ("h1", "h2", "h3")],
        ("server:s", "runs_on", "cluster:c"),
        ("server:old", "runs_on", "cluster:c"),
        ("application:new", "hosted_on", "server:s"),
    ]
    graph = make_graph(cis, rels)
    doc = fail(graph, "host:h1")  # 2 live members, min_healthy 2: one loss is fatal
    assert down_keys(doc) == ["cluster:c", "server:s"]


def test_min_healthy_default_one_means_all_members_must_fail():
    cis = ["cluster:c", "host:h1", "host:h2", "server:s"]
    rels = [
        ("host:h1", "member_of", "cluster:c"),
        ("host:h2", "member_of", "cluster:c"),
        ("server:s", "runs_on", "cluster:c"),
    ]
    graph = make_graph(cis, rels)
    assert fail(graph, "host:h1")["down"] == []
    assert down_keys(fail(graph, "host:h1", "host:h2")) == ["cluster:c", "server:s"]


def test_tenant_bound_callers_see_other_tenants_only_as_counts(cluster):
    doc = fail(cluster, "host:h1", "host:h2", visible=frozenset({1}))
    assert doc["tenants"] == [{"code": "ville-a", "applications": ["application:a1"]}]
    assert doc["other_tenants"] == 1


def test_cis_of_hidden_tenants_are_counted_not_shown():
    cis = ["host:h", ("server:theirs", {"tenant": 2}), ("server:mine", {"tenant": 1})]
    rels = [("server:theirs", "runs_on", "host:h"), ("server:mine", "runs_on", "host:h")]
    doc = fail(make_graph(cis, rels), "host:h", visible=frozenset({1}))
    assert down_keys(doc) == ["server:mine"]
    assert doc["other_cis"] == 1


# -- single points of failure ---------------------------------------------------------------


def test_spof_ranks_by_score_then_key_and_spares_redundant_hosts(cluster):
    spof = single_points_of_failure(cluster)
    doc = spof_document(cluster, spof)
    keys = [e["ci"] for e in doc]
    # cluster and site both lose a1 (2 tenants) and a2 (1): score 3; then by key.
    assert keys == ["cluster:c1", "site:main", "server:s1", "database:d1", "server:s2"]
    assert [e["score"] for e in doc] == [3, 3, 2, 1, 1]
    assert doc[1] == {
        "ci": "site:main",
        "kind": "site",
        "applications": ["application:a1", "application:a2"],
        "tenants": ["ville-a", "ville-b"],
        "score": 3,
    }
    assert not any(k.startswith("host:") for k in keys)
    assert "cluster:c1" in keys and "database:d1" in keys
    assert all(not k.startswith("application:") for k in keys)


def test_a_planted_spof_is_found():
    cis = [
        ("cluster:c", {"min_healthy": 1}),
        "host:h1",
        "host:h2",
        "host:lonely",
        "server:clustered",
        "server:physical",
        "application:safe",
        "application:fragile",
    ]
    rels = [
        ("host:h1", "member_of", "cluster:c"),
        ("host:h2", "member_of", "cluster:c"),
        ("server:clustered", "runs_on", "cluster:c"),
        ("server:physical", "runs_on", "host:lonely"),
        ("application:safe", "hosted_on", "server:clustered"),
        ("application:fragile", "hosted_on", "server:physical"),
    ]
    graph = make_graph(cis, rels, {"application:fragile": [T1, T2, T3]})
    doc = spof_document(graph, single_points_of_failure(graph))
    assert [(e["ci"], e["score"]) for e in doc] == [
        ("host:lonely", 3),
        ("server:physical", 3),
        ("cluster:c", 0),
        ("server:clustered", 0),
    ]


def test_shared_cause_of_two_members_is_a_spof_of_the_cluster():
    # Both members of a min_healthy-1 pair run on the same host: the pair is not redundant.
    cis = ["cluster:farm", "server:w1", "server:w2", "host:h", "application:a"]
    rels = [
        ("server:w1", "member_of", "cluster:farm"),
        ("server:w2", "member_of", "cluster:farm"),
        ("server:w1", "runs_on", "host:h"),
        ("server:w2", "runs_on", "host:h"),
        ("application:a", "hosted_on", "cluster:farm"),
    ]
    graph = make_graph(cis, rels)
    spof = single_points_of_failure(graph)
    assert {graph.key(n) for n in spof} == {"host:h", "cluster:farm"}


def random_cmdb(seed: int):
    """A small random CMDB-shaped graph: sites, clusters with random min_healthy, hosts,
    servers on hosts or clusters, farms of servers, databases, applications."""
    rnd = random.Random(seed)
    cis, rels = [], []
    sites = [f"site:s{i}" for i in range(2)]
    cis += sites
    hosts = [f"host:h{i}" for i in range(8)]
    cis += hosts
    for h in hosts:
        rels.append((h, "located_in", rnd.choice(sites)))
    clusters = []
    for i in range(3):
        members = rnd.sample(hosts, rnd.randint(2, 4))
        key = f"cluster:c{i}"
        clusters.append(key)
        cis.append((key, {"min_healthy": rnd.randint(1, len(members))}))
        rels += [(m, "member_of", key) for m in members]
    servers = [f"server:v{i}" for i in range(12)]
    cis += servers
    for s in servers:
        rels.append((s, "runs_on", rnd.choice(clusters + hosts)))
    farm = "cluster:farm"
    cis.append((farm, {"min_healthy": 1}))
    rels += [(s, "member_of", farm) for s in rnd.sample(servers, 3)]
    dbs = [f"database:d{i}" for i in range(4)]
    cis += dbs
    for d in dbs:
        rels.append((d, "hosted_on", rnd.choice(servers)))
    replicas = ("cluster:replicas", {"min_healthy": rnd.randint(1, 2)})
    cis.append(replicas)
    rels += [(d, "member_of", "cluster:replicas") for d in dbs[:2]]
    apps = [f"application:a{i}" for i in range(8)]
    cis += apps
    for i, a in enumerate(apps):
        rels.append((a, "hosted_on", rnd.choice([*servers, farm])))
        if rnd.random() < 0.6:
            rels.append((a, "depends_on", rnd.choice([*dbs, "cluster:replicas"])))
        if i and rnd.random() < 0.4:
            rels.append((a, "depends_on", rnd.choice(apps[:i])))
    rels = list(dict.fromkeys(rels))
    users = {a: [T1] if rnd.random() < 0.5 else [T1, T2] for a in apps}
    return make_graph(cis, rels, users)


@pytest.mark.parametrize("seed", range(40))
def test_spof_matches_failing_every_ci_one_by_one(seed):
    graph = random_cmdb(seed)
    expected = {}
    for node, info in graph.info.items():
        if info.kind == "application":
            continue
        impact = analyse(graph, [node])
        apps = sorted(n for n in impact.down if graph.info[n].kind == "application")
        if apps:
            expected[node] = apps
    got = {node: sorted(apps) for node, apps in single_points_of_failure(graph).items()}
    assert got == expected


# -- the graph itself -----------------------------------------------------------------------


def test_build_graph_equals_networkx_own_build(cluster):
    reference = nx.DiGraph()
    reference.add_nodes_from(cluster.info)
    for s, t, data in cluster.g.edges(data=True):
        reference.add_edge(s, t, **data)
    assert nx.utils.graphs_equal(cluster.g, reference)
    assert cluster.g.number_of_edges() == len(CLUSTER[1])


def test_two_relation_types_between_the_same_cis_keep_both():
    graph = make_graph(
        ["application:a", "server:s"],
        [("application:a", "hosted_on", "server:s"), ("application:a", "depends_on", "server:s")],
    )
    _nodes, edges = neighbourhood(graph, graph.ids["application:a"], depth=1)
    assert sorted(e[2] for e in edges) == ["depends_on", "hosted_on"]


def test_neighbourhood_directions(cluster):
    s2 = cluster.ids["server:s2"]
    down, _ = neighbourhood(cluster, s2, depth=1, direction="down")
    assert {cluster.key(n) for n in down} == {"server:s2", "cluster:c1"}
    up, _ = neighbourhood(cluster, s2, depth=1, direction="up")
    assert {cluster.key(n) for n in up} == {"server:s2", "database:d1", "application:a2"}
    both, edges = neighbourhood(cluster, s2, depth=2)
    assert {cluster.key(n) for n in both} >= {"host:h1", "application:a2", "cluster:c1"}
    assert len(edges) == len(set(edges))


def test_unknown_failed_id_raises(cluster):
    with pytest.raises(KeyError):
        analyse(cluster, [999])
