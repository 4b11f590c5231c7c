"""Time entries, one line each, for bulk export (CSV/XLSX of a year of timesheets).

No marshmallow: a narrow SELECT (users and projects joined for their names) streamed into
plain dicts. The number of lines is capped by ``[reporting] time_entries_max_rows`` (read with
LIMIT max + 1, no separate count); a larger export is a 400 asking for a shorter period.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from config.auth import User
from config.db import db
from config.tenancy import tenant_condition
from reporting.model import Column, Report, Table
from reporting.params import bad, check_known, codes, parse_period
from reporting.reports.base import Context, tenant_filter_ids
from servicedesk.models import Project, TimeEntry

__all__ = ["COLUMNS", "build_time_entries"]

PARAMS = ("from", "to", "year", "tenant", "pole", "activity")

COLUMNS = [
    Column("id", _l("No."), "int"),
    Column("date", _l("Date"), "date"),
    Column("user", _l("Staff member"), "text"),
    Column("tenant", _l("Member"), "text"),
    Column("activity", _l("Activity"), "text"),
    Column("activity_class", _l("Activity class"), "text"),
    Column("pole", _l("Team"), "text"),
    Column("minutes", _l("Minutes"), "int"),
    Column("days", _l("Days"), "days"),
    Column("ticket", _l("Ticket"), "int"),
    Column("project", _l("Project"), "text"),
    Column("channel", _l("Channel"), "text"),
    Column("note", _l("Note"), "text"),
]


def build_time_entries(params: Mapping[str, str], ctx: Context) -> Report:
    """Build the list of time entries of a period (see the module docstring)."""
    check_known(params, PARAMS)
    period = parse_period(params, today=ctx.today)
    tenant_ids = tenant_filter_ids(ctx, params)
    poles = codes(params, "pole")
    activities = codes(params, "activity")
    where = [
        TimeEntry.deleted_at.is_(None),
        TimeEntry.date >= period.start,
        TimeEntry.date <= period.end,
        tenant_condition(TimeEntry.tenant_id, ctx.actor, model=TimeEntry),
    ]
    if tenant_ids:
        where.append(TimeEntry.tenant_id.in_(sorted(tenant_ids)))
    if poles:
        where.append(TimeEntry.pole.in_(poles))
    if activities:
        where.append(TimeEntry.activity.in_(activities))
    limit = int(ctx.settings.get("time_entries_max_rows", 1_000_000))
    stmt = (
        select(
            TimeEntry.id,
            TimeEntry.date,
            User.username,
            TimeEntry.tenant_id,
            TimeEntry.activity,
            TimeEntry.pole,
            TimeEntry.minutes,
            TimeEntry.ticket_id,
            Project.code,
            TimeEntry.channel,
            TimeEntry.note,
        )
        .join(User, User.id == TimeEntry.user_id)
        .outerjoin(Project, Project.id == TimeEntry.project_id)
        .where(*where)
        .order_by(TimeEntry.date, TimeEntry.id)
        .limit(limit + 1)
    )
    classes = ctx.rules.activity_classes()
    codes_by_id: dict[int | None, str] = {tid: t[0] for tid, t in ctx.tenants().items()}
    codes_by_id[None] = ""
    workday = ctx.workday_minutes
    # Core execution (no ORM row processing): plain tuples, then one dict per line.
    result = db.session.connection().execute(stmt)
    rows: list[dict[str, Any]] = [
        {
            "id": eid,
            "date": date,
            "user": user,
            "tenant": codes_by_id.get(tid, ""),
            "activity": activity,
            "activity_class": classes.get(activity, activity),
            "pole": pole or "",
            "minutes": minutes,
            "days": round(minutes / workday, 4),
            "ticket": ticket,
            "project": project or "",
            "channel": channel.value if channel is not None else "",
            "note": note,
        }
        for eid, date, user, tid, activity, pole, minutes, ticket, project, channel, note in result
    ]
    if len(rows) > limit:
        raise bad("to", f"more than {limit} time entries: shorten the period.")
    total_minutes = sum(r["minutes"] for r in rows)
    title = _l("Time entries from %(start)s to %(end)s", start=period.start, end=period.end)
    total = {
        "id": None,
        "user": str(_l("Total")),
        "minutes": total_minutes,
        "days": round(total_minutes / workday, 2),
    }
    normalised = {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "tenant": params.get("tenant", ""),
        "pole": ",".join(poles),
        "activity": ",".join(activities),
    }
    return Report(
        name="time-entries",
        title=title,
        params={k: v for k, v in normalised.items() if v},
        denominators={},
        tables=[Table("rows", title, list(COLUMNS), rows, total)],
        extra={"count": len(rows)},
    )
