"""The monthly PMO report (``month=YYYY-MM``): every project active in the month with its
members, budget, planned and forecast end and the slip between them, progress, health, the
days spent in the month and to date, the milestones due in the month and the month's note;
portfolio totals by status, health and domain; a timeline and a days-by-domain chart.

A project is active in a month when its span (actual or planned start to actual, forecast or
planned end) meets the month and it is neither proposed nor cancelled. Days come from two
GROUP BY statements over time entries (the month, and everything up to its last day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from config.db import db
from config.tenancy import tenant_condition
from reporting.model import Chart, Column, GanttBar, Report, Table
from reporting.params import check_known, month_bounds, parse_month
from reporting.reports.base import Context, share
from servicedesk.models import Project, ProjectStatus, TimeEntry
from servicedesk.queries import projects_select

__all__ = ["build_pmo"]

PARAMS = ("month",)

STATUS_LABELS = {
    "proposed": _l("proposed"),
    "active": _l("in progress"),
    "on_hold": _l("on hold"),
    "done": _l("done"),
    "cancelled": _l("cancelled"),
}
HEALTH_LABELS = {"green": _l("green"), "amber": _l("amber"), "red": _l("red")}


def _days_by_project(ctx: Context, start: dt.date | None, end: dt.date) -> dict[int, int]:
    stmt = select(TimeEntry.project_id, sa.func.sum(TimeEntry.minutes)).where(
        TimeEntry.deleted_at.is_(None),
        TimeEntry.project_id.is_not(None),
        TimeEntry.date <= end,
        tenant_condition(TimeEntry.tenant_id, ctx.actor, model=TimeEntry),
    )
    if start is not None:
        stmt = stmt.where(TimeEntry.date >= start)
    stmt = stmt.group_by(TimeEntry.project_id)
    return {int(pid): int(m or 0) for pid, m in db.session.execute(stmt)}


def build_pmo(params: Mapping[str, str], ctx: Context) -> Report:
    """Build the PMO report of one month (default: the previous month)."""
    check_known(params, PARAMS)
    if params.get("month"):
        year, month = parse_month(params["month"])
    else:
        first = ctx.today.replace(day=1) - dt.timedelta(days=1)
        year, month = first.year, first.month
    period = month_bounds(year, month)
    key = f"{year:04d}-{month:02d}"

    start_expr = sa.func.coalesce(Project.actual_start, Project.planned_start)
    end_expr = sa.func.coalesce(Project.actual_end, Project.forecast_end, Project.planned_end)
    stmt = (
        projects_select(ctx.actor)
        .where(
            Project.status.not_in([ProjectStatus.PROPOSED, ProjectStatus.CANCELLED]),
            sa.or_(start_expr.is_(None), start_expr <= period.end),
            sa.or_(end_expr.is_(None), end_expr >= period.start),
        )
        .order_by(Project.domain, Project.code)
    )
    projects = list(db.session.execute(stmt).scalars())
    month_minutes = _days_by_project(ctx, period.start, period.end)
    to_date_minutes = _days_by_project(ctx, None, period.end)

    rows: list[dict[str, Any]] = []
    bars: list[GanttBar] = []
    done = str(_l("completed"))
    for p in projects:
        tenants, hidden = p.visible_tenant_codes(ctx.actor)
        members = ", ".join(tenants) + (f" (+{hidden})" if hidden else "")
        forecast = p.forecast_end or p.planned_end
        slip = (forecast - p.planned_end).days if forecast and p.planned_end else None
        due = [m for m in p.milestones if period.start <= m.due <= period.end]
        note = next((n.text for n in p.notes if n.month == key), "")
        rows.append(
            {
                "code": p.code,
                "name": p.name,
                "domain": p.domain or "",
                "tenants": members,
                "budget_eur": float(p.budget_eur) if p.budget_eur is not None else None,
                "status": p.status.value,
                "health": p.health.value,
                "planned_start": (p.actual_start or p.planned_start),
                "planned_end": p.planned_end,
                "forecast_end": forecast,
                "slip_days": slip,
                "progress": p.progress_pct / 100,
                "days_month": ctx.days(month_minutes.get(p.id, 0)),
                "days_to_date": ctx.days(to_date_minutes.get(p.id, 0)),
                "milestones_due": "; ".join(
                    f"{m.name} ({m.due:%d/%m}{', ' + done if m.done_at else ''})" for m in due
                ),
                "note": note,
            }
        )
        begin = p.actual_start or p.planned_start
        planned_end = p.planned_end or forecast
        if begin and planned_end:
            bars.append(GanttBar(p.code, begin, planned_end, forecast, p.health.value))

    columns = [
        Column("code", _l("Code"), "text"),
        Column("name", _l("Project"), "text"),
        Column("domain", _l("Domain"), "text"),
        Column("tenants", _l("Members"), "text"),
        Column("budget_eur", _l("Budget"), "eur"),
        Column("status", _l("Status"), "text"),
        Column("health", _l("Health"), "text"),
        Column("planned_start", _l("Start date"), "date"),
        Column("planned_end", _l("Planned end"), "date"),
        Column("forecast_end", _l("Forecast end"), "date"),
        Column("slip_days", _l("Slip (days)"), "int"),
        Column("progress", _l("Progress"), "share"),
        Column("days_month", _l("Days in the month"), "days"),
        Column("days_to_date", _l("Days to date"), "days"),
        Column("milestones_due", _l("Month's milestones"), "text"),
        Column("note", _l("Month's note"), "text"),
    ]
    total_month = sum(r["days_month"] for r in rows)
    total = {
        "code": str(_l("Total")),
        "budget_eur": sum(r["budget_eur"] or 0 for r in rows),
        "days_month": round(total_month, 2),
        "days_to_date": round(sum(r["days_to_date"] for r in rows), 2),
    }
    tables = [
        Table("projects", _l("Projects active in %(month)s", month=key), columns, rows, total)
    ]
    tables += [
        _totals(
            "by_status", _l("Portfolio by status"), "status", _l("Status"), rows, STATUS_LABELS
        ),
        _totals(
            "by_health", _l("Portfolio by health"), "health", _l("Health"), rows, HEALTH_LABELS
        ),
        _totals("by_domain", _l("Portfolio by domain"), "domain", _l("Domain"), rows, {}),
    ]
    for r in rows:
        r["status"] = str(STATUS_LABELS.get(r["status"], r["status"]))
        r["health"] = str(HEALTH_LABELS.get(r["health"], r["health"]))

    by_domain = tables[3].rows
    charts = [
        Chart(
            title=_l("Project timeline"),
            alt=_l(
                "Gantt chart: one bar per project from its start to its planned end, hatched up "
                "to its forecast end; coloured by health."
            ),
            kind="gantt",
            bars=bars,
            marker=period.start,
            legend=[(h, str(label)) for h, label in HEALTH_LABELS.items()],
            slip_label=str(_l("slip")),
        ),
        Chart(
            title=_l("Days in the month by domain"),
            alt=_l(
                "Horizontal bars of the days in the month by domain: %(v)s",
                v="; ".join(f"{r['domain']} {r['days_month']:.1f}" for r in by_domain),
            ),
            kind="barh",
            categories=[r["domain"] or "—" for r in by_domain],
            series=[(str(_l("Days in the month")), [float(r["days_month"]) for r in by_domain])],
            unit=str(_l("days")),
        ),
    ]
    notes: list[Any] = [
        _l(
            "Slip: forecast end minus planned end, in calendar days. Days: time logged on the "
            "project (%(h)s-hour workday).",
            h=f"{ctx.workday_minutes / 60:g}",
        )
    ]
    if ctx.bound:
        notes.append(
            _l("Only your members' projects and the syndicate's common projects are listed.")
        )
    return Report(
        name="pmo",
        title=_l("Monthly PMO report — %(month)s", month=key),
        params={"month": key},
        denominators={"share_days": str(_l("days in the month of all listed projects"))},
        tables=tables,
        charts=charts,
        notes=notes,
    )


def _totals(
    name: str,
    title: Any,
    key: str,
    label: Any,
    rows: list[dict[str, Any]],
    labels: Mapping[str, Any],
) -> Table:
    """Portfolio totals of the listed projects by one attribute (already aggregated rows)."""
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        g = groups.setdefault(
            r[key],
            {key: r[key], "projects": 0, "budget_eur": 0.0, "days_month": 0.0, "days_to_date": 0.0},
        )
        g["projects"] += 1
        g["budget_eur"] += r["budget_eur"] or 0
        g["days_month"] += r["days_month"]
        g["days_to_date"] += r["days_to_date"]
    total_month = sum(g["days_month"] for g in groups.values())
    out = []
    for k in sorted(groups):
        g = groups[k]
        g[key] = str(labels.get(k, k)) if labels else k
        g["days_month"] = round(g["days_month"], 2)
        g["days_to_date"] = round(g["days_to_date"], 2)
        g["share_days"] = share(g["days_month"], total_month)
        out.append(g)
    columns = [
        Column(key, label, "text"),
        Column("projects", _l("Projects"), "int"),
        Column("budget_eur", _l("Budget"), "eur"),
        Column("days_month", _l("Days in the month"), "days"),
        Column("days_to_date", _l("Days to date"), "days"),
        Column("share_days", _l("Share of the days in the month"), "share"),
    ]
    total = {
        key: str(_l("Total")),
        "projects": sum(g["projects"] for g in out),
        "budget_eur": sum(g["budget_eur"] for g in out),
        "days_month": round(total_month, 2),
        "days_to_date": round(sum(g["days_to_date"] for g in out), 2),
        "share_days": 1.0 if total_month else None,
    }
    return Table(name, title, columns, out, total)
