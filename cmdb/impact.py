"""Impact analysis over the CMDB graph: pure functions over plain rows and networkx.

The graph is a ``networkx.DiGraph`` whose nodes are CI ids and whose edges are relations
``source → target`` with their ``type``. Semantics (API.md §2, §5):

- for ``runs_on``, ``located_in``, ``depends_on`` and ``hosted_on`` the failure of the
  target makes the source fail (a server fails with its host, a host with its site);
- ``member_of`` joins a member to its cluster: a cluster fails only when fewer than its
  ``min_healthy`` members are up, and is *degraded* when it lost members but still has
  enough; a cluster's failure does not fail its members;
- ``planned`` and ``retired`` CIs carry no load: they neither fail nor count as members;
- an application fails its tenants (usage links).

The module takes plain rows in and gives plain data out; no Flask, no database.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

__all__ = [
    "CmdbGraph",
    "Impact",
    "NodeInfo",
    "analyse",
    "build_graph",
    "impact_document",
    "neighbourhood",
    "single_points_of_failure",
    "spof_document",
    "survival_sets",
]

MEMBER_OF = "member_of"
PROPAGATING = frozenset({"runs_on", "located_in", "depends_on", "hosted_on"})
INACTIVE = frozenset({"planned", "retired"})
APPLICATION = "application"

# One read-only attribute dict per relation type, shared by every edge of that type: the
# graph then costs less memory than networkx's own build (one fresh dict per edge).
_EDGE_DATA: dict[str, dict[str, str]] = {}


def _edge_data(rel_type: str) -> dict[str, str]:
    data = _EDGE_DATA.get(rel_type)
    if data is None:
        data = _EDGE_DATA[rel_type] = {"type": rel_type}
    return data


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What the analysis needs to know about one CI."""

    key: str
    kind: str
    name: str
    status: str
    tenant_id: int | None
    min_healthy: int = 1


@dataclass
class CmdbGraph:
    """The CMDB as a graph, plus per-CI facts and who uses which application."""

    g: nx.DiGraph
    info: dict[int, NodeInfo]
    ids: dict[str, int]
    # application id → [(tenant id, tenant code)]
    users: dict[int, list[tuple[int, str]]]
    # cluster id → number of live members
    live_members: dict[int, int]
    token: str = ""

    def is_live(self, node: int) -> bool:
        return self.info[node].status not in INACTIVE

    def key(self, node: int) -> str:
        return self.info[node].key

    def threshold(self, cluster: int) -> int:
        """How many live members must fail for the cluster to fail (at least 1)."""
        info = self.info[cluster]
        return max(1, self.live_members.get(cluster, 0) - info.min_healthy + 1)


def build_graph(
    ci_rows: Iterable[Sequence[Any]],
    relation_rows: Iterable[Sequence[Any]],
    usage_rows: Iterable[Sequence[Any]] = (),
    *,
    token: str = "",
) -> CmdbGraph:
    """Build the graph from plain rows.

    ``ci_rows``: ``(id, kind, code, name, status, tenant_id, min_healthy)``;
    ``relation_rows``: ``(source_id, target_id, type)``;
    ``usage_rows``: ``(application_id, tenant_id, tenant_code)``.
    Enum values may be given as strings or ``str`` enums.
    """
    info: dict[int, NodeInfo] = {}
    ids: dict[str, int] = {}
    succ: dict[int, dict[int, dict[str, str]]] = {}
    pred: dict[int, dict[int, dict[str, str]]] = {}
    nodes: dict[int, dict[str, Any]] = {}
    for row in ci_rows:
        node, kind, code, name, status, tenant_id, min_healthy = row[:7]
        kind, status = str(kind), str(status)
        key = f"{kind}:{code}"
        info[node] = NodeInfo(key, kind, name, status, tenant_id, int(min_healthy or 1))
        ids[key] = node
        succ[node] = {}
        pred[node] = {}
        nodes[node] = {}
    live_members: dict[int, int] = {}
    for source, target, rel_type in relation_rows:
        rel_type = str(rel_type)
        previous = succ[source].get(target)
        if previous is not None:
            # Two relations of different types between the same CIs: one edge, both types
            # (both propagate: member_of plus another type would be a refused cycle).
            rel_type = ",".join(sorted(set(previous["type"].split(",")) | {rel_type}))
        data = _edge_data(rel_type)
        succ[source][target] = data
        pred[target][source] = data
        if rel_type == MEMBER_OF and info[source].status not in INACTIVE:
            live_members[target] = live_members.get(target, 0) + 1
    # Fill networkx's own adjacency structures directly (the public add_edges_from does
    # the same with a fresh attribute dict per edge and per-call checks); the result is
    # an ordinary DiGraph (tests compare it with networkx's build).
    g = nx.DiGraph()
    g._node = nodes  # noqa: SLF001
    g._adj = succ  # noqa: SLF001  (sets _succ too)
    g._pred = pred  # noqa: SLF001
    users: dict[int, list[tuple[int, str]]] = {}
    for app, tenant_id, tenant_code in usage_rows:
        users.setdefault(app, []).append((tenant_id, tenant_code))
    for lst in users.values():
        lst.sort(key=lambda t: t[1])
    return CmdbGraph(g, info, ids, users, live_members, token)


