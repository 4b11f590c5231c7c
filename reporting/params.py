"""Parsing of report parameters (query strings and CLI options alike), pure.

Every report declares the parameters it accepts; anything else, an unknown value of a
choice, a malformed date or month, a period ending before it starts or longer than ten
years is a 400 problem naming the parameter and, for choices, listing the allowed values.
An empty period (nothing recorded) is not an error: it gives an empty report.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config.errors import BadRequest

__all__ = [
    "MAX_PERIOD_YEARS",
    "Period",
    "check_known",
    "choice",
    "choices",
    "codes",
    "month_bounds",
    "parse_month",
    "parse_period",
    "parse_year",
]

MAX_PERIOD_YEARS = 10
# Parameters every report accepts: they choose the output, not the content.
OUTPUT_PARAMS = frozenset({"format", "sep", "table"})

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_YEAR_RE = re.compile(r"^\d{4}$")
_CODE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def bad(name: str, message: str, **extra: Any) -> BadRequest:
    return BadRequest(f"{name}: {message}", errors={name: [message]}, **extra)


@dataclass(frozen=True)
class Period:
    """Inclusive dates ``start`` … ``end``."""

    start: dt.date
    end: dt.date

    @property
    def end_exclusive(self) -> dt.date:
        return self.end + dt.timedelta(days=1)

    def previous_year(self) -> Period:
        return Period(_shift_year(self.start, -1), _shift_year(self.end, -1))

    def months(self) -> list[str]:
        """``YYYY-MM`` of every month the period touches."""
        out = []
        y, m = self.start.year, self.start.month
        while (y, m) <= (self.end.year, self.end.month):
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out


def _shift_year(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def check_known(params: Mapping[str, str], allowed: Iterable[str]) -> None:
    """Refuse parameters the report does not know (API.md §1: never silently ignored)."""
    known = set(allowed) | OUTPUT_PARAMS
    unknown = sorted(set(params) - known)
    if unknown:
        raise BadRequest(
            f"Unknown parameter(s): {', '.join(unknown)}.",
            errors={name: ["Unknown parameter."] for name in unknown},
            allowed=sorted(known),
        )


def parse_month(value: str, name: str = "month") -> tuple[int, int]:
    m = _MONTH_RE.match(value.strip())
    if not m or not 1 <= int(m.group(2)) <= 12 or not 1900 <= int(m.group(1)) <= 9998:
        raise bad(name, f"{value!r} is not a month (YYYY-MM, month 01 to 12).")
    return int(m.group(1)), int(m.group(2))


def month_bounds(year: int, month: int) -> Period:
    start = dt.date(year, month, 1)
    nxt = dt.date(year + (month == 12), 1 if month == 12 else month + 1, 1)
    return Period(start, nxt - dt.timedelta(days=1))


def parse_year(value: str, name: str = "year") -> int:
    if not _YEAR_RE.match(value.strip()) or not 1900 <= int(value) <= 9998:
        raise bad(name, f"{value!r} is not a year (YYYY).")
    return int(value)


def _parse_bound(value: str, name: str, *, end: bool) -> dt.date:
    value = value.strip()
    if _DATE_RE.match(value):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise bad(name, f"{value!r} is not a valid date.") from None
        if not 1900 <= day.year <= 9998:
            raise bad(name, f"{value!r} is out of range (years 1900 to 9998).")
        return day
    if _MONTH_RE.match(value):
        y, m = parse_month(value, name)
        period = month_bounds(y, m)
        return period.end if end else period.start
    if _YEAR_RE.match(value):
        y = parse_year(value, name)
        return dt.date(y, 12, 31) if end else dt.date(y, 1, 1)
    raise bad(name, f"{value!r} is not a date (YYYY-MM-DD), a month (YYYY-MM) or a year.")


def parse_period(params: Mapping[str, str], *, today: dt.date) -> Period:
    """The period of ``from``/``to`` (dates, months or years) or ``year``; the current
    year by default. Raises BadRequest when ``to`` is before ``from`` or the period is
    longer than ten years."""
    if "year" in params and ("from" in params or "to" in params):
        raise bad("year", "give either year or from/to, not both.")
    if "year" in params:
        y = parse_year(params["year"])
        return Period(dt.date(y, 1, 1), dt.date(y, 12, 31))
    start = _parse_bound(params["from"], "from", end=False) if params.get("from") else None
    end = _parse_bound(params["to"], "to", end=True) if params.get("to") else None
    if start is None:
        start = dt.date((end or today).year, 1, 1)
    if end is None:
        end = dt.date(start.year, 12, 31)
    if end < start:
        raise bad("to", f"the period ends ({end}) before it starts ({start}).")
    if _shift_year(start, MAX_PERIOD_YEARS) <= end:
        raise bad("to", f"the period is longer than {MAX_PERIOD_YEARS} years.")
    return Period(start, end)


def choice(params: Mapping[str, str], name: str, allowed: Sequence[str], default: str) -> str:
    value = params.get(name, "").strip() or default
    if value not in allowed:
        raise bad(name, f"{value!r} is not one of {', '.join(allowed)}.", allowed=list(allowed))
    return value


def choices(
    params: Mapping[str, str], name: str, allowed: Sequence[str], default: Sequence[str]
) -> list[str]:
    """A comma-separated list of distinct allowed values, in the given order."""
    raw = params.get(name, "")
    values = [v.strip() for v in raw.split(",") if v.strip()] if raw.strip() else list(default)
    wrong = [v for v in values if v not in allowed]
    if wrong:
        raise bad(
            name,
            f"{', '.join(repr(v) for v in wrong)}: allowed values are {', '.join(allowed)}.",
            allowed=list(allowed),
        )
    if len(set(values)) != len(values):
        raise bad(name, "a value is repeated.")
    return values


def codes(params: Mapping[str, str], name: str) -> list[str]:
    """A comma-separated list of codes (tenants, poles, activities)."""
    raw = params.get(name, "")
    values = [v.strip() for v in raw.split(",") if v.strip()]
    for v in values:
        if not _CODE_RE.match(v):
            raise bad(name, f"{v[:70]!r} is not a code.")
    return values
