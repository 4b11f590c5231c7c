"""Connector benchmark (issue 5): a full GLPI sync against the fake GLPI on loopback
(tests/connectors/fake_glpi.py) with BENCH_GLPI_TICKETS tickets (default 100,000) and three
tasks each, measured in the same run against its ceiling:

- fetch rate: the same pages the sync reads (Ticket, TicketTask, and the ticket actors
  Ticket_User, follow-ups ITILFollowup and surveys TicketSatisfaction, 500 rows) read with a bare ``requests.Session``, in rows synced (tickets and
  tasks) per second of fetching;
- write rate: the same number of ticket and time-entry rows written with Core executemany
  in batches of 500, rows/s;
- ceiling = 1 / (1/fetch + 1/write); goal: the sync reaches 40 % of it;
- memory: the sync's peak RSS with the full instance vs a quarter of it (goal ≤ 1.5: pages
  are streamed, the instance is never held).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time

import requests

from bench.harness import ROOT, Harness

TICKETS = int(os.environ.get("BENCH_GLPI_TICKETS", "100000"))
TASKS_PER_TICKET = 3
PAGE = 500

SYNC = r"""
import resource, sys
from config.cli import main
try:
    main()
finally:
    print("maxrss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""

WRITE = r"""
import datetime as dt, sys, time
import sqlalchemy as sa
from config.app import create_app
from config.auth import SYSTEM, Role, create_user
from config.db import db, transaction, utcnow
from config.tenancy import TenantKind, create_tenant
from servicedesk.models import Ticket, TimeEntry

n, per, page = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
app = create_app()
with app.app_context():
    tenant = create_tenant({"code": "t", "name": "T", "kind": TenantKind.CITY}, actor=SYSTEM)
    user = create_user("u", role=Role.TECHNICIAN, tenants=[tenant], actor=SYSTEM)
    now = utcnow()
    start = time.perf_counter()
    for base in range(1, n + 1, page):
        with transaction(actor=SYSTEM):
            rows = []
            for i in range(base, min(base + page, n + 1)):
                opened = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=7 * i)
                rows.append(dict(
                    tenant_id=tenant.id, type="incident", title=f"Incident {i} & co",
                    description=f"<p>Probleme {i}</p>", description_format="html",
                    status="new", urgency=3, impact=3, priority=3,
                    requester_name=f"Requester {i % 2}", assignee_id=user.id,
                    opened_at=opened, paused_minutes=0.0, sla_breached=False, source="glpi",
                    external_id=str(i), created_at=now, updated_at=now, version=1))
            db.session.execute(sa.insert(Ticket.__table__), rows)
    first = db.session.execute(sa.select(sa.func.min(Ticket.id))).scalar_one()
    for base in range(1, n * per + 1, page):
        with transaction(actor=SYSTEM):
            rows = []
            for i in range(base, min(base + page, n * per + 1)):
                rows.append(dict(
                    user_id=user.id, tenant_id=tenant.id,
                    date=dt.date(2024, 1, 1) + dt.timedelta(days=i % 700), minutes=30,
                    activity="mco", ticket_id=first + (i - 1) // per, note=f"Travail {i}",
                    source="glpi", external_id=str(i), created_at=now, updated_at=now,
                    version=1))
            db.session.execute(sa.insert(TimeEntry.__table__), rows)
    elapsed = time.perf_counter() - start
    print(n * (1 + per) / elapsed)
"""


def _py(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        check=False,
        capture_output=True,
        text=True,
    )


def _fetch_rate(url: str) -> float:
    """Rows synced per second of reading the pages the sync reads with a bare session: the
    tickets and tasks count as rows, the other listings only cost their fetch time (the
    generated instance has actors, no follow-ups or surveys: the issue's workload)."""
    from tests.connectors.fake_glpi import APP_TOKEN, USER_TOKEN

    s = requests.Session()
    s.headers["App-Token"] = APP_TOKEN
    token = s.get(
        f"{url}/initSession", headers={"Authorization": f"user_token {USER_TOKEN}"}, timeout=30
    ).json()["session_token"]
    s.headers["Session-Token"] = token
    rows = 0
    start = time.perf_counter()
    for path, extra in (
        ("Ticket", {"is_deleted": "false"}),
        ("TicketTask", {}),
        ("Ticket_User", {}),
        ("ITILFollowup", {}),
        ("TicketSatisfaction", {}),
    ):
        offset = 0
        while True:
            params = {"range": f"{offset}-{offset + PAGE - 1}", "get_hateoas": "false", **extra}
            resp = s.get(f"{url}/{path}", params=params, timeout=60)
            if resp.status_code == 400:
                break
            page = resp.json()
            if not page:
                break
            if path in ("Ticket", "TicketTask"):
                rows += len(page)
            offset += PAGE
    elapsed = time.perf_counter() - start
    s.get(f"{url}/killSession", timeout=30)
    return rows / elapsed


def _sync(h: Harness, name: str, url: str) -> tuple[float, int, str]:
    """(rows/s of a full sync, peak RSS in kB, summary line) on a fresh database."""
    from tests.connectors.fake_glpi import APP_TOKEN, USER_TOKEN

    env = h.syndic_env(name)
    config = h.workdir / f"{name}.toml"
    config.write_text(f"[connectors]\npage_size = {PAGE}\n")
    env.update(
        SYNDIC_CONFIG=str(config),
        SYNDIC_GLPI_URL=url,
        SYNDIC_GLPI_USER_TOKEN=USER_TOKEN,
        SYNDIC_GLPI_APP_TOKEN=APP_TOKEN,
    )
    up = _py(env, "-m", "config.cli", "db", "upgrade")
    if up.returncode:
        raise RuntimeError(up.stderr[-2000:])
    start = time.perf_counter()
    done = _py(env, "-c", SYNC, "sync", "glpi", "--full", "--quiet")
    elapsed = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    rss = int(re.search(r"maxrss_kb (\d+)", done.stderr).group(1))  # type: ignore[union-attr]
    m = re.search(r"in ([\d.]+) s", done.stdout)
    seconds = float(m.group(1)) if m else elapsed
    return (_rows(name) / seconds if seconds else 0.0), rss, done.stdout.strip()


_SIZES: dict[str, int] = {}


def _rows(name: str) -> int:
    return _SIZES[name] * (1 + TASKS_PER_TICKET)


def run(h: Harness) -> None:
    sys.path.insert(0, str(ROOT))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from tests.connectors.fake_glpi import FakeGlpiServer, small_instance

    quarter = max(1, TICKETS // 4)
    h.info("fake GLPI", TICKETS, "tickets")
    h.info("fake GLPI", TICKETS * TASKS_PER_TICKET, "tasks")
    results = {}
    for name, n in (("connectors-quarter", quarter), ("connectors-full", TICKETS)):
        fake = small_instance()
        fake.generate(n, TASKS_PER_TICKET)
        _SIZES[name] = n
        with FakeGlpiServer(fake) as server:
            if name == "connectors-full":
                fetch = _fetch_rate(server.url)
            results[name] = _sync(h, name, server.url)
    write_env = h.syndic_env("connectors-write")
    _py(write_env, "-m", "config.cli", "db", "upgrade")
    out = _py(write_env, "-c", WRITE, str(TICKETS), str(TASKS_PER_TICKET), str(PAGE))
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    write = float(out.stdout.strip().splitlines()[-1])
    sync_rate, rss_full, summary = results["connectors-full"]
    _q_rate, rss_quarter, _ = results["connectors-quarter"]
    ceiling = 1 / (1 / fetch + 1 / write)
    print(summary)
    h.info("fetch rate (bare requests.Session)", round(fetch), "rows/s")
    h.info("write rate (Core executemany)", round(write), "rows/s")
    h.info("ceiling 1/(1/fetch + 1/write)", round(ceiling), "rows/s")
    h.info("full sync", round(sync_rate / (1 + TASKS_PER_TICKET)), "tickets/s")
    h.ratio("full GLPI sync vs ceiling", sync_rate, ceiling, goal=0.4, unit="rows/s")
    h.ratio(
        f"peak RSS, {TICKETS} vs {quarter} tickets",
        rss_full,
        rss_quarter,
        goal=1.5,
        unit="kB",
        higher_is_better=False,
    )
