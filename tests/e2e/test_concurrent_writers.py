"""Several processes writing through the API at once: no "database is locked", no lost update.

Each process runs syndic in-process (its own engine and connections) against the shared
database and increments a counter held in a tenant with read → PATCH If-Match, retrying on
412. The final counter must equal the number of successful PATCHes. SQLite (WAL, IMMEDIATE
writes) always; PostgreSQL when configured. SYNDIC_CONCURRENCY_SECONDS (default 4) sets the
duration; `make fuzz` runs it for 30 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.auth import SYSTEM, Role, create_token, create_user
from config.db import utcnow
from config.tenancy import create_tenant

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SECONDS = float(
    os.environ.get(
        "SYNDIC_CONCURRENCY_SECONDS", "30" if os.environ.get("SYNDIC_FUZZ") == "full" else "4"
    )
)
PROCESSES = 8

WORKER = r"""
import json, sys, time
from config.app import create_app
from config.settings import Settings

url, token, tenant_id, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
settings = Settings.from_env({}).replace(
    database_url=url, secret_key="x", instance_path=sys.argv[5]
)
app = create_app({"TESTING": True}, settings=settings)
client = app.test_client()
headers = {"Authorization": f"Bearer {token}"}
ok = conflicts = errors = 0
codes = {}
stop = time.monotonic() + seconds
while time.monotonic() < stop:
    got = client.get(f"/api/v1/tenants/{tenant_id}", headers=headers)
    if got.status_code != 200:
        errors += 1
        codes[got.status_code] = codes.get(got.status_code, 0) + 1
        continue
    n = int(got.json["contributions"].get("2021", 0)) + 1
    resp = client.patch(f"/api/v1/tenants/{tenant_id}", json={"contributions": {"2021": n}},
                        headers={**headers, "If-Match": got.headers["ETag"]})
    if resp.status_code == 200:
        ok += 1
    elif resp.status_code == 412:
        conflicts += 1
    else:
        errors += 1
        codes[resp.status_code] = codes.get(resp.status_code, 0) + 1
print(json.dumps({"ok": ok, "conflicts": conflicts, "errors": errors, "codes": codes}))
"""


def test_eight_processes_patching_lose_nothing(app, db, database, tmp_path, caplog):
    tenant = create_tenant({"code": "counter", "name": "Counter", "kind": "city"}, actor=SYSTEM)
    user = create_user("writer", role=Role.ADMIN, tenants=[], actor=SYSTEM)
    _, token = create_token(user, "w", expires_days=None, now=utcnow(), actor=SYSTEM)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                database.url,
                token,
                str(tenant.id),
                str(SECONDS),
                str(tmp_path),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=SECONDS + 120)
        assert proc.returncode == 0, err[-2000:]
        assert "database is locked" not in err
        results.append(json.loads(out.strip().splitlines()[-1]))
    total_ok = sum(r["ok"] for r in results)
    assert sum(r["errors"] for r in results) == 0, results
    assert total_ok > 0
    db.session.remove()
    from config.tenancy import Tenant

    final = db.session.get(Tenant, tenant.id)
    assert final.contributions["2021"] == total_ok, results
    print(
        f"{PROCESSES} processes, {SECONDS:g}s: {total_ok} updates, "
        f"{sum(r['conflicts'] for r in results)} conflicts (412), 0 errors"
    )
