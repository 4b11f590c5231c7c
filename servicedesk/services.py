"""Service-desk use cases. Each one states its rule and the errors it raises, owns its
transaction, and receives the actor, the clock (``now``) and the parsed settings (``rules``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import nh3
import sqlalchemy as sa
from sqlalchemy import select

from cmdb import services as cmdb
from config.auth import Actor, Role, User, UserRef, actor_user, can, require
from config.changelog import insert_created_if
from config.db import db, transaction, utcnow
from config.errors import Forbidden, NotFound, ValidationFailed
from config.tenancy import (
    Tenant,
    TenantRef,
    get_scoped,
    resolve_tenant,
    tenant_ref,
    tenant_scope,
    visible_tenant_ids,
)
from servicedesk import permissions  # noqa: F401  (registers the permissions)
from servicedesk.errors import (
    InvalidTimeEntry,
    ProjectInUse,
    TransitionNeedsInput,
    TransitionNotAllowed,
)
from servicedesk.models import (
    Category,
    Channel,
    Comment,
    Project,
    ProjectMilestone,
    ProjectNote,
    Satisfaction,
    Ticket,
    TicketStatus,
    TicketType,
    TimeEntry,
    TrainingSession,
)
from servicedesk.priority import priority as compute_priority
from servicedesk.settings import ServiceDeskSettings
from servicedesk.workflow import FINAL, OPEN, MoveRefused, check_move

__all__ = [
    "add_comment",
    "create_category",
    "create_project",
    "create_training",
    "delete_project",
    "delete_ticket",
    "delete_time_entry",
    "flag_breached_tickets",
    "log_time",
    "open_ticket",
    "put_project_note",
    "record_satisfaction",
    "refresh_sla",
    "restore_ticket",
    "sanitize_html",
    "soft_delete_external_tickets",
    "soft_delete_external_time_entries",
    "transition_ticket",
    "update_project",
    "update_ticket",
    "update_time_entry",
    "upsert_external_category",
    "upsert_external_ticket",
    "upsert_external_tickets",
    "upsert_external_time_entries",
    "upsert_external_time_entry",
]

Result = Literal["created", "updated", "unchanged"]
DAY_MINUTES = 24 * 60


def _fail(field: str, message: str, detail: str = "Invalid value.") -> ValidationFailed:
    return ValidationFailed(detail, errors={field: [message]})


def sanitize_html(html: str) -> str:
    """HTML from sources made safe to display (scripts, handlers, javascript: links go)."""
    return nh3.clean(html, link_rel="noopener noreferrer")


# -- lookups shared by the use cases ----------------------------------------------------


def _required_tenant(code: str, actor: Actor, *, field: str = "tenant") -> Tenant:
    tenant = resolve_tenant(code, actor, field=field)
    if tenant is None:
        raise _fail(field, "A tenant is required.")
    return tenant


def _user_named(username: str, *, field: str) -> User:
    user = db.session.execute(select(User).where(User.username == username)).scalar()
    if user is None or not user.active:
        raise _fail(field, f"Unknown user {username!r}.", "Unknown user.")
    return user


def user_sees_tenant(user: User, tenant_id: int) -> bool:
    """Whether ``user`` has access to the tenant (directly or through a parent tenant)."""
    ids = visible_tenant_ids(Actor.of(user))
    return ids is None or tenant_id in ids


def _category(category_id: int | None, *, field: str = "category") -> Category | None:
    if category_id is None:
        return None
    category = db.session.get(Category, category_id) if 0 < category_id < 2**31 else None
    if category is None or not category.active:
        raise _fail(field, f"Unknown category {category_id}.", "Unknown category.")
    return category


def _ci_for(key_or_id: Any, tenant_id: int, actor: Actor) -> Any:
    if key_or_id is None:
        return None
    ci = cmdb.resolve_ci(key_or_id, actor, field="ci")
    if ci.tenant_id not in (None, tenant_id):
        raise _fail("ci", "This configuration item belongs to another tenant.")
    return ci


def _assignee(username: str | None, tenant_id: int) -> User | None:
    if username is None:
        return None
    user = _user_named(username, field="assignee")
    if user.role is Role.MANAGER or not user_sees_tenant(user, tenant_id):
        raise _fail("assignee", f"{username!r} cannot work on this tenant's tickets.")
    return user


# -- SLA --------------------------------------------------------------------------------


def refresh_sla(ticket: Ticket, rules: ServiceDeskSettings, now: dt.datetime) -> None:
    """Recompute the ticket's deadlines and breach flag from its history so far.

    Rule: time to own runs from opening until taken into account; time to resolve runs from
    opening until solved, minus business time spent pending. A breach, once seen, stays.
    """
    calendar = rules.calendar_for(ticket.tenant.code if ticket.tenant else None)
    opened = ticket.opened_at
    ticket.due_to_own_at = rules.targets.due_to_own(calendar, opened, ticket.priority)
    ticket.due_to_resolve_at = rules.targets.due_to_resolve(
        calendar, opened, ticket.priority, ticket.paused_minutes
    )
    breached = bool(ticket.sla_breached)
    own_time = ticket.owned_at or (None if ticket.status in FINAL else now)
    if own_time is not None and own_time > ticket.due_to_own_at:
        breached = True
    if ticket.status is not TicketStatus.PENDING and ticket.status is not TicketStatus.CANCELLED:
        solve_time = ticket.solved_at or (None if ticket.status in FINAL else now)
        if solve_time is not None and solve_time > ticket.due_to_resolve_at:
            breached = True
    ticket.sla_breached = breached


def flag_breached_tickets(*, now: dt.datetime, rules: ServiceDeskSettings) -> int:
    """Flag open tickets whose deadline has passed (the scheduled sweep); returns how many."""
    stmt = (
        select(Ticket)
        .where(
            Ticket.deleted_at.is_(None),
            Ticket.sla_breached.is_(False),
            Ticket.status.in_([s.value for s in OPEN if s is not TicketStatus.PENDING]),
            sa.or_(
                sa.and_(Ticket.owned_at.is_(None), Ticket.due_to_own_at < now),
                Ticket.due_to_resolve_at < now,
            ),
        )
        .order_by(Ticket.id)
    )
    flagged = 0
    with transaction():
        for ticket in db.session.execute(stmt).unique().scalars():
            refresh_sla(ticket, rules, now)
            if ticket.sla_breached:
                flagged += 1
    return flagged


# -- tickets ----------------------------------------------------------------------------


def _requester(ticket: Ticket, value: Mapping[str, Any] | None) -> None:
    value = value or {}
    ticket.requester_name = value.get("name") or ""
    ticket.requester_email = value.get("email")


def open_ticket(
    data: Mapping[str, Any], *, actor: Actor, now: dt.datetime, rules: ServiceDeskSettings
) -> Ticket:
    """Open a ticket for a tenant the actor sees.

    Priority comes from urgency × impact; deadlines from the tenant's calendar. An assignee
    given at opening takes the ticket into account (status ``assigned``). Only admins may
    back-date ``opened_at``. Raises ValidationFailed (unknown tenant, CI, category, assignee).
    """
    require(actor, "servicedesk.tickets.write")
    if "opened_at" in data and not actor.is_admin:
        raise _fail("opened_at", "Only administrators may set the opening time.")
    opened_at = data.get("opened_at") or now
    if opened_at > now + dt.timedelta(minutes=5):
        raise _fail("opened_at", "A ticket cannot be opened in the future.")
    with transaction(actor=actor):
        tenant = _required_tenant(data["tenant"], actor)
        ticket = Ticket(
            tenant=tenant,
            type=TicketType(data["type"]),
            title=data["title"],
            description=data.get("description", ""),
            description_format=data.get("description_format", "text"),
            urgency=data.get("urgency", 3),
            impact=data.get("impact", 3),
            category=_category(data.get("category")),
            ci=_ci_for(data.get("ci"), tenant.id, actor),
            assignee=_assignee(data.get("assignee"), tenant.id),
            assigned_group=data.get("group"),
            opened_at=opened_at,
            status=TicketStatus.NEW,
            paused_minutes=0.0,
            sla_breached=False,
        )
        _requester(ticket, data.get("requester"))
        ticket.priority = compute_priority(ticket.urgency, ticket.impact, rules.matrix)
        if ticket.assignee is not None:
            ticket.status = TicketStatus.ASSIGNED
            ticket.owned_at = now if now > opened_at else opened_at
        refresh_sla(ticket, rules, now)
        db.session.add(ticket)
    return ticket


def update_ticket(
    ticket: Ticket,
    changes: Mapping[str, Any],
    *,
    actor: Actor,
    now: dt.datetime,
    rules: ServiceDeskSettings,
) -> Ticket:
    """Change a ticket's fields (not its status: that is a transition, nor its tenant)."""
    require(actor, "servicedesk.tickets.write")
    if "tenant" in changes and changes["tenant"] != ticket.tenant.code:
        raise _fail("tenant", "A ticket cannot move to another tenant.")
    if "opened_at" in changes:
        raise _fail("opened_at", "The opening time cannot change.")
    if ticket.status in FINAL:
        raise TransitionNotAllowed(f"A {ticket.status.value} ticket cannot be changed.", allowed=[])
    with transaction(actor=actor):
        for key in ("title", "description", "urgency", "impact"):
            if key in changes:
                setattr(ticket, key, changes[key])
        if "type" in changes:
            ticket.type = TicketType(changes["type"])
        if "category" in changes:
            ticket.category = _category(changes["category"])
        if "ci" in changes:
            ticket.ci = _ci_for(changes["ci"], ticket.tenant_id, actor)
        if "assignee" in changes:
            ticket.assignee = _assignee(changes["assignee"], ticket.tenant_id)
        if "group" in changes:
            ticket.assigned_group = changes["group"]
        if "requester" in changes:
            _requester(ticket, changes["requester"])
        ticket.priority = compute_priority(ticket.urgency, ticket.impact, rules.matrix)
        refresh_sla(ticket, rules, now)
        ticket.updated_at = now
    return ticket


