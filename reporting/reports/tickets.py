"""Ticket KPIs: opened, solved, backlog at the end of the period (or of each month), median
and 90th percentile of the time to resolve in business hours, SLA compliance; by tenant,
month, category and/or type.

Counts are SQL GROUP BY statements. The resolution-time quantiles need the business
calendar (opening hours, French public holidays, per-tenant calendars), which SQL does not
know: they come from one narrow streamed query of the solved tickets (five columns), each
duration computed with the service desk's calendar, minus the time spent pending.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from config.db import db
from config.tenancy import tenant_condition
from reporting.model import Chart, Column, Report, Table
from reporting.params import Period, check_known, choices, parse_period
from reporting.reports.base import (
    Context,
    local_instant,
    local_month_of,
    share,
    tenant_filter_ids,
)
from servicedesk.models import Category, Ticket
from servicedesk.sla import percentile

__all__ = ["build_tickets"]

DIMENSIONS = ("tenant", "month", "category", "type")
PARAMS = ("from", "to", "year", "group_by", "tenant")

_LABELS = {
    "tenant": _l("Member"),
    "month": _l("Month"),
    "category": _l("Category"),
    "type": _l("Type"),
}


def _instant(ctx: Context, day: dt.date) -> dt.datetime:
    """Local midnight of ``day`` as an aware UTC instant."""
    return local_instant(day, ctx.rules.calendar.tz)


def _dims(group_by: Sequence[str], moment: Any, ctx: Context, period: Period) -> list[Any]:
    """The grouping columns; months are local months of the service desk's calendar."""
    out: list[Any] = []
    for d in group_by:
        if d == "tenant":
            out.append(Ticket.tenant_id.label(d))
        elif d == "category":
            out.append(Ticket.category_id.label(d))
        elif d == "type":
            out.append(Ticket.type.label(d))
        else:
            out.append(local_month_of(moment, period, ctx.rules.calendar.tz).label(d))
    return out


def _base(ctx: Context, stmt: sa.Select[Any], tenant_ids: set[int], scoped: bool = True) -> Any:
    stmt = stmt.where(Ticket.deleted_at.is_(None))
    if scoped:
        stmt = stmt.where(tenant_condition(Ticket.tenant_id, ctx.actor))
    if tenant_ids:
        stmt = stmt.where(Ticket.tenant_id.in_(sorted(tenant_ids)))
    return stmt


def _grouped(stmt: sa.Select[Any], group_by: Sequence[str]) -> sa.Select[Any]:
    if group_by:
        stmt = stmt.group_by(*[sa.literal_column(d) for d in group_by])
    return stmt


def _key(row: Any, n: int) -> tuple[Any, ...]:
    return tuple(getattr(v, "value", v) for v in row[:n])


