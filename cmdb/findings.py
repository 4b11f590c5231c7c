"""Fragility findings over the CMDB graph (pure): false redundancy, double points of
failure, capacity on host failure, and plain inconsistencies.

- **False redundancy**: a cluster that should survive the loss of a member (its
  ``min_healthy`` leaves slack) but that one single CI other than itself can still take
  down: all members on one site, "redundant" servers running on the same host...
- **Double points of failure**: pairs of infrastructure CIs whose joint failure stops an
  application while neither alone does (candidates come from the clusters' member counts,
  then each pair is checked by the real propagation).
- **Capacity**: hosts carry ``cpu_cores``/``memory_gb``, servers ``vcpus``/``memory_gb``;
  a cluster that survives a host failure may still be unable to carry its servers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from cmdb.impact import (
    APPLICATION,
    INACTIVE,
    MEMBER_OF,
    CmdbGraph,
    analyse,
    survival_sets,
)

__all__ = [
    "Capacity",
    "capacity_after",
    "capacity_findings",
    "double_points_of_failure",
    "find_all",
    "hygiene_findings",
    "false_redundancy",
]

INFRASTRUCTURE = frozenset(
    {"site", "cluster", "host", "server", "database", "service", "network_link"}
)


def _members(graph: CmdbGraph, cluster: int) -> list[int]:
    info = graph.info
    return [
        s
        for s, d in graph.g._pred[cluster].items()  # noqa: SLF001
        if d["type"] == MEMBER_OF and info[s].status not in INACTIVE
    ]


def _clusters(graph: CmdbGraph) -> list[int]:
    return [
        n
        for n, i in graph.info.items()
        if i.kind == "cluster" and i.status not in INACTIVE and graph.live_members.get(n)
    ]


# -- false redundancy -----------------------------------------------------------------------


def false_redundancy(
    graph: CmdbGraph, sets: Mapping[int, Set[int]] | None = None
) -> list[dict[str, Any]]:
    """Clusters with slack (``threshold ≥ 2``) that a single other CI still takes down."""
    clusters = [c for c in _clusters(graph) if graph.threshold(c) >= 2]
    found: Mapping[int, Set[int]] = (
        sets if sets is not None else survival_sets(graph, keep=clusters)
    )
    info = graph.info
    out = []
    for cluster in clusters:
        # A redundant cluster underneath (e.g. farm servers on a hyperconverged cluster
        # with spare hosts) is not a placement mistake: only non-redundant culprits count.
        culprits = sorted(
            (
                x
                for x in found.get(cluster, ())
                if x != cluster and not (info[x].kind == "cluster" and graph.threshold(x) >= 2)
            ),
            key=lambda x: info[x].key,
        )
        if not culprits:
            continue
        reasons = []
        for x in culprits:
            kind = info[x].kind
            if kind == "site":
                reasons.append(f"all members depend on site {info[x].key}")
            elif kind in ("host", "cluster"):
                reasons.append(f"the members run on {info[x].key}")
            else:
                reasons.append(f"the members all depend on {info[x].key}")
        out.append(
            {
                "kind": "false_redundancy",
                "ci": info[cluster].key,
                "cis": [info[x].key for x in culprits],
                "detail": (
                    f"{info[cluster].key} needs {info[cluster].min_healthy} of "
                    f"{graph.live_members.get(cluster, 0)} members, yet one failure takes it "
                    f"down: {'; '.join(reasons)}."
                ),
                "severity": "high",
            }
        )
    return out


# -- double points of failure ---------------------------------------------------------------


def double_points_of_failure(
    graph: CmdbGraph, *, max_pairs: int = 5000
) -> tuple[list[dict[str, Any]], bool]:
    """Pairs of infrastructure CIs whose joint failure stops an application that neither
    stops alone; returns the findings (most damaging first) and whether the candidate
    list was cut at ``max_pairs``."""
    info = graph.info
    clusters = [c for c in _clusters(graph) if graph.threshold(c) >= 2]
    keep = set(clusters)
    members_of = {c: _members(graph, c) for c in clusters}
    for ms in members_of.values():
        keep.update(ms)
    apps = [n for n, i in info.items() if i.kind == APPLICATION and i.status not in INACTIVE]
    keep.update(apps)
    sets = survival_sets(graph, keep=keep)
    single: dict[int, set[int]] = {}
    for app in apps:
        for x in sets.get(app, ()):
            single.setdefault(x, set()).add(app)
    candidates: set[tuple[int, int]] = set()
    truncated = False
    for cluster in clusters:
        needed = graph.threshold(cluster)
        own: Set[int] = sets.get(cluster, frozenset())
        counts: Counter[int] = Counter()
        for member in members_of[cluster]:
            counts.update(x for x in sets.get(member, ()) if info[x].kind in INFRASTRUCTURE)
        pool = sorted(x for x in counts if x not in own)
        for x, y in combinations(pool, 2):
            if counts[x] + counts[y] >= needed:
                candidates.add((x, y))
                if len(candidates) >= max_pairs:
                    truncated = True
                    break
        if truncated:
            break
    found = []
    for x, y in sorted(candidates):
        impact = analyse(graph, [x, y])
        lost = [
            n
            for n in impact.down
            if info[n].kind == APPLICATION
            and n not in single.get(x, ())
            and n not in single.get(y, ())
        ]
        if not lost:
            continue
        score = sum(len(graph.users.get(a, ())) for a in lost)
        if info[y].key < info[x].key:
            x, y = y, x
        found.append((x, y, sorted(lost, key=lambda a: info[a].key), score))
    found.sort(key=lambda f: (-f[3], -len(f[2]), info[f[0]].key, info[f[1]].key))
    return [
        {
            "kind": "double_point_of_failure",
            "ci": info[x].key,
            "cis": [info[x].key, info[y].key],
            "applications": [info[a].key for a in lost],
            "score": score,
            "detail": (
                f"{info[x].key} and {info[y].key} failing together stop "
                f"{len(lost)} application(s) that neither stops alone."
            ),
            "severity": "medium",
        }
        for x, y, lost, score in found
    ], truncated


# -- capacity -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capacity:
    """Per-CI resources: hosts give ``cpu`` cores and ``memory`` GB, servers need them."""

    cpu: Mapping[int, float]
    memory: Mapping[int, float]


def _servers_on(graph: CmdbGraph, cluster: int) -> list[int]:
    info = graph.info
    return [
        s
        for s, d in graph.g._pred[cluster].items()  # noqa: SLF001
        if "runs_on" in d["type"].split(",") and info[s].status not in INACTIVE
    ]


def capacity_after(
    graph: CmdbGraph,
    cluster: int,
    members_down: Iterable[int],
    capacity: Capacity,
    *,
    cpu_ratio: float,
    memory_ratio: float,
) -> list[dict[str, Any]]:
    """Whether the surviving members can carry the servers running on the cluster.

    Returns one entry per overcommitted resource (``cpu``: vCPUs against cores × ratio,
    ``memory``: GB against GB × ratio); empty when it fits or nothing is known."""
    down = set(members_down)
    survivors = [m for m in _members(graph, cluster) if m not in down]
    servers = _servers_on(graph, cluster)
    out = []
    for resource, table, ratio in (
        ("cpu", capacity.cpu, cpu_ratio),
        ("memory", capacity.memory, memory_ratio),
    ):
        demand = sum(table.get(s, 0.0) for s in servers)
        if not demand or not any(m in table for m in _members(graph, cluster)):
            continue
        available = sum(table.get(m, 0.0) for m in survivors) * ratio
        if demand > available:
            out.append(
                {
                    "ci": graph.info[cluster].key,
                    "resource": resource,
                    "demand": round(demand, 2),
                    "capacity": round(available, 2),
                }
            )
    return out


def capacity_findings(
    graph: CmdbGraph, capacity: Capacity, *, cpu_ratio: float, memory_ratio: float
) -> list[dict[str, Any]]:
    """Clusters overcommitted already, or after the loss of their biggest member while
    still up ("up but overcommitted")."""
    info = graph.info
    out = []
    for cluster in _clusters(graph):
        now = capacity_after(
            graph, cluster, (), capacity, cpu_ratio=cpu_ratio, memory_ratio=memory_ratio
        )
        if now:
            out.append(
                {
                    "kind": "overcommitted",
                    "ci": info[cluster].key,
                    "cis": [],
                    "resources": now,
                    "detail": f"{info[cluster].key} is overcommitted with every member up.",
                    "severity": "high",
                }
            )
            continue
        if graph.threshold(cluster) < 2:
            continue  # losing a member takes it down anyway: nothing to carry
        worst: list[dict[str, Any]] = []
        worst_ratio = 0.0
        culprit = None
        for member in _members(graph, cluster):
            after = capacity_after(
                graph, cluster, [member], capacity, cpu_ratio=cpu_ratio, memory_ratio=memory_ratio
            )
            ratio = max((a["demand"] / max(a["capacity"], 1e-9) for a in after), default=0.0)
            if ratio > worst_ratio:
                worst, worst_ratio, culprit = after, ratio, member
        if culprit is not None:
            out.append(
                {
                    "kind": "overcommitted_on_host_failure",
                    "ci": info[cluster].key,
                    "cis": [info[culprit].key],
                    "resources": worst,
                    "detail": (
                        f"{info[cluster].key} stays up without {info[culprit].key} but its "
                        "survivors cannot carry its servers."
                    ),
                    "severity": "medium",
                }
            )
    return out


# -- hygiene --------------------------------------------------------------------------------


def hygiene_findings(graph: CmdbGraph) -> list[dict[str, Any]]:
    """Plain inconsistencies: clusters already below ``min_healthy``, active applications
    hosted nowhere (their impact cannot be known) or used by nobody."""
    info = graph.info
    succ = graph.g._succ  # noqa: SLF001
    out = []
    for node, i in info.items():
        if i.status in INACTIVE:
            continue
        if i.kind == "cluster":
            live = graph.live_members.get(node, 0)
            if live < i.min_healthy:
                out.append(
                    {
                        "kind": "below_min_healthy",
                        "ci": i.key,
                        "cis": [],
                        "detail": f"{i.key} has {live} live member(s) for min_healthy "
                        f"{i.min_healthy}: it is down already.",
                        "severity": "high",
                    }
                )
        elif i.kind == APPLICATION:
            if not any(
                d["type"] != MEMBER_OF and info[t].status not in INACTIVE
                for t, d in succ[node].items()
            ):
                out.append(
                    {
                        "kind": "application_not_hosted",
                        "ci": i.key,
                        "cis": [],
                        "detail": f"{i.key} is related to no live infrastructure: its "
                        "impact cannot be computed.",
                        "severity": "low",
                    }
                )
            if not graph.users.get(node):
                out.append(
                    {
                        "kind": "application_unused",
                        "ci": i.key,
                        "cis": [],
                        "detail": f"{i.key} is used by no tenant.",
                        "severity": "low",
                    }
                )
    return out


def find_all(
    graph: CmdbGraph,
    capacity: Capacity,
    *,
    cpu_ratio: float,
    memory_ratio: float,
    max_pairs: int,
) -> list[dict[str, Any]]:
    """Every finding, most severe first."""
    doubles, truncated = double_points_of_failure(graph, max_pairs=max_pairs)
    findings = (
        false_redundancy(graph)
        + capacity_findings(graph, capacity, cpu_ratio=cpu_ratio, memory_ratio=memory_ratio)
        + doubles
        + hygiene_findings(graph)
    )
    if truncated:
        findings.append(
            {
                "kind": "analysis_truncated",
                "ci": None,
                "cis": [],
                "detail": f"Double points of failure: only the first {max_pairs} candidate "
                "pairs were checked.",
                "severity": "low",
            }
        )
    rank = {"high": 0, "medium": 1, "low": 2}
    return sorted(findings, key=lambda f: (rank[f["severity"]], f["kind"], f["ci"] or ""))
