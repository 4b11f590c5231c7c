"""The connector base: a run's record, its page transactions and checkpoints, errors with
the external id, the deletion guards of API.md §4.

A connector fetches a page from its source (outside any transaction), then applies it in
one transaction through :meth:`Run.page`, which also writes, in that same transaction, the
source's checkpoint (where to resume), the page's counts and errors, and the ids the page
listed. A process killed at any point therefore resumes from the last committed page:
nothing applied twice, nothing skipped. Each record goes through :meth:`Run.apply` inside a
savepoint: a bad record is recorded as an error with its external id and the rest of the
page goes through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select

from config.auth import SYSTEM
from config.db import db, transaction, utcnow
from config.errors import AppError
from config.jobs import LeaseLost, acquire_lease, make_holder
from connectors.http import Masker
from connectors.models import SyncError, SyncRun, SyncSeen, SyncSource

__all__ = ["MassDelete", "Run", "RunFailed", "SourceBusy", "record_message"]

log = logging.getLogger("syndic.connectors")

MAX_STORED_ERRORS = 5000


class RunFailed(RuntimeError):
    """The run cannot go on (source unreachable, listing incomplete ...)."""


class MassDelete(RunFailed):
    """More than the allowed share of a source's objects would vanish at once."""


class SourceBusy(RuntimeError):
    """Another process is running a sync of this source."""


def record_message(exc: BaseException) -> str:
    """A one-line description of why a record was refused."""
    if isinstance(exc, AppError):
        parts = [exc.detail]
        for name, messages in (exc.errors or {}).items():
            parts.append(f"{name}: {'; '.join(str(m) for m in messages)}")
        return " ".join(parts)
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, object_type: str, what: str, n: int = 1) -> None:
        setattr(self, what, getattr(self, what) + n)
        per = self.by_type.setdefault(object_type, {})
        per[what] = per.get(what, 0) + n