# -- propagation ----------------------------------------------------------------------------


@dataclass
class Impact:
    """The outcome of failing some CIs.

    ``down`` maps each CI that stops (the failed ones excluded) to the down CIs that
    directly caused it; ``degraded`` maps clusters that lost members but stay up to
    ``(members_down, live_members, min_healthy)``; ``parent`` is the first cause of each
    down CI (to rebuild one path from a failed CI); ``level`` the hop count from it.
    """

    failed: list[int]
    down: dict[int, list[int]] = field(default_factory=dict)
    degraded: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    parent: dict[int, int] = field(default_factory=dict)
    level: dict[int, int] = field(default_factory=dict)

    def down_applications(self, graph: CmdbGraph) -> list[int]:
        return [n for n in self.down if graph.info[n].kind == APPLICATION] + [
            n for n in self.failed if graph.info[n].kind == APPLICATION
        ]

    def path_to(self, node: int) -> list[int]:
        path = [node]
        while path[-1] in self.parent:
            path.append(self.parent[path[-1]])
        return path[::-1]


def analyse(graph: CmdbGraph, failed: Iterable[int], *, depth: int | None = None) -> Impact:
    """Fail ``failed`` at once and propagate (breadth-first, each edge looked at once).

    ``depth`` limits the propagation to that many relation hops from the failed CIs
    (None: everything that fails). Unknown ids raise KeyError.
    """
    info = graph.info
    pred = graph.g._pred  # noqa: SLF001 - read-only use of networkx's adjacency
    succ = graph.g._succ  # noqa: SLF001
    failed_list = list(dict.fromkeys(failed))
    for node in failed_list:
        if node not in info:
            raise KeyError(node)
    impact = Impact(failed=failed_list)
    down = impact.down
    parent = impact.parent
    level = impact.level
    is_down: set[int] = set(failed_list)
    members_down: dict[int, list[int]] = {}
    queue: deque[int] = deque()
    for node in failed_list:
        level[node] = 0
        queue.append(node)

    def fail(node: int, cause: int, at: int) -> None:
        is_down.add(node)
        down[node] = [cause]
        parent[node] = cause
        level[node] = at
        queue.append(node)

    while queue:
        node = queue.popleft()
        at = level[node]
        if depth is not None and at >= depth:
            continue
        if info[node].status in INACTIVE:
            continue  # carries no load: nothing depends on it in practice
        for source, data in pred[node].items():
            if data["type"] == MEMBER_OF or info[source].status in INACTIVE:
                continue
            if source in is_down:
                causes = down.get(source)
                if causes is not None and node not in causes:
                    causes.append(node)
                continue
            fail(source, node, at + 1)
        for target, data in succ[node].items():
            if data["type"] != MEMBER_OF or info[target].status in INACTIVE:
                continue
            lost = members_down.setdefault(target, [])
            lost.append(node)
            if target in is_down:
                causes = down.get(target)
                if causes is not None and node not in causes:
                    causes.append(node)
            elif len(lost) >= graph.threshold(target):
                fail(target, node, at + 1)
                down[target] = list(lost)
    for cluster, lost in members_down.items():
        if cluster not in is_down:
            impact.degraded[cluster] = (
                len(lost),
                graph.live_members.get(cluster, 0),
                info[cluster].min_healthy,
            )
    return impact


