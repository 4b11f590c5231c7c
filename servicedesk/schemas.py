"""Request and response schemas of the service desk (In / Out / Filter)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError, fields, validate, validates_schema

from config.api import InSchema, OutSchema, QuerySchema, UTCDateTimeField, code_field
from config.filters import Filter, FilterSet
from config.tenancy import Tenant, tenant_codes
from servicedesk.models import (
    Category,
    Channel,
    Project,
    ProjectHealth,
    ProjectStatus,
    Ticket,
    TicketStatus,
    TicketType,
    TimeEntry,
    TrainingSession,
    TrainingType,
)
from servicedesk.services import sanitize_html

LEVEL = validate.Range(1, 5)
ID = validate.Range(1, 2**31 - 1)
MONTH = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="A month, YYYY-MM.")


def _tenant_codes(stmt: sa.Select[Any], codes: list[str], column: Any) -> sa.Select[Any]:
    return stmt.where(column.in_(sa.select(Tenant.id).where(Tenant.code.in_(codes))))


def tenant_filter(column: Any) -> Filter:
    return Filter(lambda: code_field(), lambda stmt, codes: _tenant_codes(stmt, codes, column))


def username_field() -> fields.String:
    return fields.String(
        validate=validate.Length(1, 150), metadata={"description": "A username, or `me`."}
    )


# -- tickets ------------------------------------------------------------------------------


class RequesterSchema(InSchema):
    name = fields.String(validate=validate.Length(max=200), load_default="")
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))


class TicketIn(InSchema):
    tenant = code_field(required=True)
    type = fields.Enum(TicketType, by_value=True, required=True)
    title = fields.String(required=True, validate=validate.Length(1, 250))
    description = fields.String(validate=validate.Length(max=100_000))
    urgency = fields.Integer(validate=LEVEL, metadata={"description": "1 = highest … 5"})
    impact = fields.Integer(validate=LEVEL, metadata={"description": "1 = highest … 5"})
    category = fields.Integer(allow_none=True, validate=ID)
    # allow_none adds "null" to the documented types itself.
    ci = fields.Raw(
        allow_none=True,
        metadata={
            "description": "CI id or key kind:code",
            "type": ["integer", "string"],
            "maxLength": 200,
        },
    )
    requester = fields.Nested(RequesterSchema)
    assignee = fields.String(allow_none=True, validate=validate.Length(1, 150))
    group = fields.String(allow_none=True, validate=validate.Length(max=100))
    opened_at = UTCDateTimeField(metadata={"description": "Admins only (back-dated imports)."})

    @validates_schema
    def _ci_shape(self, data: dict[str, Any], **_kw: Any) -> None:
        ci = data.get("ci")
        if isinstance(ci, bool) or (ci is not None and not isinstance(ci, int | str)):
            raise ValidationError("A CI id or a kind:code key.", "ci")
        if isinstance(ci, str) and len(ci) > 200:
            raise ValidationError("Too long.", "ci")


class TicketPatch(TicketIn):
    pass


class CategoryRef(OutSchema):
    id = fields.Integer()
    name = fields.String()
    path = fields.String()


class TicketOut(OutSchema):
    id = fields.Integer()
    tenant = fields.Function(lambda t: tenant_codes()[t.tenant_id])
    type = fields.Enum(TicketType, by_value=True)
    title = fields.String()
    description = fields.String()
    description_html = fields.Function(
        lambda t: sanitize_html(t.description) if t.description_format == "html" else None,
        metadata={"description": "Sanitised HTML, for display (HTML sources only)."},
    )
    status = fields.Enum(TicketStatus, by_value=True)
    urgency = fields.Integer()
    impact = fields.Integer()
    priority = fields.Integer()
    category = fields.Nested(CategoryRef, allow_none=True)
    ci = fields.Function(lambda t: t.ci.key if t.ci else None)
    requester = fields.Function(lambda t: {"name": t.requester_name, "email": t.requester_email})
    assignee = fields.Function(lambda t: t.assignee.username if t.assignee else None)
    group = fields.String(attribute="assigned_group", allow_none=True)
    opened_at = fields.AwareDateTime()
    owned_at = fields.AwareDateTime(allow_none=True)
    solved_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    due_to_own_at = fields.AwareDateTime(allow_none=True)
    due_to_resolve_at = fields.AwareDateTime(allow_none=True)
    sla_breached = fields.Boolean()
    time_spent_minutes = fields.Integer()
    satisfaction = fields.Function(
        lambda t: (
            {"score": t.satisfaction.score, "comment": t.satisfaction.comment}
            if t.satisfaction
            else None
        )
    )
    source = fields.String()
    external_id = fields.String(allow_none=True)
    deleted_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class TicketFilter(FilterSet):
    model = Ticket
    fields = {
        "status": ["exact"],
        "type": ["exact"],
        "priority": ["exact", "lte"],
        "sla_breached": ["exact"],
        "opened_at": ["gte", "lte"],
        "solved_at": ["gte", "lte"],
        "source": ["exact"],
        "external_id": ["exact"],
        "category_id": ["exact"],
        "title": ["ic"],
    }
    filters = {
        "tenant": tenant_filter(Ticket.tenant_id),
        "assignee": Filter(
            username_field,
            lambda stmt, names: stmt.where(
                Ticket.assignee_id.in_(sa.select(_user_id_col()).where(_username_col().in_(names)))
            ),
        ),
        "ci": Filter(
            lambda: fields.String(validate=validate.Length(1, 200)),
            lambda stmt, keys: stmt.where(Ticket.ci_id.in_(_ci_ids(keys))),
        ),
    }
    ordering = (
        "id",
        "opened_at",
        "priority",
        "status",
        "due_to_resolve_at",
        "updated_at",
        "solved_at",
    )
    default_ordering = ("-opened_at",)
    search = ("title", "requester_name")


def _user_id_col() -> Any:
    from config.auth import User

    return User.id


def _username_col() -> Any:
    from config.auth import User

    return User.username


def _ci_ids(keys: list[str]) -> sa.Select[Any]:
    """The ids of the CIs of these ``kind:code`` keys; a key that is not one (an unknown
    kind, no colon) matches no CI, as an unknown code does."""
    from cmdb.models import CI
    from cmdb.services import parse_key

    pairs = [pair for pair in map(parse_key, keys) if pair is not None]
    conds = [sa.and_(CI.kind == kind, CI.code == code) for kind, code in pairs]
    return sa.select(CI.id).where(sa.or_(sa.false(), *conds))


class TicketListQuery(TicketFilter.schema()):  # type: ignore[misc, valid-type]
    deleted = fields.Boolean(load_default=False, metadata={"description": "Admins: the trash too."})


class TransitionIn(InSchema):
    to = fields.Enum(TicketStatus, by_value=True, required=True)
    comment = fields.String(
        validate=validate.Length(max=50_000),
        metadata={"description": "Required to solve (the solution)."},
    )
    assignee = fields.String(validate=validate.Length(1, 150))


class CommentIn(InSchema):
    body = fields.String(required=True, validate=validate.Length(1, 50_000))
    private = fields.Boolean(load_default=False)


class CommentOut(OutSchema):
    id = fields.Integer()
    ticket = fields.Integer(attribute="ticket_id")
    author = fields.String(attribute="author_name")
    body = fields.String()
    private = fields.Boolean()
    kind = fields.String()
    created_at = fields.AwareDateTime()


class SatisfactionIn(InSchema):
    score = fields.Integer(required=True, validate=LEVEL)
    comment = fields.String(validate=validate.Length(max=2000))


class SatisfactionOut(OutSchema):
    ticket = fields.Integer(attribute="ticket_id")
    score = fields.Integer()
    comment = fields.String()
    answered_at = fields.AwareDateTime()


class RequesterViewOut(OutSchema):
    """What a requester may receive: no private comment, no internal field."""

    id = fields.Integer()
    title = fields.String()
    status = fields.String()
    opened_at = fields.AwareDateTime()
    solved_at = fields.AwareDateTime(allow_none=True)
    comments = fields.List(fields.Dict())


# -- time entries -------------------------------------------------------------------------


class TimeEntryIn(InSchema):
    user = fields.String(
        validate=validate.Length(1, 150), metadata={"description": "Default: you."}
    )
    tenant = code_field(allow_none=True, metadata={"description": "Default: the ticket's tenant."})
    date = fields.Date(required=True)
    minutes = fields.Integer(validate=validate.Range(1, 1440))
    days = fields.Float(
        allow_nan=False,
        validate=validate.Range(0, 1, min_inclusive=False),
        metadata={"description": "Instead of minutes: days of the configured workday (≤ 1)."},
    )
    activity = fields.String(required=True, validate=validate.Length(1, 40))
    pole = fields.String(allow_none=True, validate=validate.Length(1, 64))
    ticket = fields.Integer(allow_none=True, validate=ID)
    project = code_field(allow_none=True)
    channel = fields.Enum(Channel, by_value=True, allow_none=True)
    note = fields.String(validate=validate.Length(max=2000))


class TimeEntryPatch(TimeEntryIn):
    pass


class TimeEntryOut(OutSchema):
    id = fields.Integer()
    user = fields.Function(lambda e: e.user.username)
    tenant = fields.Function(lambda e: e.tenant.code if e.tenant else None)
    date = fields.Date()
    minutes = fields.Integer()
    days = fields.Method("_days", metadata={"description": "Minutes / the configured workday."})
    activity = fields.String()
    pole = fields.String(allow_none=True)
    ticket = fields.Integer(attribute="ticket_id", allow_none=True)
    project = fields.Function(lambda e: e.project.code if e.project else None)
    channel = fields.Enum(Channel, by_value=True, allow_none=True)
    note = fields.String()
    source = fields.String()
    external_id = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()

    def _days(self, entry: TimeEntry) -> float:
        from config.settings import current_settings

        return round(entry.minutes / current_settings().workday_minutes, 4)


class TimeEntryFilter(FilterSet):
    model = TimeEntry
    fields = {
        "date": ["exact", "gte", "lte"],
        "activity": ["exact"],
        "pole": ["exact"],
        "ticket_id": ["exact"],
        "channel": ["exact"],
        "source": ["exact"],
    }
    filters = {
        "tenant": tenant_filter(TimeEntry.tenant_id),
        "user": Filter(
            username_field,
            lambda stmt, names: stmt.where(
                TimeEntry.user_id.in_(sa.select(_user_id_col()).where(_username_col().in_(names)))
            ),
        ),
        "project": Filter(
            lambda: code_field(),
            lambda stmt, codes: stmt.where(
                TimeEntry.project_id.in_(sa.select(Project.id).where(Project.code.in_(codes)))
            ),
        ),
        "ticket": Filter(
            lambda: fields.Integer(validate=ID),
            lambda stmt, ids: stmt.where(TimeEntry.ticket_id.in_(ids)),
        ),
    }
    ordering = ("id", "date", "minutes", "created_at")
    default_ordering = ("-date", "-id")
    search = ("note",)


class TimeEntryListQuery(TimeEntryFilter.schema()):  # type: ignore[misc, valid-type]
    deleted = fields.Boolean(load_default=False, metadata={"description": "Admins: the trash too."})


class SummaryQuery(QuerySchema):
    period = fields.String(load_default="week", validate=validate.OneOf(["week", "month"]))
    date = fields.Date(metadata={"description": "A day in the period (default: today)."})
    user = username_field()


# -- projects -----------------------------------------------------------------------------


class MilestoneIn(InSchema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    due = fields.Date(required=True)
    done_at = fields.Date(allow_none=True)


class ProjectIn(InSchema):
    code = code_field(required=True)
    name = fields.String(required=True, validate=validate.Length(1, 200))
    domain = fields.String(allow_none=True, validate=validate.Length(max=100))
    description = fields.String(validate=validate.Length(max=20_000))
    tenants = fields.List(code_field(), validate=validate.Length(max=200))
    budget_eur = fields.Float(allow_none=True, allow_nan=False, validate=validate.Range(0, 1e11))
    status = fields.Enum(ProjectStatus, by_value=True)
    health = fields.Enum(ProjectHealth, by_value=True)
    owner = fields.String(allow_none=True, validate=validate.Length(max=200))
    planned_start = fields.Date(allow_none=True)
    planned_end = fields.Date(allow_none=True)
    forecast_end = fields.Date(allow_none=True)
    actual_start = fields.Date(allow_none=True)
    actual_end = fields.Date(allow_none=True)
    progress_pct = fields.Integer(validate=validate.Range(0, 100))
    milestones = fields.List(fields.Nested(MilestoneIn), validate=validate.Length(max=200))
    illustrative = fields.Boolean()


class NoteIn(InSchema):
    month = fields.String(required=True, validate=[validate.Length(7, 7), MONTH])
    text = fields.String(required=True, validate=validate.Length(1, 20_000))


class ProjectOut(OutSchema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    domain = fields.String(allow_none=True)
    description = fields.String()
    tenants = fields.Method("_tenants")
    other_tenants = fields.Method("_others", metadata={"description": "Tenants you do not see."})
    budget_eur = fields.Float(allow_none=True)
    status = fields.Enum(ProjectStatus, by_value=True)
    health = fields.Enum(ProjectHealth, by_value=True)
    owner = fields.String(allow_none=True)
    planned_start = fields.Date(allow_none=True)
    planned_end = fields.Date(allow_none=True)
    forecast_end = fields.Date(allow_none=True)
    actual_start = fields.Date(allow_none=True)
    actual_end = fields.Date(allow_none=True)
    progress_pct = fields.Integer()
    milestones = fields.Function(
        lambda p: [
            {
                "name": m.name,
                "due": m.due.isoformat(),
                "done_at": m.done_at.isoformat() if m.done_at else None,
            }
            for m in p.milestones
        ]
    )
    notes = fields.Function(lambda p: [{"month": n.month, "text": n.text} for n in p.notes])
    illustrative = fields.Boolean()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()

    def _tenants(self, project: Project) -> list[str]:
        from config.auth import current_actor

        return project.visible_tenant_codes(current_actor())[0]

    def _others(self, project: Project) -> int:
        from config.auth import current_actor

        return project.visible_tenant_codes(current_actor())[1]


class ProjectFilter(FilterSet):
    model = Project
    fields = {
        "status": ["exact"],
        "health": ["exact"],
        "domain": ["exact", "ic"],
        "code": ["exact"],
    }
    filters = {
        "tenant": Filter(
            lambda: code_field(),
            lambda stmt, codes: stmt.where(
                Project.id.in_(
                    sa.select(_project_tenants().c.project_id).where(
                        _project_tenants().c.tenant_id.in_(
                            sa.select(Tenant.id).where(Tenant.code.in_(codes))
                        )
                    )
                )
            ),
        )
    }
    ordering = ("id", "code", "name", "planned_end", "forecast_end", "status", "health")
    default_ordering = ("code",)
    search = ("code", "name", "owner")


def _project_tenants() -> sa.Table:
    from servicedesk.models import project_tenants

    return project_tenants


# -- categories and training --------------------------------------------------------------


class CategoryIn(InSchema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    parent = fields.Integer(allow_none=True, validate=ID)
    active = fields.Boolean()


class CategoryOut(OutSchema):
    id = fields.Integer()
    name = fields.String()
    parent = fields.Integer(attribute="parent_id", allow_none=True)
    path = fields.String()
    active = fields.Boolean()
    source = fields.String()
    external_id = fields.String(allow_none=True)


class CategoryFilter(FilterSet):
    model = Category
    fields = {"active": ["exact"], "parent_id": ["exact"], "source": ["exact"], "name": ["ic"]}
    ordering = ("id", "path", "name")
    default_ordering = ("path",)
    search = ("path",)


class TrainingIn(InSchema):
    tenant = code_field(required=True)
    date = fields.Date(required=True)
    type = fields.Enum(TrainingType, by_value=True, required=True)
    title = fields.String(validate=validate.Length(max=200))
    trainees = fields.Integer(required=True, validate=validate.Range(0, 10_000))
    days = fields.Float(
        required=True, allow_nan=False, validate=validate.Range(0, 1000, min_inclusive=False)
    )
    trainer = fields.String(validate=validate.Length(max=200))
    note = fields.String(validate=validate.Length(max=2000))


class TrainingOut(OutSchema):
    id = fields.Integer()
    tenant = fields.Function(lambda s: s.tenant.code)
    date = fields.Date()
    type = fields.Enum(TrainingType, by_value=True)
    title = fields.String()
    trainees = fields.Integer()
    days = fields.Float()
    trainer = fields.String()
    note = fields.String()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class TrainingFilter(FilterSet):
    model = TrainingSession
    fields = {"date": ["gte", "lte"], "type": ["exact"]}
    filters = {"tenant": tenant_filter(TrainingSession.tenant_id)}
    ordering = ("id", "date", "trainees", "days")
    default_ordering = ("-date",)
    search = ("title", "trainer")
