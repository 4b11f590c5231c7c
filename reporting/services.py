"""The reporting use cases: build a report by name for an actor (the interface the API, the
command line, the scheduler and the management pages all use).

``build_report(name, params, actor)`` checks the permission, parses the parameters (400 on
anything wrong, listing the allowed values), runs the report's GROUP BY statements inside the
caller's tenant scope and returns a :class:`~reporting.model.Report`; ``reporting.render``
turns it into bytes of any format.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import select

from config.auth import SYSTEM, Actor, Role, require
from config.db import db, transaction, utcnow
from config.errors import NotFound
from config.settings import current_settings
from config.tenancy import Tenant, TenantKind, get_scoped, tenant_scope
from reporting import permissions  # noqa: F401  (registers reporting.read)
from reporting.i18n import report_locale
from reporting.model import Chart, Column, GanttBar, Report, Table
from reporting.models import ReportArchive
from reporting.reports.base import Context
from reporting.reports.chargeback import build_chargeback
from reporting.reports.pmo import build_pmo
from reporting.reports.satisfaction import build_satisfaction
from reporting.reports.tickets import build_tickets
from reporting.reports.time_entries import build_time_entries
from reporting.reports.training import build_training
from reporting.reports.workload import build_workload
from servicedesk.queries import current_rules

__all__ = [
    "ARCHIVE_FORMATS",
    "REPORTS",
    "Chart",
    "Column",
    "GanttBar",
    "Report",
    "Table",
    "archive_due_pmo",
    "archive_report",
    "archives_select",
    "build_report",
    "get_archive",
    "make_context",
    "pmo_month_due",
    "purge_archives",
    "reporting_settings",
]

Builder = Callable[[Mapping[str, str], Context], Report]

_BUILDERS: dict[str, Builder] = {
    "workload": build_workload,
    "tickets": build_tickets,
    "pmo": build_pmo,
    "chargeback": build_chargeback,
    "training": build_training,
    "satisfaction": build_satisfaction,
    "time-entries": build_time_entries,
}
REPORTS: tuple[str, ...] = tuple(_BUILDERS)

DEFAULTS: dict[str, Any] = {
    "archive_day": 1,
    "archive_dir": "reports",
    "archive_formats": ["pdf", "xlsx"],
    "archive_keep_months": 36,
    "archive_per_member": True,
    "chargeback_key": "proportional",
    "time_entries_max_rows": 1_000_000,
}


def reporting_settings() -> dict[str, Any]:
    """The ``[reporting]`` section with defaults filled in."""
    return {**DEFAULTS, **dict(current_settings().section("reporting"))}


def make_context(actor: Actor, *, today: dt.date | None = None) -> Context:
    rules = current_rules()
    if today is None:
        today = utcnow().astimezone(current_settings().tz).date()
    return Context(actor=actor, rules=rules, today=today, settings=reporting_settings())


def build_report(
    name: str, params: Mapping[str, str], actor: Actor, *, today: dt.date | None = None
) -> Report:
    """Build report ``name`` with ``params`` as ``actor`` sees it.

    Raises Forbidden (403) for roles without reports access (technician, infra), NotFound
    (404, listing the reports) for an unknown name, BadRequest (400) for bad parameters.
    ``today`` (the local date) sets the default period; it defaults to now.
    """
    require(actor, "reporting.read")
    builder = _BUILDERS.get(name)
    if builder is None:
        raise NotFound(f"No report named {name[:60]!r}.", allowed=list(REPORTS))
    with report_locale():
        return builder(params, make_context(actor, today=today))


# -- archive ------------------------------------------------------------------------------

ARCHIVE_FORMATS = ("pdf", "xlsx")


def archive_root() -> Path:
    """The folder of archived files (``[reporting] archive_dir``, relative to the instance
    folder unless absolute)."""
    configured = Path(str(reporting_settings()["archive_dir"]))
    if configured.is_absolute():
        return configured
    return Path(current_app.instance_path) / configured


def _member_actor(tenant_id: int, tenants: Mapping[int, tuple[str, str, int | None, str]]) -> Actor:
    """A manager bound to one member (and its sub-tenants), to build that member's view."""
    ids = {tenant_id}
    changed = True
    while changed:
        changed = False
        for tid, (_c, _n, parent, _k) in tenants.items():
            if parent in ids and tid not in ids:
                ids.add(tid)
                changed = True
    actor = Actor(None, f"archive:{tenants[tenant_id][0]}", Role.MANAGER, False)
    actor.cache["tenant_ids"] = frozenset(ids)
    return actor


