"""CMDB API benchmark (issue 3) on the 100k CIs / 300k relations database of cmdb_graph:

- ``GET /api/v1/cis?limit=50`` vs the kernel's list probe (≥ 50 %), as an admin and as a
  technician bound to one tenant;
- the number of SQL statements of a list page does not depend on the page size;
- ``GET /api/v1/cis/{id}/impact?depth=3`` and ``GET /api/v1/cmdb/spof`` throughput (info).
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench.cmdb_graph import database
from bench.harness import ROOT, Harness, gunicorn, load


def _cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "config.cli", *args],
        cwd=ROOT,
        check=True,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    ).stdout


def _statements(env: dict[str, str], token: str, limits: tuple[int, ...]) -> list[int]:
    """SQL statements of one list page per limit, counted in-process."""
    code = f"""
import json, sys
from sqlalchemy import event
from config.app import create_app
from config.db import db
app = create_app()
counts = []
with app.app_context():
    engine = db.engine
client = app.test_client()
for limit in {list(limits)!r}:
    # warm: the token's first use is recorded, and the count is cached per graph version
    client.get(f"/api/v1/cis?limit={{limit}}", headers={{"Authorization": "Bearer {token}"}})
    seen = []
    def record(conn, cursor, statement, *args):
        seen.append(statement)
    event.listen(engine, "before_cursor_execute", record)
    resp = client.get(f"/api/v1/cis?limit={{limit}}", headers={{"Authorization": "Bearer {token}"}})
    event.remove(engine, "before_cursor_execute", record)
    assert resp.status_code == 200, resp.data
    counts.append(len(seen))
print(json.dumps(counts))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        check=True,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    ).stdout
    import json

    return json.loads(out.strip().splitlines()[-1])


def run(h: Harness) -> None:
    url = database(h)
    env = {
        "SYNDIC_DATABASE_URL": url,
        "SYNDIC_INSTANCE_PATH": str(h.workdir / "cmdb-instance"),
        "SYNDIC_SECRET_KEY": "bench",
        "SYNDIC_LOG_LEVEL": "WARNING",
    }
    _cli(env, "users", "create", "bench-admin", "--role", "admin", "--all-tenants")
    _cli(env, "users", "create", "bench-tech", "--role", "technician", "--tenant", "t-3")
    tokens = {
        who: _cli(env, "tokens", "create", who).strip().splitlines()[-1]
        for who in ("bench-admin", "bench-tech")
    }
    probe_db = h.workdir / "probe.db"
    if not probe_db.exists():
        # Built in a child process: this one imported syndic, whose session guards refuse
        # the probe's plain commits (they apply to every SQLAlchemy session).
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"from bench.probes import build_probe_db; "
                f"build_probe_db({str(probe_db)!r}, rows=1000)",
            ],
            cwd=ROOT,
            check=True,
        )
    counts = _statements(env, tokens["bench-tech"], (5, 50, 500))
    h.ratio(
        "SQL statements of a CI list page, 500 rows vs 5",
        counts[2],
        counts[0],
        goal=1.0,
        unit="statements",
        higher_is_better=False,
        note=str(counts),
    )
    with gunicorn("config.app:create_app()", env=env) as srv:
        for who, token in tokens.items():
            auth = {"Authorization": f"Bearer {token}"}
            h.versus(
                f"GET /api/v1/cis?limit=50 ({who}, 100k CIs) vs list probe",
                srv.url + "/api/v1/cis?limit=50",
                "list50",
                goal=0.5,
                headers=auth,
            )
        auth = {"Authorization": f"Bearer {tokens['bench-admin']}"}
        load(srv.url + "/api/v1/cis/1234/impact?depth=3", seconds=2, headers=auth)  # warm
        h.info(
            "GET /api/v1/cis/<host>/impact?depth=3",
            load(srv.url + "/api/v1/cis/1234/impact?depth=3", headers=auth),
            "req/s",
        )
