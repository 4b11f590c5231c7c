"""Pages for technicians: the queue, a ticket with its timeline, the new-ticket form,
one-click transitions, quick time entries and the week's timesheet. They call the same
services as the API; another tenant's ticket is a 404 page."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import get_translations
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import joinedload, lazyload

from config.auth import Role, User, current_actor, user_tenants
from config.changelog import ChangeRecord
from config.db import db, utcnow
from config.errors import AppError, NotFound
from config.tenancy import Tenant, get_scoped, tenant_scope, visible_tenant_ids
from config.web import N_, errors_of, form_values, login_required, non_empty, register_nav
from servicedesk import queries, services
from servicedesk.models import Category, Comment, Ticket, TicketStatus, TimeEntry
from servicedesk.schemas import CommentIn, TicketIn, TimeEntryIn
from servicedesk.workflow import OPEN, next_states

pages = Blueprint("sd_pages", __name__, template_folder="templates")

# Message ids (marked for extraction): translated per render, in the render's locale.
STATUS_LABELS = {
    "new": N_("new"),
    "assigned": N_("assigned"),
    "in_progress": N_("in progress"),
    "pending": N_("pending"),
    "solved": N_("solved"),
    "closed": N_("closed"),
    "cancelled": N_("cancelled"),
}
MOVE_LABELS = {
    "assigned": N_("Assign"),
    "in_progress": N_("Start"),
    "pending": N_("Put on hold"),
    "solved": N_("Solve"),
    "closed": N_("Close"),
    "cancelled": N_("Cancel"),
}
TYPE_LABELS = {"incident": N_("Incident"), "request": N_("Request")}
CHANNEL_LABELS = {
    "remote": N_("remote"),
    "on_site": N_("on site"),
    "posted": N_("posted"),
    "hotline": N_("hotline"),
}


@pages.app_template_filter("safe_html")
def safe_html(html: str) -> Markup:
    """HTML from sources, sanitised, for display."""
    return Markup(services.sanitize_html(html))  # noqa: S704 - sanitised by nh3 just above


@pages.app_context_processor
def _labels() -> dict[str, Any]:
    # One catalog lookup for the render, then one dictionary lookup per label (lazy strings
    # would each look the catalog up again, every time they are displayed).
    ugettext = get_translations().ugettext

    def translated(labels: dict[str, str]) -> dict[str, str]:
        return {code: ugettext(msgid) for code, msgid in labels.items()}

    return {
        "status_labels": translated(STATUS_LABELS),
        "move_labels": translated(MOVE_LABELS),
        "type_labels": translated(TYPE_LABELS),
        "channel_labels": translated(CHANNEL_LABELS),
    }


TICKET_FIELDS = (
    "tenant",
    "type",
    "title",
    "description",
    "urgency",
    "impact",
    "category",
    "ci",
    "assignee",
    "requester_name",
    "requester_email",
)
TIME_FIELDS = ("date", "minutes", "days", "activity", "pole", "channel", "note")


def init_pages(app: Any) -> None:
    app.register_blueprint(pages)
    register_nav(app, "sd_pages.queue", _l("My queue"), order=10)
    register_nav(app, "sd_pages.new_ticket", _l("New ticket"), order=11)
    register_nav(app, "sd_pages.timesheet", _l("My timesheet"), order=12)


def _local_today() -> dt.date:
    return utcnow().astimezone(ZoneInfo(queries.current_rules().timezone)).date()


# -- lookups for the forms ------------------------------------------------------------------


def _tenant_options() -> list[tuple[str, str]]:
    stmt = tenant_scope(select(Tenant).where(Tenant.active.is_(True)), current_actor()).order_by(
        Tenant.name
    )
    return [(t.code, t.name) for t in db.session.execute(stmt).unique().scalars()]


def _category_options() -> list[tuple[int, str]]:
    stmt = (
        select(Category.id, Category.path).where(Category.active.is_(True)).order_by(Category.path)
    )
    return [(i, p) for i, p in db.session.execute(stmt).all()]


def _ci_options() -> list[tuple[str, str]]:
    from cmdb.queries import visible_cis

    stmt = visible_cis(current_actor())
    return [
        (ci.key, f"{ci.key} — {ci.name}") for ci in db.session.execute(stmt).unique().scalars()
    ][:2000]


def _assignees_query() -> sa.Select[Any]:
    """Active non-manager users who see the tenant ``:tenant_id``: those of every tenant, and
    those bound to the tenant or to one of its ancestors (a user sees the sub-tenants of its
    tenants, config.tenancy). One statement, whatever the number of users."""
    up = (
        select(Tenant.id, Tenant.parent_id)
        .where(Tenant.id == sa.bindparam("tenant_id"))
        .cte("ticket_tenant_ancestors", recursive=True)
    )
    up = up.union(select(Tenant.id, Tenant.parent_id).where(Tenant.id == up.c.parent_id))
    bound = (
        select(user_tenants.c.user_id)
        .where(user_tenants.c.user_id == User.id, user_tenants.c.tenant_id.in_(select(up.c.id)))
        .exists()
    )
    return (
        select(User.username, User.full_name)
        .where(
            User.active.is_(True),
            User.role != Role.MANAGER,
            sa.or_(User.all_tenants.is_(True), User.role == Role.ADMIN, bound),
        )
        .order_by(User.username)
    )


_ASSIGNEES = _assignees_query()  # built once; the tenant is a bound parameter


def _rows(stmt: sa.Select[Any], params: dict[str, Any] | None = None) -> sa.CursorResult[Any]:
    """Rows of a column select, through the session's connection (and transaction): the
    ORM's statement handling costs half of such a read and gives nothing for plain rows."""
    return db.session.connection().execute(stmt, params)


