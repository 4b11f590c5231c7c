"""HTTP routes of the service desk: parse, call one service or query, return."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, url_for
from flask.views import MethodView
from marshmallow import fields
from sqlalchemy import select

from config.api import Blueprint, OutSchema, page_schema
from config.auth import User, current_actor
from config.db import db, utcnow
from config.errors import BadRequest, NotFound
from config.etag import check_if_match, etag_for
from config.pagination import paginate
from config.tenancy import get_scoped
from servicedesk import queries, services, ticket_rows
from servicedesk.models import Category, Comment, Project, Ticket, TimeEntry, TrainingSession
from servicedesk.schemas import (
    CategoryFilter,
    CategoryIn,
    CategoryOut,
    CommentIn,
    CommentOut,
    NoteIn,
    ProjectFilter,
    ProjectIn,
    ProjectOut,
    RequesterViewOut,
    SatisfactionIn,
    SatisfactionOut,
    SummaryQuery,
    TicketFilter,
    TicketIn,
    TicketListQuery,
    TicketOut,
    TicketPatch,
    TimeEntryFilter,
    TimeEntryIn,
    TimeEntryListQuery,
    TimeEntryOut,
    TimeEntryPatch,
    TrainingFilter,
    TrainingIn,
    TrainingOut,
    TransitionIn,
)

tickets_blp = Blueprint("tickets", __name__, url_prefix="/api/v1/tickets", description="Tickets.")
time_blp = Blueprint(
    "time_entries", __name__, url_prefix="/api/v1/time-entries", description="Time entries."
)
projects_blp = Blueprint(
    "projects", __name__, url_prefix="/api/v1/projects", description="Projects."
)
categories_blp = Blueprint(
    "categories", __name__, url_prefix="/api/v1/categories", description="Ticket categories."
)
training_blp = Blueprint(
    "training", __name__, url_prefix="/api/v1/training-sessions", description="Training sessions."
)
settings_blp = Blueprint(
    "servicedesk_settings", __name__, url_prefix="/api/v1/servicedesk", description="Settings."
)
blueprints = [tickets_blp, time_blp, projects_blp, categories_blp, training_blp, settings_blp]


def _etag(obj: Any, location: str | None = None) -> dict[str, str]:
    headers = {"ETag": etag_for(obj)}
    if location:
        headers["Location"] = location
    return headers


def _me(values: list[str] | None) -> list[str] | None:
    if not values:
        return values
    me = current_actor().username
    return [me if v == "me" else v for v in values]


# == tickets =============================================================================


@tickets_blp.route("")
class Tickets(MethodView):
    @tickets_blp.arguments(TicketListQuery(), location="query", as_kwargs=False)
    @tickets_blp.response(200, page_schema(TicketOut))
    def get(self, args: dict[str, Any]) -> Any:
        """List tickets (filters, ordering; `assignee=me`; admins: `deleted=true`)."""
        args["assignee"] = _me(args.get("assignee"))
        actor = current_actor()
        stmt = ticket_rows.ticket_ids_select(actor, deleted=args.get("deleted", False))
        page = ticket_rows.ticket_page(TicketFilter.apply(stmt, args), args)
        if current_app.testing:
            _check_rows(page["results"], actor)
        return current_app.json.response(page)

    @tickets_blp.arguments(TicketIn)
    @tickets_blp.response(201, TicketOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Open a ticket."""
        ticket = services.open_ticket(
            data, actor=current_actor(), now=utcnow(), rules=queries.current_rules()
        )
        return ticket, _etag(
            ticket, url_for("tickets.TicketById", ticket_id=ticket.id, _external=True)
        )


def _check_rows(results: list[dict[str, Any]], actor: Any) -> None:
    """Under test: tickets read as rows (servicedesk.ticket_rows) are what TicketOut dumps."""
    ids = [r["id"] for r in results]
    stmt = queries.tickets_select(actor, deleted=True).where(Ticket.id.in_(ids))
    by_id = {t.id: t for t in db.session.execute(stmt).unique().scalars()}
    expected = TicketOut(many=True).dump([by_id[i] for i in ids])
    if results != expected or [list(r) for r in results] != [list(e) for e in expected]:
        raise AssertionError(f"ticket rows differ from TicketOut: {results} != {expected}")


def _ticket(ticket_id: int, *, deleted: bool = False) -> Any:
    return services.get_ticket(ticket_id, current_actor(), deleted=deleted)


