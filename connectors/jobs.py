"""The connectors' scheduled jobs (run by ``syndic scheduler`` under the kernel's lease)."""

from __future__ import annotations

import logging

from config.jobs import scheduled
from config.settings import current_settings
from connectors.engine import SourceBusy
from connectors.settings import ConnectorSettings

log = logging.getLogger("syndic.connectors")


def _sources() -> list[str]:
    from connectors.runner import KINDS

    return sorted(
        name
        for name, source in current_settings().sources.items()
        if source.kind in KINDS and (source.kind != "csv" or source.options.get("path"))
    )


def _sync_all(*, full: bool) -> None:
    from connectors.runner import run_source

    failed = []
    for name in _sources():
        try:
            run = run_source(name, full=full, trigger="scheduler")
        except SourceBusy as exc:
            log.info("%s", exc)
            continue
        if run.status != "succeeded":
            failed.append(f"{name} (run {run.id})")
    if failed:
        raise RuntimeError("sync failed: " + ", ".join(failed))


def sync_incremental() -> None:
    """Incremental sync of every configured source."""
    _sync_all(full=False)


def sync_full() -> None:
    """The nightly full sweep of every configured source (deletions applied)."""
    _sync_all(full=True)


def run_queued_runs() -> None:
    """The runs queued through ``POST /api/v1/sync/sources/{name}/runs``."""
    from connectors.runner import run_queued

    run_queued()


def register(conf: ConnectorSettings, timezone: str) -> None:
    """Register the jobs with this app's intervals (settings are read at app creation)."""
    scheduled("interval", id="connectors.sync_incremental", minutes=conf.interval_minutes)(
        sync_incremental
    )
    scheduled(
        "cron",
        id="connectors.sync_full",
        hour=conf.full_sweep_hour,
        minute=conf.full_sweep_minute,
        timezone=timezone,
    )(sync_full)
    scheduled("interval", id="connectors.run_queued", seconds=conf.queue_poll_seconds)(
        run_queued_runs
    )
