"""The connectors' scheduled jobs: registered with the configured intervals, run under the
scheduler's lease, every configured source synced."""

from __future__ import annotations

import sqlalchemy as sa

from config.db import db
from config.jobs import build_scheduler, registry
from connectors import jobs
from connectors.models import SyncRun


def test_jobs_registered_with_the_configured_schedule(sync_app):
    ids = set(registry())
    assert {"connectors.sync_incremental", "connectors.sync_full", "connectors.run_queued"} <= ids
    sched = build_scheduler(sync_app, holder="test-holder")
    incremental = sched.get_job("connectors.sync_incremental")
    assert incremental.trigger.interval.total_seconds() == 15 * 60
    full = sched.get_job("connectors.sync_full")
    fields = {f.name: str(f) for f in full.trigger.fields}
    assert fields["hour"] == "2" and fields["minute"] == "30"
    assert str(full.trigger.timezone) == "Europe/Paris"


def test_the_incremental_job_syncs_every_source_with_a_target(sdb, fake):
    fake.add_ticket(1)
    jobs.sync_incremental()  # `files` has no path: not scheduled
    runs = db.session.execute(sa.select(SyncRun.source, SyncRun.status, SyncRun.trigger)).all()
    assert runs == [("glpi", "succeeded", "scheduler")]
