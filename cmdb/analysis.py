"""Read-side use cases over the whole graph: the per-process graph cache, impact, single
points of failure, neighbourhoods.

The graph is built from three bulk statements and kept per process, keyed by the
database's graph token (version counter + time of the last change, bumped in the same
transaction as every CI, relation or usage write), so that each gunicorn worker notices
another worker's writes with one cheap query and never rebuilds per request. Whole-graph
analyses (SPOF) are cached per token the same way, and stored in ``cmdb_analyses`` by the
``cmdb.refresh_analyses`` job so that a fresh worker reads them instead of computing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cmdb import impact as impact_mod
from cmdb import queries
from cmdb.errors import UnknownCIs
from cmdb.findings import Capacity, capacity_after, find_all
from cmdb.impact import CmdbGraph
from cmdb.models import CI, CmdbAnalysis, graph_token
from cmdb.services import resolve_cis
from config.auth import Actor
from config.db import db, transaction, utcnow
from config.tenancy import visible_tenant_ids

__all__ = [
    "Tuning",
    "current_graph",
    "findings_for",
    "gdpr_register",
    "graph_of",
    "impact_of",
    "refresh_analyses",
    "spof_for",
]

_LOCK = threading.Lock()


@dataclass
class _Cached:
    token: str
    graph: CmdbGraph
    spof: dict[int, list[int]] | None = None
    capacity: Capacity | None = None
    findings: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Tuning:
    """The ``[cmdb]`` settings the analyses use (read at the edge, passed in)."""

    cpu_overcommit: float = 4.0
    memory_overcommit: float = 1.0
    double_failure_max_pairs: int = 5000

    @classmethod
    def of(cls, section: Any) -> Tuning:
        return cls(
            cpu_overcommit=float(section.get("cpu_overcommit", cls.cpu_overcommit)),
            memory_overcommit=float(section.get("memory_overcommit", cls.memory_overcommit)),
            double_failure_max_pairs=int(
                section.get("double_failure_max_pairs", cls.double_failure_max_pairs)
            ),
        )


_CACHE: dict[str, _Cached] = {}


def _engine_key() -> str:
    return db.engine.url.render_as_string(hide_password=True)


def current_graph() -> CmdbGraph:
    """The graph of the current database, rebuilt only when its token changed."""
    token = graph_token()
    key = _engine_key()
    cached = _CACHE.get(key)
    if cached is not None and cached.token == token:
        return cached.graph
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached.token == token:
            return cached.graph
        ci_rows, rel_rows, usage_rows = queries.graph_rows()
        # Read the token again: a write between the token and the rows would make the
        # rows newer than the token, which is harmless (the next call rebuilds).
        graph = impact_mod.build_graph(ci_rows, rel_rows, usage_rows, token=token)
        _CACHE[key] = _Cached(token, graph)
        return graph


def _visible(actor: Actor) -> frozenset[int] | None:
    return visible_tenant_ids(actor)


# -- impact ---------------------------------------------------------------------------------


def _cached() -> _Cached | None:
    return _CACHE.get(_engine_key())


def capacity_of(graph: CmdbGraph) -> Capacity:
    """Host capacities and server needs (one statement per graph version)."""
    cached = _cached()
    if cached is not None and cached.graph is graph and cached.capacity is not None:
        return cached.capacity
    cpu: dict[int, float] = {}
    memory: dict[int, float] = {}
    for node, _kind, cores, gb in queries.capacity_rows():
        if cores is not None:
            cpu[node] = float(cores)
        if gb is not None:
            memory[node] = float(gb)
    capacity = Capacity(cpu, memory)
    if cached is not None and cached.graph is graph:
        cached.capacity = capacity
    return capacity


def impact_of(
    refs: Sequence[Any],
    actor: Actor,
    *,
    depth: int | None = None,
    tuning: Tuning | None = None,
) -> dict[str, Any]:
    """Fail the CIs named by ``refs`` (ids or keys) at once; the API.md §5 document, plus
    the degraded clusters whose survivors cannot carry their servers (``overcommitted``).

    Raises UnknownCIs (404, listing them) for CIs that do not exist or are not visible."""
    cis = resolve_cis(refs, actor)
    graph = current_graph()
    missing = [ci.key for ci in cis if ci.id not in graph.info]
    if missing:  # deleted between the lookup and the graph read
        raise UnknownCIs(f"Unknown configuration item(s): {', '.join(missing)}.", unknown=missing)
    result = impact_mod.analyse(graph, [ci.id for ci in cis], depth=depth)
    tuning = tuning or Tuning()
    overcommitted: list[dict[str, Any]] = []
    if result.degraded:
        capacity = capacity_of(graph)
        gone = set(result.failed) | set(result.down)
        for cluster in result.degraded:
            members_down = [
                s
                for s, d in graph.g._pred[cluster].items()  # noqa: SLF001
                if d["type"] == impact_mod.MEMBER_OF and s in gone
            ]
            overcommitted += capacity_after(
                graph,
                cluster,
                members_down,
                capacity,
                cpu_ratio=tuning.cpu_overcommit,
                memory_ratio=tuning.memory_overcommit,
            )
    visible = _visible(actor)
    if visible is not None:
        overcommitted = [
            o for o in overcommitted if graph.info[graph.ids[o["ci"]]].tenant_id in (None, *visible)
        ]
    return impact_mod.impact_document(
        graph, result, visible_tenants=visible, overcommitted=overcommitted
    )


# -- single points of failure ---------------------------------------------------------------

SPOF = "spof"


def _spof_map(graph: CmdbGraph) -> dict[int, list[int]]:
    cached = _CACHE.get(_engine_key())
    if cached is not None and cached.graph is graph and cached.spof is not None:
        return cached.spof
    stored = db.session.execute(
        sa.select(CmdbAnalysis).where(
            CmdbAnalysis.name == SPOF, CmdbAnalysis.graph_token == graph.token
        )
    ).scalar()
    if stored is not None:
        spof = {graph.ids[k]: [graph.ids[a] for a in apps] for k, apps in stored.result.items()}
    else:
        spof = impact_mod.single_points_of_failure(graph)
    if cached is not None and cached.graph is graph:
        cached.spof = spof
    return spof


def spof_for(actor: Actor, *, kind: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """The SPOF entries the actor may see, most damaging first, and the graph token."""
    graph = current_graph()
    entries = impact_mod.spof_document(graph, _spof_map(graph), visible_tenants=_visible(actor))
    if kind:
        entries = [e for e in entries if e["kind"] == kind]
    return entries, graph.token


FINDINGS = "findings"


def _findings(graph: CmdbGraph, tuning: Tuning) -> list[dict[str, Any]]:
    cached = _cached()
    if cached is not None and cached.graph is graph and cached.findings is not None:
        return cached.findings
    stored = db.session.execute(
        sa.select(CmdbAnalysis).where(
            CmdbAnalysis.name == FINDINGS, CmdbAnalysis.graph_token == graph.token
        )
    ).scalar()
    if stored is not None:
        found: list[dict[str, Any]] = list(stored.result)
    else:
        found = find_all(
            graph,
            capacity_of(graph),
            cpu_ratio=tuning.cpu_overcommit,
            memory_ratio=tuning.memory_overcommit,
            max_pairs=tuning.double_failure_max_pairs,
        )
    if cached is not None and cached.graph is graph:
        cached.findings = found
    return found


def findings_for(
    actor: Actor, *, kind: str | None = None, tuning: Tuning | None = None
) -> list[dict[str, Any]]:
    """The fragility findings about CIs the actor sees (every CI they name visible)."""
    graph = current_graph()
    found = _findings(graph, tuning or Tuning())
    visible = _visible(actor)
    info, ids = graph.info, graph.ids

    def shown(key: str | None) -> bool:
        if key is None or visible is None:
            return True
        node = ids.get(key)
        return node is None or info[node].tenant_id is None or info[node].tenant_id in visible

    out = []
    for finding in found:
        if kind and finding["kind"] != kind:
            continue
        names = [finding.get("ci"), *finding.get("cis", ()), *finding.get("applications", ())]
        if all(shown(k) for k in names):
            out.append(finding)
    return out


def _store(name: str, token: str, result: Any, seconds: float) -> None:
    with transaction():
        row = db.session.get(CmdbAnalysis, name)
        if row is None:
            row = CmdbAnalysis(name=name)
            db.session.add(row)
        row.graph_token = token
        row.computed_at = utcnow()
        row.seconds = seconds
        row.result = result


def refresh_analyses(tuning: Tuning | None = None) -> bool:
    """Compute the whole-graph analyses (SPOF, findings) for the current graph and store
    them, unless they are already stored for it. Returns True when it computed."""
    graph = current_graph()
    stored = {
        row.name: row.graph_token for row in db.session.execute(sa.select(CmdbAnalysis)).scalars()
    }
    if stored.get(SPOF) == graph.token and stored.get(FINDINGS) == graph.token:
        return False
    tuning = tuning or Tuning()
    started = time.perf_counter()
    spof = impact_mod.single_points_of_failure(graph)
    info = graph.info
    result = {info[n].key: [info[a].key for a in apps] for n, apps in spof.items()}
    _store(SPOF, graph.token, result, time.perf_counter() - started)
    started = time.perf_counter()
    cached = _cached()
    if cached is not None and cached.graph is graph:
        cached.spof = spof
        cached.findings = None  # recompute rather than trust a result of other settings
    found = _findings(graph, tuning)
    _store(FINDINGS, graph.token, found, time.perf_counter() - started)
    return True


# -- neighbourhood --------------------------------------------------------------------------


def graph_of(ci: CI, actor: Actor, *, depth: int = 2, direction: str = "both") -> dict[str, Any]:
    """The neighbourhood of a visible CI as ``{"nodes": [...], "edges": [...]}`` (API.md
    §5), without the CIs of tenants the actor cannot see."""
    graph = current_graph()
    if ci.id not in graph.info:
        raise UnknownCIs(f"Unknown configuration item {ci.key}.", unknown=[ci.key])
    nodes, edges = impact_mod.neighbourhood(graph, ci.id, depth=depth, direction=direction)
    visible = _visible(actor)
    info = graph.info

    def shown(node: int) -> bool:
        tenant = info[node].tenant_id
        return visible is None or tenant is None or tenant in visible

    kept = {n for n in nodes if shown(n)}
    return {
        "center": ci.key,
        "depth": depth,
        "direction": direction,
        "nodes": [
            {
                "key": info[n].key,
                "kind": info[n].kind,
                "name": info[n].name,
                "status": info[n].status,
            }
            for n in sorted(kept, key=lambda n: info[n].key)
        ],
        "edges": [
            {"source": info[s].key, "target": info[t].key, "type": ty}
            for s, t, ty in edges
            if s in kept and t in kept
        ],
    }


# -- GDPR register --------------------------------------------------------------------------

_HOSTING_KINDS = {
    "site": "sites",
    "cluster": "clusters",
    "host": "hosts",
    "server": "servers",
    "database": "databases",
    "network_link": "network_links",
}


def _hosting(graph: CmdbGraph, app: int) -> dict[str, list[str]]:
    """Where an application runs: everything below it (a cluster's members included),
    without crossing into the applications and services it depends on."""
    info = graph.info
    succ = graph.g._succ  # noqa: SLF001
    pred = graph.g._pred  # noqa: SLF001
    found: dict[str, set[str]] = {name: set() for name in _HOSTING_KINDS.values()}
    found["depends_on"] = set()
    seen = {app}
    stack = [app]
    while stack:
        node = stack.pop()
        nexts = [t for t, d in succ[node].items() if d["type"] != impact_mod.MEMBER_OF]
        if info[node].kind == "cluster":
            nexts += [s for s, d in pred[node].items() if d["type"] == impact_mod.MEMBER_OF]
        for other in nexts:
            if other in seen or info[other].status in impact_mod.INACTIVE:
                continue
            seen.add(other)
            kind = info[other].kind
            if kind in ("application", "service"):
                found["depends_on"].add(info[other].key)
                continue
            found[_HOSTING_KINDS[kind]].add(info[other].key)
            stack.append(other)
    return {name: sorted(keys) for name, keys in found.items()}


def gdpr_register(tenant_code: str, actor: Actor) -> dict[str, Any]:
    """A member's processing activities: the applications it uses (visible to the actor),
    their GDPR attributes and where they are hosted. Raises NotFound for a tenant the
    actor cannot see."""
    from cmdb.models import CIKind, Usage
    from config.tenancy import get_tenant_by_code, tenant_scope

    tenant = get_tenant_by_code(tenant_code, actor)
    stmt = tenant_scope(
        sa.select(CI, Usage.confidence)
        .join(Usage, Usage.ci_id == CI.id)
        .where(Usage.tenant_id == tenant.id, CI.kind == CIKind.APPLICATION)
        .order_by(CI.code),
        actor,
        CI,
    )
    rows = db.session.execute(stmt).all()
    graph = current_graph()
    activities = []
    for ci, confidence in rows:
        attrs = ci.attributes or {}
        activities.append(
            {
                "application": ci.key,
                "name": ci.name,
                "status": ci.status.value,
                "domain": attrs.get("domain"),
                "function": attrs.get("function"),
                "product": attrs.get("product"),
                "vendor": attrs.get("vendor"),
                "usage_confidence": confidence.value,
                "processing": attrs.get("gdpr"),
                "hosting": _hosting(graph, ci.id) if ci.id in graph.info else {},
            }
        )
    return {
        "tenant": tenant.code,
        "tenant_name": tenant.name,
        "activities": activities,
        "documented": sum(1 for a in activities if a["processing"]),
        "undocumented": sum(1 for a in activities if not a["processing"]),
    }
