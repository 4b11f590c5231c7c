"""The service desk's part of the demo: staff, categories, projects, two years of time
entries and tickets, and the training table.

Generated deterministically (a seeded random generator) so that the totals reproduce the
published figures of the SIIM94 2021 report to the day (data/workload_days.csv,
data/support_days.csv, data/training.csv). Individual tickets, dates, people and project
budgets are illustrative (projects carry ``illustrative = true``); only the totals are real.
Rows carry ``source = "demo"`` and a stable external id, so a second load creates nothing.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from config.auth import SYSTEM, Role, User, create_user
from config.db import db, transaction
from config.demo import read_csv
from config.tenancy import Tenant
from servicedesk.models import (
    Category,
    Channel,
    Project,
    ProjectHealth,
    ProjectMilestone,
    ProjectNote,
    ProjectStatus,
    Ticket,
    TicketStatus,
    TicketType,
    TimeEntry,
    TrainingSession,
    TrainingType,
)
from servicedesk.priority import priority as compute_priority
from servicedesk.queries import current_rules
from servicedesk.services import refresh_sla

SOURCE = "demo"
CHUNK = 210  # minutes: time is logged by half-days of a 7-hour workday
P = ZoneInfo("Europe/Paris")

STAFF = {
    "systemes-information": [
        "a.martin",
        "b.bernard",
        "c.thomas",
        "d.petit",
        "e.robert",
        "f.richard",
        "g.durand",
        "h.dubois",
        "i.moreau",
        "j.laurent",
        "k.simon",
        "l.michel",
        "m.lefebvre",
    ],
    "support-utilisateurs": ["n.leroy", "o.roux", "p.david", "q.bertrand", "r.morel", "s.fournier"],
    "infrastructures": ["t.girard", "u.bonnet", "v.dupont"],
    "methodes-projets": ["w.lambert", "x.fontaine"],
}
ROLE_OF_POLE = {"infrastructures": Role.INFRA}

CATEGORIES = {
    "Poste de travail": ["Matériel", "Logiciel bureautique", "Impression", "Téléphonie"],
    "Comptes et accès": ["Création de compte", "Mot de passe", "Droits"],
    "Réseau et serveurs": ["Réseau", "Serveurs", "Sauvegarde"],
    "Applications métier": None,  # one sub-category per domain of the catalogue
}

# (code, name, domain, tenants, budget €, planned start, planned end, forecast end, status,
#  health, progress %) — illustrative figures for the projects the report names.
PROJECTS: list[tuple[Any, ...]] = [
    (
        "teletravail-2020",
        "Équipement du télétravail (crise sanitaire)",
        "Infrastructure",
        [
            "ville-arcueil",
            "ville-gentilly",
            "ville-ivry",
            "ville-villejuif",
            "ville-vitry",
            "ept-gosb",
        ],
        150000,
        "2020-03-16",
        "2020-12-18",
        "2020-12-18",
        "done",
        "green",
        100,
    ),
    (
        "microsoft-365",
        "Déploiement de Microsoft 365 et Teams",
        "Administration générale",
        ["ville-arcueil", "ville-gentilly", "ville-ivry", "ville-villejuif", "ville-vitry"],
        220000,
        "2020-06-01",
        "2021-06-30",
        "2021-09-30",
        "done",
        "amber",
        100,
    ),
    (
        "si-finances",
        "SI Finances (Sedit.GF)",
        "Finances",
        [
            "ville-arcueil",
            "ville-gentilly",
            "ville-ivry",
            "saf94",
            "theatre-antoine-vitez",
            "siim94",
        ],
        480000,
        "2020-09-01",
        "2021-12-31",
        "2022-01-03",
        "active",
        "amber",
        90,
    ),
    (
        "si-familles-concerto",
        "SI Familles (Concerto Opus)",
        "Familles",
        ["ville-gentilly", "ville-arcueil"],
        210000,
        "2021-01-04",
        "2022-06-30",
        "2022-06-30",
        "active",
        "green",
        55,
    ),
    (
        "e-parapheur",
        "Parapheur électronique (i-parapheur)",
        "Administration générale",
        ["ville-ivry", "ville-vitry", "ville-villejuif", "saf94"],
        95000,
        "2021-03-01",
        "2021-11-30",
        "2021-12-17",
        "active",
        "green",
        85,
    ),
    (
        "maidis-crossway",
        "Migration MAIDIS vers CROSSWAY (centres de santé)",
        "Santé",
        ["ville-villejuif"],
        140000,
        "2021-05-03",
        "2022-03-31",
        "2022-06-30",
        "active",
        "red",
        35,
    ),
    (
        "sedit-e-conges",
        "SEDIT e-congés",
        "RH",
        ["ville-ivry", "ept-gosb"],
        38000,
        "2021-01-11",
        "2021-10-29",
        "2021-10-29",
        "done",
        "green",
        100,
    ),
    (
        "gpec-villejuif",
        "Migration GPEC",
        "RH",
        ["ville-villejuif"],
        25000,
        "2021-03-01",
        "2021-09-30",
        "2021-11-30",
        "done",
        "amber",
        100,
    ),
    (
        "etude-voip",
        "Étude téléphonie VoIP",
        "Infrastructure",
        [],
        30000,
        "2021-02-01",
        "2021-09-30",
        "2021-10-29",
        "done",
        "green",
        100,
    ),
    (
        "etude-stockage-sauvegarde",
        "Étude stockage et sauvegarde",
        "Infrastructure",
        [],
        45000,
        "2021-04-01",
        "2021-12-15",
        "2022-02-28",
        "active",
        "amber",
        70,
    ),
]

TRAINING_TYPES = {
    "bureautiques": TrainingType.OFFICE_TOOLS,
    "metiers": TrainingType.BUSINESS_SOFTWARE,
    "reclassements": TrainingType.REDEPLOYMENT,
}


def working_days(year: int, rules: Any) -> list[dt.date]:
    cal = rules.calendar
    day, out = dt.date(year, 1, 1), []
    while day.year == year:
        if cal.segments(day):
            out.append(day)
        day += dt.timedelta(days=1)
    return out


class Allocator:
    """Places half-days on working days and people, never more than a workday per person."""

    def __init__(self, rnd: random.Random, days: list[dt.date], people: list[User], workday: int):
        self.rnd, self.days, self.people, self.workday = rnd, days, people, workday
        self.used: dict[tuple[int, dt.date], int] = defaultdict(int)
        self.cursor = 0

    def place(self, minutes: int) -> tuple[dt.date, User]:
        for _ in range(len(self.days) * 3):
            day = self.days[self.cursor % len(self.days)]
            self.cursor += self.rnd.randint(1, 3)
            free = [p for p in self.people if self.used[(p.id, day)] + minutes <= self.workday]
            if free:
                person = self.rnd.choice(free)
                self.used[(person.id, day)] += minutes
                return day, person
        raise RuntimeError("not enough staff capacity for the demo figures")


def _chunks(total_minutes: int) -> Iterator[int]:
    full, rest = divmod(total_minutes, CHUNK)
    yield from [CHUNK] * full
    if rest:
        yield rest


def _weighted(rnd: random.Random, items: list[Any], weights: list[float]) -> Any:
    return rnd.choices(items, weights=weights, k=1)[0]


def load(progress: Callable[[str], None]) -> dict[str, int]:
    """Create what is missing of the service desk's demo data; returns counts by kind."""
    if db.session.execute(
        sa.select(TimeEntry.id).where(TimeEntry.source == SOURCE).limit(1)
    ).first():
        return {"time_entries": 0, "tickets": 0, "projects": 0, "training_sessions": 0}
    rules = current_rules()
    rnd = random.Random(2021)  # noqa: S311 - reproducible demo data, not security
    tenants = {t.code: t for t in db.session.execute(sa.select(Tenant)).scalars()}
    members = [t for t in tenants.values() if t.code != "siim94" and t.contributions.get("2021")]
    weights = [float(t.contributions["2021"]) for t in members]

    progress("staff…")
    staff = _staff()
    progress("categories…")
    categories = _categories()
    progress("projects…")
    projects = _projects(tenants)
    apps = _applications_by_tenant()

    counts = {"time_entries": 0, "tickets": 0, "projects": len(projects), "training_sessions": 0}
    entries_by_year: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in read_csv("workload_days.csv"):
        if row["activity"] != "total":
            entries_by_year[int(row["year"])].append(row)
    support = [r for r in read_csv("support_days.csv") if r["year"] == "2021" and r["days"]]

    serial = 0
    for year in (2020, 2021):
        progress(f"time and tickets {year}…")
        days = working_days(year, rules)
        allocators = {
            pole: Allocator(rnd, days, people, rules.workday_minutes)
            for pole, people in staff.items()
        }
        with transaction(actor=SYSTEM):
            for row in entries_by_year[year]:
                total = int(Decimal(row["days"]) * rules.workday_minutes)
                for minutes in _chunks(total):
                    serial += 1
                    made = _si_entry(
                        row["activity"],
                        minutes,
                        serial,
                        allocators[row["pole"]],
                        rnd,
                        tenants,
                        members,
                        weights,
                        projects,
                        categories,
                        apps,
                        rules,
                    )
                    counts["time_entries"] += 1
                    counts["tickets"] += made
            if year == 2021:
                for row in support:
                    if row["channel"] == "" and row["service"] == "support-technique":
                        continue  # the total line: its channels follow
                    if row["activity"] != "assistance":
                        continue
                    total = int(Decimal(row["days"]) * rules.workday_minutes)
                    codes = [c for c in row["tenant_codes"].split(";") if c]
                    for minutes in _chunks(total):
                        serial += 1
                        _support_entry(
                            row,
                            codes,
                            minutes,
                            serial,
                            allocators[row["pole"]],
                            rnd,
                            tenants,
                            members,
                            weights,
                            categories,
                            apps,
                            rules,
                        )
                        counts["time_entries"] += 1
                        counts["tickets"] += 1
    progress("training…")
    counts["training_sessions"] = _training(rnd, members, weights)
    return counts