@tickets_blp.route("/<int:ticket_id>")
class TicketById(MethodView):
    @tickets_blp.response(200, TicketOut)
    def get(self, ticket_id: int) -> Any:
        """Get one ticket."""
        row = ticket_rows.ticket_row(ticket_id, current_actor(), deleted=True)
        if current_app.testing:
            _check_rows([row.data], current_actor())
        return current_app.json.response(row.data), _etag(row)

    @tickets_blp.arguments(TicketPatch(partial=True))
    @tickets_blp.response(200, TicketOut)
    def patch(self, data: dict[str, Any], ticket_id: int) -> Any:
        """Change a ticket's fields (its status changes through transitions)."""
        ticket = _ticket(ticket_id)
        check_if_match(ticket)
        ticket = services.update_ticket(
            ticket, data, actor=current_actor(), now=utcnow(), rules=queries.current_rules()
        )
        return ticket, _etag(ticket)

    @tickets_blp.response(204)
    def delete(self, ticket_id: int) -> None:
        """Put a ticket and its time entries in the trash (admins)."""
        ticket = _ticket(ticket_id)
        check_if_match(ticket)
        services.delete_ticket(ticket, actor=current_actor(), now=utcnow())


@tickets_blp.route("/<int:ticket_id>/restore")
class TicketRestore(MethodView):
    @tickets_blp.response(200, TicketOut)
    def post(self, ticket_id: int) -> Any:
        """Take a ticket out of the trash (admins)."""
        ticket = _ticket(ticket_id, deleted=True)
        ticket = services.restore_ticket(ticket, actor=current_actor(), now=utcnow())
        return ticket, _etag(ticket)


@tickets_blp.route("/<int:ticket_id>/transitions")
class TicketTransitions(MethodView):
    @tickets_blp.arguments(TransitionIn)
    @tickets_blp.response(200, TicketOut)
    def post(self, data: dict[str, Any], ticket_id: int) -> Any:
        """Move a ticket along the workflow (409 with the allowed moves otherwise)."""
        ticket = _ticket(ticket_id)
        check_if_match(ticket)
        ticket = services.transition_ticket(
            ticket,
            data["to"],
            comment=data.get("comment"),
            assignee=data.get("assignee"),
            actor=current_actor(),
            now=utcnow(),
            rules=queries.current_rules(),
        )
        return ticket, _etag(ticket)


@tickets_blp.route("/<int:ticket_id>/comments")
class TicketComments(MethodView):
    @tickets_blp.response(200, CommentOut(many=True))
    def get(self, ticket_id: int) -> Any:
        """The ticket's comments, oldest first."""
        ticket = _ticket(ticket_id)
        stmt = select(Comment).where(Comment.ticket_id == ticket.id).order_by(Comment.id)
        return db.session.execute(stmt).scalars().all()

    @tickets_blp.arguments(CommentIn)
    @tickets_blp.response(201, CommentOut)
    def post(self, data: dict[str, Any], ticket_id: int) -> Any:
        """Comment on a ticket (public or private)."""
        ticket = _ticket(ticket_id)
        comment = services.add_comment(ticket, data, actor=current_actor(), now=utcnow())
        return comment, {
            "Location": url_for("tickets.TicketComments", ticket_id=ticket.id, _external=True)
        }


@tickets_blp.route("/<int:ticket_id>/satisfaction")
class TicketSatisfaction(MethodView):
    @tickets_blp.response(200, SatisfactionOut)
    def get(self, ticket_id: int) -> Any:
        """The requester's satisfaction with the ticket."""
        ticket = _ticket(ticket_id)
        if ticket.satisfaction is None:
            raise NotFound("No satisfaction answer for this ticket.")
        return ticket.satisfaction

    @tickets_blp.arguments(SatisfactionIn)
    @tickets_blp.response(200, SatisfactionOut)
    def put(self, data: dict[str, Any], ticket_id: int) -> Any:
        """Record the requester's satisfaction (1–5) once solved or closed."""
        ticket = _ticket(ticket_id)
        return services.record_satisfaction(ticket, data, actor=current_actor(), now=utcnow())


@tickets_blp.route("/<int:ticket_id>/requester-view")
class TicketRequesterView(MethodView):
    @tickets_blp.response(200, RequesterViewOut)
    def get(self, ticket_id: int) -> Any:
        """What may be sent to the requester: public comments only."""
        ticket = _ticket(ticket_id)
        stmt = (
            select(Comment)
            .where(Comment.ticket_id == ticket.id, Comment.private.is_(False))
            .order_by(Comment.id)
        )
        comments = [
            {
                "at": c.created_at.isoformat(),
                "author": c.author_name,
                "body": c.body,
                "kind": c.kind,
            }
            for c in db.session.execute(stmt).scalars()
        ]
        return {
            "id": ticket.id,
            "title": ticket.title,
            "status": ticket.status.value,
            "opened_at": ticket.opened_at,
            "solved_at": ticket.solved_at,
            "comments": comments,
        }


# == time entries ========================================================================


