"""Business-hours clocks for SLAs: a calendar (working days and hours, French public
holidays computed per year, per-tenant overrides) and the time-to-own / time-to-resolve
arithmetic, with the clock stopped while a ticket is pending. Pure: no Flask, no database.

All instants are timezone-aware; the calendar works in its local time zone (Europe/Paris by
default), so daylight-saving changes are handled by zoneinfo, not by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_TARGETS",
    "BusinessCalendar",
    "SlaTargets",
    "easter",
    "french_holidays",
    "parse_calendar",
    "parse_targets",
]

MAX_DAYS = 366 * 5  # never walk more than five years looking for business time


def easter(year: int) -> dt.date:
    """Easter Sunday (Gregorian calendar; anonymous algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ll = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ll) // 451
    month, day = divmod(h + ll - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


@lru_cache(maxsize=64)
def french_holidays(year: int, region: str = "") -> frozenset[dt.date]:
    """French public holidays of ``year``; ``region="alsace-moselle"`` adds Good Friday
    and St Stephen's Day."""
    e = easter(year)
    days = {
        dt.date(year, 1, 1),  # Jour de l'an
        e + dt.timedelta(days=1),  # Lundi de Pâques
        dt.date(year, 5, 1),  # Fête du travail
        dt.date(year, 5, 8),  # Victoire 1945
        e + dt.timedelta(days=39),  # Ascension
        e + dt.timedelta(days=50),  # Lundi de Pentecôte
        dt.date(year, 7, 14),  # Fête nationale
        dt.date(year, 8, 15),  # Assomption
        dt.date(year, 11, 1),  # Toussaint
        dt.date(year, 11, 11),  # Armistice
        dt.date(year, 12, 25),  # Noël
    }
    if region == "alsace-moselle":
        days |= {e - dt.timedelta(days=2), dt.date(year, 12, 26)}
    return frozenset(days)


Segment = tuple[dt.time, dt.time]


@dataclass(frozen=True)
class BusinessCalendar:
    """When the clock runs: ``hours[weekday]`` (Monday = 0) lists local opening segments."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Paris"))
    hours: Mapping[int, tuple[Segment, ...]] = field(default_factory=dict)
    holidays: str = "fr"  # "fr", "fr:alsace-moselle" or "" for none
    closed: frozenset[dt.date] = frozenset()  # extra closed days (bridges, local events)
    open_days: frozenset[dt.date] = frozenset()  # exceptional working days

    def is_closed(self, day: dt.date) -> bool:
        if day in self.open_days:
            return False
        if day in self.closed:
            return True
        if self.holidays.startswith("fr"):
            region = self.holidays.partition(":")[2]
            if day in french_holidays(day.year, region):
                return True
        return False

    def segments(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The open intervals of a local ``day`` as aware datetimes (empty if closed)."""
        if self.is_closed(day):
            return []
        out = []
        for start, end in self.hours.get(day.weekday(), ()):
            a = dt.datetime.combine(day, start, tzinfo=self.tz)
            b = dt.datetime.combine(day, end, tzinfo=self.tz)
            if b > a:
                out.append((a, b))
        return out

    def _days_from(self, start: dt.datetime) -> Iterator[dt.date]:
        day = start.astimezone(self.tz).date()
        for offset in range(MAX_DAYS):
            yield day + dt.timedelta(days=offset)

    def add(self, start: dt.datetime, minutes: float) -> dt.datetime:
        """The instant ``minutes`` of business time after ``start``.

        Starting outside business hours counts from the next opening. Raises ValueError if
        the calendar has no business time within five years (an all-closed calendar).
        """
        if start.tzinfo is None:
            raise ValueError("naive datetime")
        remaining = dt.timedelta(minutes=minutes)
        if remaining <= dt.timedelta(0):
            return start
        for day in self._days_from(start):
            for a, b in self.segments(day):
                if b <= start:
                    continue
                a = max(a, start)
                available = b - a
                if remaining <= available:
                    return (a + remaining).astimezone(start.tzinfo)
                remaining -= available
        raise ValueError("no business time in this calendar")

    def between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Business minutes between two instants (0 if ``end`` is not after ``start``)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("naive datetime")
        if end <= start:
            return 0.0
        total = dt.timedelta(0)
        last = end.astimezone(self.tz).date()
        for day in self._days_from(start):
            if day > last:
                break
            for a, b in self.segments(day):
                lo, hi = max(a, start), min(b, end)
                if hi > lo:
                    total += hi - lo
        return total.total_seconds() / 60


# -- SLA targets ------------------------------------------------------------------------


@dataclass(frozen=True)
class SlaTargets:
    """Business minutes to take a ticket into account and to solve it, per priority."""

    own: Mapping[int, int]
    resolve: Mapping[int, int]

    def due_to_own(
        self, calendar: BusinessCalendar, opened: dt.datetime, priority: int
    ) -> dt.datetime:
        return calendar.add(opened, self.own[priority])

    def due_to_resolve(
        self, calendar: BusinessCalendar, opened: dt.datetime, priority: int, paused_minutes: float
    ) -> dt.datetime:
        """The resolution deadline, pushed back by the business time spent pending."""
        return calendar.add(opened, self.resolve[priority] + paused_minutes)


DEFAULT_TARGETS = SlaTargets(
    own={1: 30, 2: 60, 3: 240, 4: 420, 5: 840},
    resolve={1: 240, 2: 420, 3: 1260, 4: 2100, 5: 4200},
)

DEFAULT_HOURS = "09:00-12:30,13:30-17:00"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_segments(text: str) -> tuple[Segment, ...]:
    segments = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        start, _, end = part.partition("-")
        a = dt.time.fromisoformat(start.strip())
        b = dt.time.fromisoformat(end.strip())
        if b <= a:
            raise ValueError(f"opening hours {part!r}: the end must come after the start")
        segments.append((a, b))
    segments.sort()
    for (_, end1), (start2, _) in zip(segments, segments[1:], strict=False):
        if start2 < end1:
            raise ValueError(f"opening hours {text!r} overlap")
    return tuple(segments)


def parse_calendar(
    conf: Mapping[str, Any], tz: str, base: BusinessCalendar | None = None
) -> BusinessCalendar:
    """A calendar from settings: ``hours`` (one string for Monday–Friday, or a table by
    weekday ``mon``…``sun``), ``holidays`` (``fr``, ``fr:alsace-moselle``, ``none``),
    ``closed`` and ``open`` (lists of ISO dates). Missing keys come from ``base``."""
    hours: dict[int, tuple[Segment, ...]] = dict(base.hours) if base else {}
    raw = conf.get("hours")
    if isinstance(raw, str):
        hours = {i: _parse_segments(raw) for i in range(5)}
    elif isinstance(raw, Mapping):
        for name, text in raw.items():
            if name not in WEEKDAYS:
                raise ValueError(f"hours: unknown day {name!r} (mon … sun)")
            hours[WEEKDAYS.index(name)] = _parse_segments(str(text))
    elif raw is None and base is None:
        hours = {i: _parse_segments(DEFAULT_HOURS) for i in range(5)}
    holidays = conf.get("holidays", base.holidays if base else "fr")
    holidays = "" if holidays in ("none", "", None) else str(holidays)
    if holidays and holidays not in ("fr", "fr:alsace-moselle"):
        raise ValueError(f"holidays: unknown calendar {holidays!r}")
    closed = frozenset(dt.date.fromisoformat(str(d)) for d in conf.get("closed", ()))
    opened = frozenset(dt.date.fromisoformat(str(d)) for d in conf.get("open", ()))
    return BusinessCalendar(
        tz=ZoneInfo(tz),
        hours=hours,
        holidays=holidays,
        closed=(base.closed if base else frozenset()) | closed,
        open_days=(base.open_days if base else frozenset()) | opened,
    )


def parse_targets(conf: Mapping[str, Any] | None) -> SlaTargets:
    """Targets from settings: ``own`` and ``resolve`` tables of business minutes keyed by
    priority ("1" … "5"); missing priorities keep the defaults."""
    conf = conf or {}

    def table(name: str, default: Mapping[int, int]) -> dict[int, int]:
        values = dict(default)
        for key, minutes in (conf.get(name) or {}).items():
            p = int(key)
            if p not in range(1, 6) or int(minutes) <= 0:
                raise ValueError(f"sla.{name}: priorities 1..5, minutes > 0")
            values[p] = int(minutes)
        return values

    return SlaTargets(
        own=table("own", DEFAULT_TARGETS.own), resolve=table("resolve", DEFAULT_TARGETS.resolve)
    )


def merge_closed(days: Iterable[dt.date], calendar: BusinessCalendar) -> BusinessCalendar:
    """The calendar with more closed days (used for one-off closures)."""
    return BusinessCalendar(
        tz=calendar.tz,
        hours=calendar.hours,
        holidays=calendar.holidays,
        closed=calendar.closed | frozenset(days),
        open_days=calendar.open_days,
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
