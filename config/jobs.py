"""Scheduled jobs: the ``@scheduled`` registry, the database lease that lets one of several
``syndic scheduler`` processes act, and the ``JobRun`` rows recording each run.

Only ``syndic scheduler`` builds an APScheduler; the web app never starts one (N gunicorn
workers would otherwise run N schedulers). The lease is one row per scheduler name, taken
with a conditional UPDATE, so it works on SQLite and PostgreSQL alike. Writes made by a job
are fenced: the commit re-checks, in the same transaction, that this process still holds
the lease, so a process that lost it (paused, then resumed) writes nothing.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import String, Text, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from config.db import ACTOR_KEY, Model, UTCDateTime, db, transaction, utcnow

__all__ = [
    "JobRun",
    "Lease",
    "LeaseLost",
    "ScheduledJob",
    "acquire_lease",
    "build_scheduler",
    "registry",
    "run_job",
    "scheduled",
]

log = logging.getLogger("syndic.jobs")

DEFAULT_LEASE = "scheduler"


@dataclass(frozen=True)
class ScheduledJob:
    """A function and its APScheduler trigger (``"interval"``, ``"cron"``...)."""

    id: str
    func: Callable[[], Any]
    trigger: str
    trigger_args: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ScheduledJob] = {}


def scheduled(
    trigger: str, *, id: str, **trigger_args: Any
) -> Callable[[Callable[[], Any]], Callable[[], Any]]:  # noqa: A002
    """Register ``func`` to run on ``trigger`` under ``syndic scheduler``; id ``domain.name``."""

    def decorator(func: Callable[[], Any]) -> Callable[[], Any]:
        if id in _REGISTRY and _REGISTRY[id].func is not func:
            raise ValueError(f"job id {id!r} registered twice")
        _REGISTRY[id] = ScheduledJob(id, func, trigger, dict(trigger_args))
        return func

    return decorator


@scheduled("cron", id="kernel.refresh_statistics", hour=3, minute=40)
def _refresh_statistics() -> None:
    """Nightly: fresh planner statistics (SQLite keeps none by itself)."""
    from config.db import refresh_statistics

    refresh_statistics()


def registry() -> dict[str, ScheduledJob]:
    return dict(_REGISTRY)


class Lease(Model):
    """Who may act for a scheduler name, until when."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JobRun(Model):
    """One execution of a scheduled job."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(100), index=True)
    holder: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))  # running | succeeded | failed
    error: Mapped[str | None] = mapped_column(Text)


class LeaseLost(RuntimeError):
    """This process no longer holds the lease: its pending writes are rolled back."""


def make_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire_lease(holder: str, *, now: datetime, ttl: timedelta, name: str = DEFAULT_LEASE) -> bool:
    """Take or renew the lease; True if ``holder`` holds it until ``now + ttl``."""
    table = cast(sa.Table, Lease.__table__)
    with transaction():
        result = db.session.execute(
            sa.update(table)
            .where(
                table.c.name == name,
                sa.or_(table.c.holder == holder, table.c.expires_at < now),
            )
            .values(holder=holder, expires_at=now + ttl)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return True
        exists = db.session.execute(sa.select(table.c.name).where(table.c.name == name)).first()
        if exists:
            return False
        db.session.execute(
            sa.insert(table).values(name=name, holder=holder, expires_at=now + ttl, acquired_at=now)
        )
    return True


def lease_holder(*, now: datetime, name: str = DEFAULT_LEASE) -> str | None:
    """The live holder of the lease, if any (read-only)."""
    row = db.session.execute(
        sa.select(Lease.holder).where(Lease.name == name, Lease.expires_at >= now)
    ).first()
    return row[0] if row else None


_FENCE = "syndic.lease_fence"


@event.listens_for(Session, "before_commit")
def _fence(session: Session) -> None:
    fence = session.info.get(_FENCE)
    if not fence:
        return
    holder, name = fence
    table = cast(sa.Table, Lease.__table__)
    stmt = sa.select(table.c.holder, table.c.expires_at).where(table.c.name == name)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = session.execute(stmt).first()
    if row is None or row.holder != holder or row.expires_at < utcnow():
        raise LeaseLost(f"lease {name!r} is no longer held by {holder}")


_PATH_RE = re.compile(r'File "([^"]*[/\\])([^"/\\]+)"')


def _strip_paths(text: str) -> str:
    return _PATH_RE.sub(lambda m: f'File "{m.group(2)}"', text)


def run_job(app: Flask, job: ScheduledJob, holder: str, *, ttl: timedelta) -> str:
    """Run one job if this process holds the lease; returns the run status or ``skipped``."""
    from config.auth import SYSTEM

    with app.app_context():
        if not acquire_lease(holder, now=utcnow(), ttl=ttl):
            return "skipped"
        with transaction(actor=SYSTEM):
            run = JobRun(job_id=job.id, holder=holder, started_at=utcnow(), status="running")
            db.session.add(run)
        session = db.session()
        session.info[_FENCE] = (holder, DEFAULT_LEASE)
        session.info[ACTOR_KEY] = SYSTEM
        status, error = "succeeded", None
        try:
            job.func()
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded, not fatal
            status = "failed"
            error = _strip_paths("".join(traceback.format_exception(exc)))[-8000:]
            log.error("job %s failed: %s", job.id, exc)
        finally:
            session.info.pop(_FENCE, None)
            db.session.rollback()
        with transaction(actor=SYSTEM):
            db.session.execute(
                sa.update(JobRun)
                .where(JobRun.id == run.id)
                .values(status=status, error=error, finished_at=utcnow())
            )
        return status


def build_scheduler(app: Flask, *, holder: str | None = None) -> Any:
    """An APScheduler 3.x BlockingScheduler running every registered job under the lease."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    from config.settings import current_settings

    holder = holder or make_holder()
    with app.app_context():
        ttl = timedelta(seconds=current_settings().lease_ttl_seconds)
    scheduler = BlockingScheduler(timezone="UTC")

    def heartbeat() -> None:
        with app.app_context():
            held = acquire_lease(holder, now=utcnow(), ttl=ttl)
        log.debug("lease %s by %s", "held" if held else "not held", holder)

    scheduler.add_job(
        heartbeat,
        "interval",
        seconds=max(1, ttl.total_seconds() / 3),
        id="kernel.heartbeat",
        next_run_time=utcnow(),
        max_instances=1,
        coalesce=True,
    )
    for job in registry().values():
        scheduler.add_job(
            run_job,
            job.trigger,
            args=(app, job, holder),
            kwargs={"ttl": ttl},
            id=job.id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=60,
            **job.trigger_args,
        )
    scheduler.syndic_holder = holder
    return scheduler
