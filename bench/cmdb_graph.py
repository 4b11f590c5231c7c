"""CMDB graph benchmark (issue 3), in-process, at 100k CIs and 300k relations (generated):

- building the graph from the database vs a bare ``networkx`` build of the same edges
  (≤ 2×), and the memory the built graph keeps (≤ 150 MB);
- the impact of one CI to depth 3, server-side, against the 10 ms budget;
- full-reach impact vs ``nx.descendants`` on the propagation graph (≤ 1.5×);
- the SPOF analysis of the whole graph vs ``nx.articulation_points`` on its undirected
  view (≤ 1.5×).

The generated CMDB has the shape of a real one, scaled up: 20 sites, 200 hyperconverged
clusters of 10 hosts stretched over two sites, 50,000 virtual servers, 15,000 databases,
30,000 applications (each on two servers, with two databases and three services, some
depending on older applications), 2,780 services, 20 tenants using the applications.
"""

from __future__ import annotations

import gc
import os
import random
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import Harness, timed

SITES, CLUSTERS, HOSTS_PER_CLUSTER = 20, 200, 10
SERVERS, DATABASES, APPLICATIONS, SERVICES = 50_000, 15_000, 30_000, 2_780
TENANTS = 20
APP_TO_APP = 15_440  # brings the relations to 300,000


