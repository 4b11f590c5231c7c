"""Training: trainees and days by year and type (the syndicate's 2016–2021 table: office
tools, business software, redeployment), and by member. Two GROUP BY statements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from config.db import db
from config.tenancy import tenant_condition
from reporting.model import Chart, Column, Report, Table
from reporting.params import check_known, parse_period
from reporting.reports.base import Context, hidden_tenant_count, tenant_filter_ids, year_of
from servicedesk.models import TrainingSession, TrainingType

__all__ = ["build_training"]

PARAMS = ("from", "to", "year", "tenant")

TYPE_LABELS = {
    TrainingType.OFFICE_TOOLS.value: _l("office tools"),
    TrainingType.BUSINESS_SOFTWARE.value: _l("business software"),
    TrainingType.REDEPLOYMENT.value: _l("redeployment"),
}


def _num(value: Any) -> float:
    return float(value or 0)


def build_training(params: Mapping[str, str], ctx: Context) -> Report:
    """Build the training report over a period (default: the current year)."""
    check_known(params, PARAMS)
    period = parse_period(params, today=ctx.today)
    tenant_ids = tenant_filter_ids(ctx, params)

    def scoped(stmt: sa.Select[Any]) -> sa.Select[Any]:
        stmt = stmt.where(
            TrainingSession.date >= period.start,
            TrainingSession.date <= period.end,
            tenant_condition(TrainingSession.tenant_id, ctx.actor),
        )
        if tenant_ids:
            stmt = stmt.where(TrainingSession.tenant_id.in_(sorted(tenant_ids)))
        return stmt

    year = year_of(TrainingSession.date).label("year")
    by_year_stmt = scoped(
        select(
            year,
            TrainingSession.type.label("type"),
            sa.func.count(),
            sa.func.sum(TrainingSession.trainees),
            sa.func.sum(TrainingSession.days),
        )
    ).group_by(sa.literal_column("year"), sa.literal_column("type"))
    cells: dict[tuple[str, str], tuple[int, int, float]] = {}
    for y, typ, sessions, trainees, days in db.session.execute(by_year_stmt):
        cells[(str(y), getattr(typ, "value", typ))] = (
            int(sessions),
            int(trainees or 0),
            _num(days),
        )

    types = list(TYPE_LABELS)
    years = sorted({y for y, _t in cells})
    columns = [Column("year", _l("Year"), "text")]
    for t in types:
        columns.append(Column(f"{t}_trainees", _l("Trainees %(t)s", t=TYPE_LABELS[t]), "int"))
        columns.append(Column(f"{t}_days", _l("Days %(t)s", t=TYPE_LABELS[t]), "days"))
    columns += [
        Column("trainees", _l("Trainees"), "int"),
        Column("days", _l("Training days"), "days"),
    ]
    rows: list[dict[str, Any]] = []
    for y in years:
        row: dict[str, Any] = {"year": y}
        for t in types:
            _s, trainees, days = cells.get((y, t), (0, 0, 0.0))
            row[f"{t}_trainees"] = trainees
            row[f"{t}_days"] = round(days, 2)
        row["trainees"] = sum(row[f"{t}_trainees"] for t in types)
        row["days"] = round(sum(row[f"{t}_days"] for t in types), 2)
        rows.append(row)
    total: dict[str, Any] = {"year": str(_l("Total"))}
    for col in columns[1:]:
        total[col.key] = round(sum(r[col.key] for r in rows), 2)

    by_member_stmt = scoped(
        select(
            TrainingSession.tenant_id,
            sa.func.count(),
            sa.func.sum(TrainingSession.trainees),
            sa.func.sum(TrainingSession.days),
        )
    ).group_by(TrainingSession.tenant_id)
    member_rows: list[dict[str, Any]] = []
    for tid, sessions, trainees, days in db.session.execute(by_member_stmt):
        member_rows.append(
            {
                "tenant": ctx.tenant_code(tid),
                "name": ctx.tenant_name(tid),
                "sessions": int(sessions),
                "trainees": int(trainees or 0),
                "days": round(_num(days), 2),
            }
        )
    member_rows.sort(key=lambda r: r["tenant"])
    member_columns = [
        Column("tenant", _l("Code"), "text"),
        Column("name", _l("Member"), "text"),
        Column("sessions", _l("Sessions"), "int"),
        Column("trainees", _l("Trainees"), "int"),
        Column("days", _l("Training days"), "days"),
    ]
    member_total = {
        "tenant": str(_l("Total")),
        "sessions": sum(r["sessions"] for r in member_rows),
        "trainees": sum(r["trainees"] for r in member_rows),
        "days": round(sum(r["days"] for r in member_rows), 2),
    }
    extra: dict[str, Any] = {}
    notes: list[Any] = [
        _l(
            "Trainees: the sum of the participants of the sessions (someone trained twice counts "
            "twice)."
        )
    ]
    if ctx.bound:
        extra["other_tenants"] = hidden_tenant_count(
            ctx,
            TrainingSession.tenant_id,
            TrainingSession.date >= period.start,
            TrainingSession.date <= period.end,
        )
        notes.append(
            _l(
                "You see only your members (%(n)s other member(s) had training in the period).",
                n=extra["other_tenants"],
            )
        )
    title = _l("Training from %(start)s to %(end)s", start=period.start, end=period.end)
    charts = []
    if rows:
        charts.append(
            Chart(
                title=_l("Trainees by year and type"),
                alt=_l("Bar chart of the trainees of each year, by type of training"),
                categories=[r["year"] for r in rows],
                series=[
                    (str(TYPE_LABELS[t]), [float(r[f"{t}_trainees"]) for r in rows]) for t in types
                ],
                unit=str(_l("trainees")),
            )
        )
    return Report(
        name="training",
        title=title,
        params={"from": period.start.isoformat(), "to": period.end.isoformat()}
        | ({"tenant": params["tenant"]} if params.get("tenant") else {}),
        denominators={},
        tables=[
            Table("by_year", _l("By year and type"), columns, rows, total),
            Table("by_member", _l("By member"), member_columns, member_rows, member_total),
        ],
        charts=charts,
        notes=notes,
        extra=extra,
    )
