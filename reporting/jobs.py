"""Scheduled jobs of reporting (run by `syndic scheduler` only)."""

from __future__ import annotations

from config.db import utcnow
from config.jobs import scheduled
from reporting import services


@scheduled("interval", id="reporting.archive_pmo", hours=1)
def archive_pmo() -> None:
    """Archive the previous month's PMO report once due (catches up), then purge old files."""
    services.archive_due_pmo(now=utcnow())
    services.purge_archives(now=utcnow())