def impact_document(
    graph: CmdbGraph,
    impact: Impact,
    *,
    visible_tenants: frozenset[int] | None = None,
    overcommitted: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The API.md §5 answer: failed, down, degraded, tenants, paths (and other_tenants).

    ``visible_tenants`` (None = all) hides CIs of other tenants and lists the other
    tenants only as a count (API.md §4).
    """
    info = graph.info

    def visible(node: int) -> bool:
        tenant = info[node].tenant_id
        return visible_tenants is None or tenant is None or tenant in visible_tenants

    def key(node: int) -> str:
        return info[node].key if visible(node) else "(hidden)"

    down = []
    hidden = 0
    for node in sorted(impact.down, key=lambda n: info[n].key):
        if not visible(node):
            hidden += 1
            continue
        down.append(
            {
                "ci": info[node].key,
                "kind": info[node].kind,
                "because": sorted({key(c) for c in impact.down[node]}),
            }
        )
    degraded = [
        {
            "ci": info[node].key,
            "kind": info[node].kind,
            "members_down": lost,
            "members": members,
            "min_healthy": min_healthy,
        }
        for node, (lost, members, min_healthy) in sorted(
            impact.degraded.items(), key=lambda item: info[item[0]].key
        )
        if visible(node)
    ]
    tenants: dict[str, list[str]] = {}
    other_tenants: set[int] = set()
    apps = impact.down_applications(graph)
    for app in apps:
        for tenant_id, code in graph.users.get(app, ()):
            if visible_tenants is None or tenant_id in visible_tenants:
                tenants.setdefault(code, []).append(info[app].key)
            else:
                other_tenants.add(tenant_id)
    paths = {
        info[app].key: [[key(n) for n in impact.path_to(app)]]
        for app in sorted(impact.down, key=lambda n: info[n].key)
        if info[app].kind == APPLICATION and visible(app)
    }
    doc: dict[str, Any] = {
        "failed": [info[n].key for n in impact.failed],
        "down": down,
        "degraded": degraded,
        "tenants": [
            {"code": code, "applications": sorted(apps_)} for code, apps_ in sorted(tenants.items())
        ],
        "paths": paths,
        "other_tenants": len(other_tenants),
    }
    if hidden:
        doc["other_cis"] = hidden
    if overcommitted:
        doc["overcommitted"] = [dict(o) for o in overcommitted]
    return doc


# -- single points of failure ---------------------------------------------------------------


def _dependency_order(graph: CmdbGraph) -> tuple[list[int], dict[int, int]]:
    """Live CIs ordered so that each comes after everything it depends on (its
    propagating targets and, for a cluster, its members); plus, for each CI, how many
    CIs depend on it (to free memory early)."""
    info = graph.info
    pred = graph.g._pred  # noqa: SLF001
    succ = graph.g._succ  # noqa: SLF001
    waiting: dict[int, int] = {}
    ready: deque[int] = deque()
    dependents: dict[int, int] = {}
    for node, node_info in info.items():
        if node_info.status in INACTIVE:
            continue
        count = 0
        for target, data in succ[node].items():
            if data["type"] != MEMBER_OF and info[target].status not in INACTIVE:
                count += 1
        for source, data in pred[node].items():
            if data["type"] == MEMBER_OF and info[source].status not in INACTIVE:
                count += 1
        waiting[node] = count
        if count == 0:
            ready.append(node)
    order: list[int] = []
    while ready:
        node = ready.popleft()
        order.append(node)
        users = 0
        for source, data in pred[node].items():
            if data["type"] != MEMBER_OF and source in waiting:
                users += 1
                waiting[source] -= 1
                if waiting[source] == 0:
                    ready.append(source)
        for target, data in succ[node].items():
            if data["type"] == MEMBER_OF and target in waiting:
                users += 1
                waiting[target] -= 1
                if waiting[target] == 0:
                    ready.append(target)
        dependents[node] = users
    if len(order) != len(waiting):  # pragma: no cover - the services refuse cycles
        raise ValueError("the dependency graph has a cycle")
    return order, dependents


def survival_sets(graph: CmdbGraph, keep: Iterable[int] = ()) -> dict[int, frozenset[int]]:
    """For each CI in ``keep`` (default: every application), the set of CIs whose single
    failure makes it fail (itself included).

    Computed bottom-up once for the whole graph: a CI fails with any of its propagating
    targets, and a cluster fails with any CI that fails at least ``threshold`` of its
    members. Sets are freed as soon as nothing above needs them.
    """
    info = graph.info
    pred = graph.g._pred  # noqa: SLF001
    succ = graph.g._succ  # noqa: SLF001
    keep_set = set(keep) if keep else {n for n, i in info.items() if i.kind == APPLICATION}
    order, dependents = _dependency_order(graph)
    sets: dict[int, frozenset[int] | set[int]] = {}
    remaining = dict(dependents)
    result: dict[int, frozenset[int]] = {}

    def release(node: int) -> None:
        remaining[node] -= 1
        if remaining[node] == 0 and node not in keep_set:
            sets.pop(node, None)

    for node in order:
        own: set[int] = {node}
        used: list[int] = []
        for target, data in succ[node].items():
            if data["type"] != MEMBER_OF and target in sets:
                own |= sets[target]
                used.append(target)
        members = [
            source
            for source, data in pred[node].items()
            if data["type"] == MEMBER_OF and source in sets
        ]
        if members:
            needed = graph.threshold(node)
            if needed == 1:
                for member in members:
                    own |= sets[member]
            elif needed <= len(members):
                counts: Counter[int] = Counter()
                for member in members:
                    counts.update(sets[member])
                own.update(x for x, c in counts.items() if c >= needed)
            used.extend(members)
        sets[node] = own
        if node in keep_set:
            result[node] = frozenset(own)
        for dep in used:
            release(dep)
        if remaining.get(node, 0) == 0 and node not in keep_set:
            sets.pop(node, None)
    return result


def single_points_of_failure(graph: CmdbGraph) -> dict[int, list[int]]:
    """``{ci: [applications]}``: every CI but applications whose single failure makes at
    least one application fail."""
    info = graph.info
    spof: dict[int, list[int]] = {}
    for app, fails_with in survival_sets(graph).items():
        for node in fails_with:
            if node != app and info[node].kind != APPLICATION:
                spof.setdefault(node, []).append(app)
    return spof


def spof_document(
    graph: CmdbGraph,
    spof: Mapping[int, Sequence[int]],
    *,
    visible_tenants: frozenset[int] | None = None,
) -> list[dict[str, Any]]:
    """API.md §5 SPOF entries, most damaging first: score = (application, tenant) pairs
    lost (all tenants, hidden ones included in the score only)."""
    info = graph.info

    def visible(node: int) -> bool:
        tenant = info[node].tenant_id
        return visible_tenants is None or tenant is None or tenant in visible_tenants

    entries = []
    for node, apps in spof.items():
        if not visible(node):
            continue
        tenants: set[str] = set()
        others: set[int] = set()
        score = 0
        for app in apps:
            for tenant_id, code in graph.users.get(app, ()):
                score += 1
                if visible_tenants is None or tenant_id in visible_tenants:
                    tenants.add(code)
                else:
                    others.add(tenant_id)
        app_keys = sorted(info[a].key for a in apps if visible(a))
        entry: dict[str, Any] = {
            "ci": info[node].key,
            "kind": info[node].kind,
            "applications": app_keys,
            "tenants": sorted(tenants),
            "score": score,
        }
        if others:
            entry["other_tenants"] = len(others)
        hidden_apps = len(apps) - len(app_keys)
        if hidden_apps:
            entry["other_applications"] = hidden_apps
        entries.append((-score, -len(apps), info[node].key, entry))
    entries.sort(key=lambda e: e[:3])
    return [e[3] for e in entries]


# -- neighbourhood --------------------------------------------------------------------------


def neighbourhood(
    graph: CmdbGraph, center: int, *, depth: int = 2, direction: str = "both"
) -> tuple[list[int], list[tuple[int, int, str]]]:
    """CIs within ``depth`` relation hops of ``center`` and the relations among them.

    ``down`` follows what the CI depends on (towards targets), ``up`` what depends on it
    (towards sources), ``both`` both (API.md §5)."""
    succ = graph.g._succ  # noqa: SLF001
    pred = graph.g._pred  # noqa: SLF001
    seen = {center: 0}
    edges: set[tuple[int, int, str]] = set()
    frontier = [center]
    for hop in range(depth):
        nxt = []
        for node in frontier:
            if direction in ("down", "both"):
                for target, data in succ[node].items():
                    edges.update((node, target, t) for t in data["type"].split(","))
                    if target not in seen:
                        seen[target] = hop + 1
                        nxt.append(target)
            if direction in ("up", "both"):
                for source, data in pred[node].items():
                    edges.update((source, node, t) for t in data["type"].split(","))
                    if source not in seen:
                        seen[source] = hop + 1
                        nxt.append(source)
        frontier = nxt
    return list(seen), sorted(edges)
