"""Chargeback (``year=YYYY``): the days spent for each member, direct plus its part of the
shared time, beside its share of the year's contributions where they are recorded.

- Direct days: time entries of that member (or of one of its sub-tenants).
- Shared days: time entries with no tenant, or of the syndicate itself (tenants of kind
  ``internal``: its own infrastructure and organisation), spread over the members by a key:
  ``proportional`` (default, configurable in ``[reporting] chargeback_key``) to direct days,
  ``equal`` split, or ``contribution``: proportional to the year's recorded contributions.
- Members: the active tenants that are not internal and have no parent (sub-tenants count
  for their parent).

One GROUP BY over the year's time entries by tenant; the spread is arithmetic on those few
sums. A tenant-bound caller sees its own members' lines; the others are one count and the
grand total.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from config.db import db
from config.tenancy import Tenant
from reporting.model import Chart, Column, Report, Table
from reporting.params import Period, bad, check_known, choice, parse_year
from reporting.reports.base import Context, round_days, share

__all__ = ["KEYS", "build_chargeback"]

KEYS = ("proportional", "equal", "contribution")
PARAMS = ("year", "key")

KEY_TEXT = {
    "proportional": _l("in proportion to direct days"),
    "equal": _l("equally between the members"),
    "contribution": _l("in proportion to the year's contributions"),
}


def build_chargeback(params: Mapping[str, str], ctx: Context) -> Report:
    """Build the chargeback report of one year (see the module docstring)."""
    check_known(params, PARAMS)
    year = parse_year(params["year"]) if params.get("year") else ctx.today.year
    default_key = str(ctx.settings.get("chargeback_key", "proportional"))
    key = choice(params, "key", KEYS, default_key if default_key in KEYS else "proportional")
    period = Period(dt.date(year, 1, 1), dt.date(year, 12, 31))

    from servicedesk.models import TimeEntry

    tenants = ctx.tenants()
    contributions: dict[int, dict[str, Any]] = dict(
        db.session.execute(
            select(Tenant.id, Tenant.contributions).where(Tenant.active.is_(True))
        ).all()  # type: ignore[arg-type]
    )
    root: dict[int, int] = {}
    for tid in tenants:
        cur = tid
        seen = {cur}
        while (
            tenants[cur][2] is not None
            and tenants[cur][2] in tenants
            and tenants[cur][2] not in seen
        ):
            cur = tenants[cur][2]  # type: ignore[assignment]
            seen.add(cur)
        root[tid] = cur
    members = sorted(
        (
            tid
            for tid, (_c, _n, parent, kind) in tenants.items()
            if parent is None and kind != "internal" and tid in contributions
        ),
        key=lambda t: tenants[t][0],
    )

    stmt = (
        select(TimeEntry.tenant_id, sa.func.sum(TimeEntry.minutes))
        .where(
            TimeEntry.deleted_at.is_(None),
            TimeEntry.date >= period.start,
            TimeEntry.date <= period.end,
        )
        .group_by(TimeEntry.tenant_id)
    )
    direct: dict[int, int] = dict.fromkeys(members, 0)
    shared = 0
    for tenant_id, minutes in db.session.execute(stmt):
        minutes = int(minutes or 0)
        if tenant_id is None or tenants.get(tenant_id, ("", "", None, "internal"))[3] == "internal":
            shared += minutes
            continue
        owner = root.get(tenant_id, tenant_id)
        if owner in direct:
            direct[owner] += minutes
        else:  # an inactive member's time stays its own, unshared
            direct[owner] = minutes
            members.append(owner)

    def contribution(tid: int) -> float | None:
        value = (contributions.get(tid) or {}).get(str(year))
        return float(value) if value is not None else None

    contrib = {tid: contribution(tid) for tid in members}
    total_contrib = sum(v for v in contrib.values() if v)
    total_direct = sum(direct.values())
    if key == "contribution" and not total_contrib:
        raise bad("key", f"no contribution is recorded for {year}.", allowed=list(KEYS))
    weights: dict[int, float] = {}
    for tid in members:
        if key == "equal":
            weights[tid] = 1 / len(members) if members else 0
        elif key == "contribution":
            weights[tid] = (contrib[tid] or 0) / total_contrib
        else:
            weights[tid] = direct[tid] / total_direct if total_direct else 0
    grand_total = total_direct + shared
    rows_all: list[dict[str, Any]] = []
    for tid in members:
        shared_part = shared * weights[tid]
        total_minutes = direct[tid] + shared_part
        rows_all.append(
            {
                "tenant": tenants[tid][0],
                "name": tenants[tid][1],
                "direct_days": ctx.days(direct[tid]),
                "shared_days": ctx.days(shared_part),
                "total_days": ctx.days(total_minutes),
                "share_days": share(total_minutes, grand_total),
                "contribution_eur": contrib[tid],
                "share_contributions": share(contrib[tid], total_contrib)
                if contrib[tid] is not None
                else None,
                "_id": tid,
            }
        )
    visible = ctx.visible_ids()
    rows = [r for r in rows_all if visible is None or r["_id"] in visible]
    for r in rows_all:
        r.pop("_id")
    columns = [
        Column("tenant", _l("Code"), "text"),
        Column("name", _l("Member"), "text"),
        Column("direct_days", _l("Direct days"), "days"),
        Column("shared_days", _l("Shared days allotted"), "days"),
        Column("total_days", _l("Total days"), "days"),
        Column("share_days", _l("Share of days"), "share"),
        Column("contribution_eur", _l("Contribution"), "eur"),
        Column("share_contributions", _l("Share of contributions"), "share"),
    ]
    total = {
        "tenant": str(_l("Total")),
        "direct_days": ctx.days(total_direct),
        "shared_days": ctx.days(shared),
        "total_days": ctx.days(grand_total),
        "share_days": 1.0 if grand_total else None,
        "contribution_eur": total_contrib or None,
        "share_contributions": 1.0 if total_contrib else None,
    }
    extra: dict[str, Any] = {"key": key}
    notes: list[Any] = [
        _l(
            "Shared time (no member, or the syndicate itself): %(days)s days, spread %(key)s.",
            days=round_days(shared / ctx.workday_minutes),
            key=KEY_TEXT[key],
        )
    ]
    if ctx.bound:
        extra["other_tenants"] = len(rows_all) - len(rows)
        extra["all_tenants_total"] = total
        total = {"tenant": str(_l("Your members"))}
        for k in ("direct_days", "shared_days", "total_days", "share_days"):
            total[k] = round(sum(r[k] or 0 for r in rows), 6 if k == "share_days" else 2)
        notes.append(
            _l(
                "You see only your members; shares are computed over all %(n)s members.",
                n=len(rows_all),
            )
        )
    title = _l("Chargeback %(year)s: days per member", year=year)
    chart_rows = sorted(rows, key=lambda r: -r["total_days"])
    charts = [
        Chart(
            title=_l("Share of days and share of contributions"),
            alt=_l(
                "Bar chart comparing each member's share of days with its share of contributions."
            ),
            categories=[r["tenant"] for r in chart_rows],
            series=[
                (
                    str(_l("Share of days (%)")),
                    [round((r["share_days"] or 0) * 100, 1) for r in chart_rows],
                ),
                (
                    str(_l("Share of contributions (%)")),
                    [round((r["share_contributions"] or 0) * 100, 1) for r in chart_rows],
                ),
            ],
            unit="%",
        )
    ]
    return Report(
        name="chargeback",
        title=title,
        params={"year": year, "key": key},
        denominators={
            "share_days": str(
                _l(
                    "the year's days of all members, shared time included (%(d)s days)",
                    d=f"{ctx.days(grand_total):.1f}".replace(".", ","),
                )
            ),
            "share_contributions": str(
                _l("recorded %(year)s contributions of all members", year=year)
            ),
        },
        tables=[Table("rows", title, columns, rows, total)],
        charts=charts,
        notes=notes,
        extra=extra,
    )