def transition_ticket(
    ticket: Ticket,
    to: TicketStatus,
    *,
    comment: str | None,
    assignee: str | None = None,
    actor: Actor,
    now: dt.datetime,
    rules: ServiceDeskSettings,
) -> Ticket:
    """Move a ticket along the workflow (API.md §5).

    Raises TransitionNotAllowed (409, with the allowed moves) for a move the table refuses,
    TransitionNeedsInput (422) when ``assigned`` lacks an assignee or ``solved`` a solution.
    The comment is kept on the ticket (as the solution when solving).
    """
    require(actor, "servicedesk.tickets.write")
    with transaction(actor=actor):
        if assignee is not None:
            ticket.assignee = _assignee(assignee, ticket.tenant_id)
        try:
            move = check_move(
                ticket.status,
                to,
                has_assignee=ticket.assignee_id is not None or ticket.assignee is not None,
                has_solution=bool(comment and comment.strip()),
                was_owned=ticket.owned_at is not None,
            )
        except MoveRefused as refused:
            allowed = [s.value for s in refused.allowed]
            if refused.field:
                raise TransitionNeedsInput(
                    str(refused), errors={refused.field: [str(refused)]}, allowed=allowed
                ) from None
            raise TransitionNotAllowed(str(refused), allowed=allowed) from None
        if move.ends_pending and ticket.pending_since is not None:
            calendar = rules.calendar_for(ticket.tenant.code)
            ticket.paused_minutes = (ticket.paused_minutes or 0.0) + calendar.between(
                ticket.pending_since, now
            )
            ticket.pending_since = None
        if move.starts_pending:
            ticket.pending_since = now
        if move.sets_owned:
            ticket.owned_at = now
        if move.sets_solved:
            ticket.solved_at = now
        if move.clears_solved:
            ticket.solved_at = None
        if move.sets_closed:
            ticket.closed_at = now
        ticket.status = to
        if comment and comment.strip():
            db.session.add(
                Comment(
                    ticket_id=ticket.id,
                    tenant_id=ticket.tenant_id,
                    author_id=actor.user_id,
                    author_name=actor.username,
                    body=comment.strip(),
                    private=False,
                    kind="solution" if to is TicketStatus.SOLVED else "transition",
                )
            )
        refresh_sla(ticket, rules, now)
        ticket.updated_at = now
    return ticket


def delete_ticket(ticket: Ticket, *, actor: Actor, now: dt.datetime) -> None:
    """Put a ticket and its time entries in the trash (admins). Nothing is purged."""
    require(actor, "servicedesk.tickets.delete")
    with transaction(actor=actor):
        _trash([ticket], now)


def restore_ticket(ticket: Ticket, *, actor: Actor, now: dt.datetime) -> Ticket:
    """Take a ticket and its time entries out of the trash (admins)."""
    require(actor, "servicedesk.tickets.delete")
    with transaction(actor=actor):
        _untrash([ticket], now)
    return ticket


def _trash(tickets: Iterable[Ticket], now: dt.datetime) -> int:
    count = 0
    for ticket in tickets:
        if ticket.deleted_at is None:
            ticket.deleted_at = now
            count += 1
            entries = select(TimeEntry).where(
                TimeEntry.ticket_id == ticket.id, TimeEntry.deleted_at.is_(None)
            )
            for entry in db.session.execute(entries).unique().scalars():
                entry.deleted_at = now
    return count