# -- parts --------------------------------------------------------------------------------


def _staff() -> dict[str, list[User]]:
    existing = {u.username: u for u in db.session.execute(sa.select(User)).scalars()}
    out: dict[str, list[User]] = {}
    for pole, names in STAFF.items():
        people = []
        for name in names:
            user = existing.get(name)
            if user is None:
                first, last = name.split(".")
                user = create_user(
                    name,
                    role=ROLE_OF_POLE.get(pole, Role.TECHNICIAN),
                    tenants=[],
                    all_tenants=True,
                    full_name=f"{first.upper()}. {last.capitalize()}",
                    actor=SYSTEM,
                )
            people.append(user)
        out[pole] = people
    return out


def _categories() -> dict[str, Category]:
    domains = sorted({r["domain"] for r in read_csv("applications.csv")})
    out: dict[str, Category] = {}
    with transaction(actor=SYSTEM):
        for top, subs in CATEGORIES.items():
            parent = Category(name=top, path=top, source=SOURCE, external_id=f"cat-{top}")
            db.session.add(parent)
            db.session.flush()
            out[top] = parent
            for sub in subs if subs is not None else domains:
                child = Category(
                    name=sub,
                    path=f"{top} > {sub}",
                    parent_id=parent.id,
                    source=SOURCE,
                    external_id=f"cat-{top}-{sub}",
                )
                db.session.add(child)
                out[f"{top} > {sub}"] = child
    return out


