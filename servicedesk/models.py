"""Service-desk models: tickets (with comments and satisfaction), categories, time entries,
projects (with milestones and monthly notes) and training sessions.

Tenancy: tickets, comments, satisfaction answers and training sessions belong to one tenant;
a time entry to one tenant or none (shared time: internal work, shared infrastructure); a
project to the tenants it serves (visible to anyone who sees one of them; a project with no
tenant is the syndicate's own and visible to all); categories are shared.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from cmdb.models import CI
from config.auth import User
from config.changelog import RESTRICTED
from config.db import EnumType, Model, TimestampMixin, UTCDateTime, VersionedMixin
from config.tenancy import Tenant, tenant_condition, visible_tenant_ids
from servicedesk.workflow import TicketStatus

__all__ = [
    "Category",
    "Channel",
    "Comment",
    "Project",
    "ProjectHealth",
    "ProjectMilestone",
    "ProjectNote",
    "ProjectStatus",
    "Satisfaction",
    "Ticket",
    "TicketStatus",
    "TicketType",
    "TimeEntry",
    "TrainingSession",
    "TrainingType",
    "project_tenants",
]


class TicketType(enum.StrEnum):
    INCIDENT = "incident"
    REQUEST = "request"


class Channel(enum.StrEnum):
    REMOTE = "remote"
    ON_SITE = "on_site"
    POSTED = "posted"
    HOTLINE = "hotline"


class ProjectStatus(enum.StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    DONE = "done"
    CANCELLED = "cancelled"


class ProjectHealth(enum.StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


class TrainingType(enum.StrEnum):
    OFFICE_TOOLS = "office_tools"
    BUSINESS_SOFTWARE = "business_software"
    REDEPLOYMENT = "redeployment"


class SourceMixin:
    """Where a row comes from: ``local`` or a sync source, with the source's own id."""

    source: Mapped[str] = mapped_column(String(32), default="local")
    external_id: Mapped[str | None] = mapped_column(String(64))


class Category(SourceMixin, TimestampMixin, VersionedMixin, Model):
    """A ticket category, in a tree (``Applications métier > ERP Finances``)."""

    __tablename__ = "categories"
    __object_type__ = "category"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="RESTRICT"), index=True
    )
    # The names from the root down, joined with " > " (kept by the services).
    path: Mapped[str] = mapped_column(String(1000), index=True)
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (UniqueConstraint("source", "external_id"),)

    @classmethod
    def __tenant_scope__(cls, stmt: sa.Select[Any], actor: Any) -> sa.Select[Any]:
        return stmt  # shared by every tenant


class Ticket(SourceMixin, TimestampMixin, VersionedMixin, Model):
    """An incident or a request raised for a tenant."""

    __tablename__ = "tickets"
    __object_type__ = "ticket"
    __tenant_column__ = "tenant_id"
    __changelog_exclude__ = ("time_spent_minutes",)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    type: Mapped[TicketType] = mapped_column(EnumType(TicketType, 20))
    title: Mapped[str] = mapped_column(String(250))
    description: Mapped[str] = mapped_column(Text, default="")
    description_format: Mapped[str] = mapped_column(String(10), default="text")  # text | html
    status: Mapped[TicketStatus] = mapped_column(
        EnumType(TicketStatus, 20), default=TicketStatus.NEW, index=True
    )
    urgency: Mapped[int] = mapped_column(default=3)
    impact: Mapped[int] = mapped_column(default=3)
    priority: Mapped[int] = mapped_column(default=3)
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="RESTRICT"), index=True
    )
    ci_id: Mapped[int | None] = mapped_column(ForeignKey("cis.id", ondelete="RESTRICT"), index=True)
    requester_name: Mapped[str] = mapped_column(String(200), default="")
    requester_email: Mapped[str | None] = mapped_column(String(254))
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    assigned_group: Mapped[str | None] = mapped_column(String(100))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    owned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    solved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    due_to_own_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    due_to_resolve_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    pending_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Business minutes spent pending so far: they push the resolution deadline back.
    paused_minutes: Mapped[float] = mapped_column(default=0.0)
    sla_breached: Mapped[bool] = mapped_column(default=False, index=True)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)

    tenant: Mapped[Tenant] = relationship(lazy="joined", innerjoin=True)
    category: Mapped[Category | None] = relationship(lazy="joined")
    ci: Mapped[CI | None] = relationship(lazy="joined")
    assignee: Mapped[User | None] = relationship(lazy="joined")
    satisfaction: Mapped[Satisfaction | None] = relationship(
        back_populates="ticket", lazy="selectin", uselist=False
    )

    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint("urgency BETWEEN 1 AND 5", name="urgency_range"),
        CheckConstraint("impact BETWEEN 1 AND 5", name="impact_range"),
        CheckConstraint("priority BETWEEN 1 AND 5", name="priority_range"),
        # Lists filter live tickets by tenant and status and sort by opening time: one partial
        # index does all of it, and counts never read the table.
        Index(
            "ix_tickets_live_tenant_status_opened",
            "tenant_id",
            "status",
            "opened_at",
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
        # The same for readers of every tenant (managers, admins): no tenant in front.
        Index(
            "ix_tickets_live_status_opened",
            "status",
            "opened_at",
            "id",
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
    )


class Comment(SourceMixin, TimestampMixin, Model):
    """A follow-up on a ticket. Private comments never reach requesters (the requester view
    and anything sent to them leave them out)."""

    __tablename__ = "comments"
    __object_type__ = "comment"
    __tenant_column__ = "tenant_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="RESTRICT"), index=True
    )
    # The ticket's tenant, copied so that scoping and the change log need no join.
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    author_name: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    private: Mapped[bool] = mapped_column(default=False)
    kind: Mapped[str] = mapped_column(
        String(20), default="comment"
    )  # comment | solution | transition

    __table_args__ = (UniqueConstraint("source", "external_id"),)


