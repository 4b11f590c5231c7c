"""Concurrent writers: optimistic locking with ETags holds under real parallel requests."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from config.changelog import ChangeRecord
from config.tenancy import Tenant
from tests.support import assert_status


def test_eight_patches_with_the_same_etag_one_wins_seven_get_412(app, db, admin, tenant_a):
    url = f"/api/v1/tenants/{tenant_a.id}"
    etag = admin.get(url).headers["ETag"]
    token = admin.token
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def patch(n: int) -> None:
        client = app.test_client()
        client.token = token
        barrier.wait()
        resp = client.patch(url, json={"name": f"Writer {n}"}, headers={"If-Match": etag})
        with lock:
            statuses.append(resp.status_code)

    threads = [threading.Thread(target=patch, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [412] * 7, statuses
    db.session.remove()
    updates = (
        db.session.execute(
            sa.select(ChangeRecord).where(
                ChangeRecord.object_type == "tenant",
                ChangeRecord.object_id == tenant_a.id,
                ChangeRecord.action == "update",
            )
        )
        .scalars()
        .all()
    )
    assert len(updates) == 1
    final = db.session.get(Tenant, tenant_a.id)
    assert final.version == 2 and final.name == updates[0].after["name"]


def test_a_stale_write_without_if_match_still_cannot_overwrite(app, db, admin, tenant_a):
    """Two writers that read the same version: the slower one gets 412, not a silent win."""
    url = f"/api/v1/tenants/{tenant_a.id}"
    token = admin.token
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def patch(n: int) -> None:
        client = app.test_client()
        client.token = token
        barrier.wait()
        statuses.append(client.patch(url, json={"name": f"W{n}"}).status_code)

    threads = [threading.Thread(target=patch, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) <= {200, 412} and 200 in statuses
    db.session.remove()
    final = db.session.get(Tenant, tenant_a.id)
    assert final.version == 1 + statuses.count(200)
    assert_status(admin.get(url), 200)