def _projects(tenants: dict[str, Tenant]) -> list[Project]:
    out = []
    with transaction(actor=SYSTEM):
        for (
            code,
            name,
            domain,
            codes,
            budget,
            start,
            end,
            forecast,
            status,
            health,
            progress_pct,
        ) in PROJECTS:
            start_d, end_d = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
            project = Project(
                code=code,
                name=name,
                domain=domain,
                budget_eur=Decimal(budget),
                status=ProjectStatus(status),
                health=ProjectHealth(health),
                owner="Pôle Méthodes et projets",
                planned_start=start_d,
                planned_end=end_d,
                forecast_end=dt.date.fromisoformat(forecast),
                actual_start=start_d,
                actual_end=dt.date.fromisoformat(forecast) if status == "done" else None,
                progress_pct=progress_pct,
                illustrative=True,
                description="Projet de démonstration : budget et dates illustratifs.",
            )
            project.tenants = [tenants[c] for c in codes if c in tenants]
            mid = start_d + (end_d - start_d) / 2
            project.milestones = [
                ProjectMilestone(
                    name="Cadrage validé",
                    due=start_d + dt.timedelta(days=30),
                    done_at=start_d + dt.timedelta(days=35),
                ),
                ProjectMilestone(
                    name="Recette", due=mid, done_at=mid if status == "done" else None
                ),
                ProjectMilestone(
                    name="Mise en production",
                    due=end_d,
                    done_at=dt.date.fromisoformat(forecast) if status == "done" else None,
                ),
            ]
            project.notes = [
                ProjectNote(month=f"{start_d:%Y-%m}", text="Lancement du projet."),
                ProjectNote(month=f"{mid:%Y-%m}", text="Avancement conforme au plan de charge."),
            ]
            db.session.add(project)
            out.append(project)
    return out