class Satisfaction(TimestampMixin, VersionedMixin, Model):
    """A requester's satisfaction with a solved or closed ticket (1–5, optional comment)."""

    __tablename__ = "satisfactions"
    __object_type__ = "satisfaction"
    __tenant_column__ = "tenant_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="RESTRICT"), unique=True
    )
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    score: Mapped[int] = mapped_column()
    comment: Mapped[str] = mapped_column(String(2000), default="")
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)

    ticket: Mapped[Ticket] = relationship(back_populates="satisfaction")

    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),)


project_tenants = sa.Table(
    "project_tenants",
    Model.metadata,
    sa.Column("project_id", ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "tenant_id", ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True, index=True
    ),
)


class Project(TimestampMixin, VersionedMixin, Model):
    """A project of the portfolio (the PMO report's rows)."""

    __tablename__ = "projects"
    __object_type__ = "project"
    __changelog_relations__ = {
        "tenants": "code",
        "milestones": ("name", "due", "done_at"),
        "notes": ("month", "text"),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(100), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    budget_eur: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 2))
    status: Mapped[ProjectStatus] = mapped_column(
        EnumType(ProjectStatus, 20), default=ProjectStatus.PROPOSED, index=True
    )
    health: Mapped[ProjectHealth] = mapped_column(
        EnumType(ProjectHealth, 10), default=ProjectHealth.GREEN
    )
    owner: Mapped[str | None] = mapped_column(String(200))
    planned_start: Mapped[dt.date | None] = mapped_column()
    planned_end: Mapped[dt.date | None] = mapped_column()
    forecast_end: Mapped[dt.date | None] = mapped_column()
    actual_start: Mapped[dt.date | None] = mapped_column()
    actual_end: Mapped[dt.date | None] = mapped_column()
    progress_pct: Mapped[int] = mapped_column(default=0)
    illustrative: Mapped[bool] = mapped_column(default=False)  # demo figures, not real ones

    tenants: Mapped[list[Tenant]] = relationship(secondary=project_tenants, order_by="Tenant.code")
    milestones: Mapped[list[ProjectMilestone]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="ProjectMilestone.due"
    )
    notes: Mapped[list[ProjectNote]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="ProjectNote.month"
    )

    __table_args__ = (CheckConstraint("progress_pct BETWEEN 0 AND 100", name="progress_range"),)

    @classmethod
    def __tenant_scope__(cls, stmt: sa.Select[Any], actor: Any) -> sa.Select[Any]:
        """Visible when one of its tenants is, or when it has none (the syndicate's own)."""
        if actor.all_tenants:
            return stmt
        mine = select(project_tenants.c.project_id).where(
            tenant_condition(project_tenants.c.tenant_id, actor)
        )
        anyone = select(project_tenants.c.project_id)
        return stmt.where(sa.or_(cls.id.in_(mine), cls.id.not_in(anyone)))

    def __changelog_tenant__(self) -> int | None:
        ids = [t.id for t in self.tenants]
        if not ids:
            return None
        return ids[0] if len(ids) == 1 else RESTRICTED

    def visible_tenant_codes(self, actor: Any) -> tuple[list[str], int]:
        """The codes of its tenants the actor sees, and how many others there are."""
        visible = visible_tenant_ids(actor)
        shown = [t.code for t in self.tenants if visible is None or t.id in visible]
        return shown, len(self.tenants) - len(shown)


