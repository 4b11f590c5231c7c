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

import gc
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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
_EDGE_DATA: dict[str, dict[str, str]] = {
    t: {"type": t} for t in ("runs_on", "member_of", "located_in", "depends_on", "hosted_on")
}


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building big acyclic structures: the
    hundreds of thousands of dicts, lists and sets created here would otherwise trigger
    collections that traverse all of them again and again (it doubled the build time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
    """The CMDB as a graph, plus per-CI facts, who uses which application, and the
    propagation index the analyses walk (live CIs only, built with the graph)."""

    g: nx.DiGraph
    info: dict[int, NodeInfo]
    ids: dict[str, int]
    # application id → [(tenant id, tenant code)]
    users: dict[int, list[tuple[int, str]]]
    # cluster id → number of live members
    live_members: dict[int, int]
    token: str = ""
    # live CI → live CIs that fail when it fails (sources of its propagating relations)
    dependents: dict[int, list[int]] = field(default_factory=dict)
    # live CI → live clusters it is a member of
    clusters_of: dict[int, list[int]] = field(default_factory=dict)
    # live CI → how many live CIs it needs (propagating targets, plus members if a cluster)
    needs: dict[int, int] = field(default_factory=dict)

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
    with _no_gc():
        return _build_graph(ci_rows, relation_rows, usage_rows, token)


def _build_graph(
    ci_rows: Iterable[Sequence[Any]],
    relation_rows: Iterable[Sequence[Any]],
    usage_rows: Iterable[Sequence[Any]],
    token: str,
) -> CmdbGraph:
    info: dict[int, NodeInfo] = {}
    ids: dict[str, int] = {}
    live: set[int] = set()
    for node, kind, code, name, status, tenant_id, min_healthy in ci_rows:
        kind, status = str(kind), str(status)
        key = f"{kind}:{code}"
        info[node] = NodeInfo(key, kind, name, status, tenant_id, int(min_healthy or 1))
        ids[key] = node
        if status not in INACTIVE:
            live.add(node)
    succ: dict[int, dict[int, dict[str, str]]] = {n: {} for n in info}
    pred: dict[int, dict[int, dict[str, str]]] = {n: {} for n in info}
    dependents: dict[int, list[int]] = {n: [] for n in live}
    needs: dict[int, int] = dict.fromkeys(live, 0)
    clusters_of: dict[int, list[int]] = {}
    live_members: dict[int, int] = {}
    edge_data = _EDGE_DATA
    for source, target, rel_type in relation_rows:
        targets = succ[source]
        if target in targets:
            # Two relations of different types between the same CIs: one edge, both types
            # (both propagate: member_of plus another type would be a refused cycle).
            combined = set(targets[target]["type"].split(",")) | {str(rel_type)}
            data = _edge_data(",".join(sorted(combined)))
            targets[target] = data
            pred[target][source] = data
            continue
        data = edge_data.get(rel_type) or _edge_data(str(rel_type))
        targets[target] = data
        pred[target][source] = data
        if source in live and target in live:
            if rel_type == MEMBER_OF:
                clusters_of.setdefault(source, []).append(target)
                live_members[target] = live_members.get(target, 0) + 1
                needs[target] += 1
            else:
                dependents[target].append(source)
                needs[source] += 1
    # Fill networkx's own adjacency structures directly (the public add_edges_from does
    # the same with a fresh attribute dict per edge and per-call checks); the result is
    # an ordinary DiGraph (tests compare it with networkx's build).
    g = nx.DiGraph()
    g._node = {n: {} for n in info}  # noqa: SLF001
    g._adj = succ  # noqa: SLF001  (sets _succ too)
    g._pred = pred  # noqa: SLF001
    users: dict[int, list[tuple[int, str]]] = {}
    for app, tenant_id, tenant_code in usage_rows:
        users.setdefault(app, []).append((tenant_id, tenant_code))
    for lst in users.values():
        lst.sort(key=lambda t: t[1])
    return CmdbGraph(g, info, ids, users, live_members, token, dependents, clusters_of, needs)


# -- propagation ----------------------------------------------------------------------------


@dataclass
class Impact:
    """The outcome of failing some CIs.

    ``down`` maps each CI that stops (the failed ones excluded) to the down CIs that
    directly caused it, the first one first (following first causes back leads to a
    failed CI: one path); ``degraded`` maps clusters that lost members but stay up to
    ``(members_down, live_members, min_healthy)``.
    """

    failed: list[int]
    down: dict[int, list[int]] = field(default_factory=dict)
    degraded: dict[int, tuple[int, int, int]] = field(default_factory=dict)

    def down_applications(self, graph: CmdbGraph) -> list[int]:
        return [n for n in self.down if graph.info[n].kind == APPLICATION] + [
            n for n in self.failed if graph.info[n].kind == APPLICATION
        ]

    def path_to(self, node: int) -> list[int]:
        path = [node]
        while path[-1] in self.down:
            path.append(self.down[path[-1]][0])
        return path[::-1]


def analyse(graph: CmdbGraph, failed: Iterable[int], *, depth: int | None = None) -> Impact:
    """Fail ``failed`` at once and propagate (breadth-first, each relation looked at once).

    ``depth`` limits the propagation to that many relation hops from the failed CIs
    (None: everything that fails). Unknown ids raise KeyError.
    """
    info = graph.info
    failed_list = list(dict.fromkeys(failed))
    for node in failed_list:
        if node not in info:
            raise KeyError(node)
    dependents = graph.dependents
    clusters_of = graph.clusters_of
    down: dict[int, list[int]] = {}
    seen: set[int] = set(failed_list)
    members_down: dict[int, list[int]] = {}
    queue: deque[int] = deque(failed_list)
    level: dict[int, int] = dict.fromkeys(failed_list, 0)
    limited = depth is not None
    popleft, push = queue.popleft, queue.append
    while queue:
        node = popleft()
        if limited:
            at = level[node] + 1
            if at > depth:  # type: ignore[operator]
                continue
        for source in dependents.get(node, ()):
            if source in seen:
                causes = down.get(source)
                if causes is not None and node not in causes:
                    causes.append(node)
                continue
            seen.add(source)
            down[source] = [node]
            if limited:
                level[source] = at
            push(source)
        for cluster in clusters_of.get(node, ()):
            lost = members_down.get(cluster)
            if lost is None:
                lost = members_down[cluster] = []
            lost.append(node)
            if cluster in seen:
                causes = down.get(cluster)
                if causes is not None and node not in causes:
                    causes.append(node)
            elif len(lost) >= graph.threshold(cluster):
                seen.add(cluster)
                down[cluster] = [node, *(m for m in lost if m != node)]
                if limited:
                    level[cluster] = at
                push(cluster)
    impact = Impact(failed=failed_list, down=down)
    for cluster, lost in members_down.items():
        if cluster not in seen:
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


def survival_sets(
    graph: CmdbGraph, keep: Iterable[int] = (), *, within: set[int] | None = None
) -> dict[int, set[int]]:
    """For each CI in ``keep`` (default: every application), the set of CIs whose single
    failure makes it fail (itself included).

    One bottom-up pass (Kahn's order: a CI once everything it needs is done): a CI fails
    with any CI that fails one of its propagating targets, and a cluster with any CI that
    fails at least ``threshold`` of its members. Each finished set is pushed into the sets
    of the CIs that need it, then dropped unless kept. ``within`` restricts the pass to a
    set of CIs closed under "needs" (see ``_needed_by``).
    """
    with _no_gc():
        return _survival_sets(graph, keep, within)


def _survival_sets(
    graph: CmdbGraph, keep: Iterable[int], within: set[int] | None
) -> dict[int, set[int]]:
    info = graph.info
    scope = graph.needs.keys() if within is None else within
    keep_set = set(keep) or {n for n in scope if info[n].kind == APPLICATION}
    dependents = graph.dependents
    clusters_of = graph.clusters_of
    waiting = {n: graph.needs[n] for n in scope}
    acc: dict[int, set[int]] = {}
    counts: dict[int, Counter[int]] = {}
    result: dict[int, set[int]] = {}
    ready = deque(n for n, w in waiting.items() if w == 0)
    done = 0
    while ready:
        node = ready.popleft()
        done += 1
        own = acc.pop(node, None)
        if own is None:
            own = {node}
        else:
            own.add(node)
        tally = counts.pop(node, None)
        if tally is not None:
            needed = graph.threshold(node)
            own.update(x for x, c in tally.items() if c >= needed)
        if node in keep_set:
            result[node] = own  # never changed again: pushed sets are copied or merged
        for dep in dependents[node]:
            if dep not in waiting:
                continue
            into = acc.get(dep)
            if into is None:
                acc[dep] = set(own)
            else:
                into |= own
            waiting[dep] -= 1
            if waiting[dep] == 0:
                ready.append(dep)
        for cluster in clusters_of.get(node, ()):
            if cluster not in waiting:
                continue
            tally = counts.get(cluster)
            if tally is None:
                tally = counts[cluster] = Counter()
            tally.update(own)
            waiting[cluster] -= 1
            if waiting[cluster] == 0:
                ready.append(cluster)
    if done != len(waiting):  # pragma: no cover - the services refuse cycles
        raise ValueError("the dependency graph has a cycle")
    return result


def _members_of(graph: CmdbGraph) -> dict[int, list[int]]:
    members: dict[int, list[int]] = {}
    for member, clusters in graph.clusters_of.items():
        for cluster in clusters:
            members.setdefault(cluster, []).append(member)
    return members


def _needed_by(graph: CmdbGraph, roots: Iterable[int], members: dict[int, list[int]]) -> set[int]:
    """``roots`` and every live CI they need, transitively (propagating targets, and the
    members of the clusters among them)."""
    info = graph.info
    succ = graph.g._succ  # noqa: SLF001
    seen = set(roots)
    stack = list(seen)
    while stack:
        node = stack.pop()
        nexts = [
            t
            for t, d in succ[node].items()
            if d["type"] != MEMBER_OF and info[t].status not in INACTIVE
        ]
        nexts += members.get(node, ())
        for other in nexts:
            if other not in seen:
                seen.add(other)
                stack.append(other)
    return seen


def _bottom_up_order(graph: CmdbGraph) -> list[int]:
    waiting = dict(graph.needs)
    dependents, clusters_of = graph.dependents, graph.clusters_of
    order = [n for n, w in waiting.items() if w == 0]
    for node in order:  # grows while iterating: Kahn's algorithm
        for dep in dependents[node]:
            waiting[dep] -= 1
            if waiting[dep] == 0:
                order.append(dep)
        for cluster in clusters_of.get(node, ()):
            waiting[cluster] -= 1
            if waiting[cluster] == 0:
                order.append(cluster)
    if len(order) != len(waiting):  # pragma: no cover - the services refuse cycles
        raise ValueError("the dependency graph has a cycle")
    return order


def single_points_of_failure(graph: CmdbGraph) -> dict[int, list[int]]:
    """``{ci: [applications]}``: every CI but applications whose single failure makes at
    least one application fail.

    Top-down: the applications a CI takes down are those its dependents take down, plus
    those of the clusters it takes down on its own (it fails at least ``threshold`` of
    their members). Only that last question needs the bottom-up survival sets, and only
    for what lies under cluster members; the rest is set unions, in one pass from the
    applications down.
    """
    info = graph.info
    with _no_gc():
        members = _members_of(graph)
        all_members = {m for ms in members.values() for m in ms}
        sets = _survival_sets(graph, all_members or {-1}, _needed_by(graph, all_members, members))
        takes_down: dict[int, list[int]] = {}  # CI → clusters it fails on its own
        for cluster, ms in members.items():
            counts: Counter[int] = Counter()
            for m in ms:
                counts.update(sets[m])
            needed = graph.threshold(cluster)
            for x, c in counts.items():
                if c >= needed:
                    takes_down.setdefault(x, []).append(cluster)
        dependents = graph.dependents
        apps_of: dict[int, set[int]] = {}
        for node in reversed(_bottom_up_order(graph)):
            acc = {node} if info[node].kind == APPLICATION else set()
            for dep in dependents[node]:
                above = apps_of.get(dep)
                if above:
                    acc |= above
            for cluster in takes_down.get(node, ()):
                above = apps_of.get(cluster)
                if above:
                    acc |= above
            if acc:
                apps_of[node] = acc
        return {n: list(a) for n, a in apps_of.items() if info[n].kind != APPLICATION}


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
