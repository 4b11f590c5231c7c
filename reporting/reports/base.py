"""What every report builder shares: the context (actor, rules, today), SQL helpers that work
on SQLite and PostgreSQL alike, tenant resolution and the figures a tenant-bound caller is
allowed to see of the others (counts and totals only, API.md §4)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from config.auth import Actor
from config.db import db
from config.tenancy import Tenant, visible_tenant_ids
from reporting.params import bad, codes
from servicedesk.settings import ServiceDeskSettings

__all__ = [
    "Context",
    "hidden_tenant_count",
    "local_instant",
    "local_month_of",
    "month_of",
    "round_days",
    "share",
    "tenant_filter_ids",
    "year_of",
]


@dataclass
class Context:
    """Everything a report builder needs besides its parameters."""

    actor: Actor
    rules: ServiceDeskSettings
    today: dt.date
    settings: Mapping[str, Any] = field(default_factory=dict)  # the [reporting] section

    @property
    def workday_minutes(self) -> int:
        return self.rules.workday_minutes

    @property
    def bound(self) -> bool:
        """True for a caller bound to some tenants (sees others only as totals)."""
        return not self.actor.all_tenants

    def visible_ids(self) -> frozenset[int] | None:
        return visible_tenant_ids(self.actor)

    def days(self, minutes: float | int | None) -> float:
        return round_days((minutes or 0) / self.workday_minutes)

    def tenants(self) -> dict[int, tuple[str, str, int | None, str]]:
        """``{id: (code, name, parent_id, kind)}`` of every tenant (a few dozen rows)."""
        cached: dict[int, tuple[str, str, int | None, str]] | None = getattr(self, "_tenants", None)
        if cached is None:
            rows = db.session.execute(
                select(Tenant.id, Tenant.code, Tenant.name, Tenant.parent_id, Tenant.kind)
            ).all()
            cached = {r[0]: (r[1], r[2], r[3], str(getattr(r[4], "value", r[4]))) for r in rows}
            self._tenants = cached
        return cached

    def tenant_code(self, tenant_id: int | None) -> str:
        if tenant_id is None:
            return ""
        return self.tenants().get(tenant_id, (str(tenant_id),))[0]

    def tenant_name(self, tenant_id: int | None) -> str:
        if tenant_id is None:
            return str(_l("Shared (no member)"))
        return self.tenants().get(tenant_id, ("", str(tenant_id)))[1]


def round_days(value: float) -> float:
    return round(value, 2)


def share(part: float | int | None, whole: float | int | None) -> float | None:
    """``part / whole`` rounded to 6 decimals (no double rounding when shown as a percentage
    with one decimal); None when the whole is zero."""
    if not whole:
        return None
    return round((part or 0) / whole, 6)


def month_of(column: Any) -> Any:
    """SQL ``YYYY-MM`` of a date or timestamp column, on the current database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(column, "YYYY-MM")
    return sa.func.strftime("%Y-%m", column)


def local_instant(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """Local midnight of ``day`` in ``tz`` as an aware UTC instant."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)


def local_month_of(column: Any, period: Any, tz: dt.tzinfo) -> Any:
    """SQL ``YYYY-MM`` of a UTC timestamp column in the local time of ``tz``, for instants
    inside ``period``: a CASE over the local month starts turned into UTC instants.

    ``month_of`` would bucket a timestamp by its UTC month: a ticket opened on 1 April at
    00:30 in Paris (31 March, 22:30 UTC) would count in March, outside an April period.
    Neither database needs to know the time-zone rules this way (SQLite has none)."""
    months = period.months()
    whens = []
    for label in months[:-1]:
        y, m = int(label[:4]), int(label[5:])
        following = dt.date(y + (m == 12), 1 if m == 12 else m + 1, 1)
        whens.append((column < local_instant(following, tz), label))
    if not whens:
        return sa.literal(months[-1], sa.String)
    return sa.case(*whens, else_=sa.literal(months[-1], sa.String))


def year_of(column: Any) -> Any:
    """SQL ``YYYY`` of a date or timestamp column, on the current database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(column, "YYYY")
    return sa.func.strftime("%Y", column)


def tenant_filter_ids(ctx: Context, params: Mapping[str, str], name: str = "tenant") -> set[int]:
    """The ids named by ``tenant=code[,code]`` plus their sub-tenants (API.md §4).

    A code the caller cannot see is the same 400 as an unknown one (no existence leak).
    """
    wanted = codes(params, name)
    if not wanted:
        return set()
    tenants = ctx.tenants()
    by_code = {code: tid for tid, (code, *_rest) in tenants.items()}
    visible = ctx.visible_ids()
    ids: set[int] = set()
    for code in wanted:
        tid = by_code.get(code)
        if tid is None or (visible is not None and tid not in visible):
            raise bad(name, f"unknown tenant {code!r}.")
        ids.add(tid)
    children: dict[int | None, list[int]] = {}
    for tid, (_c, _n, parent, _k) in tenants.items():
        children.setdefault(parent, []).append(tid)
    stack = list(ids)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in ids:
                ids.add(child)
                stack.append(child)
    return ids


def hidden_tenant_count(ctx: Context, column: Any, *conditions: Any) -> int:
    """How many tenants the caller cannot see have rows matching ``conditions`` (API.md §4:
    a tenant-bound caller learns the others only as a count)."""
    visible = sorted(ctx.visible_ids() or ())
    stmt = select(sa.func.count(sa.distinct(column))).where(
        column.is_not(None), column.not_in(visible), *conditions
    )
    return int(db.session.execute(stmt).scalar() or 0)
