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
from cmdb.impact import CmdbGraph
from cmdb.models import CI, CmdbAnalysis, graph_token
from cmdb.services import resolve_cis
from config.auth import Actor
from config.db import db, transaction, utcnow
from config.tenancy import visible_tenant_ids

__all__ = [
    "current_graph",
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


def impact_of(refs: Sequence[Any], actor: Actor, *, depth: int | None = None) -> dict[str, Any]:
    """Fail the CIs named by ``refs`` (ids or keys) at once; the API.md §5 document.

    Raises UnknownCIs (404, listing them) for CIs that do not exist or are not visible."""
    cis = resolve_cis(refs, actor)
    graph = current_graph()
    missing = [ci.key for ci in cis if ci.id not in graph.info]
    if missing:  # deleted between the lookup and the graph read
        raise UnknownCIs(f"Unknown configuration item(s): {', '.join(missing)}.", unknown=missing)
    result = impact_mod.analyse(graph, [ci.id for ci in cis], depth=depth)
    return impact_mod.impact_document(graph, result, visible_tenants=_visible(actor))


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


def refresh_analyses() -> bool:
    """Compute the whole-graph analyses for the current graph and store them, unless
    they are already stored for it. Returns True when it computed."""
    graph = current_graph()
    stored = db.session.get(CmdbAnalysis, SPOF)
    if stored is not None and stored.graph_token == graph.token:
        return False
    started = time.perf_counter()
    spof = impact_mod.single_points_of_failure(graph)
    info = graph.info
    result = {info[n].key: [info[a].key for a in apps] for n, apps in spof.items()}
    seconds = time.perf_counter() - started
    with transaction():
        row = db.session.get(CmdbAnalysis, SPOF)
        if row is None:
            row = CmdbAnalysis(name=SPOF)
            db.session.add(row)
        row.graph_token = graph.token
        row.computed_at = utcnow()
        row.seconds = seconds
        row.result = result
    cached = _CACHE.get(_engine_key())
    if cached is not None and cached.graph is graph:
        cached.spof = spof
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