@time_blp.route("")
class TimeEntries(MethodView):
    @time_blp.arguments(TimeEntryListQuery, location="query", as_kwargs=False)
    @time_blp.response(200, page_schema(TimeEntryOut))
    def get(self, args: dict[str, Any]) -> Any:
        """List time entries (`user=me` for your timesheet)."""
        args["user"] = _me(args.get("user"))
        stmt = queries.time_entries_select(current_actor(), deleted=args.get("deleted", False))
        return paginate(TimeEntryFilter.apply(stmt, args), args, unique=True)

    @time_blp.arguments(TimeEntryIn)
    @time_blp.response(201, TimeEntryOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Log time (minutes, or days of the configured workday)."""
        entry = services.log_time(
            data, actor=current_actor(), now=utcnow(), rules=queries.current_rules()
        )
        return entry, _etag(
            entry, url_for("time_entries.TimeEntryById", entry_id=entry.id, _external=True)
        )


class SummaryOut(OutSchema):
    period = fields.String()
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()
    days = fields.List(fields.Dict())
    activities = fields.List(fields.Dict())
    total_minutes = fields.Integer()
    total_days = fields.Float()


@time_blp.route("/summary")
class TimeSummary(MethodView):
    @time_blp.arguments(SummaryQuery, location="query", as_kwargs=False)
    @time_blp.response(200, SummaryOut)
    def get(self, args: dict[str, Any]) -> Any:
        """A user's week or month: minutes per day and per activity (default: yours, this week)."""
        actor = current_actor()
        rules = queries.current_rules()
        name = args.get("user") or "me"
        if name in ("me", actor.username):
            user_id = actor.user_id
        else:
            user = db.session.execute(select(User).where(User.username == name)).scalar()
            if user is None:
                raise BadRequest("Unknown user.", errors={"user": [f"Unknown user {name!r}."]})
            user_id = user.id
        if user_id is None:
            raise NotFound("The system has no timesheet.")
        day = args.get("date") or utcnow().astimezone(dt.UTC).date()
        return queries.timesheet_summary(user_id, day, args["period"], actor, rules)


def _entry(entry_id: int) -> TimeEntry:
    entry = get_scoped(TimeEntry, entry_id, current_actor())
    if entry.deleted_at is not None:
        raise NotFound(f"Time entry {entry_id} not found.")
    return entry


@time_blp.route("/<int:entry_id>")
class TimeEntryById(MethodView):
    @time_blp.response(200, TimeEntryOut)
    def get(self, entry_id: int) -> Any:
        """Get one time entry."""
        entry = _entry(entry_id)
        return entry, _etag(entry)

    @time_blp.arguments(TimeEntryPatch(partial=True))
    @time_blp.response(200, TimeEntryOut)
    def patch(self, data: dict[str, Any], entry_id: int) -> Any:
        """Change a time entry."""
        entry = _entry(entry_id)
        check_if_match(entry)
        entry = services.update_time_entry(
            entry, data, actor=current_actor(), now=utcnow(), rules=queries.current_rules()
        )
        return entry, _etag(entry)

    @time_blp.response(204)
    def delete(self, entry_id: int) -> None:
        """Delete a time entry."""
        entry = _entry(entry_id)
        check_if_match(entry)
        services.delete_time_entry(entry, actor=current_actor())


# == projects ============================================================================


def _project(project_id: int) -> Project:
    return get_scoped(Project, project_id, current_actor())


@projects_blp.route("")
class Projects(MethodView):
    @projects_blp.arguments(ProjectFilter.schema(), location="query", as_kwargs=False)
    @projects_blp.response(200, page_schema(ProjectOut))
    def get(self, args: dict[str, Any]) -> Any:
        """List the projects of the caller's tenants."""
        stmt = queries.projects_select(current_actor())
        return paginate(ProjectFilter.apply(stmt, args), args, unique=True)

    @projects_blp.arguments(ProjectIn)
    @projects_blp.response(201, ProjectOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a project (managers)."""
        project = services.create_project(data, actor=current_actor(), now=utcnow())
        return project, _etag(
            project, url_for("projects.ProjectById", project_id=project.id, _external=True)
        )


@projects_blp.route("/<int:project_id>")
class ProjectById(MethodView):
    @projects_blp.response(200, ProjectOut)
    def get(self, project_id: int) -> Any:
        """Get one project."""
        project = _project(project_id)
        return project, _etag(project)

    @projects_blp.arguments(ProjectIn(partial=True))
    @projects_blp.response(200, ProjectOut)
    def patch(self, data: dict[str, Any], project_id: int) -> Any:
        """Change a project (managers); lists given replace the old ones."""
        project = _project(project_id)
        check_if_match(project)
        project = services.update_project(project, data, actor=current_actor(), now=utcnow())
        return project, _etag(project)

    @projects_blp.response(204)
    def delete(self, project_id: int) -> None:
        """Delete a project without time entries (managers)."""
        project = _project(project_id)
        check_if_match(project)
        services.delete_project(project, actor=current_actor())


@projects_blp.route("/by-code/<string:code>")
class ProjectByCode(MethodView):
    @projects_blp.response(200, ProjectOut)
    def get(self, code: str) -> Any:
        """Get one project by its code."""
        stmt = queries.projects_select(current_actor()).where(Project.code == code)
        project = db.session.execute(stmt).unique().scalar()
        if project is None:
            raise NotFound(f"Project {code!r} not found.")
        return project, _etag(project)


@projects_blp.route("/<int:project_id>/notes")
class ProjectNotes(MethodView):
    @projects_blp.arguments(NoteIn)
    @projects_blp.response(200, ProjectOut)
    def post(self, data: dict[str, Any], project_id: int) -> Any:
        """Set the project's note for a month (replaces that month's note)."""
        project = _project(project_id)
        project = services.put_project_note(
            project, data["month"], data["text"], actor=current_actor(), now=utcnow()
        )
        return project, _etag(project)


# == categories ==========================================================================


@categories_blp.route("")
class Categories(MethodView):
    @categories_blp.arguments(CategoryFilter.schema(), location="query", as_kwargs=False)
    @categories_blp.response(200, page_schema(CategoryOut))
    def get(self, args: dict[str, Any]) -> Any:
        """List ticket categories (shared by all tenants)."""
        return paginate(CategoryFilter.apply(select(Category), args), args)

    @categories_blp.arguments(CategoryIn)
    @categories_blp.response(201, CategoryOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a category (admins)."""
        category = services.create_category(data, actor=current_actor())
        return category, _etag(
            category, url_for("categories.CategoryById", category_id=category.id, _external=True)
        )


@categories_blp.route("/<int:category_id>")
class CategoryById(MethodView):
    @categories_blp.response(200, CategoryOut)
    def get(self, category_id: int) -> Any:
        """Get one category."""
        category = get_scoped(Category, category_id, current_actor())
        return category, _etag(category)

    @categories_blp.arguments(CategoryIn(partial=True))
    @categories_blp.response(200, CategoryOut)
    def patch(self, data: dict[str, Any], category_id: int) -> Any:
        """Rename, move or deactivate a category (admins)."""
        category = get_scoped(Category, category_id, current_actor())
        check_if_match(category)
        category = services.update_category(category, data, actor=current_actor(), now=utcnow())
        return category, _etag(category)

    @categories_blp.response(204)
    def delete(self, category_id: int) -> None:
        """Delete an unused category (admins); otherwise deactivate it."""
        category = get_scoped(Category, category_id, current_actor())
        check_if_match(category)
        services.delete_category(category, actor=current_actor())


# == training ============================================================================


@training_blp.route("")
class TrainingSessions(MethodView):
    @training_blp.arguments(TrainingFilter.schema(), location="query", as_kwargs=False)
    @training_blp.response(200, page_schema(TrainingOut))
    def get(self, args: dict[str, Any]) -> Any:
        """List training sessions given to the caller's tenants."""
        from config.tenancy import tenant_scope

        stmt = tenant_scope(select(TrainingSession), current_actor())
        return paginate(TrainingFilter.apply(stmt, args), args)

    @training_blp.arguments(TrainingIn)
    @training_blp.response(201, TrainingOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Record a training session."""
        session = services.create_training(data, actor=current_actor())
        return session, _etag(
            session, url_for("training.TrainingById", session_id=session.id, _external=True)
        )


@training_blp.route("/<int:session_id>")
class TrainingById(MethodView):
    @training_blp.response(200, TrainingOut)
    def get(self, session_id: int) -> Any:
        """Get one training session."""
        session = get_scoped(TrainingSession, session_id, current_actor())
        return session, _etag(session)

    @training_blp.arguments(TrainingIn(partial=True))
    @training_blp.response(200, TrainingOut)
    def patch(self, data: dict[str, Any], session_id: int) -> Any:
        """Change a training session."""
        session = get_scoped(TrainingSession, session_id, current_actor())
        check_if_match(session)
        session = services.update_training(session, data, actor=current_actor(), now=utcnow())
        return session, _etag(session)

    @training_blp.response(204)
    def delete(self, session_id: int) -> None:
        """Delete a training session."""
        session = get_scoped(TrainingSession, session_id, current_actor())
        check_if_match(session)
        services.delete_training(session, actor=current_actor())


# == settings ============================================================================


@settings_blp.route("/settings")
class ServiceDeskSettingsView(MethodView):
    @settings_blp.response(200)
    def get(self) -> Any:
        """The priority matrix, SLA targets, calendars, workday, activities and poles in force."""
        return queries.current_rules().public()
