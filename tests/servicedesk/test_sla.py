"""Business-hours SLA clocks: hand-computed cases (pure).

Default calendar: Monday–Friday 09:00–12:30 and 13:30–17:00 Europe/Paris (7 h a day),
French public holidays.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from servicedesk.sla import (
    DEFAULT_TARGETS,
    easter,
    french_holidays,
    parse_calendar,
    parse_targets,
    percentile,
)

P = ZoneInfo("Europe/Paris")
UTC = dt.UTC
CAL = parse_calendar({}, "Europe/Paris")


def at(y, mo, d, h=0, mi=0, tz=P):
    return dt.datetime(y, mo, d, h, mi, tzinfo=tz)


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        (at(2021, 3, 2, 10), 60, at(2021, 3, 2, 11)),  # inside a segment
        (at(2021, 3, 2, 12), 60, at(2021, 3, 2, 14)),  # across lunch
        (at(2021, 3, 2, 7), 30, at(2021, 3, 2, 9, 30)),  # before opening
        (at(2021, 3, 2, 12, 45), 15, at(2021, 3, 2, 13, 45)),  # during lunch
        (at(2021, 3, 2, 18), 60, at(2021, 3, 3, 10)),  # after closing
        (at(2021, 3, 5, 16, 30), 60, at(2021, 3, 8, 9, 30)),  # Friday → Monday
        (at(2021, 3, 6, 10), 10, at(2021, 3, 8, 9, 10)),  # opened on a Saturday
        (at(2021, 4, 2, 16), 120, at(2021, 4, 6, 10)),  # Easter Monday 2021-04-05
        (at(2021, 5, 12, 16), 120, at(2021, 5, 14, 10)),  # Ascension 2021-05-13
        (at(2021, 5, 21, 16, 30), 60, at(2021, 5, 25, 9, 30)),  # Whit Monday 2021-05-24
        (at(2021, 3, 26, 16), 240, at(2021, 3, 29, 12)),  # DST starts on Sunday 28 March
        (at(2021, 10, 29, 16), 240, at(2021, 11, 2, 12)),  # DST ends, then Toussaint
        (at(2021, 12, 24, 16), 120, at(2021, 12, 27, 10)),  # Christmas on a Saturday
        (at(2021, 7, 13, 16, 30), 60, at(2021, 7, 15, 9, 30)),  # 14 July
        (at(2021, 3, 2, 10), 0, at(2021, 3, 2, 10)),  # nothing to add
        (at(2021, 3, 1, 9), 7 * 60 * 5, at(2021, 3, 5, 17)),  # a whole working week
    ],
)
def test_add_business_minutes(start, minutes, due):
    assert CAL.add(start, minutes) == due


def test_dst_deadline_in_utc():
    # 16:00 CET = 15:00 UTC on Friday; the deadline Monday 12:00 CEST = 10:00 UTC.
    assert CAL.add(at(2021, 3, 26, 15, tz=UTC), 240) == at(2021, 3, 29, 10, tz=UTC)
    # Autumn: Tuesday 12:00 CET = 11:00 UTC.
    assert CAL.add(at(2021, 10, 29, 14, tz=UTC), 240) == at(2021, 11, 2, 11, tz=UTC)


@pytest.mark.parametrize(
    ("start", "end", "minutes"),
    [
        (at(2021, 3, 26, 16), at(2021, 3, 29, 12), 240),
        (at(2021, 11, 10, 16), at(2021, 11, 12, 10), 120),  # 11 November in between
        (at(2021, 3, 2, 12), at(2021, 3, 2, 14), 60),
        (at(2021, 3, 6, 8), at(2021, 3, 7, 20), 0),  # a weekend
        (at(2021, 3, 2, 14), at(2021, 3, 2, 10), 0),  # end before start
        # 2021: 261 weekdays minus 7 holidays on weekdays (1/1, 5/4, 13/5, 24/5, 14/7, 1/11, 11/11)
        (at(2021, 1, 1, 0), at(2022, 1, 1, 0), 254 * 420),
    ],
)
def test_business_minutes_between(start, end, minutes):
    assert CAL.between(start, end) == minutes


def test_add_and_between_agree():
    start = at(2021, 4, 30, 11, 17)
    for minutes in (1, 59, 420, 1000, 5000):
        assert CAL.between(start, CAL.add(start, minutes)) == pytest.approx(minutes)


@pytest.mark.parametrize(
    ("year", "day"),
    [
        (2000, (4, 23)),
        (2021, (4, 4)),
        (2022, (4, 17)),
        (2024, (3, 31)),
        (2025, (4, 20)),
        (2038, (4, 25)),
    ],
)
def test_easter(year, day):
    assert easter(year) == dt.date(year, *day)


def test_french_holidays_2021():
    days = french_holidays(2021)
    assert len(days) == 11
    assert {dt.date(2021, 4, 5), dt.date(2021, 5, 13), dt.date(2021, 5, 24)} <= days


def test_alsace_moselle_adds_good_friday_and_st_stephen():
    cal = parse_calendar({"holidays": "fr:alsace-moselle"}, "Europe/Paris")
    assert cal.is_closed(dt.date(2021, 4, 2)) and cal.is_closed(dt.date(2021, 12, 26))
    assert not CAL.is_closed(dt.date(2021, 4, 2))


def test_a_tenant_calendar_overrides_hours_and_closes_days():
    cal = parse_calendar(
        {"hours": "08:00-12:00,14:00-18:00", "closed": ["2021-03-08"]}, "Europe/Paris", base=CAL
    )
    assert cal.add(at(2021, 3, 5, 17), 120) == at(2021, 3, 9, 9)


def test_saturday_opening_and_exceptional_open_day():
    cal = parse_calendar(
        {"hours": {"mon": "09:00-17:00", "sat": "09:00-12:00"}, "open": ["2021-05-13"]},
        "Europe/Paris",
    )
    assert cal.add(at(2021, 3, 1, 16), 120) == at(2021, 3, 6, 10)  # Mon 60 min, then Saturday
    assert not cal.is_closed(dt.date(2021, 5, 13))  # Ascension, opened exceptionally


@pytest.mark.parametrize(
    "conf",
    [
        {"hours": "17:00-09:00"},
        {"hours": "09:00-12:00,11:00-14:00"},
        {"hours": {"funday": "09:00-10:00"}},
        {"holidays": "mars"},
        {"closed": ["2021-02-30"]},
    ],
)
def test_bad_calendars_are_refused(conf):
    with pytest.raises(ValueError):
        parse_calendar(conf, "Europe/Paris")


def test_an_all_closed_calendar_cannot_produce_a_deadline():
    cal = parse_calendar({"hours": {"mon": ""}}, "Europe/Paris")
    with pytest.raises(ValueError):
        cal.add(at(2021, 3, 1, 9), 60)


def test_pending_time_pushes_the_resolution_deadline():
    opened = at(2021, 3, 1, 9)  # priority 2: 420 business minutes = one working day
    assert DEFAULT_TARGETS.due_to_resolve(CAL, opened, 2, 0) == at(2021, 3, 1, 17)
    assert DEFAULT_TARGETS.due_to_resolve(CAL, opened, 2, 120) == at(2021, 3, 2, 11)
    assert DEFAULT_TARGETS.due_to_own(CAL, opened, 1) == at(2021, 3, 1, 9, 30)


def test_targets_are_configurable_and_checked():
    targets = parse_targets({"own": {"1": 15}, "resolve": {"5": 9999}})
    assert targets.own[1] == 15 and targets.own[2] == 60 and targets.resolve[5] == 9999
    with pytest.raises(ValueError):
        parse_targets({"own": {"7": 10}})
    with pytest.raises(ValueError):
        parse_targets({"resolve": {"1": 0}})


def test_percentile():
    assert percentile([], 0.5) is None
    assert percentile([10, 20, 30, 40], 0.5) == 25
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == pytest.approx(9.1)