def _untrash(tickets: Iterable[Ticket], now: dt.datetime) -> int:
    count = 0
    for ticket in tickets:
        if ticket.deleted_at is not None:
            trashed_at = ticket.deleted_at
            ticket.deleted_at = None
            ticket.updated_at = now
            count += 1
            entries = select(TimeEntry).where(
                TimeEntry.ticket_id == ticket.id, TimeEntry.deleted_at == trashed_at
            )
            for entry in db.session.execute(entries).unique().scalars():
                entry.deleted_at = None
    return count


def add_comment(
    ticket: Ticket, data: Mapping[str, Any], *, actor: Actor, now: dt.datetime
) -> Comment:
    """Add a public or private comment to a ticket that is not in the trash."""
    require(actor, "servicedesk.tickets.write")
    with transaction(actor=actor):
        comment = Comment(
            ticket_id=ticket.id,
            tenant_id=ticket.tenant_id,
            author_id=actor.user_id,
            author_name=actor.username,
            body=data["body"],
            private=data.get("private", False),
            kind="comment",
        )
        db.session.add(comment)
        ticket.updated_at = now
    return comment


def record_satisfaction(
    ticket: Ticket, data: Mapping[str, Any], *, actor: Actor, now: dt.datetime
) -> Satisfaction:
    """Record (or replace) the requester's satisfaction; only for solved or closed tickets."""
    require(actor, "servicedesk.tickets.write")
    if ticket.status not in (TicketStatus.SOLVED, TicketStatus.CLOSED):
        raise TransitionNotAllowed(
            "Satisfaction is recorded once the ticket is solved or closed.",
            allowed=[TicketStatus.SOLVED.value, TicketStatus.CLOSED.value],
        )
    with transaction(actor=actor):
        answer = ticket.satisfaction
        if answer is None:
            answer = Satisfaction(ticket=ticket, tenant_id=ticket.tenant_id)
            db.session.add(answer)
        answer.score = data["score"]
        answer.comment = data.get("comment", "")
        answer.answered_at = now
        answer.updated_at = now
    return answer


# -- time entries -----------------------------------------------------------------------


def _local_today(now: dt.datetime, rules: ServiceDeskSettings) -> dt.date:
    from zoneinfo import ZoneInfo

    return now.astimezone(ZoneInfo(rules.timezone)).date()


def _minutes(data: Mapping[str, Any], rules: ServiceDeskSettings) -> int | None:
    if "minutes" in data and "days" in data:
        raise InvalidTimeEntry(
            "Give minutes or days, not both.",
            errors={
                "minutes": ["Give minutes or days, not both."],
                "days": ["Give minutes or days, not both."],
            },
        )
    if "days" in data:
        minutes = round(Decimal(str(data["days"])) * rules.workday_minutes)
        if minutes <= 0:
            raise InvalidTimeEntry("Too short.", errors={"days": ["Must be more than 0."]})
        return int(minutes)
    return data.get("minutes")


def _project(code: str | None, actor: Actor) -> Project | None:
    if code is None:
        return None
    stmt = tenant_scope(select(Project).where(Project.code == code), actor)
    project = db.session.execute(stmt).unique().scalar()
    if project is None:
        raise _fail("project", f"Unknown project {code!r}.", "Unknown project.")
    return project


def _ticket_for_entry(ticket_id: int | None, actor: Actor) -> Ticket | None:
    if ticket_id is None:
        return None
    stmt = tenant_scope(
        select(Ticket).where(Ticket.id == ticket_id, Ticket.deleted_at.is_(None)), actor
    )
    ticket = db.session.execute(stmt).unique().scalar() if 0 < ticket_id < 2**31 else None
    if ticket is None:
        raise _fail("ticket", f"Unknown ticket {ticket_id}.", "Unknown ticket.")
    return ticket


def _check_entry(
    entry: TimeEntry, rules: ServiceDeskSettings, now: dt.datetime, *, check_day: bool
) -> None:
    """The rules every time entry obeys, whoever writes it."""
    _check_values(
        activity=entry.activity,
        pole=entry.pole,
        minutes=entry.minutes,
        date=entry.date,
        tenant_id=entry.tenant_id,
        ticket=entry.ticket,
        project=entry.project,
        rules=rules,
        now=now,
    )
    if check_day:
        _check_day_total(entry)


def _check_values(
    *,
    activity: str,
    pole: str | None,
    minutes: int,
    date: dt.date,
    tenant_id: int | None,
    ticket: Ticket | None,
    project: Project | None,
    rules: ServiceDeskSettings,
    now: dt.datetime,
) -> None:
    if activity not in rules.activities:
        raise InvalidTimeEntry(
            "Unknown activity.",
            errors={
                "activity": [f"Unknown activity {activity!r}; one of {sorted(rules.activities)}."]
            },
        )
    if pole is not None and pole not in rules.poles:
        raise InvalidTimeEntry(
            "Unknown pole.",
            errors={"pole": [f"Unknown pole {pole!r}; one of {sorted(rules.poles)}."]},
        )
    if not 0 < minutes <= DAY_MINUTES:
        raise InvalidTimeEntry(
            "Invalid duration.", errors={"minutes": ["Between 1 and 1440 minutes."]}
        )
    if date > _local_today(now, rules) + dt.timedelta(days=1):
        raise InvalidTimeEntry("Date in the future.", errors={"date": ["At most tomorrow."]})
    if ticket is not None and ticket.tenant_id != tenant_id:
        raise InvalidTimeEntry(
            "The ticket belongs to another tenant.",
            errors={"ticket": ["The ticket belongs to another tenant than the entry."]},
        )
    if (
        project is not None
        and project.tenants
        and tenant_id is not None
        and tenant_id not in {t.id for t in project.tenants}
    ):
        raise InvalidTimeEntry(
            "The project does not serve this tenant.",
            errors={"project": ["The project does not serve the entry's tenant."]},
        )


_ENTRY_COLUMNS = sa.inspect(TimeEntry).column_attrs
_ENTRIES = TimeEntry.__table__

# Built once (bound parameters): the statements run while the write lock is held.
_DAY_LOCK = sa.select(
    sa.func.pg_advisory_xact_lock(
        sa.bindparam("user_id", type_=sa.Integer), sa.bindparam("day", type_=sa.Integer)
    )
)
_DAY_TOTAL = select(sa.func.coalesce(sa.func.sum(_ENTRIES.c.minutes), 0)).where(
    _ENTRIES.c.user_id == sa.bindparam("user_id"),
    _ENTRIES.c.date == sa.bindparam("day"),
    _ENTRIES.c.deleted_at.is_(None),
)
_DAY_TOTAL_OTHERS = _DAY_TOTAL.where(_ENTRIES.c.id != sa.bindparam("entry_id"))
_INSERT_WITHIN_DAY: dict[str, sa.Insert] = {}


