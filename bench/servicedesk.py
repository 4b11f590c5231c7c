"""Service-desk benchmark (issue 4), on 100,000 tickets and 1,000,000 time entries:

- ``GET /api/v1/tickets/{id}`` vs the one-row probe (goal ≥ 50 %);
- a filtered page of 50 tickets, with their tenant, category, CI and assignee, vs the list
  probe (≥ 50 %), and a constant number of SQL statements whatever the page size;
- creating a time entry (``POST /api/v1/time-entries``) vs the one-row probe (≥ 30 %).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.harness import ROOT, Harness, gunicorn

TICKETS = int(os.environ.get("BENCH_TICKETS", "100000"))
ENTRIES = int(os.environ.get("BENCH_TIME_ENTRIES", "1000000"))

BUILD = r"""
import datetime as dt, random, sys
import sqlalchemy as sa
from config.app import create_app
from config.auth import SYSTEM, Role, User, create_token, create_user
from config.db import db, transaction, utcnow
from config.tenancy import Tenant
from servicedesk.models import Category, Ticket, TimeEntry

tickets, entries = int(sys.argv[1]), int(sys.argv[2])
app = create_app()
with app.app_context():
    rnd = random.Random(7)
    tenants = db.session.execute(sa.select(Tenant.id, Tenant.code)).all()
    ivry = next(i for i, c in tenants if c == "ville-ivry")
    users = db.session.execute(sa.select(User.id)).scalars().all()
    cats = db.session.execute(sa.select(Category.id)).scalars().all()
    from cmdb.models import CI
    cis = db.session.execute(sa.select(CI.id).limit(300)).scalars().all()
    now = utcnow()
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with transaction(actor=SYSTEM):
        for base in range(0, tickets, 20000):
            rows = []
            for i in range(base, min(base + 20000, tickets)):
                opened = start + dt.timedelta(minutes=37 * i)
                rows.append(dict(
                    tenant_id=rnd.choice(tenants)[0], type="incident", title=f"Bench ticket {i}",
                    description="", description_format="text", status=rnd.choice(["closed", "closed", "in_progress", "new"]),
                    urgency=3, impact=3, priority=3, category_id=rnd.choice(cats), ci_id=rnd.choice(cis),
                    requester_name="Agent", assignee_id=rnd.choice(users), opened_at=opened,
                    due_to_own_at=opened, due_to_resolve_at=opened, paused_minutes=0.0, sla_breached=False,
                    source="bench", external_id=str(i), created_at=now, updated_at=now, version=1))
            db.session.execute(sa.insert(Ticket.__table__), rows)
        first = db.session.execute(sa.select(sa.func.min(Ticket.id))).scalar_one()
        for base in range(0, entries, 50000):
            rows = []
            for i in range(base, min(base + 50000, entries)):
                rows.append(dict(
                    user_id=rnd.choice(users), tenant_id=rnd.choice(tenants)[0],
                    date=dt.date(2020, 1, 1) + dt.timedelta(days=i % 700), minutes=30,
                    activity=rnd.choice(["mco", "project", "internal", "assistance"]),
                    ticket_id=first + (i % tickets), note="", source="bench", external_id=str(i),
                    created_at=now, updated_at=now, version=1))
            db.session.execute(sa.insert(TimeEntry.__table__), rows)
    tech = create_user("bench-tech", role=Role.TECHNICIAN, tenants=[db.session.get(Tenant, ivry)], actor=SYSTEM)
    _, token = create_token(tech, "bench", expires_days=None, now=utcnow(), actor=SYSTEM)
    ticket = db.session.execute(sa.select(Ticket.id).where(Ticket.tenant_id == ivry).limit(1)).scalar_one()
    print(token)
    print(ticket)
"""

COUNT = r"""
import json, sys
from sqlalchemy import event
from config.app import create_app
from config.db import db
app = create_app()
with app.app_context():
    engine = db.engine
client = app.test_client()
headers = {"Authorization": "Bearer " + sys.argv[1]}
counts = []
for limit in (10, 50):
    client.get(f"/api/v1/tickets?status=closed&limit={limit}", headers=headers)
    seen = []
    rec = lambda conn, cur, stmt, *a: seen.append(stmt)
    event.listen(engine, "before_cursor_execute", rec)
    resp = client.get(f"/api/v1/tickets?status=closed&limit={limit}", headers=headers)
    event.remove(engine, "before_cursor_execute", rec)
    assert resp.status_code == 200 and len(resp.json["results"]) == limit
    counts.append(len(seen))
print(json.dumps(counts))
"""

NEW_ENTRY = r"""
counter = 0
request = function()
  counter = counter + 1
  local day = os.date("!%Y-%m-%d", os.time() - counter * 86400 - math.random(0, 400) * 86400 * 365)
  local body = '{"date": "' .. day .. '", "minutes": 30, "activity": "mco", "tenant": "ville-ivry"}'
  return wrk.format("POST", nil, nil, body)
end
"""


def _run(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def run(h: Harness) -> None:
    env = h.syndic_env("servicedesk")
    _run(env, "-m", "config.cli", "db", "upgrade")
    _run(env, "-m", "config.cli", "demo", "load")
    token, ticket = _run(env, "-c", BUILD, str(TICKETS), str(ENTRIES)).split()
    # After a bulk load, as the scheduler's nightly job does: planner statistics.
    _run(env, "-m", "config.cli", "db", "analyze")
    h.info("database", TICKETS, "tickets")
    h.info("database", ENTRIES, "time entries")
    few, many = json.loads(_run(env, "-c", COUNT, token))
    h.info("SQL statements for a page of 10 tickets", few, "statements")
    h.info("SQL statements for a page of 50 tickets", many, "statements")
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with gunicorn("config.app:create_app()", env=env) as srv:
        h.versus(
            "GET /api/v1/tickets/<id> vs one-row probe",
            f"{srv.url}/api/v1/tickets/{ticket}",
            "onerow",
            goal=0.5,
            headers=auth,
        )
        h.versus(
            "GET /api/v1/tickets (50, filtered) vs list probe",
            f"{srv.url}/api/v1/tickets?status=closed&limit=50",
            "list50",
            goal=0.5,
            note=f"{few} vs {many} statements for 10 vs 50 rows",
            headers=auth,
        )
        h.versus(
            "POST /api/v1/time-entries vs one-row probe",
            f"{srv.url}/api/v1/time-entries",
            "onerow",
            goal=0.3,
            headers=auth,
            method="POST",
            lua=NEW_ENTRY,
        )
