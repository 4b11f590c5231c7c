"""Reporting benchmark (issue 6), in-process, over 1M time entries spanning 24 months:

- the full tenant × activity × month workload report vs a raw SQL GROUP BY of the same
  data on the same database (≤ 1.5×);
- the report of one month vs the same raw query for that month, which the covering index
  ``ix_time_entries_report`` answers without reading the table (≤ 3×).

The database is generated once per run (``BENCH_REPORTING_DB`` reuses a file): 16 tenants
plus shared time, 6 activities, 4 poles, 2020-01-01 … 2021-12-31.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from pathlib import Path

from bench.harness import Harness, timed

ENTRIES = int(os.environ.get("BENCH_REPORTING_ENTRIES", "1000000"))
TENANTS = 16
ACTIVITIES = ("mco", "project", "internal", "domain_management", "assistance", "training")
POLES = ("systemes-information", "infrastructures", "support-utilisateurs", "methodes-projets")
START = dt.date(2020, 1, 1)
DAYS = (dt.date(2021, 12, 31) - START).days + 1


def _app(url: str):  # noqa: ANN202
    from config.app import create_app
    from config.settings import Settings

    return create_app(settings=Settings.from_env({}).replace(database_url=url, secret_key="b"))  # noqa: S106


def build_database(url: str, entries: int = ENTRIES) -> int:
    """A migrated database with ``entries`` time entries (bulk inserts)."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from config.auth import SYSTEM, Role, create_user
    from config.db import db, transaction
    from config.tenancy import create_tenant
    from servicedesk.models import TimeEntry

    rnd = random.Random(6)  # noqa: S311 - reproducible test data
    app = _app(url)
    now = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    with app.app_context():
        upgrade()
        ids = [
            create_tenant({"code": f"t-{i}", "name": f"T{i}", "kind": "city"}, actor=SYSTEM).id
            for i in range(TENANTS)
        ]
        user = create_user(
            "bench", role=Role.TECHNICIAN, tenants=[], all_tenants=True, actor=SYSTEM
        )
        tenants = [*ids, None]
        with transaction():
            conn = db.session.connection()
            batch = []
            for n in range(entries):
                batch.append(
                    {
                        "user_id": user.id,
                        "tenant_id": rnd.choice(tenants),
                        "date": START + dt.timedelta(days=rnd.randrange(DAYS)),
                        "minutes": rnd.choice((30, 60, 90, 120, 210, 420)),
                        "activity": rnd.choice(ACTIVITIES),
                        "pole": rnd.choice(POLES),
                        "source": "local",
                        "note": "",
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                )
                if len(batch) == 50_000 or n == entries - 1:
                    conn.execute(sa.insert(TimeEntry.__table__), batch)
                    batch = []
        with db.engine.connect() as c:
            c.exec_driver_sql("ANALYZE")
        db.engine.dispose()
    return entries


def database(h: Harness) -> str:
    path = Path(os.environ.get("BENCH_REPORTING_DB") or Path(h.workdir) / "reporting-1m.db")
    if not path.exists():
        t0 = time.perf_counter()
        n = build_database(f"sqlite:///{path}")
        h.info(f"generated {n} time entries", time.perf_counter() - t0, "s")
    return f"sqlite:///{path}"


RAW = """
SELECT tenant_id, activity, strftime('%Y-%m', date) AS month, sum(minutes)
FROM time_entries
WHERE deleted_at IS NULL AND date >= :start AND date <= :end
GROUP BY tenant_id, activity, month
"""


def run(h: Harness) -> None:
    import sqlalchemy as sa

    from config.auth import SYSTEM
    from config.db import db
    from reporting.services import build_report

    url = database(h)
    app = _app(url)
    with app.app_context():
        raw = sa.text(RAW)
        covered = sa.text(
            RAW.replace("FROM time_entries", "FROM time_entries INDEXED BY ix_time_entries_report")
        )

        def bare(start: str, end: str, stmt: sa.TextClause = raw) -> int:
            return len(db.session.execute(stmt, {"start": start, "end": end}).all())

        def ours(start: str, end: str) -> int:
            params = {"from": start, "to": end, "group_by": "tenant,activity,month"}
            return len(build_report("workload", params, SYSTEM).table("rows").rows)

        full = ("2020-01-01", "2021-12-31")
        assert bare(*full) == ours(*full), "the report and the raw query disagree"
        h.ratio(
            "workload tenant×activity×month, 24 months vs raw GROUP BY",
            timed(lambda: ours(*full), repeat=3),
            timed(lambda: bare(*full), repeat=3),
            goal=1.5,
            unit="s",
            higher_is_better=False,
        )
        month = ("2021-06-01", "2021-06-30")
        h.ratio(
            "workload of one month vs raw query on the covering index",
            timed(lambda: ours(*month), repeat=5),
            timed(lambda: bare(*month, stmt=covered), repeat=5),
            goal=3.0,
            unit="s",
            higher_is_better=False,
        )
        plan = db.session.execute(
            sa.text("EXPLAIN QUERY PLAN " + RAW),
            {"start": month[0], "end": month[1]},
        ).all()
        print("  plan without hint:", "; ".join(str(r[-1]) for r in plan), flush=True)
        db.engine.dispose()
