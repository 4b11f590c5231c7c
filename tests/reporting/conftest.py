"""Reporting fixtures: bulk loaders of time entries (golden numbers on small hand-built data)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from sqlalchemy import insert

from config.auth import SYSTEM, Actor, Role, create_user
from config.db import db as _db
from config.db import transaction
from servicedesk.models import TimeEntry

WORKDAY = 420  # minutes: the default 7-hour workday

# ../shared/data/siim94-2021/workload_days.csv: the Pôle SI days by class of activity.
PUBLISHED_POLE_SI_DAYS = {
    2020: {"mco": 1169, "project": 1103, "internal": 354, "domain_management": 81},
    2021: {"mco": 1256, "project": 1050, "internal": 414, "domain_management": 153},
}


@pytest.fixture()
def staff(db: Any) -> Any:
    return create_user(
        "reporting-staff", role=Role.TECHNICIAN, tenants=[], all_tenants=True, actor=SYSTEM
    )


@pytest.fixture()
def bulk_time(db: Any, staff: Any) -> Callable[..., int]:
    """Insert many time entries at once: ``bulk_time([{date, minutes, activity, ...}])``."""

    def load(rows: Iterable[dict[str, Any]]) -> int:
        values = [
            {
                "user_id": staff.id,
                "tenant_id": None,
                "pole": "systemes-information",
                "source": "local",
                **row,
            }
            for row in rows
        ]
        with transaction():
            _db.session.execute(insert(TimeEntry), values)
        return len(values)

    return load


@pytest.fixture()
def published_days(bulk_time: Callable[..., int]) -> None:
    """The published Pôle SI days of 2020 and 2021, one 7-hour entry per day of work,
    spread over the working days of each year."""
    rows = []
    for year, classes in PUBLISHED_POLE_SI_DAYS.items():
        start = dt.date(year, 1, 1)
        n = 0
        for activity, days in classes.items():
            for _ in range(days):
                rows.append(
                    {
                        "date": start + dt.timedelta(days=n % 360),
                        "minutes": WORKDAY,
                        "activity": activity,
                    }
                )
                n += 1
    bulk_time(rows)


@pytest.fixture()
def manager() -> Actor:
    return Actor(None, "manager", Role.MANAGER, True)


def read_xlsx(body: bytes) -> Any:
    import openpyxl

    return openpyxl.load_workbook(io.BytesIO(body))
