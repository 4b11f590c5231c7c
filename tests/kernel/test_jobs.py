"""The scheduler lease, fenced job writes and recorded runs (service tier)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from config.auth import SYSTEM
from config.db import db as _db
from config.db import transaction, utcnow
from config.jobs import JobRun, LeaseLost, ScheduledJob, acquire_lease, lease_holder, run_job
from config.tenancy import Tenant, TenantKind

TTL = timedelta(seconds=60)


def test_only_one_holder_gets_the_lease(db):
    now = utcnow()
    assert acquire_lease("a", now=now, ttl=TTL)
    assert not acquire_lease("b", now=now, ttl=TTL)
    assert acquire_lease("a", now=now + timedelta(seconds=30), ttl=TTL)  # renewal
    assert lease_holder(now=now) == "a"


def test_an_expired_lease_is_taken_over(db):
    now = utcnow()
    assert acquire_lease("a", now=now, ttl=TTL)
    assert not acquire_lease("b", now=now + timedelta(seconds=59), ttl=TTL)
    assert acquire_lease("b", now=now + timedelta(seconds=61), ttl=TTL)
    assert not acquire_lease("a", now=now + timedelta(seconds=62), ttl=TTL)


def _writes_a_tenant():
    with transaction(actor=SYSTEM):
        _db.session.add(Tenant(code="from-job", name="J", kind=TenantKind.CITY))


def _fails():
    raise ValueError("nope")


def runs() -> list[JobRun]:
    _db.session.remove()
    return list(_db.session.execute(sa.select(JobRun).order_by(JobRun.id)).scalars())


def test_job_runs_are_recorded_and_only_the_holder_runs(app, db):
    job = ScheduledJob("test.write", _writes_a_tenant, "interval", {"seconds": 1})
    assert run_job(app, job, "holder-1", ttl=TTL) == "succeeded"
    assert run_job(app, job, "holder-2", ttl=TTL) == "skipped"
    [run] = runs()
    assert (run.job_id, run.status, run.holder) == ("test.write", "succeeded", "holder-1")
    assert run.finished_at >= run.started_at


def test_a_failed_job_is_recorded_with_a_path_free_traceback(app, db):
    job = ScheduledJob("test.fail", _fails, "interval", {"seconds": 1})
    assert run_job(app, job, "h", ttl=TTL) == "failed"
    [run] = runs()
    assert run.status == "failed" and "ValueError: nope" in run.error
    assert "/" not in "".join(line for line in run.error.splitlines() if 'File "' in line)


def test_a_job_that_lost_its_lease_writes_nothing(app, db):
    def steal_then_write():
        with _db.engine.begin() as other:  # another scheduler took over meanwhile
            other.execute(sa.text("UPDATE leases SET holder = 'thief'"))
        _writes_a_tenant()

    job = ScheduledJob("test.late", steal_then_write, "interval", {"seconds": 1})
    assert run_job(app, job, "victim", ttl=TTL) == "failed"
    [run] = runs()
    assert LeaseLost.__name__ in run.error
    assert _db.session.execute(sa.select(Tenant).where(Tenant.code == "from-job")).first() is None


def test_scheduler_registers_jobs_and_heartbeat(app):
    from config.jobs import build_scheduler, scheduled

    @scheduled("interval", id="test.noop", minutes=5)
    def noop():
        return None

    sched = build_scheduler(app, holder="h")
    ids = {j.id for j in sched.get_jobs()}
    assert {"kernel.heartbeat", "test.noop"} <= ids
    from config.jobs import _REGISTRY

    _REGISTRY.pop("test.noop")


@pytest.mark.parametrize("bad", ["x"])
def test_job_ids_are_unique(bad):
    from config.jobs import _REGISTRY, scheduled

    scheduled("interval", id="test.dup", minutes=1)(lambda: None)
    with pytest.raises(ValueError):
        scheduled("interval", id="test.dup", minutes=1)(lambda: None)
    _REGISTRY.pop("test.dup")
