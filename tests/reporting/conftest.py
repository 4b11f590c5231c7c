"""Reporting fixtures: bulk loaders of time entries (golden numbers on small hand-built data)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from config.auth import SYSTEM, Actor, Role, create_user
from config.db import db as _db
from config.db import transaction
from config.tenancy import TenantKind
from servicedesk.models import (
    Project,
    ProjectHealth,
    ProjectMilestone,
    ProjectNote,
    ProjectStatus,
    Satisfaction,
    Ticket,
    TicketStatus,
    TicketType,
    TimeEntry,
    TrainingSession,
    TrainingType,
)

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


# -- a small hand-built world: two members, the syndicate, tickets, projects, training ------

PARIS = ZoneInfo("Europe/Paris")


def local(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=PARIS).astimezone(dt.UTC)


@dataclass
class World:
    a: Any
    b: Any
    syndicate: Any
    projects: dict[str, Any]


@pytest.fixture()
def world(db: Any, make_tenant: Callable[..., Any], bulk_time: Callable[..., int]) -> World:
    """Tenants A (contribution 3000) and B (1000), the syndicate S; time, tickets, projects,
    training and satisfaction answers with golden numbers worked out in the tests."""
    a = make_tenant("tenant-a", name="Tenant A", contributions={"2021": 3000.0})
    b = make_tenant("tenant-b", name="Tenant B", contributions={"2021": 1000.0})
    s = make_tenant("syndicat", name="Syndicat", kind=TenantKind.INTERNAL)
    with transaction(SYSTEM):
        p1 = Project(
            code="p1-a",
            name="Projet A",
            domain="Finances",
            status=ProjectStatus.ACTIVE,
            health=ProjectHealth.AMBER,
            budget_eur=Decimal("1000"),
            progress_pct=40,
            planned_start=dt.date(2021, 1, 1),
            planned_end=dt.date(2021, 6, 30),
            forecast_end=dt.date(2021, 7, 31),
            tenants=[a],
        )
        p1.milestones.append(ProjectMilestone(name="Recette", due=dt.date(2021, 3, 15)))
        p1.notes.append(ProjectNote(month="2021-03", text="Avancement conforme."))
        p2 = Project(
            code="p2-proposed",
            name="Idée",
            status=ProjectStatus.PROPOSED,
            planned_start=dt.date(2021, 1, 1),
            planned_end=dt.date(2021, 12, 31),
        )
        p3 = Project(
            code="p3-done",
            name="Ancien",
            status=ProjectStatus.DONE,
            planned_start=dt.date(2020, 1, 1),
            planned_end=dt.date(2020, 12, 31),
            actual_end=dt.date(2020, 12, 31),
            tenants=[a],
        )
        p4 = Project(
            code="p4-b",
            name="Projet B",
            domain="RH",
            status=ProjectStatus.ACTIVE,
            health=ProjectHealth.GREEN,
            budget_eur=Decimal("500"),
            planned_start=dt.date(2021, 2, 1),
            planned_end=dt.date(2021, 9, 30),
            tenants=[b],
        )
        _db.session.add_all([p1, p2, p3, p4])
    day = WORKDAY
    rows = []
    # Chargeback 2021: A 6 direct days, B 2, shared 4 (3 without tenant + 1 of the syndicate).
    for i in range(6):
        rows.append(
            {"date": dt.date(2021, 5, 3 + i), "minutes": day, "activity": "mco", "tenant_id": a.id}
        )
    for i in range(2):
        rows.append(
            {"date": dt.date(2021, 5, 3 + i), "minutes": day, "activity": "mco", "tenant_id": b.id}
        )
    for i in range(3):
        rows.append({"date": dt.date(2021, 6, 1 + i), "minutes": day, "activity": "internal"})
    rows.append(
        {"date": dt.date(2021, 6, 7), "minutes": day, "activity": "internal", "tenant_id": s.id}
    )
    # PMO: project A, 1 day in February and 2 in March; project B 1 day in March.
    rows.append(
        {
            "date": dt.date(2021, 2, 10),
            "minutes": day,
            "activity": "project",
            "tenant_id": a.id,
            "project_id": p1.id,
        }
    )
    rows.append(
        {
            "date": dt.date(2021, 3, 10),
            "minutes": 2 * day,
            "activity": "project",
            "tenant_id": a.id,
            "project_id": p1.id,
        }
    )
    rows.append(
        {
            "date": dt.date(2021, 3, 11),
            "minutes": day,
            "activity": "project",
            "tenant_id": b.id,
            "project_id": p4.id,
        }
    )
    bulk_time(rows)
    tickets = [
        # tenant A, March 2021: 2 h, 2 h (overnight), 7 h (a whole day); one left open.
        {
            "tenant_id": a.id,
            "opened_at": local(2021, 3, 1, 9),
            "solved_at": local(2021, 3, 1, 11),
            "due_to_resolve_at": local(2021, 3, 1, 10),
            "status": TicketStatus.SOLVED,
        },
        {
            "tenant_id": a.id,
            "opened_at": local(2021, 3, 1, 16),
            "solved_at": local(2021, 3, 2, 10),
            "due_to_resolve_at": local(2021, 3, 5, 10),
            "status": TicketStatus.SOLVED,
        },
        {
            "tenant_id": a.id,
            "opened_at": local(2021, 3, 3, 9),
            "solved_at": local(2021, 3, 4, 9),
            "due_to_resolve_at": local(2021, 3, 5, 10),
            "status": TicketStatus.CLOSED,
            "closed_at": local(2021, 3, 8, 9),
        },
        {"tenant_id": a.id, "opened_at": local(2021, 3, 10, 9), "status": TicketStatus.IN_PROGRESS},
        # tenant B: 1 h of which 30 min pending.
        {
            "tenant_id": b.id,
            "opened_at": local(2021, 3, 5, 9),
            "solved_at": local(2021, 3, 5, 10),
            "paused_minutes": 30.0,
            "status": TicketStatus.SOLVED,
        },
    ]
    with transaction():
        ids = []
        for n, t in enumerate(tickets):
            result = _db.session.execute(
                insert(Ticket).returning(Ticket.id),
                [{"type": TicketType.INCIDENT, "title": f"Ticket {n}", **t}],
            )
            ids.append(result.scalar_one())
        _db.session.execute(
            insert(Satisfaction),
            [
                {
                    "ticket_id": ids[0],
                    "tenant_id": a.id,
                    "score": 4,
                    "answered_at": local(2021, 3, 2),
                },
                {
                    "ticket_id": ids[2],
                    "tenant_id": a.id,
                    "score": 2,
                    "answered_at": local(2021, 3, 5),
                },
            ],
        )
        _db.session.execute(
            insert(TrainingSession),
            [
                {
                    "tenant_id": a.id,
                    "date": dt.date(2021, 4, 1),
                    "type": TrainingType.OFFICE_TOOLS,
                    "trainees": 10,
                    "days": Decimal("2"),
                },
                {
                    "tenant_id": b.id,
                    "date": dt.date(2021, 5, 1),
                    "type": TrainingType.BUSINESS_SOFTWARE,
                    "trainees": 5,
                    "days": Decimal("1.5"),
                },
                {
                    "tenant_id": a.id,
                    "date": dt.date(2020, 6, 1),
                    "type": TrainingType.REDEPLOYMENT,
                    "trainees": 1,
                    "days": Decimal("0.5"),
                },
            ],
        )
    return World(a, b, s, {"p1": p1, "p4": p4})


def bound_manager(tenant: Any) -> Actor:
    """A manager bound to one tenant (as build_report sees a tenant-bound token)."""
    user = create_user(f"mgr-{tenant.code}", role=Role.MANAGER, tenants=[tenant], actor=SYSTEM)
    return Actor.of(user)