def archive_report(
    name: str,
    params: Mapping[str, str],
    period: str,
    *,
    now: dt.datetime,
    tenant_id: int | None = None,
    formats: Sequence[str] = ARCHIVE_FORMATS,
) -> list[ReportArchive]:
    """Build report ``name`` as the syndicate (``tenant_id=None``) or as one member sees it,
    render it in ``formats`` and keep the files. Idempotent: a file already archived for
    the same report, period, member and format is left as it is."""
    from reporting.render import render

    existing = {
        a.format
        for a in db.session.execute(
            select(ReportArchive).where(
                ReportArchive.report == name,
                ReportArchive.period == period,
                ReportArchive.tenant_id.is_(None)
                if tenant_id is None
                else ReportArchive.tenant_id == tenant_id,
            )
        ).scalars()
    }
    missing = [f for f in formats if f not in existing]
    if not missing:
        return []
    ctx = make_context(SYSTEM, today=now.astimezone(current_settings().tz).date())
    actor = SYSTEM if tenant_id is None else _member_actor(tenant_id, ctx.tenants())
    report = build_report(name, params, actor, today=ctx.today)
    owner = "all" if tenant_id is None else ctx.tenant_code(tenant_id)
    folder = Path(name) / period / owner
    (archive_root() / folder).mkdir(parents=True, exist_ok=True)
    created = []
    with transaction():
        for fmt in missing:
            body, _mimetype, filename = render(report, fmt)
            if tenant_id is not None:
                filename = f"{Path(filename).stem}_{owner}{Path(filename).suffix}"
            relative = folder / filename
            target = archive_root() / relative
            tmp = target.with_suffix(target.suffix + ".tmp")
            tmp.write_bytes(body)
            os.replace(tmp, target)
            row = ReportArchive(
                report=name,
                period=period,
                tenant_id=tenant_id,
                format=fmt,
                filename=filename,
                path=relative.as_posix(),
                size=len(body),
                sha256=hashlib.sha256(body).hexdigest(),
                created_at=now,
            )
            db.session.add(row)
            created.append(row)
    return created


def pmo_month_due(today: dt.date, archive_day: int) -> str:
    """The month whose PMO report should be archived by ``today``: the previous month from
    the archive day on, the one before until then (so a missed run catches up)."""
    first = today.replace(day=1)
    months_back = 1 if today.day >= archive_day else 2
    for _ in range(months_back):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return f"{first.year:04d}-{first.month:02d}"


def archive_due_pmo(*, now: dt.datetime) -> int:
    """Archive the PMO report of the month due (see :func:`pmo_month_due`): the syndicate's
    view and, when ``archive_per_member``, each member's own view. Returns the number of
    files written (0 when everything was already there)."""
    conf = reporting_settings()
    today = now.astimezone(current_settings().tz).date()
    # Days 29–31 do not exist in every month: the archive day is kept within 1–28.
    month = pmo_month_due(today, min(max(int(conf["archive_day"]), 1), 28))
    formats = [str(f) for f in conf.get("archive_formats", ARCHIVE_FORMATS)]
    written = len(archive_report("pmo", {"month": month}, month, now=now, formats=formats))
    if conf["archive_per_member"]:
        members = db.session.execute(
            select(Tenant.id).where(
                Tenant.active.is_(True),
                Tenant.parent_id.is_(None),
                Tenant.kind != TenantKind.INTERNAL,
            )
        ).scalars()
        for tid in members:
            written += len(
                archive_report(
                    "pmo", {"month": month}, month, now=now, tenant_id=tid, formats=formats
                )
            )
    return written


def purge_archives(*, now: dt.datetime) -> int:
    """Delete archived files (rows and files) older than ``archive_keep_months``."""
    keep = int(reporting_settings()["archive_keep_months"])
    cutoff = now - dt.timedelta(days=round(keep * 30.44))
    root = archive_root()
    with transaction():
        old = list(
            db.session.execute(
                select(ReportArchive).where(ReportArchive.created_at < cutoff)
            ).scalars()
        )
        for row in old:
            (root / row.path).unlink(missing_ok=True)
            db.session.delete(row)
    return len(old)


def archives_select(actor: Actor) -> sa.Select[Any]:
    """The archived files the actor may see (managers and admins only)."""
    require(actor, "reporting.read")
    return tenant_scope(select(ReportArchive), actor)


def get_archive(archive_id: int, actor: Actor) -> tuple[ReportArchive, bytes]:
    """One archived file and its bytes; NotFound for a file of another member, the
    all-tenants view asked by a member, or a file missing from disk."""
    require(actor, "reporting.read")
    row = get_scoped(ReportArchive, archive_id, actor)
    try:
        body = (archive_root() / row.path).read_bytes()
    except OSError:
        raise NotFound(f"Archive {archive_id} not found.") from None
    return row, body
