"""CMDB models: configuration items (CIs), the typed relations between them, which tenant
uses which application, and the graph version counter that keeps impact caches honest.

Visibility (API.md §1, §5): a CI with a NULL tenant is shared (sites, hosts, clusters...)
and visible to everyone; a tenant's CI is visible to those who see that tenant. A relation
or a usage link is visible exactly when both its ends are: relations never join CIs of two
different tenants, so each relation carries the one tenant it touches (``tenant_id``,
NULL when both ends are shared), kept in step by the services, and scoping is one column.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from config.db import EnumType, JSONType, TimestampMixin, UTCDateTime, VersionedMixin, db, utcnow
from config.tenancy import Tenant

__all__ = [
    "CI",
    "CIKind",
    "CIStatus",
    "CmdbAnalysis",
    "CmdbState",
    "Relation",
    "RelationType",
    "Usage",
    "UsageConfidence",
    "bump_graph_version",
    "graph_token",
    "graph_version",
]


class CIKind(enum.StrEnum):
    """What a configuration item is (API.md §2)."""

    SITE = "site"
    CLUSTER = "cluster"
    HOST = "host"
    SERVER = "server"
    DATABASE = "database"
    APPLICATION = "application"
    SERVICE = "service"
    NETWORK_LINK = "network_link"


class CIStatus(enum.StrEnum):
    """The lifecycle of a CI. Retired CIs are kept for history but carry no load."""

    PLANNED = "planned"
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


class RelationType(enum.StrEnum):
    """Typed, directed links. The failure of the target impacts the source, except
    ``member_of``, where members feed their cluster through its ``min_healthy`` rule."""

    RUNS_ON = "runs_on"
    MEMBER_OF = "member_of"
    LOCATED_IN = "located_in"
    DEPENDS_ON = "depends_on"
    HOSTED_ON = "hosted_on"


class UsageConfidence(enum.StrEnum):
    """How sure we are that a tenant uses an application (the demo data's matrix)."""

    CERTAIN = "certain"
    LIKELY = "likely"
    GUESS = "guess"


class CI(TimestampMixin, VersionedMixin, db.Model):
    """A configuration item: anything whose failure can stop a service. Global key
    ``kind:code`` (codes are unique per kind across all tenants, API.md §4)."""

    __tablename__ = "cis"
    __object_type__ = "ci"
    __tenant_column__ = "tenant_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[CIKind] = mapped_column(EnumType(CIKind, 20))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[CIStatus] = mapped_column(
        EnumType(CIStatus, 20), default=CIStatus.ACTIVE, index=True
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    tenant: Mapped[Tenant | None] = relationship(lazy="joined", innerjoin=False)

    __table_args__ = (UniqueConstraint("kind", "code"),)

    @classmethod
    def __tenant_scope__(cls, stmt: sa.Select[Any], actor: Any) -> sa.Select[Any]:
        """Shared CIs and those of the actor's tenants, as one expression on the tenant
        column: written ``coalesce(tenant_id, 0) IN (0, ids...)`` rather than ``IS NULL OR
        IN``, so that no index on ``tenant_id`` tempts the planner and a list page walks
        the ``(kind, code)`` index in list order instead of sorting every visible CI."""
        from config.tenancy import visible_tenant_ids

        ids = visible_tenant_ids(actor)
        if ids is None:
            return stmt
        return stmt.where(sa.func.coalesce(cls.tenant_id, 0).in_([0, *sorted(ids)]))

    @property
    def key(self) -> str:
        """The global key ``kind:code`` (``host:hv-ivry-03``)."""
        return f"{self.kind.value}:{self.code}"

    @property
    def tenant_code(self) -> str | None:
        return self.tenant.code if self.tenant is not None else None

    def __repr__(self) -> str:
        return f"<CI {self.key}>"


class Relation(TimestampMixin, VersionedMixin, db.Model):
    """A typed, directed link ``source → target`` between two CIs; no duplicates, no
    self-links, no cycles (refused by the services)."""

    __tablename__ = "relations"
    __object_type__ = "relation"
    __tenant_column__ = "tenant_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("cis.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("cis.id", ondelete="CASCADE"), index=True)
    type: Mapped[RelationType] = mapped_column(EnumType(RelationType, 20))
    # The tenant of whichever end belongs to one (NULL: both shared). Denormalised so
    # that scoping and the change log need no join; maintained by cmdb.services.
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )

    source: Mapped[CI] = relationship(foreign_keys=[source_id], lazy="joined", innerjoin=True)
    target: Mapped[CI] = relationship(foreign_keys=[target_id], lazy="joined", innerjoin=True)

    __table_args__ = (
        UniqueConstraint("source_id", "target_id", "type"),
        CheckConstraint("source_id <> target_id", name="no_self_link"),
    )

    def __repr__(self) -> str:
        return f"<Relation {self.source_id} {self.type.value} {self.target_id}>"