def build_tickets(params: Mapping[str, str], ctx: Context) -> Report:
    """Build the ticket KPI report (see the module docstring)."""
    check_known(params, PARAMS)
    period = parse_period(params, today=ctx.today)
    group_by = choices(params, "group_by", DIMENSIONS, ["tenant"])
    tenant_ids = tenant_filter_ids(ctx, params)
    start, end = _instant(ctx, period.start), _instant(ctx, period.end_exclusive)
    n = len(group_by)

    opened: dict[tuple[Any, ...], int] = {}
    stmt = _base(
        ctx, select(*_dims(group_by, Ticket.opened_at, ctx, period), sa.func.count()), tenant_ids
    )
    stmt = stmt.where(Ticket.opened_at >= start, Ticket.opened_at < end)
    for counted in db.session.execute(_grouped(stmt, group_by)):
        opened[_key(counted, n)] = int(counted[-1])

    solved: dict[tuple[Any, ...], tuple[int, int, int]] = {}
    met = sa.func.sum(sa.case((Ticket.solved_at <= Ticket.due_to_resolve_at, 1), else_=0))
    stmt = select(
        *_dims(group_by, Ticket.solved_at, ctx, period),
        sa.func.count(),
        met,
        sa.func.count(Ticket.due_to_resolve_at),
    )
    stmt = _base(ctx, stmt, tenant_ids).where(Ticket.solved_at >= start, Ticket.solved_at < end)
    for counted in db.session.execute(_grouped(stmt, group_by)):
        solved[_key(counted, n)] = (
            int(counted[n]),
            int(counted[n + 1] or 0),
            int(counted[n + 2]),
        )

    backlog = _backlog(ctx, period, group_by, tenant_ids)
    total_backlog = _backlog(ctx, period, [], tenant_ids).get((), 0)
    durations = _durations(ctx, period, group_by, tenant_ids, start, end)

    categories: dict[int, str] = {}
    if "category" in group_by:
        categories = dict(db.session.execute(select(Category.id, Category.path)).all())  # type: ignore[arg-type]

    columns = [Column(d, _LABELS[d], "month" if d == "month" else "text") for d in group_by]
    columns += [
        Column("opened", _l("Number opened"), "int"),
        Column("solved", _l("Solved"), "int"),
        Column("backlog", _l("Backlog at the end"), "int"),
        Column("median_hours", _l("Median time (business hours)"), "decimal"),
        Column("p90_hours", _l("90th percentile time (business hours)"), "decimal"),
        Column("sla_met", _l("Solved in time"), "int"),
        Column("sla_total", _l("Solved with a deadline"), "int"),
        Column("sla_compliance", _l("SLA compliance"), "share"),
    ]
    keys = sorted(set(opened) | set(solved) | set(backlog), key=lambda k: tuple(str(x) for x in k))
    rows: list[dict[str, Any]] = []
    all_durations: list[float] = []
    for key in keys:
        row: dict[str, Any] = {}
        for dim, value in zip(group_by, key, strict=True):
            if dim == "tenant":
                value = ctx.tenant_code(value)
            elif dim == "category":
                value = categories.get(value, "") if value is not None else ""
            row[dim] = value
        s, m, t = solved.get(key, (0, 0, 0))
        hours = durations.get(key, [])
        row.update(
            opened=opened.get(key, 0),
            solved=s,
            backlog=backlog.get(key, 0),
            median_hours=_round(percentile(hours, 0.5)),
            p90_hours=_round(percentile(hours, 0.9)),
            sla_met=m,
            sla_total=t,
            sla_compliance=share(m, t),
        )
        rows.append(row)
    for values in durations.values():
        all_durations.extend(values)
    met_all = sum(v[1] for v in solved.values())
    with_due = sum(v[2] for v in solved.values())
    total: dict[str, Any] = {
        "opened": sum(opened.values()),
        "solved": sum(v[0] for v in solved.values()),
        "backlog": total_backlog,
        "median_hours": _round(percentile(all_durations, 0.5)),
        "p90_hours": _round(percentile(all_durations, 0.9)),
        "sla_met": met_all,
        "sla_total": with_due,
        "sla_compliance": share(met_all, with_due),
    }
    if group_by:
        total[group_by[0]] = str(_l("Total"))

    extra: dict[str, Any] = {}
    notes: list[Any] = [
        _l(
            "Times to resolve in business hours of the service desk's calendar, pending time "
            "deducted; backlog: tickets opened and neither solved nor closed at the end of the "
            "period (or month)."
        )
    ]
    if ctx.bound:
        extra = _others(ctx, start, end)
        notes.append(
            _l(
                "You see only your members: %(n)s other member(s) appear only in the grand total.",
                n=extra["other_tenants"],
            )
        )
    title = _l("Ticket indicators from %(start)s to %(end)s", start=period.start, end=period.end)
    charts = []
    if "month" in group_by and rows:
        months = sorted({r["month"] for r in rows})
        op = {m: 0 for m in months}
        so = {m: 0 for m in months}
        for r in rows:
            op[r["month"]] += r["opened"]
            so[r["month"]] += r["solved"]
        charts.append(
            Chart(
                title=_l("Tickets opened and solved by month"),
                alt=_l("Bar chart of the tickets opened and solved each month"),
                categories=months,
                series=[
                    (str(_l("Number opened")), [float(op[m]) for m in months]),
                    (str(_l("Solved")), [float(so[m]) for m in months]),
                ],
                unit=str(_l("tickets")),
            )
        )
    return Report(
        name="tickets",
        title=title,
        params={
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
            "group_by": ",".join(group_by),
            **({"tenant": params["tenant"]} if params.get("tenant") else {}),
        },
        denominators={
            "sla_compliance": str(
                _l("tickets solved in the period that had a resolution deadline")
            ),
            "median_hours": str(_l("tickets solved in the period (business hours)")),
        },
        tables=[Table("rows", title, columns, rows, total)],
        charts=charts,
        notes=notes,
        extra=extra,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _backlog(
    ctx: Context, period: Period, group_by: Sequence[str], tenant_ids: set[int]
) -> dict[tuple[Any, ...], int]:
    """Tickets open at the end of the period, or at the end of each month with ``month``:
    one statement joining the month ends as literal rows."""
    months = period.months() if "month" in group_by else [""]
    ends = []
    for m in months:
        if m:
            y, mo = int(m[:4]), int(m[5:])
            nxt = dt.date(y + (mo == 12), 1 if mo == 12 else mo + 1, 1)
            last = min(nxt, period.end_exclusive)
        else:
            last = period.end_exclusive
        ends.append((m, _instant(ctx, last)))
    # A UNION ALL of literal rows (SQLite has no column list on a VALUES alias).
    bounds = sa.union_all(
        *[
            select(
                sa.literal(m, sa.String).label("month"),
                sa.literal(end_at, Ticket.opened_at.type).label("end_at"),
            )
            for m, end_at in ends
        ]
    ).subquery("ends")
    dims = []
    for d in group_by:
        if d == "month":
            dims.append(bounds.c.month.label(d))
        else:
            dims.extend(_dims([d], Ticket.opened_at, ctx, period))
    stmt = (
        select(*dims, sa.func.count())
        .select_from(Ticket)
        .join(
            bounds,
            sa.and_(
                Ticket.opened_at < bounds.c.end_at,
                sa.or_(Ticket.solved_at.is_(None), Ticket.solved_at >= bounds.c.end_at),
                sa.or_(Ticket.closed_at.is_(None), Ticket.closed_at >= bounds.c.end_at),
            ),
        )
    )
    stmt = _base(ctx, stmt, tenant_ids)
    n = len(group_by)
    return {_key(row, n): int(row[-1]) for row in db.session.execute(_grouped(stmt, group_by))}


def _durations(
    ctx: Context,
    period: Period,
    group_by: Sequence[str],
    tenant_ids: set[int],
    start: dt.datetime,
    end: dt.datetime,
) -> dict[tuple[Any, ...], list[float]]:
    """Business hours to resolve, per group: one streamed query of five narrow columns."""
    dims = _dims(group_by, Ticket.solved_at, ctx, period)
    stmt = select(
        *dims, Ticket.tenant_id, Ticket.opened_at, Ticket.solved_at, Ticket.paused_minutes
    ).where(Ticket.solved_at >= start, Ticket.solved_at < end)
    stmt = _base(ctx, stmt, tenant_ids)
    n = len(group_by)
    out: dict[tuple[Any, ...], list[float]] = {}
    result = db.session.execute(stmt.execution_options(yield_per=2000))
    for row in result:
        tenant_id, opened, solved, paused = row[n:]
        calendar = ctx.rules.calendar_for(ctx.tenant_code(tenant_id))
        minutes = max(calendar.between(opened, solved) - (paused or 0), 0.0)
        out.setdefault(_key(row, n), []).append(minutes / 60)
    return out


def _others(ctx: Context, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    visible = sorted(ctx.visible_ids() or ())
    hidden = select(sa.func.count(sa.distinct(Ticket.tenant_id))).where(
        Ticket.deleted_at.is_(None),
        Ticket.opened_at >= start,
        Ticket.opened_at < end,
        Ticket.tenant_id.not_in(visible),
    )
    opened = select(sa.func.count()).where(
        Ticket.deleted_at.is_(None), Ticket.opened_at >= start, Ticket.opened_at < end
    )
    solved = select(sa.func.count()).where(
        Ticket.deleted_at.is_(None), Ticket.solved_at >= start, Ticket.solved_at < end
    )
    return {
        "other_tenants": int(db.session.execute(hidden).scalar() or 0),
        "all_tenants_total": {
            "opened": int(db.session.execute(opened.select_from(Ticket)).scalar() or 0),
            "solved": int(db.session.execute(solved.select_from(Ticket)).scalar() or 0),
        },
    }