def _assignees(tenant_id: int) -> list[tuple[str, str]]:
    rows = _rows(_ASSIGNEES, {"tenant_id": tenant_id}).all()
    return [(username, full_name or username) for username, full_name in rows]


# -- the queue ------------------------------------------------------------------------------


# The queue shows seven columns: it selects them (with the tenant's name joined), not whole
# tickets with their related rows. Two statements, whatever the number of tickets, each
# built once with bound parameters (the user, the visible tenants), so that a request neither
# rebuilds nor re-hashes them: (mine, unassigned) for actors of every tenant, and for others.
def _queue_statements(scoped: bool) -> tuple[sa.Select[Any], sa.Select[Any]]:
    base = (
        select(
            Ticket.id,
            Ticket.title,
            Tenant.name.label("tenant_name"),
            Ticket.priority,
            Ticket.status,
            Ticket.sla_breached,
            Ticket.due_to_resolve_at,
        )
        .join(Tenant, Tenant.id == Ticket.tenant_id)
        .where(Ticket.deleted_at.is_(None), Ticket.status.in_(sorted(s.value for s in OPEN)))
    )
    if scoped:  # config.tenancy.tenant_condition (the ticket's tenant is never NULL)
        base = base.where(Ticket.tenant_id.in_(sa.bindparam("visible_ids", expanding=True)))
    order = (Ticket.sla_breached.desc(), Ticket.due_to_resolve_at.asc(), Ticket.id.asc())
    mine = base.where(Ticket.assignee_id == sa.bindparam("user_id")).order_by(*order).limit(200)
    unassigned = base.where(Ticket.assignee_id.is_(None)).order_by(*order).limit(200)
    return mine, unassigned


_QUEUE = {scoped: _queue_statements(scoped) for scoped in (False, True)}


@pages.get("/tickets")
@login_required
def queue() -> Any:
    """My queue: tickets assigned to me, then unassigned ones of my tenants; late ones first."""
    actor = current_actor()
    ids = visible_tenant_ids(actor)
    mine_stmt, unassigned_stmt = _QUEUE[ids is not None]
    params: dict[str, Any] = {"user_id": actor.user_id}
    if ids is not None:
        params["visible_ids"] = sorted(ids)
    # The ticket URLs differ only by the id: url_for once, not once per row.
    prefix = url_for("sd_pages.ticket", ticket_id=1)[:-1]

    def rows(stmt: sa.Select[Any]) -> list[dict[str, Any]]:
        return [
            {
                "id": r.id,
                "url": f"{prefix}{r.id}",
                "title": r.title,
                "tenant_name": r.tenant_name,
                "priority": r.priority,
                "status": r.status.value,
                "sla_breached": r.sla_breached,
                "due_to_resolve_at": r.due_to_resolve_at,
            }
            for r in _rows(stmt, params)
        ]

    mine, unassigned = rows(mine_stmt), rows(unassigned_stmt)
    return render_template("servicedesk/queue.html", mine=mine, unassigned=unassigned, now=utcnow())


# -- a new ticket --------------------------------------------------------------------------