class Usage(TimestampMixin, VersionedMixin, db.Model):
    """An application CI used by a tenant (API.md §2 ``used_by``): how a failure reaches
    the members. Visible to those who see the tenant."""

    __tablename__ = "ci_usages"
    __object_type__ = "usage"
    __tenant_column__ = "tenant_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    ci_id: Mapped[int] = mapped_column(ForeignKey("cis.id", ondelete="CASCADE"))
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    confidence: Mapped[UsageConfidence] = mapped_column(
        EnumType(UsageConfidence, 20), default=UsageConfidence.CERTAIN
    )
    note: Mapped[str] = mapped_column(String(500), default="")

    ci: Mapped[CI] = relationship(lazy="joined", innerjoin=True)
    tenant: Mapped[Tenant] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (UniqueConstraint("ci_id", "tenant_id"),)


class CmdbState(db.Model):
    """One row: the graph version, bumped in the same transaction as every write to CIs,
    relations or usage, so that every process knows when its cached graph is stale."""

    __tablename__ = "cmdb_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    graph_version: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CmdbAnalysis(db.Model):
    """A whole-graph analysis (SPOF list, findings) computed by a background job for one
    graph version, so that requests read it instead of computing it."""

    __tablename__ = "cmdb_analyses"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    graph_token: Mapped[str] = mapped_column(String(80))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seconds: Mapped[float] = mapped_column(sa.Float, default=0.0)
    result: Mapped[Any] = mapped_column(JSONType)


# -- the graph version ---------------------------------------------------------------------

_STATE_ID = 1
_GRAPH_MODELS = (CI, Relation, Usage)
_BUMPED = "syndic.cmdb.version_bumped"


# Built once: these reads run on every CMDB list page, and building the select cost more
# than executing it (SQLAlchemy's compiled cache serves a constant statement as it is).
_STATE = CmdbState.__table__
_VERSION_QUERY = sa.select(_STATE.c.graph_version).where(_STATE.c.id == _STATE_ID)
_TOKEN_QUERY = sa.select(_STATE.c.graph_version, _STATE.c.changed_at).where(
    _STATE.c.id == _STATE_ID
)


def graph_version(session: Session | None = None) -> int:
    """The current graph version (0 before the first write)."""
    session = session or db.session()
    value = session.execute(_VERSION_QUERY).scalar()
    return int(value or 0)


def graph_token(session: Session | None = None) -> str:
    """The graph version with the time of its last change: ``"42:2021-03-04T09:30:00..."``.

    Caches key on this token rather than on the bare counter, so that a database restored
    from a backup (or reset by tests) whose counter went back is never mistaken for the
    graph a cache holds."""
    session = session or db.session()
    row = session.execute(_TOKEN_QUERY).first()
    if row is None:
        return "0"
    return f"{row[0]}:{row[1].isoformat() if row[1] else ''}"


def bump_graph_version(session: Session | None = None) -> None:
    """Increment the graph version inside the current transaction (once per transaction)."""
    session = session or db.session()
    current = session.get_nested_transaction() or session.get_transaction()
    if current is not None and session.info.get(_BUMPED) is current:
        return
    table = CmdbState.__table__
    conn = session.connection()
    now = utcnow()
    done = conn.execute(
        sa.update(table)
        .where(table.c.id == _STATE_ID)
        .values(graph_version=table.c.graph_version + 1, changed_at=now)
    )
    if done.rowcount == 0:  # type: ignore[attr-defined]
        conn.execute(sa.insert(table).values(id=_STATE_ID, graph_version=1, changed_at=now))
    # Remember in which (sub)transaction the bump happened: a rolled-back savepoint
    # takes its bump with it, so the flag must end with it (see _forget_bump).
    session.info[_BUMPED] = current


@event.listens_for(Session, "before_flush")
def _bump_on_graph_writes(session: Session, _ctx: Any, _instances: Any) -> None:
    for collection in (session.new, session.dirty, session.deleted):
        for obj in collection:
            if isinstance(obj, _GRAPH_MODELS):
                bump_graph_version(session)
                return


@event.listens_for(Session, "after_transaction_end")
def _forget_bump(session: Session, transaction: Any) -> None:
    if session.info.get(_BUMPED) is transaction:
        session.info.pop(_BUMPED, None)
