"""The database layer: declarative base, column types and mixins, SQLite tuning, ``transaction()``.

``transaction()`` is the one place that commits. A ``before_commit`` guard refuses any other
commit, so a helper cannot write behind a service's back.
"""

from __future__ import annotations

import enum
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, MetaData, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    declared_attr,
    make_transient_to_detached,
    mapped_column,
)
from sqlalchemy.orm.util import identity_key

__all__ = [
    "Base",
    "EnumType",
    "JSONType",
    "Model",
    "TimestampMixin",
    "UTCDateTime",
    "VersionedMixin",
    "db",
    "in_transaction",
    "install_engine_tuning",
    "refresh_statistics",
    "transaction",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every syndic model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

_M = TypeVar("_M")

if TYPE_CHECKING:  # mypy cannot use the attribute ``db.Model`` as a base class

    class Model(Base):
        __abstract__ = True

else:
    Model = db.Model


def refresh_statistics() -> None:
    """Give the query planner fresh statistics (``ANALYZE``).

    SQLite keeps none by itself: without them it may pick a weak index (the technicians'
    queue scanned every live ticket through ``deleted_at`` instead of reading the few open
    ones). ``analysis_limit`` bounds the work on large tables. PostgreSQL's autovacuum
    analyses on its own; here it only happens now. Run after bulk loads and nightly by
    ``syndic scheduler``."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes stored as naive UTC on every database, returned aware (UTC).

    Naive datetimes are refused: a wall-clock time without an offset is ambiguous.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def EnumType(enum_cls: type[enum.Enum], length: int = 32) -> sa.Enum:  # noqa: N802
    """A portable enum column: VARCHAR plus a CHECK constraint, storing the enum values."""
    return sa.Enum(
        enum_cls,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
        name=enum_cls.__name__.lower(),
    )


class TimestampMixin:
    """``created_at`` / ``updated_at`` maintained by the ORM (UTC)."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class VersionedMixin:
    """A ``version`` counter the ORM checks on every UPDATE (optimistic locking, ETags).

    A concurrent writer that read an older version gets ``StaleDataError`` (answered 412).
    """

    version: Mapped[int] = mapped_column(default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return {"version_id_col": cls.version}


def known_object(model: type[_M], **values: Any) -> _M:
    """The object of ``model`` whose row holds ``values`` (its ``id`` among them), as an
    object of the session, without a SELECT: for a row the request has just read or written
    through Core. Attributes not given load from the database when first read; an object of
    that identity already in the session is returned as it is."""
    session = db.session()
    existing = session.identity_map.get(identity_key(model, values["id"]))
    if existing is not None:
        return existing
    obj = model(**values)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


# -- SQLite tuning and IMMEDIATE write transactions -----------------------------------------

# Set by transaction() so that the connection's BEGIN says IMMEDIATE on SQLite: a deferred
# transaction that reads and then writes can fail with "database is locked" when another
# writer got in between; IMMEDIATE takes the write lock up front (and waits busy_timeout).
_write_intent: ContextVar[bool] = ContextVar("syndic_write_intent", default=False)

# The writer gates taken by the current transaction(), released after its COMMIT/ROLLBACK.
_gates_held: ContextVar[list[_WriterGate] | None] = ContextVar("syndic_gates_held", default=None)


class _WriterGate:
    """Writers of one SQLite file queue on an exclusive ``flock`` of ``<file>-writers``.

    SQLite lets one writer in at a time; the others get SQLITE_BUSY and their busy handler
    sleeps 1, 2, 5, 10... ms before trying again, however soon the lock is released. Two
    gunicorn workers logging time then spend more time asleep than writing. A blocked
    ``flock`` wakes as soon as the holder releases it, so writers follow each other without
    sleeping. The gate is taken before ``BEGIN IMMEDIATE`` and released after the COMMIT or
    ROLLBACK, by every syndic process, and ``busy_timeout`` still covers the writers that do
    not take it (``sqlite3`` shell, migrations): correctness never depends on the gate.
    The kernel releases a ``flock`` when its process dies (``kill -9`` included).

    One descriptor per thread (a ``flock`` is shared by the holders of one open file, so
    threads need their own), reentrant within a thread: two engines on the same file in one
    thread (tests, the connectors' second app) must not wait for themselves.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    def acquire(self) -> None:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            fd = getattr(self._local, "fd", None)
            if fd is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                self._local.fd = fd
            fcntl.flock(fd, fcntl.LOCK_EX)
        self._local.depth = depth + 1

    def release(self) -> None:
        depth = getattr(self._local, "depth", 0) - 1
        self._local.depth = max(depth, 0)
        if depth == 0:
            fcntl.flock(self._local.fd, fcntl.LOCK_UN)


_GATES: dict[str, _WriterGate] = {}
_GATES_LOCK = threading.Lock()


def _gate_for(engine: Engine) -> _WriterGate | None:
    database = engine.url.database
    if database in (None, "", ":memory:") or str(database).startswith("file:"):
        return None
    path = os.path.abspath(str(database)) + "-writers"
    with _GATES_LOCK:
        gate = _GATES.get(path)
        if gate is None:
            gate = _GATES[path] = _WriterGate(path)
    return gate


def _begin_immediate(conn: sa.Connection) -> None:
    """``BEGIN IMMEDIATE`` behind the file's writer gate (held until transaction() ends)."""
    held = _gates_held.get()
    gate = _gate_for(conn.engine) if held is not None else None
    if gate is not None and held is not None:
        gate.acquire()
        held.append(gate)
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def install_engine_tuning(engine: Engine) -> None:
    """Per-connection pragmas and our own BEGIN for SQLite; nothing for PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take BEGIN away from pysqlite so that we emit it ourselves (SQLAlchemy docs,
        # "Serializable isolation / Savepoints / Transactional DDL" for pysqlite).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA busy_timeout = 30000")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Writes (inside transaction()) take the write lock up front. Reads outside it run
        # without BEGIN, in autocommit: each statement sees its own snapshot, as under
        # PostgreSQL's READ COMMITTED, and a read-only request saves BEGIN and ROLLBACK.
        # A write outside transaction() is refused by the before_flush guard below.
        if _write_intent.get():
            _begin_immediate(conn)


# -- transaction() -----------------------------------------------------------------------

_IN_TXN = "syndic.in_transaction"
ACTOR_KEY = "syndic.actor"


def in_transaction() -> bool:
    """True inside ``with transaction():``."""
    return bool(db.session.info.get(_IN_TXN))


def _begin_immediate_if_idle(session: Session) -> None:
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        raw = conn.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            _begin_immediate(conn)


@contextmanager
def transaction(actor: Any = None) -> Iterator[Session]:
    """Run the block in one database transaction and commit it; roll back on any exception.

    Nested calls join the outermost transaction (only it commits). ``actor`` is recorded
    for the change log when given; otherwise the actor set by authentication is used.
    """
    session = db.session()
    if session.info.get(_IN_TXN):
        yield session
        return
    if actor is not None:
        session.info[ACTOR_KEY] = actor
    session.info[_IN_TXN] = True
    token = _write_intent.set(True)
    held: list[_WriterGate] = []
    gates_token = _gates_held.set(held)
    try:
        if session.in_transaction():
            # Objects read earlier in the request keep the version they were read at, so
            # that an UPDATE of a row someone changed since fails (StaleDataError → 412)
            # instead of silently overwriting it. On SQLite those reads ran in autocommit
            # (see install_engine_tuning): take the write lock now.
            _begin_immediate_if_idle(session)
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info[_IN_TXN] = False
        _write_intent.reset(token)
        _gates_held.reset(gates_token)
        for gate in reversed(held):
            gate.release()


@event.listens_for(Session, "before_commit")
def _only_transaction_commits(session: Session) -> None:
    if not session.info.get(_IN_TXN) and not session.info.get("syndic.allow_commit"):
        raise RuntimeError("commit outside transaction(): services own the transaction")


@event.listens_for(Session, "before_flush")
def _only_transaction_writes(session: Session, _ctx: Any, _instances: Any) -> None:
    if not session.info.get(_IN_TXN) and not session.info.get("syndic.allow_commit"):
        raise RuntimeError("write outside transaction(): services own the transaction")