def _ticket_body(values: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = non_empty(
        {k: v for k, v in values.items() if not k.startswith("requester_")}
    )
    if values.get("requester_name") or values.get("requester_email"):
        data["requester"] = non_empty(
            {"name": values.get("requester_name", ""), "email": values.get("requester_email", "")}
        )
    return data


@pages.route("/tickets/nouveau", methods=["GET", "POST"])
@login_required
def new_ticket() -> Any:
    """Open a ticket (with a CI picker)."""
    values = {name: "" for name in TICKET_FIELDS} | {
        "type": "incident",
        "urgency": "3",
        "impact": "3",
    }
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = form_values(TICKET_FIELDS)
        try:
            data = TicketIn().load(_ticket_body(values))
            ticket = services.open_ticket(
                data, actor=current_actor(), now=utcnow(), rules=queries.current_rules()
            )
            return redirect(url_for("sd_pages.ticket", ticket_id=ticket.id))
        except (ValidationError, AppError) as exc:
            if isinstance(exc, AppError) and exc.status not in (422, 400):
                raise
            errors, status = errors_of(exc), 422
            db.session.rollback()
    return render_template(
        "servicedesk/ticket_new.html",
        values=values,
        errors=errors,
        tenants=_tenant_options(),
        categories=_category_options(),
        cis=_ci_options(),
    ), status


# -- a ticket ---------------------------------------------------------------------------------


# The timeline's three reads select only what the page shows, and are built once (the ticket
# is a bound parameter): three statements, whatever the number of comments, time entries and
# changes.
_COMMENTS = (
    select(Comment.created_at, Comment.kind, Comment.author_name, Comment.body, Comment.private)
    .where(Comment.ticket_id == sa.bindparam("ticket_id"))
    .order_by(Comment.id)
)
_TIME_ENTRIES = (
    select(
        TimeEntry.created_at,
        User.username,
        TimeEntry.minutes,
        TimeEntry.activity,
        TimeEntry.date,
        TimeEntry.note,
    )
    .join(User, User.id == TimeEntry.user_id)
    .where(TimeEntry.ticket_id == sa.bindparam("ticket_id"), TimeEntry.deleted_at.is_(None))
    .order_by(TimeEntry.id)
)
_CHANGES = (
    select(
        ChangeRecord.at,
        ChangeRecord.username,
        ChangeRecord.action,
        ChangeRecord.before,
        ChangeRecord.after,
    )
    .where(
        ChangeRecord.object_type == "ticket", ChangeRecord.object_id == sa.bindparam("ticket_id")
    )
    .order_by(ChangeRecord.id)
)


def _timeline(ticket: Ticket) -> list[dict[str, Any]]:
    params = {"ticket_id": ticket.id}
    items: list[dict[str, Any]] = [
        {"at": at, "kind": kind, "who": who, "text": body, "private": private}
        for at, kind, who, body, private in _rows(_COMMENTS, params)
    ]
    items.extend(
        {
            "at": at,
            "kind": "time",
            "who": username,
            "minutes": minutes,
            "activity": activity,
            "date": date,
            "text": note,
        }
        for at, username, minutes, activity, date, note in _rows(_TIME_ENTRIES, params)
    )
    for at, username, action, before, after in _rows(_CHANGES, params):
        before, after = before or {}, after or {}
        if action == "create":
            items.append({"at": at, "kind": "opened", "who": username, "to": after.get("status")})
        elif before.get("status") != after.get("status"):
            items.append(
                {
                    "at": at,
                    "kind": "status",
                    "who": username,
                    "from": before.get("status"),
                    "to": after.get("status"),
                }
            )
    return sorted(items, key=lambda i: i["at"])


def _show(
    ticket: Ticket,
    *,
    errors: dict[str, list[str]] | None = None,
    form: str = "",
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Any:
    rules = queries.current_rules()
    return render_template(
        "servicedesk/ticket.html",
        ticket=ticket,
        timeline=_timeline(ticket),
        moves=[s.value for s in next_states(ticket.status)],
        assignees=_assignees(ticket.tenant_id),
        activities=[(a.code, a.label) for a in rules.activities.values()],
        poles=list(rules.poles.items()),
        errors=errors or {},
        form=form,
        values=values or {"date": _local_today().isoformat(), "activity": "mco"},
        now=utcnow(),
    ), status


@pages.get("/tickets/<int:ticket_id>")
@login_required
def ticket(ticket_id: int) -> Any:
    """A ticket with its timeline and the forms to move it, comment, and log time."""
    return _show(_page_ticket(ticket_id))


def _page_options() -> tuple[Any, ...]:
    from cmdb.models import CI

    return (
        # The page shows the tenant's name: joined here, not lazily loaded afterwards.
        joinedload(Ticket.tenant).load_only(Tenant.name).raiseload("*"),
        joinedload(Ticket.category).load_only(Category.path),
        joinedload(Ticket.ci).load_only(CI.kind, CI.code, CI.name).raiseload("*"),
        joinedload(Ticket.assignee).load_only(User.username),
        lazyload(Ticket.satisfaction),
    )


def _page_ticket(ticket_id: int) -> Ticket:
    """The ticket as services.get_ticket finds it (tenant scope, not in the trash), loaded with
    what the page shows in the same statement."""
    global _PAGE_OPTIONS
    if _PAGE_OPTIONS is None:
        _PAGE_OPTIONS = _page_options()
    item = get_scoped(
        Ticket, ticket_id, current_actor(), options=_PAGE_OPTIONS, cache_key="ticket_page_html"
    )
    if item.deleted_at is not None:
        raise NotFound(f"Ticket {ticket_id} not found.")
    return item


_PAGE_OPTIONS: tuple[Any, ...] | None = None


@pages.post("/tickets/<int:ticket_id>/etat")
@login_required
def move(ticket_id: int) -> Any:
    """One-click transition (with the solution or the assignee when the move needs it)."""
    actor = current_actor()
    item = services.get_ticket(ticket_id, actor)
    values = form_values(("to", "comment", "assignee"))
    try:
        to = TicketStatus(values["to"])
        services.transition_ticket(
            item,
            to,
            comment=values["comment"] or None,
            assignee=values["assignee"] or None,
            actor=actor,
            now=utcnow(),
            rules=queries.current_rules(),
        )
    except ValueError:
        return _show(item, errors={"to": [str(_l("Unknown status."))]}, form="move", status=422)
    except AppError as exc:
        if exc.status not in (409, 422):
            raise
        db.session.rollback()
        item = services.get_ticket(ticket_id, actor)
        return _show(item, errors=errors_of(exc), form="move", values=values, status=exc.status)
    return redirect(url_for("sd_pages.ticket", ticket_id=ticket_id))


@pages.post("/tickets/<int:ticket_id>/commentaires")
@login_required
def comment(ticket_id: int) -> Any:
    """Add a comment (public or private)."""
    actor = current_actor()
    item = services.get_ticket(ticket_id, actor)
    body = request.form.get("body", "").strip()
    try:
        data = CommentIn().load({"body": body, "private": request.form.get("private") == "1"})
        services.add_comment(item, data, actor=actor, now=utcnow())
    except (ValidationError, AppError) as exc:
        if isinstance(exc, AppError) and exc.status not in (400, 422):
            raise
        db.session.rollback()
        return _show(
            services.get_ticket(ticket_id, actor),
            errors=errors_of(exc),
            form="comment",
            values={"body": body},
            status=422,
        )
    return redirect(url_for("sd_pages.ticket", ticket_id=ticket_id) + "#suivi")


@pages.post("/tickets/<int:ticket_id>/temps")
@login_required
def log_time(ticket_id: int) -> Any:
    """Quick time entry on the ticket (minutes or days)."""
    actor = current_actor()
    item = services.get_ticket(ticket_id, actor)
    values = form_values(TIME_FIELDS)
    try:
        data = TimeEntryIn().load({**non_empty(values), "ticket": item.id})
        services.log_time(data, actor=actor, now=utcnow(), rules=queries.current_rules())
    except (ValidationError, AppError) as exc:
        if isinstance(exc, AppError) and exc.status not in (400, 403, 422):
            raise
        db.session.rollback()
        return _show(
            services.get_ticket(ticket_id, actor),
            errors=errors_of(exc),
            form="time",
            values=values,
            status=422,
        )
    return redirect(url_for("sd_pages.ticket", ticket_id=ticket_id) + "#temps")


# -- my timesheet -------------------------------------------------------------------------------


@pages.get("/temps")
@login_required
def timesheet() -> Any:
    """My week: totals per day and per activity, and the entries."""
    actor = current_actor()
    rules = queries.current_rules()
    try:
        day = (
            dt.date.fromisoformat(request.args.get("date", ""))
            if request.args.get("date")
            else _local_today()
        )
    except ValueError:
        day = _local_today()
    summary = queries.timesheet_summary(actor.user_id or 0, day, "week", actor, rules)
    start, end = queries.period_bounds(day, "week")
    entries = (
        db.session.execute(
            queries.time_entries_select(actor)
            .where(
                TimeEntry.user_id == actor.user_id, TimeEntry.date >= start, TimeEntry.date <= end
            )
            .order_by(TimeEntry.date, TimeEntry.id)
        )
        .unique()
        .scalars()
        .all()
    )
    return render_template(
        "servicedesk/timesheet.html",
        summary=summary,
        entries=entries,
        previous=(start - dt.timedelta(days=7)).isoformat(),
        next=(start + dt.timedelta(days=7)).isoformat(),
        workday=rules.workday_minutes,
        labels={a.code: a.label for a in rules.activities.values()},
    )