class Run:
    """One run of one source. Create with :meth:`start`; finish with :meth:`finish`."""

    def __init__(
        self,
        run: SyncRun,
        source: SyncSource,
        *,
        masker: Masker,
        holder: str,
        lease_ttl: timedelta,
        mass_delete_share: float,
        progress: Callable[[str, int], None] | None = None,
    ) -> None:
        self.record = run
        self.run_id = run.id
        self.source_name = source.name
        self.source_id = source.id
        self.masker = masker
        self.holder = holder
        self.lease_ttl = lease_ttl
        self.mass_delete_share = mass_delete_share
        self.progress = progress
        self.resume: dict[str, Any] | None = None
        self.watermark: str | None = source.watermark
        self.pending = Counts()
        self.totals = Counts()
        self.pending_errors: list[dict[str, Any]] = []
        self.pending_seen: list[dict[str, Any]] = []
        self.error_count = 0
        self.warning_count = 0
        self.started = time.monotonic()
        self.partial = False  # a listing failed: no deletion, no watermark move

    # -- life cycle --------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        source_name: str,
        kind: str,
        *,
        mode: str,
        trigger: str,
        run_id: int | None = None,
        requested_by: str | None = None,
        allow_mass_delete: bool = False,
        masker: Masker | None = None,
        lease_ttl: timedelta = timedelta(seconds=120),
        mass_delete_share: float = 0.2,
        progress: Callable[[str, int], None] | None = None,
    ) -> Run:
        """Take the source's lease, record the run as running, and adopt the checkpoint
        of an interrupted run (its seen ids too) so that this one resumes it."""
        holder = make_holder()
        if not acquire_lease(holder, now=utcnow(), ttl=lease_ttl, name=f"sync:{source_name}"):
            raise SourceBusy(f"a sync of {source_name} is already running")
        now = utcnow()
        with transaction(actor=SYSTEM):
            source = db.session.execute(
                select(SyncSource).where(SyncSource.name == source_name)
            ).scalar()
            if source is None:
                source = SyncSource(name=source_name, kind=kind)
                db.session.add(source)
                db.session.flush()
            run = db.session.get(SyncRun, run_id) if run_id else None
            if run is None:
                run = SyncRun(
                    source=source_name,
                    mode=mode,
                    trigger=trigger,
                    status="running",
                    requested_by=requested_by,
                    allow_mass_delete=allow_mass_delete,
                    queued_at=now,
                    by_type={},
                )
                db.session.add(run)
            run.status = "running"
            run.started_at = now
            db.session.flush()
            resume = None
            checkpoint = source.checkpoint or {}
            old_id = checkpoint.get("run_id")
            if old_id and old_id != run.id:
                old = db.session.get(SyncRun, old_id)
                if old is not None and old.status == "running":
                    # The holder of the lease died (we hold it now): resume its work.
                    old.status = "failed"
                    old.finished_at = now
                    old.detail = f"interrupted; resumed by run {run.id}"
                    run.resumed_from = old.id
                    run.mode = old.mode
                    run.allow_mass_delete = run.allow_mass_delete or old.allow_mass_delete
                    db.session.execute(
                        sa.update(SyncSeen).where(SyncSeen.run_id == old.id).values(run_id=run.id)
                    )
                    resume = dict(checkpoint)
            if resume is None:
                db.session.execute(sa.delete(SyncSeen).where(SyncSeen.run_id == run.id))
            source.checkpoint = {**(resume or {}), "run_id": run.id}
            source.last_run_at = now
        self = cls(
            run,
            source,
            masker=masker or Masker(),
            holder=holder,
            lease_ttl=lease_ttl,
            mass_delete_share=mass_delete_share,
            progress=progress,
        )
        self.resume = resume
        return self

    @property
    def mode(self) -> str:
        return self.record.mode

    def renew(self) -> None:
        if not acquire_lease(
            self.holder, now=utcnow(), ttl=self.lease_ttl, name=f"sync:{self.source_name}"
        ):
            raise LeaseLost(f"lost the lease of sync:{self.source_name}")

    def finish(self, *, failure: str | None = None, watermark: str | None = None) -> SyncRun:
        """Record the end of the run; a complete run clears the checkpoint and moves the
        watermark, a failed one keeps the watermark (the next run re-reads)."""
        db.session.rollback()
        status = "failed" if failure or self.partial else "succeeded"
        now = utcnow()
        with transaction(actor=SYSTEM):
            self._flush_pending()
            run = self._run_row()
            run.status = status
            run.finished_at = now
            run.duration_ms = int((time.monotonic() - self.started) * 1000)
            if failure:
                run.detail = self.masker(failure)[:2000]
            elif self.partial:
                run.detail = "incomplete listing: see the errors; nothing deleted, watermark kept"
            source = db.session.get(SyncSource, self.source_id)
            if source is None:
                raise RunFailed(f"the state of source {self.source_name} vanished")
            if status == "succeeded":
                source.checkpoint = None
                source.last_success_at = now
                if watermark:
                    source.watermark = watermark
                if run.mode == "full":
                    source.last_full_at = now
            elif failure and source.checkpoint and source.checkpoint.get("run_id") == run.id:
                # A clean failure (not a kill): the next run starts afresh.
                source.checkpoint = None
            db.session.execute(sa.delete(SyncSeen).where(SyncSeen.run_id == run.id))
            self.record = run
        self._release()
        return self.record

    def _release(self) -> None:
        from config.jobs import Lease

        with transaction(actor=SYSTEM):
            db.session.execute(
                sa.update(Lease)
                .where(Lease.name == f"sync:{self.source_name}", Lease.holder == self.holder)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )

    # -- pages -------------------------------------------------------------------------

    @contextmanager
    def page(self, checkpoint: dict[str, Any] | None) -> Iterator[None]:
        """Apply one page in one transaction, together with its checkpoint, counts, errors
        and seen ids. On an exception nothing of the page stays (counts included)."""
        self.renew()
        try:
            with transaction(actor=SYSTEM):
                yield
                if checkpoint is not None:
                    db.session.execute(
                        sa.update(SyncSource)
                        .where(SyncSource.id == self.source_id)
                        .values(checkpoint={**checkpoint, "run_id": self.run_id})
                    )
                self._flush_pending(pages=1)
        except BaseException:
            self.pending = Counts()
            self.pending_errors = []
            self.pending_seen = []
            raise

    def _run_row(self) -> SyncRun:
        run = db.session.get(SyncRun, self.run_id)
        if run is None:
            raise RunFailed(f"run {self.run_id} vanished")
        return run

    def _flush_pending(self, pages: int = 0) -> None:
        p = self.pending
        run = self._run_row()
        by_type = {k: dict(v) for k, v in (run.by_type or {}).items()}
        for object_type, counts in p.by_type.items():
            per = by_type.setdefault(object_type, {})
            for what, n in counts.items():
                per[what] = per.get(what, 0) + n
        run.created += p.created
        run.updated += p.updated
        run.deleted += p.deleted
        run.unchanged += p.unchanged
        run.skipped += p.skipped
        run.pages += pages
        run.by_type = by_type
        errors = [e for e in self.pending_errors if e["level"] == "error"]
        warnings = [e for e in self.pending_errors if e["level"] == "warning"]
        run.error_count += len(errors)
        run.warning_count += len(warnings)
        room = MAX_STORED_ERRORS - self.error_count - self.warning_count
        if self.pending_errors and room > 0:
            db.session.execute(
                sa.insert(SyncError),
                [{**e, "run_id": self.run_id} for e in self.pending_errors[:room]],
            )
        if self.pending_seen:
            db.session.execute(sa.insert(SyncSeen), self.pending_seen)
        self.error_count += len(errors)
        self.warning_count += len(warnings)
        for what in ("created", "updated", "deleted", "unchanged", "skipped"):
            self.totals.add("all", what, getattr(p, what))
        self.pending = Counts()
        self.pending_errors = []
        self.pending_seen = []

    # -- records -----------------------------------------------------------------------

    def apply(
        self,
        object_type: str,
        external_id: Any,
        func: Callable[[], str],
        *,
        line: int | None = None,
    ) -> str | None:
        """Apply one record in a savepoint; count its result (created/updated/unchanged/
        skipped/deleted), or record the error with its external id and go on."""
        try:
            with db.session.begin_nested():
                result = func()
        except (LeaseLost, sa.exc.OperationalError, sa.exc.InterfaceError):
            raise
        except Exception as exc:  # noqa: BLE001 - a bad record never stops the page
            self.error(object_type, external_id, record_message(exc), line=line)
            self.pending.add(object_type, "skipped")
            return None
        self.pending.add(object_type, result)
        return result

    def count(self, object_type: str, what: str, n: int = 1) -> None:
        if n:
            self.pending.add(object_type, what, n)

    def error(
        self, object_type: str, external_id: Any, message: str, *, line: int | None = None
    ) -> None:
        self._log("error", object_type, external_id, message, line)

    def warning(
        self, object_type: str, external_id: Any, message: str, *, line: int | None = None
    ) -> None:
        self._log("warning", object_type, external_id, message, line)

    def _log(
        self, level: str, object_type: str, external_id: Any, message: str, line: int | None
    ) -> None:
        self.pending_errors.append(
            {
                "level": level,
                "object_type": object_type,
                "external_id": None if external_id is None else str(external_id)[:64],
                "line": line,
                "message": self.masker(message)[:2000],
                "at": utcnow(),
            }
        )

    def listing_failed(self, object_type: str, message: str) -> None:
        """A page could not be read: the listing is partial (no deletion, watermark kept).
        Recorded in its own transaction so that it survives whatever comes next."""
        self.partial = True
        self.error(object_type, None, message)
        with transaction(actor=SYSTEM):
            self._flush_pending()

    def seen(self, kind: str, external_ids: Iterable[Any]) -> None:
        self.pending_seen.extend(
            {"run_id": self.run_id, "kind": kind, "external_id": str(e)} for e in external_ids
        )

    def seen_select(self, kind: str) -> sa.Select[Any]:
        return select(SyncSeen.external_id).where(
            SyncSeen.run_id == self.run_id, SyncSeen.kind == kind
        )

    def tick(self, what: str, n: int) -> None:
        if self.progress:
            self.progress(what, n)

    # -- deletion guard ----------------------------------------------------------------

    def guard_mass_delete(self, object_type: str, vanished: int, live: int) -> None:
        """API.md §4: more than the allowed share vanishing at once fails the run."""
        too_many = vanished and live and vanished > self.mass_delete_share * live
        if too_many and not self.record.allow_mass_delete:
            raise MassDelete(
                f"{vanished} of {live} {object_type}s would be deleted at once (more than "
                f"{self.mass_delete_share:.0%}); nothing deleted. Check the source, then "
                "run again with --allow-mass-delete if this is right."
            )