def _applications_by_tenant() -> dict[int, list[Any]]:
    try:
        from cmdb.models import CI, CIKind, Usage
    except ImportError:  # pragma: no cover - the CMDB is part of syndic
        return {}
    rows = db.session.execute(
        sa.select(Usage.tenant_id, CI)
        .join(CI, CI.id == Usage.ci_id)
        .where(CI.kind == CIKind.APPLICATION)
    ).all()
    out: dict[int, list[Any]] = defaultdict(list)
    for tenant_id, ci in rows:
        out[tenant_id].append(ci)
    return out


def _active_projects(projects: list[Project], day: dt.date) -> list[Project]:
    active = []
    for p in projects:
        end = p.forecast_end or p.planned_end
        if p.planned_start is not None and end is not None and p.planned_start <= day <= end:
            active.append(p)
    return active


def _ticket(
    serial: int,
    tenant: Tenant,
    day: dt.date,
    person: User,
    rnd: random.Random,
    category: Category,
    ci: Any,
    rules: Any,
    title: str,
) -> Ticket:
    opened = dt.datetime.combine(day, dt.time(9, 0), tzinfo=P) + dt.timedelta(
        minutes=rnd.randint(0, 420)
    )
    urgency, impact = rnd.choice([2, 3, 3, 3, 4]), rnd.choice([2, 3, 3, 4, 4])
    pri = compute_priority(urgency, impact, rules.matrix)
    cal = rules.calendar_for(tenant.code)
    owned = cal.add(opened, rnd.randint(5, rules.targets.own[pri]))
    late = rnd.random() < 0.08
    budget = rules.targets.resolve[pri]
    solved = cal.add(
        opened, rnd.randint(budget + 30, budget * 2) if late else rnd.randint(30, budget)
    )
    ticket = Ticket(
        tenant=tenant,
        tenant_id=tenant.id,
        type=rnd.choice([TicketType.INCIDENT, TicketType.REQUEST]),
        title=title,
        description="Demande enregistrée pour la démonstration.",
        status=TicketStatus.CLOSED,
        urgency=urgency,
        impact=impact,
        priority=pri,
        category_id=category.id,
        ci_id=ci.id if ci is not None else None,
        requester_name=f"Agent {tenant.name}",
        assignee_id=person.id,
        opened_at=opened,
        owned_at=owned,
        solved_at=solved,
        closed_at=cal.add(solved, 7 * 60 * 2),
        paused_minutes=0.0,
        sla_breached=False,
        source=SOURCE,
        external_id=f"t-{serial}",
    )
    ticket.tenant = tenant
    refresh_sla(ticket, rules, solved)
    db.session.add(ticket)
    return ticket