def _insert_within_day(dialect: str) -> sa.Insert:
    """``INSERT INTO time_entries (...) SELECT <the values> WHERE <the user's day, with this
    entry, stays within 24 hours> RETURNING id``: the day's total is checked by the statement
    that writes, one statement instead of two. PostgreSQL types a bare parameter of a SELECT
    list as text, so there each value is cast to its column's type; SQLite keeps them bare
    (a CAST would change how it stores dates and times)."""
    stmt = _INSERT_WITHIN_DAY.get(dialect)
    if stmt is None:
        columns = [attr.columns[0] for attr in _ENTRY_COLUMNS if attr.key != "id"]
        params = {c.key: sa.bindparam(c.key, type_=c.type) for c in columns}
        values = [
            sa.cast(params[c.key], c.type) if dialect == "postgresql" else params[c.key]
            for c in columns
        ]
        day = (
            select(sa.func.coalesce(sa.func.sum(_ENTRIES.c.minutes), 0))
            .where(
                _ENTRIES.c.user_id == values[columns.index(_ENTRIES.c.user_id)],
                _ENTRIES.c.date == values[columns.index(_ENTRIES.c.date)],
                _ENTRIES.c.deleted_at.is_(None),
            )
            .scalar_subquery()
        )
        within = day + values[columns.index(_ENTRIES.c.minutes)] <= DAY_MINUTES
        stmt = _INSERT_WITHIN_DAY[dialect] = (
            sa.insert(_ENTRIES)
            .from_select([c.key for c in columns], select(*values).where(within))
            .returning(_ENTRIES.c.id)
        )
    return stmt