def build_database(url: str) -> dict[str, int]:
    """Create and fill a syndic database at ``url`` (bulk inserts); returns counts."""
    import sqlalchemy as sa

    from cmdb.models import CI, CmdbState, Relation, Usage
    from config.app import create_app
    from config.db import db, transaction
    from config.settings import Settings
    from config.tenancy import Tenant

    rnd = random.Random(3)  # noqa: S311 - reproducible test data
    app = create_app(settings=Settings.from_env({}).replace(database_url=url, secret_key="b"))  # noqa: S106
    now = datetime(2021, 6, 30, tzinfo=UTC)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        cis: list[dict[str, Any]] = []
        rels: list[tuple[int, int, str]] = []

        def ci(kind: str, code: str, attrs: dict[str, Any] | None = None) -> int:
            cis.append(
                {
                    "id": len(cis) + 1,
                    "kind": kind,
                    "code": code,
                    "name": code.upper(),
                    "tenant_id": None,
                    "status": "active",
                    "attributes": attrs or {},
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
            )
            return len(cis)

        sites = [ci("site", f"site-{i}") for i in range(SITES)]
        clusters = []
        for c in range(CLUSTERS):
            cluster = ci("cluster", f"hc-{c}", {"min_healthy": 5})
            clusters.append(cluster)
            a, b = sites[c % SITES], sites[(c + 1) % SITES]
            for h in range(HOSTS_PER_CLUSTER):
                host = ci("host", f"hv-{c}-{h}", {"cpu_cores": 48, "memory_gb": 768})
                rels.append((host, cluster, "member_of"))
                rels.append((host, a if h < HOSTS_PER_CLUSTER // 2 else b, "located_in"))
        servers = [ci("server", f"srv-{i}", {"vcpus": 4, "memory_gb": 16}) for i in range(SERVERS)]
        rels += [(s, rnd.choice(clusters), "runs_on") for s in servers]
        dbs = [ci("database", f"db-{i}", {"engine": "postgresql"}) for i in range(DATABASES)]
        rels += [(d, rnd.choice(servers), "hosted_on") for d in dbs]
        services = [ci("service", f"svc-{i}") for i in range(SERVICES)]
        for svc in services:
            rels += [(svc, t, "depends_on") for t in rnd.sample(servers, 2)]
        apps = [
            ci("application", f"app-{i}", {"domain": f"D{i % 14}"}) for i in range(APPLICATIONS)
        ]
        for app_id in apps:
            rels += [(app_id, t, "hosted_on") for t in rnd.sample(servers, 2)]
            rels += [(app_id, t, "depends_on") for t in rnd.sample(dbs, 2)]
            rels += [(app_id, t, "depends_on") for t in rnd.sample(services, 3)]
        extra: set[tuple[int, int]] = set()
        while len(extra) < APP_TO_APP:
            i = rnd.randrange(1, APPLICATIONS)
            j = rnd.randrange(max(0, i - 50), i)  # older applications only: no cycles
            extra.add((apps[i], apps[j]))
        rels += [(s, t, "depends_on") for s, t in sorted(extra)]
        with transaction():
            tenant_ids = []
            for i in range(TENANTS):
                tenant = Tenant(code=f"t-{i}", name=f"Tenant {i}", kind="city")
                db.session.add(tenant)
                db.session.flush()
                tenant_ids.append(tenant.id)
            conn = db.session.connection()
            for start in range(0, len(cis), 10_000):
                conn.execute(sa.insert(CI.__table__), cis[start : start + 10_000])
            rel_rows = [
                {
                    "source_id": s,
                    "target_id": t,
                    "type": ty,
                    "tenant_id": None,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
                for s, t, ty in rels
            ]
            for start in range(0, len(rel_rows), 20_000):
                conn.execute(sa.insert(Relation.__table__), rel_rows[start : start + 20_000])
            usage = [
                {
                    "ci_id": a,
                    "tenant_id": t,
                    "confidence": "certain",
                    "note": "",
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
                for a in apps
                for t in rnd.sample(tenant_ids, 2)
            ]
            for start in range(0, len(usage), 20_000):
                conn.execute(sa.insert(Usage.__table__), usage[start : start + 20_000])
            conn.execute(
                sa.insert(CmdbState.__table__).values(id=1, graph_version=1, changed_at=now)
            )
        db.engine.dispose()
    return {"cis": len(cis), "relations": len(rels)}


def database(h: Harness) -> str:
    """The 100k/300k database of this run (built once, shared with cmdb_api)."""
    path = Path(h.workdir) / "cmdb-100k.db"
    url = f"sqlite:///{path}"
    if not path.exists():
        t0 = time.perf_counter()
        counts = build_database(url)
        h.info(
            f"generated {counts['cis']} CIs, {counts['relations']} relations",
            time.perf_counter() - t0,
            "s",
        )
    return url


def run(h: Harness) -> None:
    import networkx as nx

    from cmdb import analysis, impact, queries
    from config.app import create_app
    from config.auth import SYSTEM
    from config.settings import Settings

    url = database(h)
    os.environ.setdefault("SYNDIC_LOG_LEVEL", "WARNING")
    app = create_app(settings=Settings.from_env({}).replace(database_url=url, secret_key="b"))  # noqa: S106
    with app.app_context():
        ci_rows, rel_rows, usage_rows = queries.graph_rows()
        edges = [(s, t) for s, t, _ in rel_rows]

        def bare() -> Any:
            g = nx.DiGraph()
            g.add_edges_from(edges)
            return g

        def ours() -> Any:
            return impact.build_graph(*queries.graph_rows())

        baseline = timed(bare, repeat=3)
        measured = timed(ours, repeat=3)
        h.ratio(
            "graph build from the database vs bare nx build",
            measured,
            baseline,
            goal=2.0,
            unit="s",
            higher_is_better=False,
        )
        gc.disable()  # the build pauses the collector: compare with a bare build that does too
        try:
            paused = timed(bare, repeat=3)
        finally:
            gc.enable()
        # Stricter than the goal (the bare build there runs with the collector on):
        # printed for information, not judged.
        h.info(
            "graph build vs bare nx build, collector paused in both (information)",
            measured / paused if paused else float("nan"),
            "x",
        )

        gc.collect()
        tracemalloc.start()
        graph = impact.build_graph(ci_rows, rel_rows, usage_rows)
        kept = tracemalloc.get_traced_memory()[0] / 1e6
        tracemalloc.stop()
        gc.collect()
        tracemalloc.start()
        bare_graph = bare()
        bare_kept = tracemalloc.get_traced_memory()[0] / 1e6
        tracemalloc.stop()
        del bare_graph
        h.ratio(
            "graph memory vs the 150 MB budget",
            kept,
            150.0,
            goal=1.0,
            unit="MB",
            higher_is_better=False,
            note=f"bare nx graph: {bare_kept:.0f} MB",
        )
        h.info("bare nx graph of the same edges (memory)", bare_kept, "MB")

        analysis.current_graph()  # warm the per-process cache, as a worker would be
        host = graph.ids["host:hv-7-3"]
        per_call = timed(lambda: analysis.impact_of([host], SYSTEM, depth=3), repeat=20) * 1000
        h.ratio(
            "impact of one CI to depth 3 (server-side) vs 10 ms",
            per_call,
            10.0,
            goal=1.0,
            unit="ms",
            higher_is_better=False,
        )
        server = graph.ids["server:srv-1234"]
        per_call = timed(lambda: analysis.impact_of([server], SYSTEM, depth=3), repeat=20) * 1000
        h.info("impact of a server to depth 3 (server-side)", per_call, "ms")

        # The propagation graph: what fails when a CI fails, ignoring thresholds.
        propagation = nx.DiGraph()
        propagation.add_nodes_from(graph.info)
        for s, t, ty in rel_rows:
            propagation.add_edge(s, t) if ty == "member_of" else propagation.add_edge(t, s)
        rnd = random.Random(5)  # noqa: S311
        sample = rnd.sample([n for n, i in graph.info.items() if i.kind == "cluster"], 10)
        widest = max(sample, key=lambda n: len(nx.descendants(propagation, n)))
        reach = len(nx.descendants(propagation, widest))
        down = len(impact.analyse(graph, [widest]).down)
        baseline = timed(lambda: nx.descendants(propagation, widest), repeat=5)
        measured = timed(lambda: impact.analyse(graph, [widest]), repeat=5)
        h.ratio(
            f"full-reach impact ({down} CIs down) vs nx.descendants ({reach})",
            measured,
            baseline,
            goal=1.5,
            unit="s",
            higher_is_better=False,
        )

        undirected = graph.g.to_undirected(as_view=True)
        baseline = timed(lambda: list(nx.articulation_points(undirected)), repeat=3)
        measured = timed(lambda: impact.single_points_of_failure(graph), repeat=3)
        spof = impact.single_points_of_failure(graph)
        h.ratio(
            f"SPOF of the whole graph ({len(spof)} CIs) vs nx.articulation_points",
            measured,
            baseline,
            goal=1.5,
            unit="s",
            higher_is_better=False,
        )
        db_dispose(app)


def db_dispose(app: Any) -> None:
    from config.db import db

    with app.app_context():
        db.engine.dispose()
