"""Starting a run from the API or the sync page: one rule for both (admins; the source must
exist; queued for ``syndic scheduler``, 503 while no scheduler holds the lease)."""

from __future__ import annotations

from config.auth import Actor, require
from config.db import utcnow
from config.errors import NotFound, ServiceUnavailable
from config.jobs import lease_holder
from config.settings import current_settings
from connectors import runner
from connectors.models import SyncRun

__all__ = ["start_run"]


def start_run(name: str, *, full: bool, allow_mass_delete: bool, actor: Actor) -> SyncRun:
    """Queue a run of source ``name``. Raises Forbidden (403), NotFound (404),
    ServiceUnavailable (503, Retry-After) when no scheduler would pick it up."""
    require(actor, "connectors.runs.start")
    if name not in current_settings().sources:
        raise NotFound(f"No sync source named {name!r}.")
    if lease_holder(now=utcnow()) is None:
        raise ServiceUnavailable(
            "No scheduler is running: start `syndic scheduler`, or run "
            "`syndic sync` from the command line.",
            headers={"Retry-After": "60"},
        )
    return runner.queue_run(
        name, full=full, allow_mass_delete=allow_mass_delete, requested_by=actor.username
    )
