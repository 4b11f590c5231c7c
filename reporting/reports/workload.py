"""Workload: minutes and days of time entries grouped by any of activity, activity class,
tenant, pole, domain and month, with each row's share of a named denominator.

One GROUP BY statement per period (two with ``compare_to=previous_year``); a tenant-bound
caller gets one more for what it may know of the others (their count and the grand total).
``exclude=`` takes activity codes or classes: their rows are not listed and leave the
denominator, which is how the syndicate's report computes "MCO / (MCO + projet)".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from config.db import db
from config.tenancy import tenant_condition
from reporting.model import Chart, Column, Report, Table
from reporting.params import Period, bad, check_known, choice, choices, codes, parse_period
from reporting.reports.base import Context, month_of, share, tenant_filter_ids
from servicedesk.models import Project, Ticket, TimeEntry
from servicedesk.queries import activity_class_expr

__all__ = ["DIMENSIONS", "build_workload", "workload_select"]

DIMENSIONS = ("activity", "activity_class", "tenant", "pole", "domain", "month")
PARAMS = ("from", "to", "year", "group_by", "pole", "tenant", "exclude", "compare_to")

_DIM_LABELS = {
    "activity": _l("Activity"),
    "activity_class": _l("Activity class"),
    "tenant": _l("Member"),
    "pole": _l("Team"),
    "domain": _l("Domain"),
    "month": _l("Month"),
}
_LABELLED = ("activity", "activity_class", "pole", "tenant")


def _dimension(name: str, ctx: Context) -> Any:
    from cmdb.models import CI

    if name == "activity":
        return TimeEntry.activity
    if name == "activity_class":
        return activity_class_expr(ctx.rules)
    if name == "tenant":
        return TimeEntry.tenant_id
    if name == "pole":
        return sa.func.coalesce(TimeEntry.pole, "")
    if name == "month":
        return month_of(TimeEntry.date)
    if name == "domain":
        ci_domain = (
            select(CI.attributes["domain"].as_string())
            .join(Ticket, Ticket.ci_id == CI.id)
            .where(Ticket.id == TimeEntry.ticket_id)
            .scalar_subquery()
        )
        project_domain = (
            select(Project.domain).where(Project.id == TimeEntry.project_id).scalar_subquery()
        )
        return sa.func.coalesce(project_domain, ci_domain, "")
    raise AssertionError(name)


def workload_select(
    ctx: Context,
    period: Period,
    group_by: Sequence[str],
    *,
    poles: Sequence[str] = (),
    tenant_ids: set[int] | None = None,
    exclude: Sequence[str] = (),
    scoped: bool = True,
) -> sa.Select[Any]:
    """The GROUP BY statement: one row per combination of ``group_by`` with the minutes."""
    dims = [_dimension(d, ctx).label(d) for d in group_by]
    stmt = select(*dims, sa.func.sum(TimeEntry.minutes).label("minutes")).where(
        TimeEntry.deleted_at.is_(None),
        TimeEntry.date >= period.start,
        TimeEntry.date <= period.end,
    )
    if scoped:
        stmt = stmt.where(tenant_condition(TimeEntry.tenant_id, ctx.actor, model=TimeEntry))
    if poles:
        stmt = stmt.where(TimeEntry.pole.in_(list(poles)))
    if tenant_ids:
        stmt = stmt.where(TimeEntry.tenant_id.in_(sorted(tenant_ids)))
    if exclude:
        classes = ctx.rules.activity_classes()
        excluded = {code for code, klass in classes.items() if code in exclude or klass in exclude}
        excluded |= set(exclude)
        stmt = stmt.where(TimeEntry.activity.not_in(sorted(excluded)))
    if dims:
        stmt = stmt.group_by(*[sa.literal_column(d) for d in group_by])
    return stmt


def _class_labels(ctx: Context) -> dict[str, str]:
    labels = {a.klass: a.label for a in ctx.rules.activities.values() if a.code == a.klass}
    for a in ctx.rules.activities.values():
        labels.setdefault(a.klass, a.klass)
    return labels


def _label(ctx: Context, dim: str, key: Any) -> str:
    if dim == "activity":
        act = ctx.rules.activities.get(key)
        return act.label if act else str(key)
    if dim == "activity_class":
        return _class_labels(ctx).get(key, str(key))
    if dim == "pole":
        return ctx.rules.poles.get(key, str(key)) if key else str(_l("(no team)"))
    if dim == "tenant":
        return ctx.tenant_name(key)
    return str(key)


def _run(ctx: Context, stmt: sa.Select[Any], group_by: Sequence[str]) -> dict[tuple[Any, ...], int]:
    out: dict[tuple[Any, ...], int] = {}
    for row in db.session.execute(stmt):
        out[tuple(row[: len(group_by)])] = int(row[-1] or 0)
    return out


def _shift_month(key: str, years: int) -> str:
    return f"{int(key[:4]) + years:04d}{key[4:]}"


def build_workload(params: Mapping[str, str], ctx: Context) -> Report:
    """Build the workload report (see the module docstring)."""
    check_known(params, PARAMS)
    period = parse_period(params, today=ctx.today)
    group_by = choices(params, "group_by", DIMENSIONS, ["activity_class"])
    poles = codes(params, "pole")
    unknown_poles = [p for p in poles if p not in ctx.rules.poles]
    if unknown_poles:
        raise bad("pole", f"unknown pole {unknown_poles[0]!r}.", allowed=list(ctx.rules.poles))
    tenant_ids = tenant_filter_ids(ctx, params)
    exclude = codes(params, "exclude")
    known_acts = set(ctx.rules.activities) | set(ctx.rules.activity_classes().values())
    wrong = [e for e in exclude if e not in known_acts]
    if wrong:
        raise bad("exclude", f"unknown activity {wrong[0]!r}.", allowed=sorted(known_acts))
    compare = choice(params, "compare_to", ("none", "previous_year"), "none") == "previous_year"

    filters: dict[str, Any] = {"poles": poles, "tenant_ids": tenant_ids, "exclude": exclude}
    current = _run(ctx, workload_select(ctx, period, group_by, **filters), group_by)
    previous: dict[tuple[Any, ...], int] = {}
    if compare:
        prev = _run(
            ctx, workload_select(ctx, period.previous_year(), group_by, **filters), group_by
        )
        if "month" in group_by:
            i = group_by.index("month")
            prev = {k[:i] + (_shift_month(k[i], 1),) + k[i + 1 :]: v for k, v in prev.items()}
        previous = prev

    total = sum(current.values())
    prev_total = sum(previous.values())
    keys = sorted(set(current) | set(previous), key=lambda k: tuple(str(x) for x in k))

    columns: list[Column] = []
    for dim in group_by:
        columns.append(Column(dim, _DIM_LABELS[dim], "month" if dim == "month" else "text"))
        if dim in _LABELLED:
            columns.append(Column(f"{dim}_label", _l("Label"), "text"))
    columns += [
        Column("minutes", _l("Minutes"), "int"),
        Column("days", _l("Days"), "days"),
        Column("share", _l("Share"), "share"),
    ]
    if compare:
        columns += [
            Column("previous_minutes", _l("Minutes Y-1"), "int"),
            Column("previous_days", _l("Days Y-1"), "days"),
            Column("previous_share", _l("Share Y-1"), "share"),
            Column("change", _l("Change in days"), "share"),
        ]

    rows = []
    for key in keys:
        row: dict[str, Any] = {}
        for dim, value in zip(group_by, key, strict=True):
            row[dim] = ctx.tenant_code(value) if dim == "tenant" else value
            if dim in _LABELLED:
                row[f"{dim}_label"] = _label(ctx, dim, value)
        minutes = current.get(key, 0)
        row.update(minutes=minutes, days=ctx.days(minutes), share=share(minutes, total))
        if compare:
            pm = previous.get(key, 0)
            row.update(
                previous_minutes=pm,
                previous_days=ctx.days(pm),
                previous_share=share(pm, prev_total),
                change=share(minutes - pm, pm),
            )
        rows.append(row)
    total_row: dict[str, Any] = {
        "minutes": total,
        "days": ctx.days(total),
        "share": 1.0 if total else None,
    }
    if group_by:
        total_row[group_by[0]] = str(_l("Total"))
    if compare:
        total_row.update(
            previous_minutes=prev_total,
            previous_days=ctx.days(prev_total),
            previous_share=1.0 if prev_total else None,
            change=share(total - prev_total, prev_total),
        )

    denominator = _denominator_text(ctx, period, poles, params.get("tenant", ""), exclude)
    denominators: dict[str, Any] = {"share": denominator}
    if compare:
        prev_period = period.previous_year()
        denominators["previous_share"] = _denominator_text(
            ctx, prev_period, poles, params.get("tenant", ""), exclude
        )
        denominators["change"] = str(_l("Days of the previous period, same line"))

    extra: dict[str, Any] = {}
    notes: list[Any] = []
    if ctx.bound:
        other = _others(ctx, period, filters)
        extra.update(other)
        notes.append(
            _l(
                "You see only your members: %(n)s other member(s) appear only in the grand total "
                "(%(days)s days).",
                n=other["other_tenants"],
                days=other["all_tenants_total"]["days"],
            )
        )
    if exclude:
        notes.append(_l("Excluded activities: %(codes)s.", codes=", ".join(exclude)))

    title = _l("Workload from %(start)s to %(end)s", start=period.start, end=period.end)
    charts = _charts(group_by, rows, compare)
    normalised = {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "group_by": ",".join(group_by),
        "pole": ",".join(poles),
        "tenant": params.get("tenant", ""),
        "exclude": ",".join(exclude),
        "compare_to": "previous_year" if compare else "",
    }
    return Report(
        name="workload",
        title=title,
        params={k: v for k, v in normalised.items() if v},
        denominators=denominators,
        tables=[Table("rows", title, columns, rows, total_row)],
        charts=charts,
        notes=notes,
        extra=extra,
    )


def _denominator_text(
    ctx: Context, period: Period, poles: Sequence[str], tenants: str, exclude: Sequence[str]
) -> str:
    text = str(
        _l(
            "total minutes of the period from %(start)s to %(end)s",
            start=period.start,
            end=period.end,
        )
    )
    if poles:
        text += str(_l(", team(s) %(p)s", p=", ".join(poles)))
    if tenants:
        text += str(_l(", member(s) %(t)s", t=tenants))
    if ctx.bound:
        text += str(_l(", visible members and shared time only"))
    if exclude:
        text += str(_l(", excluding %(e)s", e=", ".join(exclude)))
    return text


def _others(ctx: Context, period: Period, filters: Mapping[str, Any]) -> dict[str, Any]:
    """What a tenant-bound caller may know of the rest: how many other tenants have time
    in the period, and the grand total (API.md §4)."""
    visible = sorted(ctx.visible_ids() or ())
    stmt = workload_select(ctx, period, [], scoped=False, **filters)
    total = int(db.session.execute(stmt).scalar() or 0)
    others = select(sa.func.count(sa.distinct(TimeEntry.tenant_id))).where(
        TimeEntry.deleted_at.is_(None),
        TimeEntry.date >= period.start,
        TimeEntry.date <= period.end,
        TimeEntry.tenant_id.is_not(None),
        TimeEntry.tenant_id.not_in(visible),
    )
    count = int(db.session.execute(others).scalar() or 0)
    return {
        "other_tenants": count,
        "all_tenants_total": {"minutes": total, "days": ctx.days(total)},
    }


def _charts(group_by: Sequence[str], rows: list[dict[str, Any]], compare: bool) -> list[Chart]:
    if not group_by or not rows:
        return []
    dim = group_by[0]
    label_key = f"{dim}_label" if dim in _LABELLED and dim != "tenant" else dim
    days: dict[str, float] = {}
    prev: dict[str, float] = {}
    for r in rows:
        cat = str(r.get(label_key) or r.get(dim) or "—")
        days[cat] = days.get(cat, 0.0) + float(r["days"])
        if compare:
            prev[cat] = prev.get(cat, 0.0) + float(r["previous_days"])
    cats = list(days)
    series = [(str(_l("Period")), [round(days[c], 2) for c in cats])]
    if compare:
        series.insert(0, (str(_l("Previous year")), [round(prev[c], 2) for c in cats]))
    return [
        Chart(
            title=_l("Days by %(dim)s", dim=str(_DIM_LABELS[dim]).lower()),
            alt=_l(
                "Bar chart of the days by %(dim)s: %(values)s",
                dim=str(_DIM_LABELS[dim]).lower(),
                values="; ".join(f"{c} {days[c]:.1f}" for c in cats),
            ),
            kind="bar",
            categories=cats,
            series=series,
            unit=str(_l("days")),
        )
    ]
