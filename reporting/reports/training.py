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
    TrainingType.OFFICE_TOOLS.value: _l("bureautiques"),
    TrainingType.BUSINESS_SOFTWARE.value: _l("métiers"),
    TrainingType.REDEPLOYMENT.value: _l("reclassements"),
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
    columns = [Column("year", _l("Année"), "text")]
    for t in types:
        columns.append(Column(f"{t}_trainees", _l("Agents %(t)s", t=TYPE_LABELS[t]), "int"))
        columns.append(Column(f"{t}_days", _l("Jours %(t)s", t=TYPE_LABELS[t]), "days"))
    columns += [
        Column("trainees", _l("Agents formés"), "int"),
        Column("days", _l("Jours de formation"), "days"),
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
        Column("name", _l("Adhérent"), "text"),
        Column("sessions", _l("Sessions"), "int"),
        Column("trainees", _l("Agents formés"), "int"),
        Column("days", _l("Jours de formation"), "days"),
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
            "Agents formés : somme des participants des sessions (un agent formé deux "
            "fois compte deux fois)."
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
                "Vous ne voyez que vos adhérents (%(n)s autre(s) adhérent(s) ont eu des "
                "formations sur la période).",
                n=extra["other_tenants"],
            )
        )
    title = _l("Formations du %(start)s au %(end)s", start=period.start, end=period.end)
    charts = []
    if rows:
        charts.append(
            Chart(
                title=_l("Agents formés par année et type"),
                alt=_l("Histogramme des agents formés chaque année, par type de formation"),
                categories=[r["year"] for r in rows],
                series=[
                    (str(TYPE_LABELS[t]), [float(r[f"{t}_trainees"]) for r in rows]) for t in types
                ],
                unit=str(_l("agents")),
            )
        )
    return Report(
        name="training",
        title=title,
        params={"from": period.start.isoformat(), "to": period.end.isoformat()}
        | ({"tenant": params["tenant"]} if params.get("tenant") else {}),
        denominators={},
        tables=[
            Table("by_year", _l("Par année et type"), columns, rows, total),
            Table("by_member", _l("Par adhérent"), member_columns, member_rows, member_total),
        ],
        charts=charts,
        notes=notes,
        extra=extra,
    )