def _si_entry(
    activity: str,
    minutes: int,
    serial: int,
    alloc: Allocator,
    rnd: random.Random,
    tenants: dict[str, Tenant],
    members: list[Tenant],
    weights: list[float],
    projects: list[Project],
    categories: dict[str, Category],
    apps: dict[int, list[Any]],
    rules: Any,
) -> int:
    day, person = alloc.place(minutes)
    project = None
    ticket = None
    if activity == "internal":
        tenant = tenants["siim94"]
    elif activity == "project":
        active = _active_projects(projects, day) or projects
        project = _weighted(rnd, active, [float(p.budget_eur or 1) for p in active])
        served = list(project.tenants)
        tenant = rnd.choice(served) if served else tenants["siim94"]
    else:
        tenant = _weighted(rnd, members, weights)
    made = 0
    if activity == "mco" and serial % 2 == 0:
        ci = rnd.choice(apps[tenant.id]) if apps.get(tenant.id) else None
        domain = ci.attributes.get("domain") if ci is not None else None
        category = (
            categories.get(f"Applications métier > {domain}") or categories["Applications métier"]
        )
        name = ci.name if ci is not None else "application métier"
        ticket = _ticket(
            serial, tenant, day, person, rnd, category, ci, rules, f"Anomalie sur {name}"
        )
        made = 1
    db.session.add(
        TimeEntry(
            user_id=person.id,
            tenant_id=tenant.id,
            date=day,
            minutes=minutes,
            activity=activity,
            pole="systemes-information",
            ticket=ticket,
            project_id=project.id if project else None,
            channel=Channel.REMOTE,
            note="",
            source=SOURCE,
            external_id=f"e-{serial}",
        )
    )
    return made


def _support_entry(
    row: dict[str, str],
    codes: list[str],
    minutes: int,
    serial: int,
    alloc: Allocator,
    rnd: random.Random,
    tenants: dict[str, Tenant],
    members: list[Tenant],
    weights: list[float],
    categories: dict[str, Category],
    apps: dict[int, list[Any]],
    rules: Any,
) -> None:
    day, person = alloc.place(minutes)
    if codes:
        pool = [tenants[c] for c in codes]
        tenant = _weighted(rnd, pool, [float(t.contributions.get("2021", 1)) for t in pool])
    else:
        tenant = _weighted(rnd, members, weights)
    channel = Channel(row["channel"]) if row["channel"] else Channel.REMOTE
    if row["pole"] == "infrastructures":
        category = categories[
            rnd.choice(
                [
                    "Réseau et serveurs > Réseau",
                    "Réseau et serveurs > Serveurs",
                    "Réseau et serveurs > Sauvegarde",
                ]
            )
        ]
        title = f"Assistance infrastructure ({category.name.lower()})"
    elif row["service"] == "support-fonctionnel":
        ci = rnd.choice(apps[tenant.id]) if apps.get(tenant.id) else None
        category = categories["Applications métier"]
        title = f"Question d'utilisation de {ci.name if ci else 'une application'}"
    else:
        category = categories[
            rnd.choice(
                [
                    "Poste de travail > Matériel",
                    "Poste de travail > Impression",
                    "Poste de travail > Logiciel bureautique",
                    "Comptes et accès > Mot de passe",
                ]
            )
        ]
        title = f"{category.name} : intervention"
    ticket = _ticket(serial, tenant, day, person, rnd, category, None, rules, title)
    db.session.add(
        TimeEntry(
            user_id=person.id,
            tenant_id=tenant.id,
            date=day,
            minutes=minutes,
            activity="assistance",
            pole=row["pole"],
            ticket=ticket,
            channel=channel,
            note=row["label"][:200],
            source=SOURCE,
            external_id=f"e-{serial}",
        )
    )


def _training(rnd: random.Random, members: list[Tenant], weights: list[float]) -> int:
    """The 2016–2021 training table as sessions: each year's trainees and days, exactly."""
    made = 0
    with transaction(actor=SYSTEM):
        for row in read_csv("training.csv"):
            if row["category"] == "total" or not row["agents"]:
                continue
            trainees, days = int(row["agents"]), Decimal(row["days"])
            if days <= 0:
                continue
            sessions = max(1, min(int(days // 2), 12))
            half_days = int(days * 2)
            for i in range(sessions):
                share = half_days // sessions + (1 if i < half_days % sessions else 0)
                people = trainees // sessions + (1 if i < trainees % sessions else 0)
                if share == 0:
                    continue
                year = int(row["year"])
                db.session.add(
                    TrainingSession(
                        tenant=_weighted(rnd, members, weights),
                        date=dt.date(year, 1 + (i * 11) // sessions, 10 + (i % 15)),
                        type=TRAINING_TYPES[row["category"]],
                        title=row["label_fr"].capitalize(),
                        trainees=people,
                        days=Decimal(share) / 2,
                        trainer="SIIM94",
                        note="Session de démonstration (totaux annuels réels).",
                    )
                )
                made += 1
    return made
