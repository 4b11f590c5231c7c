"""Test plumbing shared by every tier: databases, clients, query counting, assertions."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import make_url

from config.db import db

PG_ENV = "SYNDIC_TEST_POSTGRES_URL"


def backends() -> list[str]:
    """SQLite always; PostgreSQL too when SYNDIC_TEST_POSTGRES_URL is set."""
    return ["sqlite"] + (["postgresql"] if os.environ.get(PG_ENV) else [])


def pg_url() -> str:
    url = os.environ[PG_ENV]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        u = make_url(url)
        url = u.set(database=f"{u.database}_{worker}").render_as_string(hide_password=False)
    return url


def _pg_admin(url: str, database: str | None = None) -> Any:
    """A plain autocommit psycopg connection (closed by its ``with`` block)."""
    import psycopg

    u = make_url(url)
    if database:
        u = u.set(database=database)
    return psycopg.connect(
        u.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    )


def ensure_pg_database(url: str) -> None:
    """Create the (per-xdist-worker) database if needed, from the maintenance database."""
    name = make_url(url).database
    with _pg_admin(url, "postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_pg_database(url: str) -> None:
    with _pg_admin(url, "postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def reset_pg_schema(url: str) -> None:
    with _pg_admin(url) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


@dataclass
class TestDatabase:
    """A migrated database that tests reset to empty between them."""

    backend: str
    url: str
    template: Path | None = None  # SQLite: a pristine copy of the migrated file
    _tables: list[str] = field(default_factory=list)
    apps: list[Flask] = field(default_factory=list)

    def attach(self, app: Flask) -> Flask:
        """Another app on this database: its connections are closed on every reset."""
        self.apps.append(app)
        return app

    def reset(self, app: Flask) -> None:
        for other in self.apps:
            with other.app_context():
                db.engine.dispose()
        with app.app_context():
            if self.backend == "sqlite":
                db.engine.dispose()
                path = Path(make_url(self.url).database or "")
                for suffix in ("-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                assert self.template is not None
                shutil.copyfile(self.template, path)
            else:
                if not self._tables:
                    self._tables = [t.name for t in db.metadata.sorted_tables]
                names = ", ".join(f'"{t}"' for t in self._tables)
                with db.engine.connect() as conn:
                    conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
                    conn.commit()


class ApiClient(FlaskClient):
    """A test client whose every request runs with a fresh session and ``g``.

    Tests push an app context to build data; Flask would reuse it (and its session
    and ``g``) for requests. Clearing both around each request keeps requests as
    isolated as in production, so identity-map hits cannot hide missing queries.
    """

    token: str | None = None

    def open(self, *args: Any, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        kwargs["headers"] = headers
        _isolate()
        try:
            return super().open(*args, **kwargs)
        finally:
            _isolate()


def _isolate() -> None:
    from flask import has_app_context

    if has_app_context():
        db.session.remove()
        for key in list(g):
            g.pop(key, None)


@contextmanager
def count_queries(app: Flask) -> Iterator[list[str]]:
    """Collect the SQL statements executed inside the block."""
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def _record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if (
            not statement.lstrip()
            .upper()
            .startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "SAVEPOINT", "RELEASE"))
        ):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", _record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", _record)


def assert_status(resp: Any, status: int) -> None:
    """Assert the status code, printing the body when it differs (NetBox assertHttpStatus)."""
    if resp.status_code != status:
        body = resp.get_data(as_text=True)
        raise AssertionError(f"expected {status}, got {resp.status_code}: {body[:2000]}")


def assert_problem(
    resp: Any, status: int, slug: str | None = None, **fields_: Any
) -> dict[str, Any]:
    """Assert an RFC 9457 problem+json answer; returns the body."""
    assert_status(resp, status)
    assert resp.mimetype == "application/problem+json", resp.mimetype
    body = json.loads(resp.get_data(as_text=True))
    for key in ("type", "title", "status", "detail"):
        assert key in body, f"problem without {key}: {body}"
    assert body["status"] == status
    if slug is not None:
        assert body["type"] == f"/problems/{slug}", body
    for key, value in fields_.items():
        assert body.get(key) == value, (key, body)
    text = json.dumps(body)
    assert "Traceback" not in text and "SELECT " not in text, body
    return body
