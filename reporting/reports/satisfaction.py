"""Satisfaction: average score (1–5) and answer rate of the tickets solved in the period, by
member and/or month of resolution. One GROUP BY over tickets left-joined to answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from config.db import db
from config.tenancy import tenant_condition
from reporting.model import Chart, Column, Report, Table
from reporting.params import check_known, choices, parse_period
from reporting.reports.base import (
    Context,
    hidden_tenant_count,
    local_instant,
    local_month_of,
    share,
    tenant_filter_ids,
)
from servicedesk.models import Satisfaction, Ticket

__all__ = ["build_satisfaction"]

DIMENSIONS = ("tenant", "month")
PARAMS = ("from", "to", "year", "group_by", "tenant")


def build_satisfaction(params: Mapping[str, str], ctx: Context) -> Report:
    """Build the satisfaction report (see the module docstring)."""
    check_known(params, PARAMS)
    period = parse_period(params, today=ctx.today)
    group_by = choices(params, "group_by", DIMENSIONS, ["tenant", "month"])
    tenant_ids = tenant_filter_ids(ctx, params)
    tz = ctx.rules.calendar.tz
    start, end = local_instant(period.start, tz), local_instant(period.end_exclusive, tz)

    dims = [
        Ticket.tenant_id.label("tenant")
        if d == "tenant"
        else local_month_of(Ticket.solved_at, period, tz).label("month")
        for d in group_by
    ]
    stmt = (
        select(
            *dims,
            sa.func.count(Ticket.id),
            sa.func.count(Satisfaction.id),
            sa.func.sum(Satisfaction.score),
        )
        .select_from(Ticket)
        .outerjoin(Satisfaction, Satisfaction.ticket_id == Ticket.id)
        .where(
            Ticket.deleted_at.is_(None),
            Ticket.solved_at >= start,
            Ticket.solved_at < end,
            tenant_condition(Ticket.tenant_id, ctx.actor),
        )
    )
    if tenant_ids:
        stmt = stmt.where(Ticket.tenant_id.in_(sorted(tenant_ids)))
    if group_by:
        stmt = stmt.group_by(*[sa.literal_column(d) for d in group_by])
    n = len(group_by)
    rows = []
    for row in db.session.execute(stmt):
        out: dict[str, Any] = {}
        for d, v in zip(group_by, row[:n], strict=True):
            out[d] = ctx.tenant_code(v) if d == "tenant" else v
            if d == "tenant":
                out["name"] = ctx.tenant_name(v)
        solved, answered, score_sum = int(row[n]), int(row[n + 1]), int(row[n + 2] or 0)
        out.update(
            solved=solved,
            answered=answered,
            answer_rate=share(answered, solved),
            average_score=round(score_sum / answered, 2) if answered else None,
            _sum=score_sum,
        )
        rows.append(out)
    rows.sort(key=lambda r: tuple(str(r[d]) for d in group_by))
    solved_all = sum(r["solved"] for r in rows)
    answered_all = sum(r["answered"] for r in rows)
    score_all = sum(r.pop("_sum") for r in rows)
    columns = []
    for d in group_by:
        if d == "tenant":
            columns += [
                Column("tenant", _l("Code"), "text"),
                Column("name", _l("Member"), "text"),
            ]
        else:
            columns.append(Column("month", _l("Month"), "month"))
    columns += [
        Column("solved", _l("Solved tickets"), "int"),
        Column("answered", _l("Answers"), "int"),
        Column("answer_rate", _l("Answer rate"), "share"),
        Column("average_score", _l("Average score (out of 5)"), "decimal"),
    ]
    total: dict[str, Any] = {
        "solved": solved_all,
        "answered": answered_all,
        "answer_rate": share(answered_all, solved_all),
        "average_score": round(score_all / answered_all, 2) if answered_all else None,
    }
    if group_by:
        total[group_by[0]] = str(_l("Total"))
    extra: dict[str, Any] = {}
    notes: list[Any] = []
    if ctx.bound:
        extra["other_tenants"] = hidden_tenant_count(
            ctx, Ticket.tenant_id, Ticket.solved_at >= start, Ticket.solved_at < end
        )
        notes.append(
            _l(
                "You see only your members (%(n)s other member(s) have tickets solved in the "
                "period).",
                n=extra["other_tenants"],
            )
        )
    title = _l("Satisfaction from %(start)s to %(end)s", start=period.start, end=period.end)
    charts = []
    if "month" in group_by and rows:
        months = sorted({r["month"] for r in rows})
        sums = {m: [0, 0.0] for m in months}
        for r in rows:
            if r["average_score"] is not None:
                sums[r["month"]][0] += r["answered"]
                sums[r["month"]][1] += r["average_score"] * r["answered"]
        charts.append(
            Chart(
                title=_l("Average score by month"),
                alt=_l("Bar chart of the average satisfaction score of each month"),
                categories=months,
                series=[
                    (
                        str(_l("Average score")),
                        [round(s / a, 2) if a else 0.0 for a, s in (sums[m] for m in months)],
                    )
                ],
                unit=str(_l("score out of 5")),
            )
        )
    return Report(
        name="satisfaction",
        title=title,
        params={
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
            "group_by": ",".join(group_by),
        },
        denominators={
            "answer_rate": str(_l("tickets solved in the period (month of resolution)")),
            "average_score": str(_l("answers received for these tickets")),
        },
        tables=[Table("rows", title, columns, rows, total)],
        charts=charts,
        notes=notes,
        extra=extra,
    )
