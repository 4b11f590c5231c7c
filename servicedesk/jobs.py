"""Scheduled jobs of the service desk."""

from __future__ import annotations

from config.db import utcnow
from config.jobs import scheduled
from servicedesk import queries, services


@scheduled("interval", id="servicedesk.flag_sla_breaches", minutes=5)
def flag_sla_breaches() -> None:
    """Flag the open tickets whose SLA deadline has passed."""
    services.flag_breached_tickets(now=utcnow(), rules=queries.current_rules())
