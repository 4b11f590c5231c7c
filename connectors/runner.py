"""Run one sync of one configured source (the CLI, the scheduler and the tests call this)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select

from config.db import db, transaction, utcnow
from config.errors import NotFound
from config.settings import current_settings
from connectors.engine import Run, RunFailed
from connectors.http import Masker
from connectors.models import SyncRun
from connectors.settings import SourceConfig

__all__ = ["KINDS", "queue_run", "run_queued", "run_source", "source_config"]

log = logging.getLogger("syndic.connectors")

KINDS = ("glpi", "csv")


def source_config(name: str) -> SourceConfig:
    settings = current_settings()
    source = settings.sources.get(name)
    if source is None or source.kind not in KINDS:
        raise NotFound(f"No sync source named {name!r}.")
    return SourceConfig.of(settings, source)


def run_source(
    name: str,
    *,
    full: bool = False,
    trigger: str = "cli",
    run_id: int | None = None,
    allow_mass_delete: bool = False,
    requested_by: str | None = None,
    progress: Callable[[str, int], None] | None = None,
    file: str | None = None,
) -> SyncRun:
    """Run a sync now, in this process; returns the finished run (succeeded or failed).

    Raises :class:`~connectors.engine.SourceBusy` if another process runs this source.
    """
    conf = source_config(name)
    masker = Masker(conf.secrets.values())
    from servicedesk.queries import current_rules

    rules = current_rules()
    run = Run.start(
        name,
        conf.kind,
        mode="full" if full or conf.kind == "csv" else "incremental",
        trigger=trigger,
        run_id=run_id,
        requested_by=requested_by,
        allow_mass_delete=allow_mass_delete,
        masker=masker,
        lease_ttl=timedelta(seconds=conf.run_lease_seconds),
        mass_delete_share=conf.mass_delete_share,
        progress=progress,
    )
    try:
        if conf.kind == "glpi":
            watermark = _run_glpi(conf, run, rules)
        else:
            from connectors.files import FileSync

            watermark = FileSync(conf, run, rules, path=file).execute()
    except RunFailed as exc:
        return run.finish(failure=str(exc))
    except Exception as exc:
        from connectors.glpi_client import GlpiError

        if isinstance(exc, GlpiError):
            return run.finish(failure=str(exc))
        log.exception("sync %s crashed", name)
        run.finish(failure=f"{type(exc).__name__}: {masker(exc)}")
        raise
    return run.finish(watermark=watermark)


def _run_glpi(conf: SourceConfig, run: Run, rules: Any) -> str | None:
    from connectors.glpi import GlpiSync
    from connectors.glpi_client import GlpiClient

    token = conf.secrets.get("user_token")
    if not conf.url or not token:
        raise RunFailed(f"source {conf.name}: url and user_token are required")
    client = GlpiClient(
        conf.url,
        user_token=token,
        app_token=conf.secrets.get("app_token"),
        page_size=conf.page_size,
        timeout=(conf.connect_timeout, conf.read_timeout),
        retries=conf.retries,
        backoff=conf.backoff,
        on_notice=lambda text: run.warning("http", None, f"PHP notice before the JSON: {text}"),
    )
    with client:
        return GlpiSync(conf, run, client, rules).execute()


def queue_run(name: str, *, full: bool, allow_mass_delete: bool, requested_by: str) -> SyncRun:
    """Queue a run for ``syndic scheduler`` (the caller checked that one holds the lease)."""
    source_config(name)
    with transaction():
        run = SyncRun(
            source=name,
            mode="full" if full else "incremental",
            trigger="api",
            status="queued",
            requested_by=requested_by,
            allow_mass_delete=allow_mass_delete,
            queued_at=utcnow(),
            by_type={},
        )
        db.session.add(run)
    return run


def run_queued() -> int:
    """Run the queued runs, oldest first (the scheduler's job); returns how many ran."""
    done = 0
    while True:
        run = db.session.execute(
            select(SyncRun).where(SyncRun.status == "queued").order_by(SyncRun.id).limit(1)
        ).scalar()
        if run is None:
            return done
        try:
            run_source(
                run.source,
                full=run.mode == "full",
                trigger="api",
                run_id=run.id,
                allow_mass_delete=run.allow_mass_delete,
                requested_by=run.requested_by,
            )
        except NotFound as exc:
            with transaction():
                db.session.execute(
                    sa.update(SyncRun)
                    .where(SyncRun.id == run.id)
                    .values(status="failed", detail=exc.detail, finished_at=utcnow())
                )
        done += 1