class ProjectMilestone(Model):
    """A dated step of a project."""

    __tablename__ = "project_milestones"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    due: Mapped[dt.date] = mapped_column()
    done_at: Mapped[dt.date | None] = mapped_column()

    project: Mapped[Project] = relationship(back_populates="milestones")


class ProjectNote(Model):
    """The PMO note of a project for one month (``YYYY-MM``)."""

    __tablename__ = "project_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    month: Mapped[str] = mapped_column(String(7))
    text: Mapped[str] = mapped_column(Text)

    project: Mapped[Project] = relationship(back_populates="notes")

    __table_args__ = (UniqueConstraint("project_id", "month"),)


class TimeEntry(SourceMixin, TimestampMixin, VersionedMixin, Model):
    """Time a user spent, on a date, for a tenant (or shared), on an activity."""

    __tablename__ = "time_entries"
    __object_type__ = "time_entry"
    __tenant_column__ = "tenant_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    date: Mapped[dt.date] = mapped_column(index=True)
    minutes: Mapped[int] = mapped_column()
    activity: Mapped[str] = mapped_column(String(40))
    pole: Mapped[str | None] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="RESTRICT"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"))
    channel: Mapped[Channel | None] = mapped_column(EnumType(Channel, 20))
    note: Mapped[str] = mapped_column(String(2000), default="")
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)
    tenant: Mapped[Tenant | None] = relationship(lazy="joined")
    project: Mapped[Project | None] = relationship(lazy="joined")
    ticket: Mapped[Ticket | None] = relationship()

    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint("minutes > 0 AND minutes <= 1440", name="minutes_range"),
        Index("ix_time_entries_user_date", "user_id", "date"),
        # Every entry is written once and read by many queries, but each index is one more
        # B-tree to update on every write (logging time is the busiest write of the day).
        # Ticket, project and deletion are looked up by value (``ticket_id = ?``, ``IS NOT
        # NULL``), which implies the value is not null: the entries without one (shared
        # time, internal work; live entries) stay out of these indexes. No index on activity
        # nor pole: a handful of values each, read by date range (ix_time_entries_report).
        *(
            Index(
                f"ix_time_entries_{column}",
                column,
                sqlite_where=sa.text(f"{column} IS NOT NULL"),
                postgresql_where=sa.text(f"{column} IS NOT NULL"),
            )
            for column in ("ticket_id", "project_id", "deleted_at")
        ),
    )


class TrainingSession(TimestampMixin, VersionedMixin, Model):
    """A training session the syndicate gave to a member's agents."""

    __tablename__ = "training_sessions"
    __object_type__ = "training_session"
    __tenant_column__ = "tenant_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    date: Mapped[dt.date] = mapped_column(index=True)
    type: Mapped[TrainingType] = mapped_column(EnumType(TrainingType, 30))
    title: Mapped[str] = mapped_column(String(200), default="")
    trainees: Mapped[int] = mapped_column()
    days: Mapped[Decimal] = mapped_column(sa.Numeric(6, 2))
    trainer: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(2000), default="")

    tenant: Mapped[Tenant] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (
        CheckConstraint("trainees >= 0", name="trainees_positive"),
        CheckConstraint("days > 0", name="days_positive"),
    )


# The time spent on a ticket, in the ticket's own SELECT (no query per row in lists).
Ticket.time_spent_minutes = column_property(  # type: ignore[attr-defined]
    select(sa.func.coalesce(sa.func.sum(TimeEntry.minutes), 0))
    .where(TimeEntry.ticket_id == Ticket.id, TimeEntry.deleted_at.is_(None))
    .correlate_except(TimeEntry)
    .scalar_subquery(),
    deferred=False,
)
