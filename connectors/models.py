"""What the connectors store: each source's state (watermark, checkpoint), each run with its
counts and errors, the links from external ids to local tenants and users, and the ids seen
by a run's complete listings (for the deletion sweep)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from config.db import JSONType, Model, UTCDateTime, utcnow

__all__ = ["SyncError", "SyncLink", "SyncRun", "SyncSeen", "SyncSource"]

RUN_STATUSES = ("queued", "running", "succeeded", "failed")


class SyncSource(Model):
    """The state of one configured source: where the last complete run got to, and where an
    interrupted one stopped (``checkpoint``, written in the same transaction as each page)."""

    __tablename__ = "sync_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    # The source's own clock (GLPI: local naive "YYYY-MM-DD HH:MM:SS") of the newest change
    # applied by the last complete incremental or full run.
    watermark: Mapped[str | None] = mapped_column(String(32))
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_full_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SyncRun(Model):
    """One run of a source: status, counts over all object types, duration."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    mode: Mapped[str] = mapped_column(String(20))  # incremental | full
    trigger: Mapped[str] = mapped_column(String(20))  # cli | api | scheduler | test
    status: Mapped[str] = mapped_column(String(20), index=True)
    requested_by: Mapped[str | None] = mapped_column(String(150))
    allow_mass_delete: Mapped[bool] = mapped_column(default=False)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int | None] = mapped_column()
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    deleted: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    warning_count: Mapped[int] = mapped_column(default=0)
    pages: Mapped[int] = mapped_column(default=0)
    by_type: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Why the run failed (one line, secrets masked), or which run it resumed.
    detail: Mapped[str | None] = mapped_column(Text)
    resumed_from: Mapped[int | None] = mapped_column()

    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')", name="status_known"
        ),
    )


class SyncError(Model):
    """One record a run could not apply (``level`` error) or applied with a doubt (warning)."""

    __tablename__ = "sync_errors"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(10))  # error | warning
    object_type: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str | None] = mapped_column(String(64))
    line: Mapped[int | None] = mapped_column()  # file sources: the line number
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_sync_errors_run_id", "run_id", "id"),)


class SyncLink(Model):
    """An external id (``source``, ``kind``: entity, user...) and the local row it became."""

    __tablename__ = "sync_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(64))
    local_id: Mapped[int] = mapped_column()

    __table_args__ = (UniqueConstraint("source", "kind", "external_id"),)


class SyncSeen(Model):
    """The external ids a full run's complete listings returned, written with each page so
    that a resumed run still knows them; emptied when the run ends."""

    __tablename__ = "sync_seen"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("sync_runs.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), primary_key=True)
