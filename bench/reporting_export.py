"""Reporting export benchmark (issue 6): 100k time entries exported as CSV and as XLSX,
end to end (the time-entries report read from the database, then rendered), against the
fastest JSON export of the same rows: the same SELECT turned into dicts and dumped with
orjson, no marshmallow. Goal: each export at least half that speed.

The render step alone (rows already in memory vs ``orjson.dumps``) is printed too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.harness import Harness, timed
from bench.reporting_workload import _app, build_database

ROWS = int(os.environ.get("BENCH_EXPORT_ROWS", "100000"))


def run(h: Harness) -> None:
    import orjson
    import sqlalchemy as sa

    from config.auth import SYSTEM, User
    from config.db import db
    from reporting.render import render
    from reporting.services import build_report
    from servicedesk.models import Project, TimeEntry

    path = Path(h.workdir) / "reporting-export.db"
    if not path.exists():
        t0 = time.perf_counter()
        build_database(f"sqlite:///{path}", ROWS)
        h.info(f"generated {ROWS} time entries", time.perf_counter() - t0, "s")
    app = _app(f"sqlite:///{path}")
    params = {"from": "2020-01-01", "to": "2021-12-31"}
    with app.app_context():
        stmt = (
            sa.select(
                TimeEntry.id,
                TimeEntry.date,
                User.username,
                TimeEntry.tenant_id,
                TimeEntry.activity,
                TimeEntry.pole,
                TimeEntry.minutes,
                TimeEntry.ticket_id,
                Project.code,
                TimeEntry.channel,
                TimeEntry.note,
            )
            .join(User, User.id == TimeEntry.user_id)
            .outerjoin(Project, Project.id == TimeEntry.project_id)
            .where(TimeEntry.deleted_at.is_(None))
            .order_by(TimeEntry.date, TimeEntry.id)
        )
        keys = (
            "id",
            "date",
            "user",
            "tenant",
            "activity",
            "pole",
            "minutes",
            "ticket",
            "project",
            "channel",
            "note",
        )

        def json_dump() -> int:
            rows = [dict(zip(keys, r, strict=True)) for r in db.session.execute(stmt)]
            return len(orjson.dumps(rows, default=str))

        def export(fmt: str) -> int:
            report = build_report("time-entries", params, SYSTEM)
            assert len(report.table("rows").rows) == ROWS
            return len(render(report, fmt)[0])

        baseline = ROWS / timed(json_dump, repeat=3)
        for fmt in ("csv", "xlsx"):
            h.ratio(
                f"{fmt.upper()} export of {ROWS} time entries vs dict-to-orjson",
                ROWS / timed(lambda fmt=fmt: export(fmt), repeat=3),
                baseline,
                goal=0.5,
                unit="rows/s",
            )
        report = build_report("time-entries", params, SYSTEM)
        rows = report.table("rows").rows
        dump = timed(lambda: orjson.dumps(rows), repeat=3)
        for fmt in ("csv", "xlsx"):
            h.info(
                f"render only, {fmt} vs orjson.dumps of the same dicts (ratio)",
                dump / timed(lambda fmt=fmt: render(report, fmt), repeat=3),
                "",
            )
        db.engine.dispose()