def _lock_day(user_id: int, day: dt.date) -> None:
    """Concurrent writers of the same user and day must not both pass on the old total:
    SQLite serialises writers already (BEGIN IMMEDIATE); PostgreSQL, under READ COMMITTED,
    would let two of them read the same total, so the (user, day) pair is locked first, until
    the transaction ends (an advisory lock: nothing else waits on it)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(_DAY_LOCK, {"user_id": user_id, "day": day.toordinal()})


def _day_full(already: int, day: dt.date) -> InvalidTimeEntry:
    return InvalidTimeEntry(
        "More than 24 hours in a day.",
        errors={"minutes": [f"{already} minutes are already logged on {day} for this user."]},
    )


def _check_day_total(entry: TimeEntry) -> None:
    """At most 24 hours per user and day, counting the entry (inside the write transaction)."""
    user_id = entry.user_id if entry.user_id is not None else entry.user.id
    _lock_day(user_id, entry.date)
    params = {"user_id": user_id, "day": entry.date}
    if entry.id is None:
        already = db.session.execute(_DAY_TOTAL, params).scalar_one()
    else:
        already = db.session.execute(
            _DAY_TOTAL_OTHERS, {**params, "entry_id": entry.id}
        ).scalar_one()
    if already + entry.minutes > DAY_MINUTES:
        raise _day_full(already, entry.date)


def _entry_user(username: str | None, actor: Actor) -> User:
    if username in (None, "me") or username == actor.username:
        if actor.user_id is None:
            raise _fail("user", "The system has no timesheet; name a user.")
        return actor_user(actor)
    if not can(actor, "servicedesk.time.others"):
        raise Forbidden("Only managers and administrators log time for someone else.")
    return _user_named(username, field="user")


def _check_user_tenant(user: User, tenant: Tenant | None, actor: Actor) -> None:
    if tenant is not None and user.id != actor.user_id and not user_sees_tenant(user, tenant.id):
        raise _fail("user", f"{user.username!r} does not work for this tenant.")


@dataclass(frozen=True, slots=True)
class LoggedTime:
    """A time entry as :func:`log_time` wrote it: its columns, and the user, tenant and project
    it names as far as its answer shows them (ids and codes), not loaded back as an object.
    ``db.session.get(TimeEntry, logged.id)`` gives the entry itself."""

    id: int
    user: User | UserRef
    tenant: Tenant | TenantRef | None
    project: Project | None
    user_id: int
    tenant_id: int | None
    date: dt.date
    minutes: int
    activity: str
    pole: str | None
    ticket_id: int | None
    project_id: int | None
    channel: Channel | None
    note: str
    deleted_at: dt.datetime | None
    source: str
    external_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


def _logging_user(username: str | None, actor: Actor) -> User | UserRef:
    if username in (None, "me") or username == actor.username:
        if actor.user_id is None:
            raise _fail("user", "The system has no timesheet; name a user.")
        return UserRef(actor.user_id, actor.username)
    return _entry_user(username, actor)


def log_time(
    data: Mapping[str, Any], *, actor: Actor, now: dt.datetime, rules: ServiceDeskSettings
) -> LoggedTime:
    """Record time spent (minutes, or days of ``workday_minutes``).

    Rules: an activity and a pole from the settings; 1..1440 minutes and at most 24 h per user
    and day; a date no later than tomorrow; the ticket and the project of the entry serve its
    tenant (the ticket's tenant is the default); another user only for managers and admins,
    and only a user of that tenant. Raises InvalidTimeEntry / ValidationFailed (422),
    Forbidden (403).
    """
    require(actor, "servicedesk.time.write")
    minutes = _minutes(data, rules)
    if minutes is None:
        raise InvalidTimeEntry("Missing duration.", errors={"minutes": ["Give minutes or days."]})
    # Everything but the day's total is looked up and checked before the write transaction
    # begins, as ids and codes rather than objects where the request names them: on SQLite the
    # write lock (BEGIN IMMEDIATE) is then held only for one INSERT, which checks the day's
    # total itself, and its change record (the other worker waits for it).
    user = _logging_user(data.get("user"), actor)
    ticket = _ticket_for_entry(data.get("ticket"), actor)
    tenant: Tenant | TenantRef | None
    if "tenant" in data:
        tenant = tenant_ref(data["tenant"], actor)
    else:
        tenant = ticket.tenant if ticket is not None else None
    if isinstance(user, User):
        _check_user_tenant(user, tenant, actor)
    project = _project(data.get("project"), actor)
    tenant_id = tenant.id if tenant else None
    _check_values(
        activity=data["activity"],
        pole=data.get("pole"),
        minutes=minutes,
        date=data["date"],
        tenant_id=tenant_id,
        ticket=ticket,
        project=project,
        rules=rules,
        now=now,
    )
    stamp = utcnow()
    values = {
        "user_id": user.id,
        "tenant_id": tenant_id,
        "date": data["date"],
        "minutes": minutes,
        "activity": data["activity"],
        "pole": data.get("pole"),
        "ticket_id": ticket.id if ticket else None,
        "project_id": project.id if project else None,
        "channel": data.get("channel"),
        "note": data.get("note", ""),
        "deleted_at": None,
        "source": "local",
        "external_id": None,
        "created_at": stamp,
        "updated_at": stamp,
        "version": 1,
    }
    with transaction(actor=actor) as session:
        _lock_day(user.id, data["date"])
        stmt = _insert_within_day(session.get_bind().dialect.name)
        entry_id = insert_created_if(session, TimeEntry, stmt, values)
        if entry_id is None:
            already = session.execute(_DAY_TOTAL, {"user_id": user.id, "day": data["date"]})
            raise _day_full(already.scalar_one(), data["date"])
    return LoggedTime(id=entry_id, user=user, tenant=tenant, project=project, **values)


def update_time_entry(
    entry: TimeEntry,
    changes: Mapping[str, Any],
    *,
    actor: Actor,
    now: dt.datetime,
    rules: ServiceDeskSettings,
) -> TimeEntry:
    """Change a time entry (one's own; managers and admins: anyone's) under the same rules."""
    require(actor, "servicedesk.time.write")
    if entry.user_id != actor.user_id:
        require(actor, "servicedesk.time.others")
    with transaction(actor=actor):
        if "minutes" in changes or "days" in changes:
            entry.minutes = _minutes(changes, rules) or entry.minutes
        for key in ("date", "activity", "pole", "channel", "note"):
            if key in changes:
                setattr(entry, key, changes[key])
        ticket = (
            _ticket_for_entry(changes["ticket"], actor)
            if "ticket" in changes
            else (db.session.get(Ticket, entry.ticket_id) if entry.ticket_id else None)
        )
        entry.ticket_id = ticket.id if ticket else None
        if "tenant" in changes:
            tenant = resolve_tenant(changes["tenant"], actor)
            entry.tenant, entry.tenant_id = tenant, tenant.id if tenant else None
        if "project" in changes:
            entry.project = _project(changes["project"], actor)
        if "user" in changes:
            entry.user = _entry_user(changes["user"], actor)
            entry.user_id = entry.user.id
        _check_user_tenant(entry.user, entry.tenant, actor)
        entry.ticket = ticket
        _check_entry(entry, rules, now, check_day=True)
        entry.updated_at = now
    return entry


def delete_time_entry(entry: TimeEntry, *, actor: Actor) -> None:
    """Delete a local time entry (one's own; managers and admins: anyone's). Entries from a
    source are removed by their sync (soft delete), not here."""
    require(actor, "servicedesk.time.write")
    if entry.user_id != actor.user_id:
        require(actor, "servicedesk.time.others")
    if entry.source != "local":
        raise Forbidden(f"This entry comes from {entry.source}; change it there.")
    with transaction(actor=actor):
        db.session.delete(entry)


# -- projects ---------------------------------------------------------------------------


def _tenants(codes: Iterable[str], actor: Actor) -> list[Tenant]:
    tenants = []
    for code in dict.fromkeys(codes):
        tenants.append(_required_tenant(code, actor, field="tenants"))
    return tenants


def _apply_project(project: Project, data: Mapping[str, Any], actor: Actor) -> None:
    if "budget_eur" in data:
        budget = data["budget_eur"]
        project.budget_eur = (
            None if budget is None else Decimal(str(budget)).quantize(Decimal("0.01"))
        )
    for key in (
        "name",
        "domain",
        "description",
        "status",
        "health",
        "owner",
        "planned_start",
        "planned_end",
        "forecast_end",
        "actual_start",
        "actual_end",
        "progress_pct",
        "illustrative",
    ):
        if key in data:
            setattr(project, key, data[key])
    if "tenants" in data:
        project.tenants = _tenants(data["tenants"], actor)
    if "milestones" in data:
        project.milestones = [
            ProjectMilestone(name=m["name"], due=m["due"], done_at=m.get("done_at"))
            for m in data["milestones"]
        ]
    if (
        project.planned_start
        and project.planned_end
        and project.planned_end < project.planned_start
    ):
        raise _fail("planned_end", "The planned end comes before the planned start.")
    if project.actual_start and project.actual_end and project.actual_end < project.actual_start:
        raise _fail("actual_end", "The actual end comes before the actual start.")


def create_project(data: Mapping[str, Any], *, actor: Actor, now: dt.datetime) -> Project:
    """Create a project (managers, admins). Raises Conflict on a taken code."""
    from config.errors import Conflict

    require(actor, "servicedesk.projects.write")
    with transaction(actor=actor):
        if db.session.execute(select(Project.id).where(Project.code == data["code"])).first():
            raise Conflict(f"The project code {data['code']!r} is taken.")
        project = Project(code=data["code"], name=data["name"])
        _apply_project(project, data, actor)
        db.session.add(project)
    return project


def update_project(
    project: Project, changes: Mapping[str, Any], *, actor: Actor, now: dt.datetime
) -> Project:
    """Change a project; milestones and tenants given are the new complete lists."""
    require(actor, "servicedesk.projects.write")
    if "code" in changes and changes["code"] != project.code:
        raise _fail("code", "A project's code cannot change.")
    with transaction(actor=actor):
        _apply_project(project, changes, actor)
        project.updated_at = now
    return project


def put_project_note(
    project: Project, month: str, text: str, *, actor: Actor, now: dt.datetime
) -> Project:
    """Set (or replace) the project's PMO note for a month ``YYYY-MM``."""
    require(actor, "servicedesk.projects.write")
    with transaction(actor=actor):
        for note in project.notes:
            if note.month == month:
                note.text = text
                break
        else:
            project.notes.append(ProjectNote(month=month, text=text))
        project.updated_at = now
    return project


def delete_project(project: Project, *, actor: Actor) -> None:
    """Delete a project nothing refers to; with time entries it is a ProjectInUse (409)."""
    require(actor, "servicedesk.projects.write")
    with transaction(actor=actor):
        used = db.session.execute(
            select(TimeEntry.id).where(TimeEntry.project_id == project.id).limit(1)
        ).first()
        if used:
            raise ProjectInUse("The project has time entries; set its status to cancelled or done.")
        db.session.delete(project)


# -- categories and training --------------------------------------------------------------


def _category_path(name: str, parent: Category | None) -> str:
    return f"{parent.path} > {name}" if parent else name


def create_category(data: Mapping[str, Any], *, actor: Actor) -> Category:
    """Create a category under an optional parent (admins)."""
    require(actor, "servicedesk.categories.write")
    with transaction(actor=actor):
        parent = _category(data.get("parent"), field="parent")
        category = Category(
            name=data["name"],
            parent_id=parent.id if parent else None,
            path=_category_path(data["name"], parent),
            active=data.get("active", True),
        )
        db.session.add(category)
    return category


def create_training(data: Mapping[str, Any], *, actor: Actor) -> TrainingSession:
    """Record a training session given to a member's agents."""
    require(actor, "servicedesk.training.write")
    with transaction(actor=actor):
        tenant = resolve_tenant(data["tenant"], actor)
        session = TrainingSession(
            tenant=tenant,
            date=data["date"],
            type=data["type"],
            title=data.get("title", ""),
            trainees=data["trainees"],
            days=Decimal(str(data["days"])),
            trainer=data.get("trainer", ""),
            note=data.get("note", ""),
        )
        db.session.add(session)
    return session


# -- upserts for connectors (API.md §4) ---------------------------------------------------


def _changed(obj: Any, values: Mapping[str, Any]) -> bool:
    """Set the values that differ; True if any did."""
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def upsert_external_category(
    data: Mapping[str, Any], *, source: str, external_id: str, actor: Actor, now: dt.datetime
) -> tuple[Result, Category]:
    """Create or update a category from a source, matched by (source, external_id).

    ``data``: ``name`` and ``parent_external_id`` (the parent must have been upserted first).
    """
    with transaction(actor=actor):
        parent = None
        if data.get("parent_external_id"):
            parent = db.session.execute(
                select(Category).where(
                    Category.source == source,
                    Category.external_id == str(data["parent_external_id"]),
                )
            ).scalar()
        category = db.session.execute(
            select(Category).where(Category.source == source, Category.external_id == external_id)
        ).scalar()
        values = {
            "name": data["name"],
            "parent_id": parent.id if parent else None,
            "path": _category_path(data["name"], parent),
            "active": data.get("active", True),
        }
        if category is None:
            category = Category(source=source, external_id=external_id, **values)
            db.session.add(category)
            db.session.flush()
            return "created", category
        return ("updated" if _changed(category, values) else "unchanged"), category


def _external_ticket_values(
    data: Mapping[str, Any],
    tenant: Tenant,
    ci: Any,
    assignee: User | None,
    rules: ServiceDeskSettings,
) -> dict[str, Any]:
    """A source's ticket as column values (the source is the authority: no workflow check)."""
    values: dict[str, Any] = {
        "tenant_id": tenant.id,
        "type": TicketType(data["type"]),
        "title": data["title"][:250],
        "description": data.get("description", ""),
        "description_format": data.get("description_format", "html"),
        "status": TicketStatus(data["status"]),
        "urgency": data.get("urgency", 3),
        "impact": data.get("impact", 3),
        "category_id": data.get("category_id"),
        "ci_id": ci.id if ci else None,
        "requester_name": (data.get("requester") or {}).get("name") or "",
        "requester_email": (data.get("requester") or {}).get("email"),
        "assignee_id": assignee.id if assignee else None,
        "assigned_group": data.get("group"),
        "opened_at": data["opened_at"],
        "owned_at": data.get("owned_at"),
        "solved_at": data.get("solved_at"),
        "closed_at": data.get("closed_at"),
    }
    values["priority"] = data.get("priority") or compute_priority(
        values["urgency"], values["impact"], rules.matrix
    )
    return values


def upsert_external_ticket(
    data: Mapping[str, Any],
    *,
    source: str,
    external_id: str,
    actor: Actor,
    now: dt.datetime,
    rules: ServiceDeskSettings,
) -> tuple[Result, Ticket]:
    """Create or update a ticket from a source, matched by (source, external_id).

    The source is the authority on status and dates (no workflow check). ``data`` keys:
    ``tenant`` (code), ``type``, ``title``, ``description``, ``description_format``,
    ``status``, ``urgency``, ``impact``, ``priority`` (optional: computed when absent),
    ``category_id``, ``ci`` (key or id, optional), ``requester`` ({name, email}),
    ``assignee`` (username or None), ``group``, ``opened_at``, ``owned_at``, ``solved_at``,
    ``closed_at``, ``deleted`` (bool: in the source's trash). A trashed ticket is
    soft-deleted with its time entries, and restored when the source restores it.
    """
    with transaction(actor=actor):
        tenant = db.session.execute(select(Tenant).where(Tenant.code == data["tenant"])).scalar()
        if tenant is None:
            raise _fail("tenant", f"Unknown tenant {data['tenant']!r}.", "Unknown tenant.")
        ticket = (
            db.session.execute(
                select(Ticket).where(Ticket.source == source, Ticket.external_id == external_id)
            )
            .unique()
            .scalar()
        )
        assignee = None
        if data.get("assignee"):
            assignee = db.session.execute(
                select(User).where(User.username == data["assignee"])
            ).scalar()
        ci = None
        if data.get("ci") is not None:
            try:
                ci = _ci_for(data["ci"], tenant.id, actor)
            except ValidationFailed:
                ci = None  # an item the CMDB does not know stays unlinked
        values = _external_ticket_values(data, tenant, ci, assignee, rules)
        created = ticket is None
        if created:
            ticket = Ticket(
                source=source,
                external_id=external_id,
                paused_minutes=0.0,
                sla_breached=False,
                **values,
            )
            ticket.tenant = tenant
            db.session.add(ticket)
            changed = True
        else:
            changed = _changed(ticket, values)
            if ticket.tenant_id != tenant.id:
                ticket.tenant = tenant
        if changed:
            refresh_sla(ticket, rules, now)
        db.session.flush()
        if data.get("deleted"):
            changed = bool(_trash([ticket], now)) or changed
        elif ticket.deleted_at is not None:
            changed = bool(_untrash([ticket], now)) or changed
        if created:
            return "created", ticket
        return ("updated" if changed else "unchanged"), ticket


def _external_entry_values(
    data: Mapping[str, Any],
    user: User,
    tenant: Tenant | None,
    ticket: Ticket | None,
    entry: TimeEntry | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """A source's time entry as column values; in the trash with its ticket, or when the
    source says so (keeping the first deletion time)."""
    deleted_at = None
    if data.get("deleted") or (ticket is not None and ticket.deleted_at is not None):
        deleted_at = (entry.deleted_at if entry is not None else None) or now
    return {
        "user_id": user.id,
        "tenant_id": tenant.id if tenant else None,
        "date": data["date"],
        "minutes": data["minutes"],
        "activity": data["activity"],
        "pole": data.get("pole"),
        "ticket_id": ticket.id if ticket else None,
        "channel": data.get("channel"),
        "note": (data.get("note") or "")[:2000],
        "deleted_at": deleted_at,
    }


def upsert_external_time_entry(
    data: Mapping[str, Any],
    *,
    source: str,
    external_id: str,
    actor: Actor,
    now: dt.datetime,
    rules: ServiceDeskSettings,
) -> tuple[Result, TimeEntry]:
    """Create or update a time entry from a source, matched by (source, external_id).

    ``data``: ``user`` (username), ``tenant`` (code or None), ``date``, ``minutes``,
    ``activity``, ``pole``, ``ticket_external_id`` (the ticket from the same source),
    ``channel``, ``note``, ``deleted``. Two entries with distinct external ids stay two
    (API.md §4). The per-day total is not enforced on a source's records (they are facts
    recorded there); each entry's own bounds and activity still are.
    """
    with transaction(actor=actor):
        user = _user_named(data["user"], field="user")
        tenant = None
        if data.get("tenant"):
            tenant = db.session.execute(
                select(Tenant).where(Tenant.code == data["tenant"])
            ).scalar()
            if tenant is None:
                raise _fail("tenant", f"Unknown tenant {data['tenant']!r}.", "Unknown tenant.")
        ticket = None
        if data.get("ticket_external_id"):
            ticket = (
                db.session.execute(
                    select(Ticket).where(
                        Ticket.source == source,
                        Ticket.external_id == str(data["ticket_external_id"]),
                    )
                )
                .unique()
                .scalar()
            )
            if ticket is None:
                raise _fail("ticket", f"Unknown ticket {data['ticket_external_id']!r} in {source}.")
            if tenant is None:
                tenant = ticket.tenant
        entry = (
            db.session.execute(
                select(TimeEntry).where(
                    TimeEntry.source == source, TimeEntry.external_id == external_id
                )
            )
            .unique()
            .scalar()
        )
        values = _external_entry_values(data, user, tenant, ticket, entry, now)
        if entry is None:
            entry = TimeEntry(source=source, external_id=external_id, **values)
            entry.user, entry.tenant = user, tenant
            entry.ticket = ticket
            _check_entry(entry, rules, now, check_day=False)
            db.session.add(entry)
            db.session.flush()
            return "created", entry
        changed = _changed(entry, values)
        entry.ticket = ticket
        if changed:
            _check_entry(entry, rules, now, check_day=False)
        return ("updated" if changed else "unchanged"), entry


def upsert_external_tickets(
    items: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    source: str,
    actor: Actor,
    now: dt.datetime,
    rules: ServiceDeskSettings,
) -> list[tuple[Result | None, Ticket | None, Exception | None]]:
    """:func:`upsert_external_ticket` for a page of (external_id, data): the same rules and
    results, with a few statements per page instead of per ticket. A ticket that breaks a
    rule (unknown tenant, status or type) comes back with its error and is not written."""
    items = list(items)
    out: list[tuple[Result | None, Ticket | None, Exception | None]] = []
    with transaction(actor=actor):
        tenants = {
            t.code: t
            for t in db.session.execute(
                select(Tenant).where(Tenant.code.in_(sorted({str(d["tenant"]) for _, d in items})))
            ).scalars()
        }
        existing: dict[str, Ticket] = {}
        ids = sorted({ext for ext, _ in items})
        for start in range(0, len(ids), 500):
            stmt = select(Ticket).where(
                Ticket.source == source, Ticket.external_id.in_(ids[start : start + 500])
            )
            for ticket in db.session.execute(stmt).unique().scalars():
                existing[str(ticket.external_id)] = ticket
        names = sorted({str(d["assignee"]) for _, d in items if d.get("assignee")})
        assignees = {
            u.username: u
            for u in db.session.execute(select(User).where(User.username.in_(names))).scalars()
        }
        for ext, data in items:
            try:
                tenant = tenants.get(str(data["tenant"]))
                if tenant is None:
                    raise _fail("tenant", f"Unknown tenant {data['tenant']!r}.", "Unknown tenant.")
                ci = None
                if data.get("ci") is not None:
                    try:
                        ci = _ci_for(data["ci"], tenant.id, actor)
                    except ValidationFailed:
                        ci = None  # an item the CMDB does not know stays unlinked
                assignee = (
                    assignees.get(str(data.get("assignee"))) if data.get("assignee") else None
                )
                values = _external_ticket_values(data, tenant, ci, assignee, rules)
            except (ValidationFailed, ValueError, KeyError) as exc:
                out.append((None, None, exc))
                continue
            ticket = existing.get(ext)
            created = ticket is None
            if ticket is None:
                ticket = Ticket(
                    source=source,
                    external_id=ext,
                    paused_minutes=0.0,
                    sla_breached=False,
                    **values,
                )
                ticket.tenant = tenant
                db.session.add(ticket)
                existing[ext] = ticket
                changed = True
            else:
                changed = _changed(ticket, values)
                if ticket.tenant_id != tenant.id:
                    ticket.tenant = tenant
            if changed:
                refresh_sla(ticket, rules, now)
            if data.get("deleted") and ticket.deleted_at is None:
                db.session.flush()
                changed = bool(_trash([ticket], now)) or changed
            elif not data.get("deleted") and ticket.deleted_at is not None:
                db.session.flush()
                changed = bool(_untrash([ticket], now)) or changed
            result: Result = "created" if created else ("updated" if changed else "unchanged")
            out.append((result, ticket, None))
        db.session.flush()
    return out


def upsert_external_time_entries(
    items: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    source: str,
    actor: Actor,
    now: dt.datetime,
    rules: ServiceDeskSettings,
) -> list[tuple[Result | None, TimeEntry | None, ValidationFailed | None]]:
    """:func:`upsert_external_time_entry` for a page of (external_id, data): the same rules
    and results, with a few statements per page instead of per entry. An entry that breaks a
    rule comes back with its error (and is not written); the others are applied."""
    items = list(items)
    out: list[tuple[Result | None, TimeEntry | None, ValidationFailed | None]] = []
    with transaction(actor=actor):

        def chunks(values: set[str]) -> Iterable[list[str]]:
            ordered = sorted(values)
            for start in range(0, len(ordered), 500):
                yield ordered[start : start + 500]

        users: dict[str, User] = {}
        for chunk in chunks({str(d.get("user")) for _, d in items}):
            for user in db.session.execute(select(User).where(User.username.in_(chunk))).scalars():
                users[user.username] = user
        tenants: dict[str, Tenant] = {}
        for chunk in chunks({str(d["tenant"]) for _, d in items if d.get("tenant")}):
            for tenant in db.session.execute(
                select(Tenant).where(Tenant.code.in_(chunk))
            ).scalars():
                tenants[tenant.code] = tenant
        tickets: dict[str, Ticket] = {}
        wanted = {str(d["ticket_external_id"]) for _, d in items if d.get("ticket_external_id")}
        for chunk in chunks(wanted):
            stmt = select(Ticket).where(Ticket.source == source, Ticket.external_id.in_(chunk))
            for ticket in db.session.execute(stmt).unique().scalars():
                tickets[str(ticket.external_id)] = ticket
        existing: dict[str, TimeEntry] = {}
        for chunk in chunks({ext for ext, _ in items}):
            stmt = select(TimeEntry).where(
                TimeEntry.source == source, TimeEntry.external_id.in_(chunk)
            )
            for entry in db.session.execute(stmt).unique().scalars():
                existing[str(entry.external_id)] = entry
        for ext, data in items:
            try:
                user = users.get(str(data["user"]))
                if user is None or not user.active:
                    raise _fail("user", f"Unknown user {data['user']!r}.", "Unknown user.")
                tenant = None
                if data.get("tenant"):
                    tenant = tenants.get(str(data["tenant"]))
                    if tenant is None:
                        raise _fail(
                            "tenant", f"Unknown tenant {data['tenant']!r}.", "Unknown tenant."
                        )
                ticket = None
                if data.get("ticket_external_id"):
                    ticket = tickets.get(str(data["ticket_external_id"]))
                    if ticket is None:
                        raise _fail(
                            "ticket", f"Unknown ticket {data['ticket_external_id']!r} in {source}."
                        )
                    if tenant is None:
                        tenant = ticket.tenant
                entry = existing.get(ext)
                values = _external_entry_values(data, user, tenant, ticket, entry, now)
                if entry is None:
                    entry = TimeEntry(source=source, external_id=ext, **values)
                    entry.user, entry.tenant, entry.ticket = user, tenant, ticket
                    _check_entry(entry, rules, now, check_day=False)
                    db.session.add(entry)
                    existing[ext] = entry
                    out.append(("created", entry, None))
                elif any(getattr(entry, k) != v for k, v in values.items()):
                    # Check the new values on a copy, so that a refused change leaves the
                    # stored entry as it was.
                    probe = TimeEntry(source=source, external_id=ext, **values)
                    probe.ticket = ticket
                    _check_entry(probe, rules, now, check_day=False)
                    _changed(entry, values)
                    entry.ticket = ticket
                    out.append(("updated", entry, None))
                else:
                    out.append(("unchanged", entry, None))
            except ValidationFailed as exc:
                out.append((None, None, exc))
        db.session.flush()
    return out


def soft_delete_external_tickets(
    source: str, external_ids: Iterable[str], *, actor: Actor, now: dt.datetime
) -> int:
    """Soft-delete the tickets of a source (and their time entries) that vanished from it;
    returns how many were deleted now. The caller applies API.md §4's guards (complete
    listing only, mass-delete threshold)."""
    ids = [str(i) for i in external_ids]
    with transaction(actor=actor):
        deleted = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            stmt = select(Ticket).where(Ticket.source == source, Ticket.external_id.in_(chunk))
            deleted += _trash(db.session.execute(stmt).unique().scalars(), now)
    return deleted


def soft_delete_external_time_entries(
    source: str, external_ids: Iterable[str], *, actor: Actor, now: dt.datetime
) -> int:
    """Soft-delete the time entries of a source that vanished from it (or whose duration
    went to zero there); returns how many were deleted now. Guards are the caller's."""
    ids = [str(i) for i in external_ids]
    with transaction(actor=actor):
        deleted = 0
        for start in range(0, len(ids), 500):
            stmt = select(TimeEntry).where(
                TimeEntry.source == source,
                TimeEntry.external_id.in_(ids[start : start + 500]),
                TimeEntry.deleted_at.is_(None),
            )
            for entry in db.session.execute(stmt).unique().scalars():
                entry.deleted_at = now
                deleted += 1
    return deleted


def get_ticket(ticket_id: int, actor: Actor, *, deleted: bool = False) -> Ticket:
    """A ticket the actor sees (the trash only for admins asking for it), else NotFound."""
    from servicedesk.queries import ticket_load_options

    ticket = get_scoped(
        Ticket, ticket_id, actor, options=ticket_load_options(), cache_key="ticket_page"
    )
    if ticket.deleted_at is not None and not (deleted and actor.is_admin):
        raise NotFound(f"Ticket {ticket_id} not found.")
    return ticket


def update_category(
    category: Category, changes: Mapping[str, Any], *, actor: Actor, now: dt.datetime
) -> Category:
    """Rename, move or deactivate a category (admins); paths below follow."""
    require(actor, "servicedesk.categories.write")
    with transaction(actor=actor):
        if "parent" in changes:
            parent = _category(changes["parent"], field="parent")
            node = parent
            while node is not None:
                if node.id == category.id:
                    raise _fail("parent", "A category cannot be inside itself.")
                node = db.session.get(Category, node.parent_id) if node.parent_id else None
            category.parent_id = parent.id if parent else None
        if "name" in changes:
            category.name = changes["name"]
        if "active" in changes:
            category.active = changes["active"]
        parent = db.session.get(Category, category.parent_id) if category.parent_id else None
        _repath(category, parent)
        category.updated_at = now
    return category


def _repath(category: Category, parent: Category | None) -> None:
    category.path = _category_path(category.name, parent)
    children = select(Category).where(Category.parent_id == category.id)
    for child in db.session.execute(children).scalars():
        _repath(child, category)


def delete_category(category: Category, *, actor: Actor) -> None:
    """Delete a category no ticket and no sub-category uses (admins); else Conflict."""
    from config.errors import Conflict

    require(actor, "servicedesk.categories.write")
    with transaction(actor=actor):
        used = (
            db.session.execute(
                select(Ticket.id).where(Ticket.category_id == category.id).limit(1)
            ).first()
            or db.session.execute(
                select(Category.id).where(Category.parent_id == category.id).limit(1)
            ).first()
        )
        if used:
            raise Conflict("The category is in use; deactivate it instead.")
        db.session.delete(category)


def update_training(
    session: TrainingSession, changes: Mapping[str, Any], *, actor: Actor, now: dt.datetime
) -> TrainingSession:
    """Change a training session."""
    require(actor, "servicedesk.training.write")
    with transaction(actor=actor):
        if "tenant" in changes:
            session.tenant = _required_tenant(changes["tenant"], actor)
        for key in ("date", "type", "title", "trainees", "trainer", "note"):
            if key in changes:
                setattr(session, key, changes[key])
        if "days" in changes:
            session.days = Decimal(str(changes["days"]))
        session.updated_at = now
    return session


def delete_training(session: TrainingSession, *, actor: Actor) -> None:
    """Delete a training session."""
    require(actor, "servicedesk.training.write")
    with transaction(actor=actor):
        db.session.delete(session)
